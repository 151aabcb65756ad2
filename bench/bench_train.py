#!/usr/bin/env python
"""Training throughput of the kit's default settings against the Hugging Face examples' defaults.

The model is an XLM-R-architecture encoder of a chosen shape with random weights (no download), trained
with the real ``transformers.Trainer`` on random token ids whose lengths follow the length distribution of
a task shape (pair classification at 128/256 tokens, span QA at 384, tagging at 128). Each setting runs
the same number of optimizer steps on the same examples; the first ``--warmup`` steps are not timed.

Settings (``--settings``, comma list; each one changes one thing on top of the previous):

* ``hf``       the HF examples' default: pad every sequence to max length, random order, fp32,
               the attention implementation transformers picks by default (SDPA for XLM-R in transformers 5,
               so the attention kernel is the same in every setting; older versions picked eager)
* ``dynamic``  + dynamic padding (each batch padded to its longest sequence)
* ``grouped``  + length-grouped batches (``train_sampling_strategy="group_by_length"``)
* ``kit``      + bf16 (GPUs that support it) + SDPA requested explicitly: the kit's default (what run_*.py use)
* ``compile``  + ``torch_compile`` (optional; not a default; always run last: it turns TF32 on process-wide)

Reported per setting: optimizer steps/s, samples/s, real (non-pad) tokens/s, padded tokens/s, the share of step
time spent after the backward pass (clipping + optimizer: ``update_fraction``, timed with CUDA events, so the
device is not synchronised inside the timed steps) and, for bf16 settings on a GPU,
model-FLOPs utilisation = achieved training FLOPs on real tokens / the device's dense bf16 peak, with
FLOPs per sequence of length s = 6 * N_nonembedding * s + 12 * layers * hidden * s^2 (the usual
Megatron/PaLM count: matmuls forward + backward, attention scores and values included).

Timing covers whole megabatches: the length-grouped sampler sorts megabatches of 50 batches (on a training set of
at least 200 batches, which the benchmark builds) and serves each longest-first, so ``--steps 50`` after the
warm-up spans one megabatch's mix of lengths (the warm-up's 5 longest batches of the first megabatch are
replaced by the 5 longest of the second).

The length distributions are log-normal with the median/sigma below, clipped to [min, max]: an
ASSUMPTION standing in for the real datasets' XLM-R token lengths (no Hub here); the JSON records them.

    python bench/bench_train.py --model_shape tiny --task_shape pair128                       # CPU
    python bench/bench_train.py --model_shape large --task_shape pair256 --batch_size 32      # GPU
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import check_out_path, device_name, header, peak_bf16_tflops, write_result  # noqa: E402

MODEL_SHAPES = {  # XLM-R configurations (layers, hidden, heads, ffn, vocab)
    "tiny": dict(num_hidden_layers=4, hidden_size=128, num_attention_heads=4, intermediate_size=512, vocab_size=2000),
    "small": dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=6, intermediate_size=1536,
                  vocab_size=250002),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                 vocab_size=250002),
    "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096,
                  vocab_size=250002),
}
TASK_SHAPES = {  # head, max length, log-normal median / sigma of the token length, min length
    "pair128": dict(head="classification", max_length=128, median=45, sigma=0.45, min_length=8),
    "pair256": dict(head="classification", max_length=256, median=70, sigma=0.55, min_length=8),
    "qa384": dict(head="qa", max_length=384, median=190, sigma=0.35, min_length=32),
    "tag128": dict(head="tagging", max_length=128, median=28, sigma=0.6, min_length=4),
}
SETTINGS = ("hf", "dynamic", "grouped", "kit", "compile")
MEGABATCH = 50  # batches per megabatch of transformers' LengthGroupedSampler on a large training set


def lengths_for(task: dict, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(math.log(task["median"]), task["sigma"], size=n)
    return np.clip(np.round(x), task["min_length"], task["max_length"]).astype(int)


def make_dataset(task: dict, lengths: np.ndarray, vocab: int, seed: int, num_labels: int):
    from datasets import Dataset

    rng = np.random.default_rng(seed + 1)
    rows = {"input_ids": [], "attention_mask": [], "labels": [], "length": []}
    if task["head"] == "qa":
        rows = {"input_ids": [], "attention_mask": [], "start_positions": [], "end_positions": [], "length": []}
    for n in lengths:
        ids = [0] + rng.integers(5, vocab, size=n - 2).tolist() + [2]
        rows["input_ids"].append(ids)
        rows["attention_mask"].append([1] * n)
        rows["length"].append(int(n))
        if task["head"] == "classification":
            rows["labels"].append(int(rng.integers(num_labels)))
        elif task["head"] == "tagging":
            rows["labels"].append(rng.integers(num_labels, size=n).tolist())
        else:
            s = int(rng.integers(1, n - 1))
            rows["start_positions"].append(s)
            rows["end_positions"].append(min(n - 2, s + int(rng.integers(0, 5))))
    return Dataset.from_dict(rows)


def build_model(shape: dict, task: dict, attn: str | None, num_labels: int):
    import torch
    from transformers import (AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                              AutoModelForTokenClassification, XLMRobertaConfig)

    if task["head"] == "qa":
        num_labels = 2  # start and end logits
    cfg = XLMRobertaConfig(max_position_embeddings=task["max_length"] + 2 + 512, num_labels=num_labels,
                           pad_token_id=1, bos_token_id=0, eos_token_id=2, **shape)
    cls = {"classification": AutoModelForSequenceClassification, "tagging": AutoModelForTokenClassification,
           "qa": AutoModelForQuestionAnswering}[task["head"]]
    kwargs = {"attn_implementation": attn} if attn else {}
    torch.manual_seed(0)
    model = cls.from_config(cfg, **kwargs)
    return model


def nonembedding_params(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)


class Pad:
    """Collator: pad to the batch's longest sequence, or to a fixed length (the HF examples' default).
    ``head=None``: inputs only (evaluation)."""

    def __init__(self, head: str, max_length: int | None):
        self.head, self.max_length = head, max_length

    def __call__(self, feats):
        import torch

        L = self.max_length or max(len(f["input_ids"]) for f in feats)
        ids = torch.full((len(feats), L), 1, dtype=torch.long)
        mask = torch.zeros((len(feats), L), dtype=torch.long)
        for i, f in enumerate(feats):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            mask[i, :n] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.head is None:
            return batch
        if self.head == "classification":
            batch["labels"] = torch.tensor([f["labels"] for f in feats])
        elif self.head == "tagging":
            lab = torch.full((len(feats), L), -100, dtype=torch.long)
            for i, f in enumerate(feats):
                lab[i, :len(f["labels"])] = torch.tensor(f["labels"])
            batch["labels"] = lab
        else:
            batch["start_positions"] = torch.tensor([f["start_positions"] for f in feats])
            batch["end_positions"] = torch.tensor([f["end_positions"] for f in feats])
        return batch


def run_setting(name: str, args, shape: dict, task: dict, ds, cuda: bool) -> dict:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    level = SETTINGS.index(name)
    attn = "sdpa" if level >= SETTINGS.index("kit") else None
    model = build_model(shape, task, attn, args.num_labels)
    # the kit's rule (xstilts.run.start): bf16 mixed precision wherever the GPU supports it
    bf16 = cuda and torch.cuda.is_bf16_supported() and level >= SETTINGS.index("kit")
    targs = TrainingArguments(
        output_dir=str(Path(args.tmp) / name), max_steps=args.warmup + args.steps,
        per_device_train_batch_size=args.batch_size, learning_rate=1e-5, warmup_steps=0,
        bf16=bf16, report_to=[], save_strategy="no", eval_strategy="no", logging_strategy="no",
        train_sampling_strategy="group_by_length" if level >= SETTINGS.index("grouped") else "random",
        length_column_name="length", dataloader_num_workers=args.workers, disable_tqdm=True,
        torch_compile=level >= SETTINGS.index("compile"), seed=args.seed, data_seed=args.seed,
        use_cpu=not cuda,
    )
    pad = Pad(task["head"], None if level >= SETTINGS.index("dynamic") else task["max_length"])
    n_nonemb = nonembedding_params(model)
    L, H = shape["num_hidden_layers"], shape["hidden_size"]
    first, last = args.warmup, args.warmup + args.steps  # timed: steps first .. last - 1

    def mark():
        """A point in time that does not wait for the device: a recorded CUDA event, or the CPU clock."""
        if cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def between(a, b) -> float:  # seconds; on CUDA only after a synchronize
        return a.elapsed_time(b) / 1000.0 if cuda else b - a

    marks = {"t0": None, "t1": None, "backward_end": None, "updates": []}
    # counts of the timed steps: shapes are known on the host; token counts stay on the device until the end
    host = {"padded_tokens": 0, "samples": 0, "padded_flops": 0.0}
    device_sums = []  # per step: tensor([real tokens, model FLOPs on real tokens])

    class Timer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            if state.global_step == first and marks["t0"] is None:
                marks["t0"] = mark()

        def on_optimizer_step(self, a, state, control, **kw):
            # gradient clipping + optimizer update: the per-step cost that does not shrink with fewer tokens
            if marks["backward_end"] is not None:
                marks["updates"].append((marks["backward_end"], mark()))
                marks["backward_end"] = None

        def on_step_end(self, a, state, control, **kw):
            if state.global_step == last:
                marks["t1"] = mark()

    class CountingTrainer(Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            timed = first <= self.state.global_step < last
            if timed:
                m = inputs["attention_mask"]
                lens = m.sum(1).double()
                device_sums.append(torch.stack([lens.sum(), (6 * n_nonemb * lens + 12 * L * H * lens ** 2).sum()]))
                B, T = m.shape  # what the hardware computes, padding included
                host["padded_tokens"] += B * T
                host["samples"] += B
                host["padded_flops"] += float(B * (6 * n_nonemb * T + 12 * L * H * T ** 2))
            loss = super().training_step(model, inputs, num_items_in_batch)
            if timed:
                marks["backward_end"] = mark()
            return loss

    trainer = CountingTrainer(model=model, args=targs, train_dataset=ds, data_collator=pad,
                              callbacks=[Timer()])
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    seconds = between(marks["t0"], marks["t1"])
    update_seconds = sum(between(a, b) for a, b in marks["updates"])
    real_tokens, flops = torch.stack(device_sums).sum(0).tolist()
    out = {
        "setting": name, "seconds": seconds, "steps": args.steps,
        "steps_per_second": args.steps / seconds,
        "samples_per_second": host["samples"] / seconds,
        "real_tokens_per_second": real_tokens / seconds,
        "padded_tokens_per_second": host["padded_tokens"] / seconds,
        "padding_fraction": 1 - real_tokens / max(host["padded_tokens"], 1),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "bf16": bf16, "train_sampling_strategy": targs.train_sampling_strategy, "torch_compile": targs.torch_compile,
        "model_tflops_per_second": flops / seconds / 1e12,
        "hardware_tflops_per_second": host["padded_flops"] / seconds / 1e12,
        # share of the timed steps spent after the backward pass (gradient clipping + AdamW over all parameters,
        # the 250k-row embedding included): what bounds MFU when a step holds few tokens
        "update_fraction": update_seconds / seconds,
        "update_seconds_per_step": update_seconds / max(len(marks["updates"]), 1),
    }
    peak = peak_bf16_tflops(device_name(True)) if cuda else None
    out["peak_bf16_tflops"] = peak
    # MFU counts the FLOPs of real tokens only (padding is waste); HFU counts what the device computed. Both
    # against the bf16 peak, so they are given for bf16 settings only (an fp32 setting cannot approach it)
    out["mfu"] = out["model_tflops_per_second"] / peak if peak and bf16 else None
    out["hfu_padded"] = out["hardware_tflops_per_second"] / peak if peak and bf16 else None
    del trainer, model
    if cuda:
        gc.collect()  # accelerate's bf16 forward wrapper is a reference cycle: free the weights before the next
        torch.cuda.empty_cache()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_shape", choices=sorted(MODEL_SHAPES), default="tiny")
    p.add_argument("--task_shape", choices=sorted(TASK_SHAPES), default="pair128")
    p.add_argument("--settings", default="hf,dynamic,grouped,kit",
                   help=f"comma list from {', '.join(SETTINGS)}")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--steps", type=int, default=MEGABATCH,
                   help=f"timed optimizer steps per setting (default {MEGABATCH}: one length-grouped megabatch)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--num_labels", type=int, default=3)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tmp", default="/tmp/xstilts-bench")
    p.add_argument("--out", default=None, help="JSON output (default bench/results/train-<device>-<shapes>.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    args = p.parse_args(argv)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    for s in settings:
        if s not in SETTINGS:
            p.error(f"unknown setting {s!r}; valid: {', '.join(SETTINGS)}")
    # in the order of SETTINGS: `compile` last, since torch_compile=True turns TF32 on for the whole process
    settings = sorted(set(settings), key=SETTINGS.index)

    import torch

    cuda = torch.cuda.is_available()
    tag = "gpu" if cuda else "cpu"
    out = check_out_path(Path(args.out) if args.out else
                         ROOT / "bench" / "results" / f"train-{tag}-{args.model_shape}-{args.task_shape}.json",
                         args.overwrite)
    hdr = header("train", "bench_train.py", argv, cuda)  # before measuring: the load average at the start
    shape, task = MODEL_SHAPES[args.model_shape], TASK_SHAPES[args.task_shape]
    # as many rows as a real training set holds, for the sampler's sake: HF's length-grouped sampler sorts
    # megabatches of min(rows / (4 x batch), 50) batches, so fewer than 200 batches of rows would sort less
    # than real training does; only warmup + steps batches are trained
    n = args.batch_size * max(args.warmup + args.steps, 4 * MEGABATCH)
    lengths = lengths_for(task, n, args.seed)
    ds = make_dataset(task, lengths, shape["vocab_size"], args.seed, args.num_labels)
    results = []
    for s in settings:
        r = run_setting(s, args, shape, task, ds, cuda)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
        results.append(r)
    base = next((r for r in results if r["setting"] == "hf"), None)
    if base:
        for r in results:
            r["real_tokens_per_second_vs_hf"] = r["real_tokens_per_second"] / base["real_tokens_per_second"]
    record = {
        **hdr,
        "model_shape": {"name": args.model_shape, **shape}, "task_shape": {"name": args.task_shape, **task},
        "length_distribution_note": "log-normal assumption, see the script's docstring",
        "mean_length": float(lengths.mean()), "batch_size": args.batch_size, "steps": args.steps,
        "warmup": args.warmup, "results": results,
    }
    write_result(out, record)
    for r in results:
        ratio = r.get("real_tokens_per_second_vs_hf")
        print(f"{r['setting']:>8}: {r['samples_per_second']:9.1f} samples/s {r['real_tokens_per_second']:11.0f} "
              f"real tok/s  padding {100 * r['padding_fraction']:4.1f}%  update {100 * r['update_fraction']:4.1f}%"
              + (f"  x{ratio:.2f} vs hf" if ratio else "") + (f"  MFU {100 * r['mfu']:.1f}% (padded {100 * r['hfu_padded']:.1f}%)" if r.get("mfu") else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
