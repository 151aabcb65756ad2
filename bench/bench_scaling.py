#!/usr/bin/env python
"""BUCC mining cost against corpus size, for each search backend; the fitted n^2 curve and its projection to
BUCC's full size.

For every n in --ns: n sources x n targets of synthetic L2-normalised vectors (bench_mining.synthetic: half of
the targets noisy copies of sources), mined as run_retrieval.py mines (xstilts.retrieval.bucc.margin_scores: exact k-NN in
both directions, ratio margin; then the "max" selection), once per backend: FAISS IndexFlatIP and the kit's
torch path (xstilts.retrieval.search; on CUDA with --gpu). Each pass is timed --repeat times (the minimum counts). Before
anything is written the results are checked: where both backends ran, their neighbours (a random subset of
queries, both directions) and their mined pairs must agree (bench_mining.compare); a backend that ran alone is
checked on the subset against a NumPy brute force.

Per backend the script fits seconds = c x n^2 by least squares on the measured points (through the origin:
xstilts.study.plan.fit_search_rate, the function `make plan` uses), reports the exponent b of a log-log fit
seconds ~ n^b as a check of the n^2 law (small n are overhead-bound: b < 2 there), and projects:

* one layer of a --project_n x --project_n corpus (both directions), and a sweep of --layers layers;
* the whole BUCC sweep run_retrieval.py runs by default: every corpus of configs/dataset_sizes.json
  (bucc2018 "corpora": de/fr/ru/zh, dev and test) per layer, and x --layers.

Projections at another dimension than --dim scale linearly with the dimension (a matrix product's cost); the
bench runs at the projected dimension (1,024, XLM-R Large) by default, so no scaling is applied.

    python bench/bench_scaling.py --ns 2000,5000                                  # a check (a minute)
    python bench/bench_scaling.py --ns 25000,50000,100000,200000 --repeat 1       # make bench-scaling (hours, CPU)
    python bench/bench_scaling.py --gpu --ns 25000,50000,100000,200000,400000    # make bench-gpu (torch on CUDA)
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

from bench_mining import compare, knn_numpy, synthetic  # noqa: E402
from common import check_out_path, header, write_result  # noqa: E402
from xstilts.retrieval import bucc  # noqa: E402
from xstilts.study import plan  # noqa: E402
from xstilts.retrieval.search import faiss_gpus, resolve  # noqa: E402

BACKENDS = ("faiss", "torch")


def check_alone(x: np.ndarray, y: np.ndarray, scores: dict, subset: np.ndarray, k: int) -> dict:
    """A backend that ran alone at this size: its neighbours of a subset of queries against a NumPy brute force
    (sorted similarities within 1e-4; ids equal but for float-level ties: at least 99.9 % of them)."""
    out = {"subset_queries": int(len(subset)), "against": "NumPy brute force (float32 BLAS)"}
    for side, q, db in (("fwd", x, y), ("bwd", y, x)):
        sims, ids = knn_numpy(q[subset], db, k, block=512)
        got_ids = scores[f"{side}_ind"][subset]
        got_sims = np.einsum("qd,qkd->qk", q[subset], db[got_ids])  # the similarities of what it returned
        out[f"{side}_max_abs_sim_diff"] = float(np.abs(np.sort(got_sims, 1) - np.sort(sims, 1)).max())
        out[f"{side}_id_agreement"] = float((got_ids == ids).mean())
        assert out[f"{side}_max_abs_sim_diff"] < 1e-4, out
        assert out[f"{side}_id_agreement"] >= 0.999, out
    return out


def projections(fit: dict, dim: int, project_n: int, project_dim: int, layers: int, sizes: dict) -> dict:
    """Seconds of one layer / a sweep at project_n x project_n, and of BUCC's corpora, from the fitted rate."""
    rate = fit["multiply_adds_per_second"]
    bucc_corpora = sizes["tasks"]["bucc2018"]["corpora"]
    per_layer = plan.search_multiply_adds(project_n, project_n, project_dim) / rate
    bucc_layer = sum(plan.search_multiply_adds(c["src"], c["en"], project_dim) * c.get("count", 1)
                     for c in bucc_corpora) / rate
    return {"n": project_n, "dim": project_dim, "layers": layers,
            "dim_scaling": None if project_dim == dim else f"x {project_dim}/{dim} (linear in the dimension)",
            "seconds_per_layer": per_layer, "seconds_per_sweep": layers * per_layer,
            "bucc_corpora": [f"{c['name']}: {c['src']:,} x {c['en']:,}" for c in bucc_corpora],
            "bucc_seconds_per_layer": bucc_layer, "bucc_seconds_per_sweep": layers * bucc_layer}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ns", default="25000,50000,100000,200000", help="sentences per side, comma-separated")
    ap.add_argument("--dim", type=int, default=1024, help="vector dimension (XLM-R Large: 1024)")
    ap.add_argument("--k", type=int, default=bucc.DEFAULT_K)
    ap.add_argument("--gpu", action="store_true", help="the torch path on CUDA (and FAISS on the GPU if faiss has one)")
    ap.add_argument("--backends", default=None,
                    help="comma list of faiss,torch (default: both on a CPU; on --gpu torch, plus faiss when faiss "
                         "has GPU support)")
    ap.add_argument("--faiss_max_n", type=int, default=None,
                    help="run FAISS only up to this n (e.g. on a GPU machine without faiss GPU support)")
    ap.add_argument("--repeat", type=int, default=1, help="timed passes per backend and size; the minimum counts")
    ap.add_argument("--check", type=int, default=2000, help="random queries whose neighbours are checked")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--project_n", type=int, default=400_000, help="projected corpus size (BUCC de-en: ~400k a side)")
    ap.add_argument("--project_dim", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=25, help="layers of a sweep (XLM-R Large: 24 + embeddings)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    args = ap.parse_args(argv)
    try:
        ns = sorted({int(x) for x in args.ns.split(",") if x.strip()})
    except ValueError:
        ap.error(f"--ns {args.ns!r}: expected comma-separated integers")
    if not ns or min(ns) < 2 * args.k:
        ap.error(f"--ns {args.ns!r}: every n must be at least {2 * args.k}")
    if args.gpu:
        import torch

        if not torch.cuda.is_available():
            ap.error("--gpu: torch sees no CUDA device")
    default = ("torch", "faiss") if not args.gpu or faiss_gpus() > 0 else ("torch",)
    backends = tuple(b.strip() for b in args.backends.split(",")) if args.backends else default
    if not backends or any(b not in BACKENDS for b in backends):
        ap.error(f"--backends {args.backends!r}: valid: {', '.join(BACKENDS)}")
    device = "gpu" if args.gpu else "cpu"
    out_path = check_out_path(Path(args.out) if args.out else ROOT / "bench" / "results" / (
        f"scaling-{device}-d{args.dim}-{ns[0]}-{ns[-1]}.json"), args.overwrite)
    hdr = header("scaling", "bench_scaling.py", argv, args.gpu)
    searches = {b: resolve(b, cuda=args.gpu) for b in backends}
    results = {b: {"device": s.device, "search": None, "points": []} for b, s in searches.items()}
    warm = synthetic(256, args.dim, args.seed)
    for s in searches.values():  # library and device start-up (CUDA context, BLAS handles) outside the timing
        bucc.margin_scores(*warm, k=args.k, search=s)
    checks = []
    for n in ns:
        x, y = synthetic(n, args.dim, args.seed)
        ran, scores, pairs = [], {}, {}
        for b, s in searches.items():
            if b == "faiss" and args.faiss_max_n is not None and n > args.faiss_max_n:
                continue
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                scores[b] = bucc.margin_scores(x, y, k=args.k, search=s)
                pairs[b] = bucc.select_pairs(scores[b], "max")
                times.append(time.perf_counter() - t0)
            results[b]["points"].append({"n": n, "n_src": n, "n_trg": n, "seconds": min(times),
                                         "all_seconds": [round(t, 3) for t in times], "candidates": len(pairs[b]),
                                         "loadavg_after": round(os.getloadavg()[0], 2)})
            ran.append(b)
            print(f"{b} ({s.device}) {n} x {n} x {args.dim}: {min(times):.2f} s", file=sys.stderr)
        rng = np.random.default_rng(args.seed + 1)
        subset = rng.choice(n, size=min(args.check, n), replace=False)
        if len(ran) == 2:
            check = compare(scores["faiss"], scores["torch"], pairs["faiss"], pairs["torch"], subset)
        else:
            check = check_alone(x, y, scores[ran[0]], subset, args.k)
        checks.append(dict(check, n=n, backends=ran))
        del x, y, scores, pairs
    sizes = plan.load_json(plan.SIZES_FILE)
    for b, r in results.items():
        r["search"] = searches[b].describe()
        if r["points"]:
            r["fit"] = plan.fit_search_rate([dict(p, dim=args.dim) for p in r["points"]])
            r["projection"] = projections(r["fit"], args.dim, args.project_n, args.project_dim, args.layers, sizes)
    record = {**hdr, "device_detail": hdr["device"], "cpu_count": os.cpu_count(), "dim": args.dim, "k": args.k,
              "ns": ns, "repeat": args.repeat,
              "what": "BUCC margin mining (k nearest neighbours both directions, ratio margin, max selection) on "
                      "synthetic unit vectors, per search backend",
              "backends": results, "checks": checks}
    print(json.dumps({b: {"points": [(p["n"], round(p["seconds"], 3)) for p in r["points"]],
                          **({"fit": r["fit"], "projection": r["projection"]} if r["points"] else {})}
                      for b, r in results.items()}))
    write_result(out_path, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
