#!/usr/bin/env python
"""Time BUCC margin mining: FAISS (xstilts.retrieval.bucc.mine) against a plain brute-force implementation.

Both sides compute the same thing: the k nearest neighbours in both directions by inner product,
ratio-margin scores of every (sentence, neighbour) candidate, and the "max" one-to-one selection
(both use xstilts.retrieval.bucc.select_pairs for that last step). They run on the same synthetic L2-normalised
vectors: n sources and n targets, half of the targets noisy copies of sources (the planted
translations), the rest random. The reference is NumPy (BLAS matmul in row blocks + argpartition) on
CPU, and torch (matmul + topk) on CUDA with --gpu. The script asserts that the results agree on a
random subset of queries and on the mined pairs. Each side runs --repeat times, alternating, and the
fastest run counts. The script prints one JSON line and writes it to
bench/results/mining-<device>-<n>.json, with the load average at the start, since other jobs on a
shared machine skew the timings.

    python bench/bench_mining.py --n 20000 --dim 768          # CPU
    python bench/bench_mining.py --n 50000 --dim 768 --gpu    # GPU (faiss GPU build + CUDA torch)
    python bench/bench_mining.py --n_src 400000 --n_trg 400000 --dim 1024 --gpu --repeat 1   # about BUCC de-en
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

from common import command_line, device_name, versions, write_result  # noqa: E402
from xstilts.retrieval import bucc  # noqa: E402
from xstilts.retrieval.search import faiss_gpus, resolve  # noqa: E402


def synthetic(n_src: int, dim: int, seed: int, n_trg: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """n_src sources, n_trg targets (default n_src); half of the smaller side are planted translations."""
    n_trg = n_src if n_trg is None else n_trg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_src, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = rng.standard_normal((n_trg, dim), dtype=np.float32)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    m = min(n_src, n_trg) // 2
    planted = rng.permutation(n_src)[:m]
    y[:m] = x[planted] + 0.5 * y[:m]  # a translation: the source plus noise
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return x, y


# --------------------------------------------------------------------------------------------- reference

def knn_numpy(q: np.ndarray, db: np.ndarray, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    sims = np.empty((len(q), k), dtype=np.float32)
    ids = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), block):
        s = q[start:start + block] @ db.T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        sims[start:start + block] = np.take_along_axis(ps, order, axis=1)
        ids[start:start + block] = np.take_along_axis(part, order, axis=1)
    return sims, ids


def knn_torch(q: np.ndarray, db: np.ndarray, k: int, block: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    import torch

    tq, tdb = torch.from_numpy(q).to(device), torch.from_numpy(db).to(device)
    sims, ids = [], []
    for start in range(0, len(q), block):
        s, i = torch.topk(tq[start:start + block] @ tdb.T, k, dim=1)
        sims.append(s)
        ids.append(i)
    return torch.cat(sims).cpu().numpy(), torch.cat(ids).cpu().numpy().astype(np.int64)  # .cpu() syncs


def brute_force_scores(x: np.ndarray, y: np.ndarray, k: int, block: int, device: str) -> dict:
    """The same dict as xstilts.retrieval.bucc.margin_scores (ratio margin), without FAISS."""
    knn = (lambda q, db: knn_numpy(q, db, k, block)) if device == "cpu" else \
        (lambda q, db: knn_torch(q, db, k, block, device))
    fwd_sim, fwd_ind = knn(x, y)
    bwd_sim, bwd_ind = knn(y, x)
    fwd_mean = fwd_sim.astype(np.float64).mean(1)
    bwd_mean = bwd_sim.astype(np.float64).mean(1)
    return {"fwd_ind": fwd_ind, "fwd_scores": fwd_sim / ((fwd_mean[:, None] + bwd_mean[fwd_ind]) / 2),
            "bwd_ind": bwd_ind, "bwd_scores": bwd_sim / ((bwd_mean[:, None] + fwd_mean[bwd_ind]) / 2),
            "fwd_mean": fwd_mean, "bwd_mean": bwd_mean}


# --------------------------------------------------------------------------------------------- checks

def compare(fa: dict, ref: dict, fa_pairs: list, ref_pairs: list, subset: np.ndarray) -> dict:
    """Agreement on a random subset of queries, and on the mined pairs; asserts it is (near) exact."""
    out = {"subset_queries": int(len(subset))}
    for side in ("fwd", "bwd"):
        a_ind, r_ind = fa[f"{side}_ind"][subset], ref[f"{side}_ind"][subset]
        a_sc, r_sc = fa[f"{side}_scores"][subset], ref[f"{side}_scores"][subset]
        # sorted similarities and scores must agree; ids may differ only inside float-level ties
        out[f"{side}_max_abs_score_diff"] = float(np.abs(np.sort(a_sc, 1) - np.sort(r_sc, 1)).max())
        out[f"{side}_id_agreement"] = float((a_ind == r_ind).mean())
        assert out[f"{side}_max_abs_score_diff"] < 1e-4, out
        assert out[f"{side}_id_agreement"] >= 0.999, out
    a = {(s, t): v for s, t, v in fa_pairs}
    r = {(s, t): v for s, t, v in ref_pairs}
    common = a.keys() & r.keys()
    out["pairs_faiss"], out["pairs_reference"] = len(a), len(r)
    out["pair_agreement"] = len(common) / max(len(a), len(r), 1)
    out["pairs_max_abs_score_diff"] = max((abs(a[p] - r[p]) for p in common), default=0.0)
    assert out["pair_agreement"] >= 0.999, out
    assert out["pairs_max_abs_score_diff"] < 1e-4, out
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50000, help="sentences per side")
    ap.add_argument("--n_src", type=int, default=None, help="sources (default --n); e.g. the BUCC de-en size")
    ap.add_argument("--n_trg", type=int, default=None, help="targets (default --n)")
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--k", type=int, default=bucc.DEFAULT_K)
    ap.add_argument("--gpu", action="store_true", help="FAISS on GPU and the torch reference on CUDA")
    ap.add_argument("--block", type=int, default=1024, help="query rows per brute-force matmul")
    ap.add_argument("--db_chunk", type=int, default=None,
                    help="FAISS database rows per index (run_retrieval.py --knn_db_chunk; default: all at once)")
    ap.add_argument("--hnsw", action="store_true",
                    help="also time the approximate HNSW index (run_retrieval.py --index hnsw) and its agreement")
    ap.add_argument("--check", type=int, default=2000, help="random queries whose neighbours are compared")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each; the minimum is reported")
    ap.add_argument("--out_dir", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--overwrite", action="store_true", help="replace an existing result file of the same shape")
    args = ap.parse_args(argv)
    n_src, n_trg = args.n_src or args.n, args.n_trg or args.n
    device = "gpu" if args.gpu else "cpu"
    out = Path(args.out_dir) / (f"mining-{device}-{n_src}" + (f"x{n_trg}" if n_trg != n_src else "")
                                + ("-hnsw" if args.hnsw else "") + ".json")
    if out.exists() and not args.overwrite:
        ap.error(f"{out} exists (a recorded measurement); pass --overwrite (make: BENCH_FLAGS=--overwrite) to "
                 f"replace it, or --out_dir elsewhere")

    import faiss

    if args.gpu:
        import torch

        if not torch.cuda.is_available():
            ap.error("--gpu: torch sees no CUDA device")
        if faiss_gpus() == 0:
            ap.error("--gpu: this faiss build has no GPU support (install faiss-gpu / faiss-gpu-cuvs)")
    device, detail = ("gpu" if args.gpu else "cpu"), device_name(args.gpu)
    x, y = synthetic(n_src, args.dim, args.seed, n_trg)

    load_before = os.getloadavg()
    times_faiss, times_ref = [], []
    for _ in range(args.repeat):  # alternate the two, so a noisy neighbour hits both alike
        t0 = time.perf_counter()
        fa = bucc.margin_scores(x, y, k=args.k, search=resolve("faiss", cuda=args.gpu), db_batch_size=args.db_chunk)
        fa_pairs = bucc.select_pairs(fa, "max")
        times_faiss.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        ref = brute_force_scores(x, y, args.k, args.block, "cuda" if args.gpu else "cpu")
        ref_pairs = bucc.select_pairs(ref, "max")
        times_ref.append(time.perf_counter() - t0)
    t_faiss, t_ref = min(times_faiss), min(times_ref)

    rng = np.random.default_rng(args.seed + 1)
    subset = rng.choice(min(n_src, n_trg), size=min(args.check, n_src, n_trg), replace=False)
    check = compare(fa, ref, fa_pairs, ref_pairs, subset)

    hnsw = None
    if args.hnsw:  # approximate: timed once, agreement with the exact pairs reported (not asserted)
        t0 = time.perf_counter()
        ha = bucc.margin_scores(x, y, k=args.k, index="hnsw", search=resolve("faiss", index="hnsw"))
        ha_pairs = bucc.select_pairs(ha, "max")
        t_h = time.perf_counter() - t0
        exact = {(s, t) for s, t, _ in fa_pairs}
        got = {(s, t) for s, t, _ in ha_pairs}
        hnsw = {"seconds": round(t_h, 3), "speedup_vs_exact_faiss": round(t_faiss / t_h, 2),
                "fwd_top1_agreement": float((ha["fwd_ind"][:, 0] == fa["fwd_ind"][:, 0]).mean()),
                "mined_pairs_shared_with_exact": len(exact & got) / max(len(exact), 1)}

    import torch

    result = {
        "benchmark": f"BUCC margin mining (k={args.k}, ratio margin, max strategy, both directions)",
        "device": device, "device_detail": detail,
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "versions": versions(),
        "n": n_src if n_src == n_trg else None, "n_src": n_src, "n_trg": n_trg, "dim": args.dim, "k": args.k,
        "faiss": f"IndexFlatIP{' on GPU' if args.gpu else ''} (exact)"
                 + (f", database in chunks of {args.db_chunk}" if args.db_chunk else ""),
        "reference": "torch matmul + topk on CUDA" if args.gpu else "NumPy matmul (BLAS) + argpartition",
        "seconds_faiss": round(t_faiss, 3), "seconds_reference": round(t_ref, 3),
        "speedup_faiss_vs_reference": round(t_ref / t_faiss, 2),
        "repeat": args.repeat, "all_seconds_faiss": [round(t, 3) for t in times_faiss],
        "all_seconds_reference": [round(t, 3) for t in times_ref],
        "loadavg_1_5_15_before": [round(v, 2) for v in load_before],
        "loadavg_1_5_15_after": [round(v, 2) for v in os.getloadavg()],
        "candidates": len(fa_pairs), "check": check, "hnsw": hnsw,
        "date": time.strftime("%Y-%m-%d"), "command": command_line("bench_mining.py", argv),
    }
    print(json.dumps(result))
    print(f"FAISS vs brute force ({device}, {n_src} x {n_trg}, dim {args.dim}): {t_faiss:.2f} s vs {t_ref:.2f} s "
          f"-> ratio (brute force / FAISS) = {t_ref / t_faiss:.2f}", file=sys.stderr)
    write_result(out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
