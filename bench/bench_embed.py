#!/usr/bin/env python
"""Sentence-embedding throughput for retrieval (BUCC, Tatoeba): the kit's embedder against naive batching.

The kit (``xstilts.retrieval.embed.embed_layers``, what ``run_retrieval.py`` calls) sorts the sentences by token
count, pads each batch to its own longest member, runs one forward pass per batch for every requested layer
at once, mean-pools and L2-normalises on the device; on a bf16-capable GPU ``run_retrieval.py`` casts the
encoder to bf16 and this benchmark does the same. The naive way (as XTREME's ``extract_embeddings`` did)
embeds the sentences in file order, in batches of 32, in fp32. Both see the same encoder (random weights
of a chosen XLM-R shape; no download) and the same token ids; the script reports how close the two sets of
vectors are (cosine) and fails if they disagree beyond float precision (fp32) or bf16 rounding.

Token ids stand in for text: a small shim passes pre-tokenised sentences through the tokenizer interface
``embed_layers`` uses, so tokenizer time is not counted (it is the same for both ways). Sentence lengths are
log-normal (median 26 tokens: an assumption for Tatoeba/BUCC sentences, recorded in the JSON).

    python bench/bench_embed.py --model_shape tiny --n 4000                  # CPU
    python bench/bench_embed.py --model_shape large --n 50000 --layers all   # GPU (all 25 hidden states)
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

from bench_train import MODEL_SHAPES  # noqa: E402
from common import check_out_path, header, write_result  # noqa: E402
from xstilts.run.args import RetrievalArguments  # noqa: E402

RETRIEVAL_BATCH = RetrievalArguments.batch_size  # run_retrieval.py --batch_size default

LENGTHS = dict(median=26, sigma=0.5, min_length=4, max_length=200)


class IdsTokenizer:
    """The slice of the tokenizer interface ``embed_layers`` uses, over pre-tokenised sentences (tuples of ids
    with <s> ... </s>): lengths, padding with id 1, attention and special-token masks."""

    pad_token_id = 1

    def __call__(self, sentences, truncation=True, max_length=512, padding=False, return_tensors=None,
                 return_special_tokens_mask=False):
        import torch

        ids = [list(s)[:max_length] for s in sentences]
        if not padding:
            return {"input_ids": ids}
        T = max(len(x) for x in ids)
        inp = torch.full((len(ids), T), self.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(ids), T), dtype=torch.long)
        special = torch.ones((len(ids), T), dtype=torch.long)
        for i, x in enumerate(ids):
            inp[i, :len(x)] = torch.tensor(x)
            att[i, :len(x)] = 1
            special[i, 1:len(x) - 1] = 0
        out = {"input_ids": inp, "attention_mask": att}
        if return_special_tokens_mask:
            out["special_tokens_mask"] = special
        return out


def sentences(n: int, vocab: int, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    lens = np.clip(np.round(rng.lognormal(math.log(LENGTHS["median"]), LENGTHS["sigma"], size=n)),
                   LENGTHS["min_length"], LENGTHS["max_length"]).astype(int)
    return [tuple([0] + rng.integers(5, vocab, size=L - 2).tolist() + [2]) for L in lens]


def naive_embed(model, tok, sents, layers, batch_size: int, device) -> np.ndarray:
    """File order, fixed batch size, mean pooling over all tokens of each chosen layer, fp32."""
    import torch

    out = np.zeros((len(layers), len(sents), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(sents), batch_size):
            enc = tok(sents[start:start + batch_size], padding=True, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items()}
            hs = model(**enc, output_hidden_states=True).hidden_states
            m = enc["attention_mask"].unsqueeze(-1).float()
            for j, layer in enumerate(layers):
                v = (hs[layer].float() * m).sum(1) / m.sum(1)
                out[j, start:start + batch_size] = torch.nn.functional.normalize(v, dim=-1).cpu().numpy()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_shape", choices=sorted(MODEL_SHAPES), default="tiny")
    p.add_argument("--n", type=int, default=4000, help="sentences")
    p.add_argument("--layers", default="middle", help="'middle' (one layer, as --layers default), 'all', or a comma list")
    p.add_argument("--kit_batch_size", type=int, default=RETRIEVAL_BATCH)
    p.add_argument("--naive_batch_size", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    args = p.parse_args(argv)

    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from xstilts.retrieval import embed

    shape = MODEL_SHAPES[args.model_shape]
    n_states = shape["num_hidden_layers"] + 1
    if args.layers == "all":
        layers = list(range(n_states))
    elif args.layers == "middle":
        layers = [n_states // 2]
    else:
        try:
            layers = [int(x) for x in args.layers.split(",")]
        except ValueError:
            p.error(f"--layers {args.layers!r}: expected 'middle', 'all' or a comma list of integers")
        bad = [l for l in layers if not 0 <= l < n_states]
        if bad:
            p.error(f"--layers: {bad} outside 0..{n_states - 1} for the {args.model_shape} shape")
    cuda = torch.cuda.is_available()
    out_path = check_out_path(Path(args.out) if args.out else ROOT / "bench" / "results" / (
        f"embed-{'gpu' if cuda else 'cpu'}-{args.model_shape}-{args.n}-{'all' if args.layers == 'all' else 'one' if len(layers) == 1 else 'some'}.json"),
        args.overwrite)
    hdr = header("embed", "bench_embed.py", argv, cuda)  # before measuring: the load average at the start
    device = "cuda" if cuda else "cpu"
    torch.manual_seed(0)
    cfg = XLMRobertaConfig(max_position_embeddings=514, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                           attn_implementation="sdpa", **shape)
    model = XLMRobertaModel(cfg, add_pooling_layer=False).to(device).eval()
    sents = sentences(args.n, shape["vocab_size"], args.seed)
    tok = IdsTokenizer()
    n_tokens = sum(len(s) for s in sents)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    # warm-up both paths on a few batches
    naive_embed(model, tok, sents[:2 * args.naive_batch_size], layers, args.naive_batch_size, device)
    sync()
    t0 = time.perf_counter()
    ref = naive_embed(model, tok, sents, layers, args.naive_batch_size, device)
    sync()
    t_naive = time.perf_counter() - t0

    kit_model = model.to(torch.bfloat16) if cuda and torch.cuda.is_bf16_supported() else model
    kit_dtype = str(next(kit_model.parameters()).dtype)
    embed.embed_layers(kit_model, tok, sents[:2 * args.kit_batch_size], layers=layers,
                           batch_size=args.kit_batch_size, progress=False)
    sync()
    t0 = time.perf_counter()
    got = embed.embed_layers(kit_model, tok, sents, layers=layers, batch_size=args.kit_batch_size,
                                 progress=False)
    sync()
    t_kit = time.perf_counter() - t0

    cos = (ref * got).sum(-1)  # both L2-normalised
    min_cos = float(cos.min())
    limit = 0.999 if kit_dtype == "torch.float32" else 0.98
    record = {
        **hdr,
        "model_shape": {"name": args.model_shape, **shape}, "sentences": args.n, "tokens": n_tokens,
        "layers": layers, "pooling": "mean (special tokens included)", "lengths": LENGTHS,
        "naive": {"seconds": t_naive, "sentences_per_second": args.n / t_naive, "tokens_per_second": n_tokens / t_naive,
                  "batch_size": args.naive_batch_size, "order": "file", "dtype": "torch.float32"},
        "kit": {"seconds": t_kit, "sentences_per_second": args.n / t_kit, "tokens_per_second": n_tokens / t_kit,
                "batch_size": args.kit_batch_size, "order": "length-sorted", "dtype": kit_dtype},
        "speedup": t_naive / t_kit, "min_cosine_kit_vs_naive": min_cos, "mean_cosine_kit_vs_naive": float(cos.mean()),
        "agreement_limit": limit,
    }
    print(json.dumps({k: record[k] for k in ("sentences", "layers", "naive", "kit", "speedup", "min_cosine_kit_vs_naive")}))
    if min_cos < limit:
        print(f"error: kit and naive embeddings disagree (min cosine {min_cos:.6f} < {limit}); nothing written",
              file=sys.stderr)
        return 1
    write_result(out_path, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
