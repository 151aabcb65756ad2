#!/usr/bin/env python
"""Sentence retrieval without fine-tuning: evaluate a pretrained model or a phase-2 checkpoint directly on
Tatoeba (accuracy) or BUCC 2018 (bitext-mining F1). One forward pass per sentence gives the embeddings of
every evaluated layer, so the metric is reported per layer as well as for the configured one.

    python run_retrieval.py --model xlmr-large --task tatoeba                 # 36 + 5 languages, every layer
    python run_retrieval.py --model xlmr-large --task bucc2018 --layers 8,14,20
    python run_retrieval.py --model xlmr-large --task tatoeba --intermediate_checkpoint checkpoints/xlmr-large/mnli
    python run_retrieval.py --model tiny-2l-h64 --task bucc2018 --data_root tests/fixtures/hub

BUCC needs `make data-bucc` first (the original release archives; not on the Hub), the five XTREME-R Tatoeba
languages `make data-tatoeba` (LASER files). Both are read from --data_root, else from data/ in the kit
(local/bucc2018, local/tatoeba-laser).
See docs/retrieval.md.
"""

import json
import logging
import time
from pathlib import Path

import torch
from transformers import set_seed

from xstilts.data.sources import local_root
from xstilts.files import atomic_write_text
from xstilts.prepare import bucc as bucc_data
from xstilts.retrieval import bucc, summary, tatoeba
from xstilts.retrieval.plots import per_layer_csv, plot_per_layer
from xstilts.run import layout
from xstilts.run.record import base_result
from xstilts.run.results import write_results
from xstilts.run.start import begin_retrieval, script_main
from xstilts.scoring.predictions import write_all
from xstilts.training.modeling import load_encoder, load_tokenizer

logger = logging.getLogger("run_retrieval")

BUCC_DEFINITIONS = {
    "f1": "TEST F1 (BUCC 2018 training release) of the pairs scoring >= the threshold chosen on DEV gold: the "
          "task score (x1; the leaderboard scorer prints x100)",
    "precision": "test precision at the dev threshold", "recall": "test recall at the dev threshold",
    "threshold": "ratio-margin threshold that maximises F1 on the dev gold (BUCC sample release); null = no dev "
                 "candidate was a gold pair (nothing predicted)",
    "dev_oracle_f1": "DEV F1 at the threshold tuned on that same dev gold: an ORACLE number (what jiant's "
                     "validation reports as BUCC F1), never the task score",
    "test_oracle_f1": "TEST F1 at the threshold tuned on the TEST gold itself: an ORACLE number, the one COMPARABLE "
                      "TO PUBLISHED BUCC FIGURES (LASER tasks/bucc/README.md: 'Optimized on the F-scores on the "
                      "training corpus', the release scored here as test; XTREME utils_retrieve.py@838c13b:304-314 "
                      "bucc_eval re-tunes on the gold it scores); never the task score",
    "gold_pairs_with_duplicated_text": "gold pairs naming an id whose sentence text occurs more than once on its "
                                       "side (with duplicates=drop they cannot be found; they count in recall)",
    "n_predicted": "test pairs written to the prediction file", "n_gold": "test gold pairs",
}
# which benchmark's Tatoeba protocol each encoder matches (xstilts.tasks.retrieval: tatoeba / tatoeba_squad)
TATOEBA_PROTOCOLS = {
    "raw": "XTREME: the pretrained model's layer, no fine-tuning (google-research/xtreme scripts/run_tatoeba.sh at "
           "5d7e462; the model override of 838c13b:44-45 is absent before 0918248). Not XTREME-R's protocol",
    "squad_v1.1-finetuned": "XTREME-R: the encoder first fine-tuned on SQuAD v1.1 as extractive QA "
                            "(scripts/run_tatoeba.sh@838c13b:44-45, named by train_qa.sh@838c13b:41; recipe "
                            "recorded in retrieval.encoder.recipe). Not XTREME's protocol",
}
TATOEBA_DEFINITIONS = {
    "accuracy": "English->foreign top-1 accuracy: each English sentence retrieves among the foreign sentences "
                "(the direction of XTREME's predictions and of the leaderboard scorer's number)",
    "accuracy_xx2en": "foreign->English top-1 accuracy",
    "accuracy_mean_both": "mean of the two directions",
}


def _sources(run) -> list[dict]:
    """Evaluation data per distinct source (Tatoeba: google/xtreme, and the local LASER copy for XTREME-R)."""
    task, out = run.task, []
    by_source: list = []  # [(source, [langs])] in first-use order (Source holds a dict: not hashable)
    for lang in run.languages:
        source = task.eval_source(lang)
        hit = next((langs for s, langs in by_source if s == source), None)
        if hit is None:
            by_source.append((source, [lang]))
        else:
            hit.append(lang)
    for source, langs in by_source:
        d = dict(source.describe("{code}" if "{code}" in source.config else None), role="evaluation",
                 codes={l: task.code(l) for l in langs})
        if d.get("local"):  # not on the Hub: read from the data root, else the kit's data/
            d["local_copy"] = str(local_root(run.data_root) / source.hub_id)
        out.append(d)
    return out


def run_tatoeba(run, model, tokenizer, args, layers, layer, embed_kwargs, search, pred_dir, duplicates) -> dict:
    task = run.task

    def load_pairs(lang):
        return tatoeba.load_pairs(task, task.eval_source(lang), run.data, lang)

    def on_predictions(lang, l, preds, n):
        if l == layer:  # leaderboard layout: for each English sentence, the index of the retrieved one
            write_all([pred_dir, args.write_predictions], task, {lang: preds})
            write_all([args.write_labels], task, {lang: list(range(n))})

    out = tatoeba.run_tatoeba(model, tokenizer, task, run.languages, load_pairs, layers,
                              embed_kwargs=embed_kwargs, search=search, on_predictions=on_predictions)
    keys = ("accuracy", "accuracy_xx2en", "accuracy_mean_both")
    per_layer = {l: dict(summary.summarise(out["per_layer"][l], keys), per_language=out["per_layer"][l])
                 for l in layers}
    return {"per_layer": per_layer, "n_sentences": out["n_sentences"], "definitions": TATOEBA_DEFINITIONS,
            "direction": "en->xx is the task metric (XTREME scorer); xx->en also reported",
            "data": {"sources": _sources(run)}}


DUPLICATE_RULES = {
    "drop": "mined on unique sentence texts; a text that occurs more than once on its side maps to no id, so its "
            "pairs are dropped (LASER tasks/bucc/bucc.py@74bc6ae:82-95,101-111; XTREME third_party/"
            "utils_retrieve.py@838c13b:266-301)",
    "expand": "mined on unique sentence texts; a mined text pair becomes every (source id, English id) pair of the "
              "two texts (jiant Bucc2018EvaluationScheme.get_preds_from_accumulator, itertools.product)",
}


def run_bucc(run, model, tokenizer, args, layers, layer, embed_kwargs, search, pred_dir, duplicates) -> dict:
    data_dir = local_root(run.data_root)
    bdir = bucc_data.kit_dir(data_dir)
    uses_faiss = search.backend == "faiss"
    mine_kwargs = {"k": args.k, "margin": args.margin, "strategy": args.strategy, "index": args.index,
                   "duplicates": duplicates,
                   "search": search, "batch_size": args.knn_query_batch,
                   "db_batch_size": args.knn_db_chunk if args.index == "flat" else None}
    cand_dir = run.output_dir / layout.CANDIDATES_DIR

    def on_test_pairs(lang, l, pairs, candidates, gold):
        if l != layer:
            return
        for root in (pred_dir, args.write_predictions):
            if root:
                bucc.write_predictions(bucc.prediction_path(root, lang), pairs)
        if args.write_labels:
            bucc.write_predictions(bucc.prediction_path(args.write_labels, lang), sorted(gold))
        if args.write_candidates:
            bucc.write_candidates(bucc.prediction_path(cand_dir, lang), candidates)

    spill = Path(args.embedding_dir) if args.embedding_dir else run.output_dir / layout.EMBEDDINGS_DIR
    out = bucc.run_bucc(model, tokenizer, run.languages, lambda lang, split: bucc_data.read_split(bdir, lang, split),
                        layers, embed_kwargs=embed_kwargs, mine_kwargs=mine_kwargs,
                        memory_budget_bytes=args.embedding_memory_gb * 1e9, spill_dir=spill,
                        on_test_pairs=on_test_pairs)
    keys = ("f1", "precision", "recall", "dev_oracle_f1", "test_oracle_f1")
    per_layer = {l: dict(summary.summarise(out["per_layer"][l], keys), per_language=out["per_layer"][l])
                 for l in layers}
    manifest_path = bdir / "manifest.json"
    manifest = None
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return {"per_layer": per_layer, "n_sentences": out["n_sentences"], "definitions": BUCC_DEFINITIONS,
            "mining": {"margin": args.margin, "k": args.k, "strategy": args.strategy,
                       "directions": "both (source->English and English->source)",
                       "duplicates": duplicates, "duplicates_rule": DUPLICATE_RULES[duplicates],
                       "threshold": "chosen per layer and language to maximise F1 on the dev gold (BUCC sample "
                                    "release) and applied unchanged to the test candidates (BUCC training release)",
                       "knn_db_chunk": mine_kwargs["db_batch_size"] if uses_faiss else None,
                       "knn_query_batch": args.knn_query_batch if uses_faiss else None,
                       "candidates_dir": str(cand_dir) if args.write_candidates else None},
            "data": {"sources": [{"name": "BUCC 2018 shared task (original release archives)",
                                  "url": bucc_data.BUCC_URL, "dir": str(bdir), "role": "evaluation",
                                  "splits": {"dev": "sample release (threshold)", "test": "training release (score)"},
                                  "manifest": manifest}]}}


@script_main
def main(argv=None):
    rr = begin_retrieval(argv)
    run, args, data_args, layer, layers, search = rr.run, rr.args, rr.data_args, rr.layer, rr.layers, rr.search
    if run.skip:
        return 0
    task = run.task
    bitext = task.format == "bitext_mining"
    pooling, special = rr.pooling, rr.special
    logger.info("retrieval: %s (from %s) on %s, %d languages, layer %d (%s), %d layer(s) evaluated, pooling %s%s",
                run.model.name, run.init_path, task.name, len(run.languages), layer, rr.layer_source, len(layers),
                pooling, "" if special else " without special tokens")
    t0 = time.time()
    set_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = load_tokenizer(run.init_path)
    model = load_encoder(run.init_path).to(device)
    if device == "cuda" and torch.cuda.is_bf16_supported():
        model = model.to(torch.bfloat16)
    logger.info("search: %s", search)
    embed_kwargs = dict(pooling=pooling, include_special_tokens=special, batch_size=args.batch_size,
                        max_length=data_args.max_seq_length, progress=False)
    pred_dir = run.output_dir / layout.PREDICTIONS_DIR

    evaluate = run_bucc if bitext else run_tatoeba
    out = evaluate(run, model, tokenizer, args, layers, layer, embed_kwargs, search, pred_dir, rr.duplicates)
    if search.chunks:
        logger.info("search: chunks used (queries x database rows): %s",
                    ", ".join(f"{q} x {d}" for q, d in search.chunks))
    elapsed = time.time() - t0

    metric = task.metric
    head = out["per_layer"][layer]
    per_language = head["per_language"]
    result = base_result(run, model, seed=args.seed, preset=rr.preset)
    result["data"]["sources"] = out["data"]["sources"]
    result.update({
        "eval_split": "test (BUCC training release; threshold from the sample release)" if bitext
                      else task.test.split,
        "per_language": per_language,
        "average": head["average"],
        "average_by_benchmark": summary.benchmark_averages(task, per_language, metric),
        "groups": head["groups"],
        "retrieval": {
            "layer": layer, "layer_source": rr.layer_source, "num_layers": rr.num_layers, "layers_evaluated": layers,
            "pooling": pooling, "include_special_tokens": special, "pooling_source": rr.pooling_source,
            "normalisation": "L2 (cosine)", "search": search.describe(),
            "max_seq_length": data_args.max_seq_length, "metric_definitions": out["definitions"],
            "encoder": rr.encoder,
            **({"mining": out["mining"]} if bitext else {"direction": out["direction"]}),
            **({"tatoeba_encoder": rr.encoder["kind"],
                "protocol": TATOEBA_PROTOCOLS.get(rr.encoder["kind"], f"the kit's (encoder recipe "
                                                                      f"{rr.encoder['kind']!r})")}
               if task.xtreme_name == "tatoeba" else {}),
            "per_layer": {str(l): {"average": pl["average"], "groups": pl["groups"], "per_language": pl["per_language"]}
                          for l, pl in out["per_layer"].items()},
        },
        "hyperparameters": {"batch_size": args.batch_size, "max_seq_length": data_args.max_seq_length,
                            "dtype": str(next(model.parameters()).dtype), "device": device},
        "predictions_dir": str(pred_dir),
        "timing": {"wall_seconds": elapsed, "sentences": out["n_sentences"],
                   "sentences_per_second": out["n_sentences"] / max(elapsed, 1e-9)},
    })
    atomic_write_text(run.output_dir / layout.PER_LAYER_CSV, per_layer_csv(result))
    plot_per_layer(result, run.output_dir / layout.PER_LAYER_PNG)
    write_results(run.output_dir / layout.RESULTS_FILE, result)  # last: its presence marks the run finished

    rows = [f"{l:>5} {100 * out['per_layer'][l]['average'][metric]:8.2f}" + ("  <- configured" if l == layer else "")
            for l in layers]
    logger.info("%s %s: average %s (x100) by layer\nlayer %8s\n%s", run.model.name, task.name, metric, metric,
                "\n".join(rows))
    if bitext:
        logger.info("bucc2018 layer %d: test F1 %.2f (threshold from dev: the task score); test-ORACLE F1 %.2f "
                    "(threshold tuned on the test gold: comparable to published BUCC figures, not held out); "
                    "dev-oracle F1 %.2f; duplicates=%s", layer, 100 * head["average"]["f1"],
                    100 * head["average"]["test_oracle_f1"], 100 * head["average"]["dev_oracle_f1"], rr.duplicates)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
