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

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser, set_seed

from xstilts import data as data_lib
from xstilts.prepare import bucc as bucc_data
from xstilts.prepare.downloads import local_root
from xstilts.retrieval import bucc, embed, summary, tatoeba
from xstilts.retrieval import search as search_lib
from xstilts.cli import DataArguments, ModelArguments, add_choices_to_help, parse_dataclasses, setup_logging
from xstilts.errors import UsageError, choices_error, exits_on_usage_error
from xstilts.modeling import load_encoder, load_tokenizer
from xstilts.pipeline import base_result, claim_output_dir, prepare, settings_fingerprint
from xstilts.registry import TASKS, parse_languages
from xstilts.results import RESULTS_FILE, atomic_write_text, write_results
from xstilts.scoring.predictions import write_all

logger = logging.getLogger("run_retrieval")

PER_LAYER_PNG, PER_LAYER_CSV = "per_layer.png", "per_layer.csv"

BUCC_DEFINITIONS = {
    "f1": "TEST F1 (BUCC 2018 training release) of the pairs scoring >= the threshold chosen on DEV gold: the "
          "task score (x1; the leaderboard scorer prints x100)",
    "precision": "test precision at the dev threshold", "recall": "test recall at the dev threshold",
    "threshold": "ratio-margin threshold that maximises F1 on the dev gold (BUCC sample release); null = no dev "
                 "candidate was a gold pair (nothing predicted)",
    "dev_oracle_f1": "DEV F1 at the threshold tuned on that same dev gold: an ORACLE number (what XTREME's and "
                     "jiant's scripts report as BUCC F1), never the task score",
    "n_predicted": "test pairs written to the prediction file", "n_gold": "test gold pairs",
}
TATOEBA_DEFINITIONS = {
    "accuracy": "English->foreign top-1 accuracy: each English sentence retrieves among the foreign sentences "
                "(the direction of XTREME's predictions and of the leaderboard scorer's number)",
    "accuracy_xx2en": "foreign->English top-1 accuracy",
    "accuracy_mean_both": "mean of the two directions",
}


@dataclass
class RetrievalArguments:
    layer: int | None = field(default=None, metadata={
        "help": "The configured (headline) layer: hidden_states index (0 = embeddings). Default: the model "
                "registry's retrieval_layer, else the study's relative depth 14/24."})
    layers: str = field(default="all", metadata={
        "help": "Layers evaluated in the one forward pass: 'all', 'default' (the configured layer only) or a "
                "comma list such as 8,14,20. Memory: n sentences x hidden x 4 bytes per layer and side."})
    pooling: str | None = field(default=None, metadata={
        "help": "mean or cls. Default: the model registry's retrieval_pooling, else mean (XTREME, jiant)."})
    include_special_tokens: bool | None = field(default=None, metadata={
        "help": "Mean pooling over <s> and </s> too (true/false). Default: the model registry's "
                "retrieval_include_special_tokens, else true (XTREME's default)."})
    batch_size: int = field(default=128, metadata={"help": "Sentences per forward pass (length-sorted batches)."})
    # BUCC mining
    k: int = field(default=bucc.DEFAULT_K, metadata={"help": "BUCC: neighbourhood size of the margin (both directions)."})
    margin: str = field(default="ratio", metadata={"help": f"BUCC: {', '.join(bucc.MARGINS)}"})
    strategy: str = field(default="max", metadata={"help": f"BUCC: {', '.join(bucc.STRATEGIES)}"})
    index: str = field(default="flat", metadata={
        "help": "BUCC kNN index: flat (exact faiss.IndexFlatIP) or hnsw (approximate, for corpora too large)."})
    knn_db_chunk: int = field(default=100_000, metadata={
        "help": "BUCC, FAISS backend: the flat index holds at most this many database rows at once (bounds the "
                "index copy). The torch backend sizes its chunks from free device memory."})
    knn_query_batch: int = field(default=8192, metadata={"help": "BUCC, FAISS backend: queries per search call."})
    search_backend: str = field(default="auto", metadata={
        "help": f"Exact search ({', '.join(search_lib.BACKENDS)}): auto = the chunked torch matrix product on CUDA, "
                "FAISS (IndexFlatIP) otherwise; --index hnsw is always FAISS. Same neighbours up to exact ties."})
    search_dtype: str = field(default="float32", metadata={
        "help": f"torch backend input dtype ({', '.join(search_lib.DTYPES)}); products are accumulated in float32 "
                "either way. bfloat16 halves memory and moves cosines by ~1e-3 (docs/retrieval.md)."})
    embedding_memory_gb: float = field(default=16.0, metadata={
        "help": "BUCC: embeddings (all evaluated layers, one side) above this size go to a memory-mapped file in "
                "--embedding_dir instead of RAM (deleted after each split)."})
    embedding_dir: str | None = field(default=None, metadata={"help": "Default: <output_dir>/embeddings.tmp"})
    write_candidates: bool = field(default=False, metadata={
        "help": "BUCC: also write every test candidate with its score (configured layer) to "
                "<output_dir>/candidates/bucc2018/test-<lang>.tsv (re-threshold without re-embedding)."})
    # common
    seed: int = field(default=1, metadata={"help": "Recorded for the grid layout; retrieval itself is deterministic."})
    output_dir: str | None = field(default=None, metadata={"help": "Default: results/<model>/<inter|none>/<task>/seed<k>"})
    write_predictions: str | None = field(default=None, metadata={
        "help": "Also write predictions in the XTREME leaderboard layout under DIR/<task>/test-<lang>.tsv."})
    write_labels: str | None = field(default=None, metadata={"help": "Write the gold labels in the same layout."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a finished result."})


def _check_choices(args, data_args) -> None:
    if args.pooling is not None and args.pooling not in embed.POOLINGS:
        raise UsageError(f"unknown pooling {args.pooling!r}; valid choices: {', '.join(embed.POOLINGS)}")
    for name, valid in (("margin", bucc.MARGINS), ("strategy", bucc.STRATEGIES), ("index", bucc.INDEXES)):
        if getattr(args, name) not in valid:
            raise choices_error(f"--{name}", getattr(args, name), valid)
    search_lib.check_choices(args.search_backend, args.search_dtype)
    for name in ("k", "batch_size", "knn_db_chunk", "knn_query_batch"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if data_args.max_seq_length < 1:
        raise UsageError(f"--max_seq_length must be >= 1, got {data_args.max_seq_length}")
    if args.embedding_memory_gb <= 0:
        raise UsageError(f"--embedding_memory_gb must be > 0, got {args.embedding_memory_gb}")


def _check_data_early(data_args) -> None:
    """Retrieval data that is not on the Hub: a clear error naming the make target, before anything loads."""
    task = TASKS.get(data_args.task)
    if task is None or task.phase != "retrieval":
        return  # prepare() reports unknown tasks and tasks of other phases
    if getattr(data_args, "eval_split", "test") != "test":
        raise UsageError(f"--eval_split {data_args.eval_split!r}: retrieval tasks have one evaluation split "
                         "(Tatoeba: the test sets; BUCC: the training release, with the threshold from the sample "
                         "release); valid choices: test")
    # BUCC has no Hub source at all; the XTREME-R Tatoeba languages are PreparedSources, checked by prepare()
    if task.format == "bitext_mining":
        data_root = data_lib.resolve_data_root(data_args.data_root)
        langs = parse_languages(task, data_args.languages)
        bucc_data.check_available(local_root(data_root), langs,
                                  "" if data_root is not None else f"; or pass --data_root DIR holding {bucc_data.KIT_DIR}/")
        _check_bucc_not_empty(bucc_data.kit_dir(local_root(data_root)), langs)


def _check_bucc_not_empty(directory: Path, langs: list[str]) -> None:
    """An empty BUCC sentence or gold file (an interrupted conversion) would be mined as "no pairs" and reported
    as F1 0: refused here, naming the file. Reads up to the first non-blank line of each file."""
    for lang in langs:
        for split in bucc_data.RELEASE_OF_SPLIT:
            for ext in bucc_data.EXTS:
                path = bucc_data.split_file(directory, lang, split, ext)
                with open(path, encoding="utf-8", errors="replace") as f:
                    if not any(line.strip() for line in f):
                        raise UsageError(f"BUCC 2018 {lang}-en {split}: {path} is empty. Convert the release archives "
                                         f"again (`make data-bucc`, or `python -m xstilts.bucc_data`)")


def _pooling(args, model_name: str) -> tuple[str, bool, str]:
    from xstilts.run.models import registry

    entry = registry().get(model_name, {})
    pooling, special, source = args.pooling, args.include_special_tokens, []
    if pooling is None:
        pooling = entry.get("retrieval_pooling", "mean")
        source.append("pooling: " + ("model registry" if "retrieval_pooling" in entry else "kit default (mean)"))
    else:
        source.append("pooling: command line")
    if special is None:
        special = bool(entry.get("retrieval_include_special_tokens", True))
        source.append("special tokens: " + ("model registry" if "retrieval_include_special_tokens" in entry
                                            else "kit default (included, as XTREME)"))
    else:
        source.append("special tokens: command line")
    if pooling not in embed.POOLINGS:
        raise UsageError(f"configs/models.json {model_name}: unknown retrieval_pooling {pooling!r}; valid choices: "
                         f"{', '.join(embed.POOLINGS)}")
    return pooling, special, "; ".join(source)


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


def run_tatoeba(run, model, tokenizer, args, layers, layer, embed_kwargs, search, pred_dir) -> dict:
    task = run.task

    def load_pairs(lang):
        return data_lib.load_retrieval_pairs(task, task.eval_source(lang), run.data_root, lang)

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


def run_bucc(run, model, tokenizer, args, layers, layer, embed_kwargs, search, pred_dir) -> dict:
    data_dir = local_root(run.data_root)
    bdir = bucc_data.kit_dir(data_dir)
    uses_faiss = search.backend == "faiss"
    mine_kwargs = {"k": args.k, "margin": args.margin, "strategy": args.strategy, "index": args.index,
                   "search": search, "batch_size": args.knn_query_batch,
                   "db_batch_size": args.knn_db_chunk if args.index == "flat" else None}
    cand_dir = run.output_dir / "candidates"

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

    spill = Path(args.embedding_dir) if args.embedding_dir else run.output_dir / "embeddings.tmp"
    out = bucc.run_bucc(model, tokenizer, run.languages, lambda lang, split: bucc_data.read_split(bdir, lang, split),
                             layers, embed_kwargs=embed_kwargs, mine_kwargs=mine_kwargs,
                             memory_budget_bytes=args.embedding_memory_gb * 1e9, spill_dir=spill,
                             on_test_pairs=on_test_pairs)
    keys = ("f1", "precision", "recall", "dev_oracle_f1")
    per_layer = {l: dict(summary.summarise(out["per_layer"][l], keys), per_language=out["per_layer"][l])
                 for l in layers}
    manifest_path = bdir / "manifest.json"
    manifest = None
    if manifest_path.is_file():
        import json

        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return {"per_layer": per_layer, "n_sentences": out["n_sentences"], "definitions": BUCC_DEFINITIONS,
            "mining": {"margin": args.margin, "k": args.k, "strategy": args.strategy,
                       "directions": "both (source->English and English->source)",
                       "duplicates": "mined on unique sentence texts; every id of a duplicated text is kept",
                       "threshold": "chosen per layer and language to maximise F1 on the dev gold (BUCC sample "
                                    "release) and applied unchanged to the test candidates (BUCC training release)",
                       "knn_db_chunk": mine_kwargs["db_batch_size"] if uses_faiss else None,
                       "knn_query_batch": args.knn_query_batch if uses_faiss else None,
                       "candidates_dir": str(cand_dir) if args.write_candidates else None},
            "data": {"sources": [{"name": "BUCC 2018 shared task (original release archives)",
                                  "url": bucc_data.BUCC_URL, "dir": str(bdir), "role": "evaluation",
                                  "splits": {"dev": "sample release (threshold)", "test": "training release (score)"},
                                  "manifest": manifest}]}}


@exits_on_usage_error
def main(argv=None):
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, RetrievalArguments))
    parser.set_defaults(max_seq_length=512)
    add_choices_to_help(parser, "retrieval")
    model_args, data_args, args = parse_dataclasses(parser, argv)
    if data_args.task is None:
        raise UsageError("--task is required")
    _check_choices(args, data_args)
    setup_logging()
    _check_data_early(data_args)
    run = prepare("retrieval", model_args, data_args, seed=args.seed, output_dir=args.output_dir,
                  need_train=False)

    from transformers import AutoConfig

    num_layers = AutoConfig.from_pretrained(run.init_path).num_hidden_layers
    layer, layer_source = embed.resolve_layer(args.layer, num_layers, run.model.retrieval_layer)
    embed.check_layer(layer, num_layers)
    layers = embed.parse_layers(args.layers, num_layers, layer)
    pooling, special, pooling_source = _pooling(args, run.model.name)
    task = run.task
    bitext = task.format == "bitext_mining"
    settings = dict(seed=args.seed, layer=layer, layers=layers, pooling=pooling, include_special_tokens=special,
                    max_seq_length=data_args.max_seq_length)
    if bitext:
        settings.update(k=args.k, margin=args.margin, strategy=args.strategy, index=args.index)
    if args.search_dtype != "float32":  # bf16 inputs can change the numbers; the backend alone does not (exact)
        settings.update(search_dtype=args.search_dtype)
    search = search_lib.resolve(args.search_backend, dtype=args.search_dtype, index=args.index if bitext else "flat")
    claim_output_dir(run, settings_fingerprint(run, **settings), args.overwrite)
    if run.skip:
        return 0
    logger.info("retrieval: %s (from %s) on %s, %d languages, layer %d (%s), %d layer(s) evaluated, pooling %s%s",
                run.model.name, run.init_path, task.name, len(run.languages), layer, layer_source, len(layers),
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
    pred_dir = run.output_dir / "predictions"

    evaluate = run_bucc if bitext else run_tatoeba
    out = evaluate(run, model, tokenizer, args, layers, layer, embed_kwargs, search, pred_dir)
    if search.chunks:
        logger.info("search: chunks used (queries x database rows): %s",
                    ", ".join(f"{q} x {d}" for q, d in search.chunks))
    elapsed = time.time() - t0

    metric = task.metric
    head = out["per_layer"][layer]
    per_language = head["per_language"]
    result = base_result(run, model, seed=args.seed, preset=None)
    result["data"]["sources"] = out["data"]["sources"]
    result.update({
        "eval_split": "test (BUCC training release; threshold from the sample release)" if bitext
                      else task.test.split,
        "per_language": per_language,
        "average": head["average"],
        "average_by_benchmark": summary.benchmark_averages(task, per_language, metric),
        "groups": head["groups"],
        "retrieval": {
            "layer": layer, "layer_source": layer_source, "num_layers": num_layers, "layers_evaluated": layers,
            "pooling": pooling, "include_special_tokens": special, "pooling_source": pooling_source,
            "normalisation": "L2 (cosine)", "search": search.describe(),
            "max_seq_length": data_args.max_seq_length, "metric_definitions": out["definitions"],
            **({"mining": out["mining"]} if bitext else {"direction": out["direction"]}),
            "per_layer": {str(l): {"average": pl["average"], "groups": pl["groups"], "per_language": pl["per_language"]}
                          for l, pl in out["per_layer"].items()},
        },
        "hyperparameters": {"batch_size": args.batch_size, "max_seq_length": data_args.max_seq_length,
                            "dtype": str(next(model.parameters()).dtype), "device": device},
        "predictions_dir": str(pred_dir),
        "timing": {"wall_seconds": elapsed, "sentences": out["n_sentences"],
                   "sentences_per_second": out["n_sentences"] / max(elapsed, 1e-9)},
    })
    from xstilts.retrieval.plots import per_layer_csv, plot_per_layer

    atomic_write_text(run.output_dir / PER_LAYER_CSV, per_layer_csv(result))
    plot_per_layer(result, run.output_dir / PER_LAYER_PNG)
    write_results(run.output_dir / RESULTS_FILE, result)  # last: its presence marks the run finished

    rows = [f"{l:>5} {100 * out['per_layer'][l]['average'][metric]:8.2f}" + ("  <- configured" if l == layer else "")
            for l in layers]
    logger.info("%s %s: average %s (x100) by layer\nlayer %8s\n%s", run.model.name, task.name, metric, metric,
                "\n".join(rows))
    if bitext:
        logger.info("bucc2018 layer %d: test F1 %.2f (threshold from dev); dev-oracle F1 %.2f (NOT a test score)",
                    layer, 100 * head["average"]["f1"], 100 * head["average"]["dev_oracle_f1"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
