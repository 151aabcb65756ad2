#!/usr/bin/env python
"""Zero-shot evaluation throughput: the kit's one-pass evaluation against naive per-language batching.

One checkpoint is evaluated on every language of a task. The kit (``xstilts.formats.base.predict_sorted``)
puts all languages into one dataset, sorts it by length, and predicts it in one pass with dynamic padding and
the kit's evaluation batch size (128), with the model loaded once. The naive way, as many older scripts do it,
loops over languages and predicts each language's rows in file order with the training batch size. Both use
the same model (random weights of a chosen XLM-R shape; no download), the same rows and ``Trainer.predict``,
so the difference is the batching alone; the script checks that both give the same predictions.

Row counts per language follow the real test sets (XNLI 5,010 per language; PAN-X and MLQA vary by
language, see TASKS) times ``--scale``; token lengths are log-normal (an assumption, recorded in the JSON).

    python bench/bench_eval.py --model_shape tiny --task xnli --scale 0.02      # CPU
    python bench/bench_eval.py --model_shape large --task panx --scale 1        # GPU
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_train import MODEL_SHAPES, Pad, build_model  # noqa: E402
from common import check_out_path, header, write_result  # noqa: E402
from xstilts.run.args import EVAL_BATCH_SIZE  # noqa: E402

# rows per language in the real evaluation sets (test splits; MLQA: QA features ~ examples)
TASKS = {
    "xnli": dict(head="classification", max_length=128, median=45, sigma=0.45, min_length=8,
                 rows={l: 5010 for l in "ar bg de el en es fr hi ru sw th tr ur vi zh".split()}),
    "panx": dict(head="tagging", max_length=128, median=14, sigma=0.5, min_length=3,
                 rows={**{l: 10000 for l in "ar de el en es fi fr he hi hu id it ja ko nl pt ru tr vi zh".split()},
                       **{l: 1000 for l in "af bg bn et eu fa ka kk ml mr ms my sw ta te th tl ur jv yo".split()}}),
    "mlqa": dict(head="qa", max_length=384, median=200, sigma=0.35, min_length=40,
                 rows={"en": 11590, "es": 5253, "de": 4517, "ar": 5335, "hi": 4918, "vi": 5495, "zh": 5137}),
}


def build_rows(task: dict, scale: float, vocab: int, seed: int):
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    ids, lengths, langs = [], [], []
    for lang, n in task["rows"].items():
        k = max(1, int(round(n * scale)))
        ls = np.clip(np.round(rng.lognormal(math.log(task["median"]), task["sigma"], size=k)),
                     task["min_length"], task["max_length"]).astype(int)
        for L in ls:
            ids.append([0] + rng.integers(5, vocab, size=L - 2).tolist() + [2])
            lengths.append(int(L))
            langs.append(lang)
    return Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids],
                              "length": lengths, "lang": langs})


def predictor(model, batch_size: int, cuda: bool):
    import torch
    from transformers import TrainingArguments

    from xstilts.training.trainer import trainer_class

    args = TrainingArguments(output_dir="/tmp/xstilts-bench-eval", per_device_eval_batch_size=batch_size,
                             report_to=[], disable_tqdm=True, use_cpu=not cuda,
                             # as run_target.py: bf16 autocast on a bf16-capable GPU (both ways alike)
                             bf16=cuda and torch.cuda.is_bf16_supported())
    return trainer_class()(model=model, args=args, data_collator=Pad(None, None))


def timed_predict(trainer, ds, cuda: bool) -> tuple[float, np.ndarray]:
    import torch

    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = trainer.predict(ds.remove_columns([c for c in ds.column_names if c not in ("input_ids", "attention_mask")]))
    if cuda:
        torch.cuda.synchronize()
    preds = out.predictions[0] if isinstance(out.predictions, tuple) else out.predictions
    return time.perf_counter() - t0, preds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_shape", choices=sorted(MODEL_SHAPES), default="tiny")
    p.add_argument("--task", choices=sorted(TASKS), default="xnli")
    p.add_argument("--scale", type=float, default=0.02, help="fraction of the real row counts")
    p.add_argument("--kit_batch_size", type=int, default=EVAL_BATCH_SIZE,
                   help="default: the kit's --per_device_eval_batch_size default")
    p.add_argument("--naive_batch_size", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    args = p.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    out = check_out_path(Path(args.out) if args.out else ROOT / "bench" / "results" / (
        f"eval-{'gpu' if cuda else 'cpu'}-{args.model_shape}-{args.task}.json"), args.overwrite)
    hdr = header("eval", "bench_eval.py", argv, cuda)  # before measuring: the load average at the start
    task = TASKS[args.task]
    shape = MODEL_SHAPES[args.model_shape]
    ds = build_rows(task, args.scale, shape["vocab_size"], args.seed)
    model = build_model(shape, task, "sdpa", 3).eval()
    if cuda:
        model = model.cuda()

    # naive: per language, file order, training batch size
    naive = predictor(model, args.naive_batch_size, cuda)
    timed_predict(naive, ds.select(range(min(len(ds), 4 * args.naive_batch_size))), cuda)  # warm-up
    t_naive, naive_preds = 0.0, {}
    langs = np.asarray(ds["lang"])
    for lang in task["rows"]:
        idx = np.flatnonzero(langs == lang)
        t, pr = timed_predict(naive, ds.select(idx), cuda)
        t_naive += t
        naive_preds[lang] = pr

    # kit: one pass, length-sorted, large batches
    kit = predictor(model, args.kit_batch_size, cuda)
    order = np.argsort(np.asarray(ds["length"]), kind="stable")
    t_kit, pr_sorted = timed_predict(kit, ds.select(order), cuda)
    # compare predictions (argmax; padded logits beyond a row's length are ignored)
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    agreement = {}
    for lang in task["rows"]:
        idx = np.flatnonzero(langs == lang)
        a, b = naive_preds[lang], pr_sorted[inv[idx]]
        if task["head"] == "classification":
            agreement[lang] = float((a.argmax(-1) == b.argmax(-1)).mean())
        else:
            lens = np.asarray(ds.select(idx)["length"])
            agreement[lang] = float(np.mean([(a[i, :n].argmax(-1) == b[i, :n].argmax(-1)).mean()
                                             for i, n in enumerate(lens)]))
    # fp32: only float summation order differs; bf16 (GPU): the argmax of near-tied random-weight logits can
    # flip with the batch's padding and GEMM shapes, so the check is looser there
    bf16 = cuda and torch.cuda.is_bf16_supported()
    limit = 0.95 if bf16 else 0.99
    agree = min(agreement.values()) >= limit
    n = len(ds)
    tokens = int(np.sum(ds["length"]))
    record = {
        **hdr,
        "model_shape": {"name": args.model_shape, **shape}, "task": args.task, "rows": n,
        "languages": len(task["rows"]), "scale": args.scale, "tokens": tokens,
        "naive": {"seconds": t_naive, "rows_per_second": n / t_naive, "tokens_per_second": tokens / t_naive,
                  "batch_size": args.naive_batch_size},
        "kit": {"seconds": t_kit, "rows_per_second": n / t_kit, "tokens_per_second": tokens / t_kit,
                "batch_size": args.kit_batch_size},
        "speedup": t_naive / t_kit, "predictions_agree": agree, "bf16": bf16,
        "prediction_agreement_min": min(agreement.values()), "agreement_limit": limit,
    }
    print(json.dumps({k: record[k] for k in ("task", "rows", "naive", "kit", "speedup", "predictions_agree")}))
    write_result(out, record)
    if not agree:
        print(f"error: kit and naive predictions disagree (min agreement {record['prediction_agreement_min']:.4f} "
              f"< {limit}); recorded as such in {out}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
