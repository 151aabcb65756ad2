#!/usr/bin/env python
"""Sentence retrieval without fine-tuning (Tatoeba; BUCC later): evaluate a pretrained model or a
phase-2 checkpoint directly. One forward pass per sentence gives every layer's embedding, so the
metric is reported for every layer as well as for the configured one.

    python run_retrieval.py --model xlmr-large --task tatoeba
    python run_retrieval.py --model xlmr-large --intermediate_checkpoint checkpoints/xlmr-large/mnli --task tatoeba
    python run_retrieval.py --model tiny-2l-h64 --task tatoeba --data_root tests/fixtures/hub --layer 1
"""

import logging
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm
from transformers import HfArgumentParser, set_seed

from xstilts import data as data_lib
from xstilts import retrieval
from xstilts.cli import DataArguments, ModelArguments, setup_logging
from xstilts.errors import UsageError, exits_on_usage_error
from xstilts.modeling import load_encoder, load_tokenizer
from xstilts.pipeline import average, base_result, claim_output_dir, prepare, settings_fingerprint
from xstilts.predictions import write_all
from xstilts.results import RESULTS_FILE, write_results

logger = logging.getLogger("run_retrieval")


@dataclass
class RetrievalArguments:
    layer: int | None = field(default=None, metadata={
        "help": "hidden_states index (0 = embeddings). Default: the model registry's, else 14/24 relative depth."})
    pooling: str = field(default="mean", metadata={"help": "mean or cls"})
    include_special_tokens: bool = field(default=True, metadata={
        "help": "Mean pooling over <s> and </s> too (XTREME's default)."})
    batch_size: int = field(default=64, metadata={"help": "Sentences per forward pass."})
    seed: int = field(default=1, metadata={"help": "Recorded for the grid layout; retrieval itself is deterministic."})
    output_dir: str | None = field(default=None, metadata={"help": "Default: results/<model>/<inter|none>/<task>/seed<k>"})
    write_predictions: str | None = field(default=None, metadata={
        "help": "Also write predictions in the XTREME leaderboard layout under DIR/<task>/test-<lang>.tsv."})
    write_labels: str | None = field(default=None, metadata={"help": "Write the gold labels in the same layout."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a finished result."})


@exits_on_usage_error
def main(argv=None):
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, RetrievalArguments))
    parser.set_defaults(max_seq_length=512)
    try:
        model_args, data_args, args = parser.parse_args_into_dataclasses(args=argv)
    except SystemExit as e:
        raise SystemExit(2 if e.code not in (0, None) else 0)
    if data_args.task is None:
        raise UsageError("--task is required")
    if args.pooling not in retrieval.POOLINGS:
        raise UsageError(f"unknown pooling {args.pooling!r}; valid choices: {', '.join(retrieval.POOLINGS)}")
    setup_logging()
    run = prepare("retrieval", model_args, data_args, args, seed=args.seed, output_dir=args.output_dir,
                  need_train=False)

    from transformers import AutoConfig

    num_layers = AutoConfig.from_pretrained(run.init_path).num_hidden_layers
    layer, layer_source = retrieval.resolve_layer(args.layer, num_layers, run.model.retrieval_layer)
    if not 0 <= layer <= num_layers:
        raise UsageError(f"--layer {layer} is outside the model: valid hidden_states indices are 0..{num_layers} "
                         f"(0 = embeddings, {num_layers} = last layer)")
    claim_output_dir(run, settings_fingerprint(run, seed=args.seed, layer=layer, pooling=args.pooling,
                                               include_special_tokens=args.include_special_tokens,
                                               max_seq_length=data_args.max_seq_length), args.overwrite)
    if run.skip:
        return 0
    task = run.task
    logger.info("retrieval: %s (from %s) on %s, %d languages, layer %d (%s), pooling %s%s", run.model.name,
                run.init_path, task.name, len(run.languages), layer, layer_source, args.pooling,
                "" if args.include_special_tokens else " without special tokens")
    t0 = time.time()
    set_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = load_tokenizer(run.init_path)
    model = load_encoder(run.init_path).to(device)
    if device == "cuda" and torch.cuda.is_bf16_supported():
        model = model.to(torch.bfloat16)

    per_layer = [dict() for _ in range(num_layers + 1)]
    n_sentences = 0
    pred_dir = run.output_dir / "predictions"
    kw = dict(pooling=args.pooling, include_special_tokens=args.include_special_tokens,
              batch_size=args.batch_size, max_length=data_args.max_seq_length, progress=False)
    for lang in tqdm(run.languages, desc=f"{task.name}: embed + search, all layers", unit="lang"):
        src, en = data_lib.load_retrieval_pairs(task, task.test, run.data_root, lang)
        src_emb = retrieval.embed_all_layers(model, tokenizer, src, **kw)
        en_emb = retrieval.embed_all_layers(model, tokenizer, en, **kw)
        n_sentences += len(src) + len(en)
        for l, row in enumerate(retrieval.tatoeba_all_layers(src_emb, en_emb)):
            preds = row.pop("predictions")
            per_layer[l][lang] = dict(row, n=len(src))
            if l == layer:  # leaderboard layout: for each English sentence, the index of the retrieved one
                write_all([pred_dir, args.write_predictions], task, {lang: [int(p) for p in preds]})
                write_all([args.write_labels], task, {lang: list(range(len(en)))})
    elapsed = time.time() - t0

    per_language = per_layer[layer]
    metric = task.metric
    result = base_result(run, model, seed=args.seed, preset=None)
    result.update({
        "eval_split": task.test.split,
        "per_language": per_language,
        "average": {metric: average(per_language, metric),
                    "accuracy_xx2en": average(per_language, "accuracy_xx2en")},
        "retrieval": {
            "layer": layer, "layer_source": layer_source, "num_layers": num_layers, "pooling": args.pooling,
            "include_special_tokens": args.include_special_tokens, "normalisation": "L2 (cosine)",
            "search": "faiss.IndexFlatIP exact", "direction": "en->xx (XTREME scorer); xx->en also reported",
            "max_seq_length": data_args.max_seq_length,
            "per_layer": {str(l): {"average": {metric: average(pl, metric),
                                               "accuracy_xx2en": average(pl, "accuracy_xx2en")},
                                   "per_language": pl} for l, pl in enumerate(per_layer)},
        },
        "hyperparameters": {"batch_size": args.batch_size, "max_seq_length": data_args.max_seq_length,
                            "dtype": str(next(model.parameters()).dtype)},
        "predictions_dir": str(pred_dir),
        "timing": {"wall_seconds": elapsed, "sentences": n_sentences,
                   "sentences_per_second": n_sentences / max(elapsed, 1e-9)},
    })
    write_results(run.output_dir / RESULTS_FILE, result)
    best = max(range(num_layers + 1), key=lambda l: result["retrieval"]["per_layer"][str(l)]["average"][metric])
    logger.info("%s %s: layer %d avg %s = %.4f (best layer %d: %.4f)", run.model.name, task.name, layer, metric,
                result["average"][metric], best, result["retrieval"]["per_layer"][str(best)]["average"][metric])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
