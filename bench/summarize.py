#!/usr/bin/env python
"""Markdown tables of every recorded benchmark result (bench/results/*.json): one row per file, with its date,
device, the figures and the exact command that produced it. bench/README.md's tables are this script's output.

    python bench/summarize.py                    # print
    python bench/summarize.py --write            # replace the generated part of bench/README.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- summarize:begin -->", "<!-- summarize:end -->"


def _n(x, digits=0) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def _pct(x) -> str:
    """A percentage, 100 only when it is exactly 1 (an agreement of 0.99999 is 99.999 %, not 100.0 %)."""
    if x is None:
        return "–"
    digits = next((d for d in range(1, 7) if x == 1 or round(100 * x, d) < 100), 6)
    return f"{100 * x:.{digits}f} %"


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _load(pattern: str) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text())) for p in sorted(RESULTS.glob(pattern))]


FLAG = " **under load: not representative**"


def _device(rec: dict, judge_by_load_average: bool = False) -> str:
    """The device and the load it was measured under, flagged when other work shared the CPU (``bench_under_load``;
    results from before ``other_cpu_share`` was recorded are judged by the load average only where the caller
    asks: the scaling tables, whose 2-thread runs it was written for)."""
    from xstilts.study.plan import bench_start_load, bench_under_load

    d = rec.get("device_detail") or rec.get("device", "")
    load = bench_start_load(rec)
    on_gpu = rec.get("cuda") or rec.get("device") == "gpu"  # mining records say "gpu"/"cpu"
    if on_gpu or load is None:
        return d
    share = rec.get("other_cpu_share")
    other = f", other processes {100 * share:.0f} % of the CPU" if share is not None else ""
    judged = share is not None or judge_by_load_average
    return d + f" (load {load:.1f}{other})" + (FLAG if judged and bench_under_load(rec) else "")


def train_table() -> str:
    rows = []
    for path, r in _load("train-*.json"):
        res = {x["setting"]: x for x in r["results"]}
        hf = res.get("hf")
        for name, x in res.items():
            if name == "hf" and len(res) > 1:
                continue
            rows.append([r["date"], _device(r), r["model_shape"]["name"], r["task_shape"]["name"], str(r["batch_size"]),
                         f"{r['warmup']} + {r['steps']}", name,
                         _n(hf["real_tokens_per_second"]) if hf else "–", _n(x["real_tokens_per_second"]),
                         f"**{x['real_tokens_per_second_vs_hf']:.2f}×**" if hf and "real_tokens_per_second_vs_hf" in x else "–",
                         f"{_pct(hf['padding_fraction']) if hf else '–'} → {_pct(x['padding_fraction'])}",
                         _pct(x.get("update_fraction")), _pct(x.get("mfu")), f"`{r['command']}`"])
    return _table(["date", "device", "model", "task shape", "batch", "warm-up + timed steps", "setting",
                   "hf real tok/s", "setting real tok/s", "vs hf", "padding hf → setting", "update share", "MFU",
                   "command"], rows)


def eval_table() -> str:
    rows = [[r["date"], _device(r), r["model_shape"]["name"], f"{r['task']} ({r['languages']} langs)", _n(r["rows"]),
             f"{_n(r['naive']['rows_per_second'])} (batch {r['naive']['batch_size']})",
             f"{_n(r['kit']['rows_per_second'])} (batch {r['kit']['batch_size']})", f"**{r['speedup']:.2f}×**",
             "yes" if r["predictions_agree"] else "NO", f"`{r['command']}`"] for _, r in _load("eval-*.json")]
    return _table(["date", "device", "model", "task", "rows", "naive rows/s", "kit rows/s", "speed-up",
                   "same predictions", "command"], rows)


def embed_table() -> str:
    rows = [[r["date"], _device(r), r["model_shape"]["name"], _n(r["sentences"]), str(len(r["layers"])),
             f"{_n(r['naive']['sentences_per_second'])} (file order, batch {r['naive']['batch_size']}, fp32)",
             f"{_n(r['kit']['sentences_per_second'])} (sorted, batch {r['kit']['batch_size']}, "
             f"{r['kit']['dtype'].replace('torch.', '')})", f"**{r['speedup']:.2f}×**",
             f"{r['min_cosine_kit_vs_naive']:.6f}", f"`{r['command']}`"] for _, r in _load("embed-*.json")]
    return _table(["date", "device", "model", "sentences", "layers", "naive sentences/s", "kit sentences/s",
                   "speed-up", "min cosine kit vs naive", "command"], rows)


def mining_table() -> str:
    rows = []
    for _, r in _load("mining-*.json"):
        c = r["check"]
        rows.append([r["date"], _device(r), f"{_n(r['n_src'])} × {_n(r['n_trg'])}", str(r["dim"]),
                     f"{r['seconds_faiss']:.2f}", f"{r['seconds_reference']:.2f}", f"**{r['speedup_faiss_vs_reference']:.2f}×**",
                     f"{c['pairs_faiss']:,} pairs, agreement {_pct(c['pair_agreement'])}",
                     f"`{r['command']}`"])
    return _table(["date", "device", "n", "dim", "FAISS exact (s)", "brute force (s)", "brute / FAISS",
                   "mined pairs", "command"], rows)


EXPONENT_OK = (1.8, 2.2)  # a fitted n^b with b outside this range: overhead-bound sizes, no projection
MIN_PROJECTED_N = 25_000  # below this the points say little about 400k x 400k


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:,.3g} h"


def scaling_points_table() -> str:
    rows = []
    for _, r in _load("scaling-*.json"):
        checks = {c["n"]: c for c in r["checks"]}
        for name, b in r["backends"].items():
            for p in b["points"]:
                c = checks[p["n"]]
                ids = _pct(min(c["fwd_id_agreement"], c["bwd_id_agreement"]))
                if "pair_agreement" not in c:  # a backend that ran alone, checked against NumPy
                    agree = f"ids {ids} (vs NumPy)"
                else:
                    counts = ("" if c["pair_agreement"] == 1 else
                              f" (faiss {c['pairs_faiss']:,}, {c['backends'][0]} {c['pairs_reference']:,} pairs)")
                    agree = f"pairs {_pct(c['pair_agreement'])}{counts}, ids {ids} ({' vs '.join(c['backends'])})"
                rows.append([r["date"], _device(r, judge_by_load_average=True),
                             f"{name} ({b['search']['device']}, {b['search']['dtype']})",
                             f"{_n(p['n_src'])} × {_n(p['n_trg'])}", str(r["dim"]), f"{p['seconds']:.2f}",
                             f"{2 * p['n_src'] * p['n_trg'] * r['dim'] / p['seconds'] / 1e9:,.1f}", agree,
                             f"`{r['command']}`"])
    return _table(["date", "device", "backend", "n", "dim", "mining (s)", "G multiply-adds/s", "agreement",
                   "command"], rows)


def scaling_fit_table() -> str:
    rows = []
    for _, r in _load("scaling-*.json"):
        for name, b in r["backends"].items():
            if not b["points"]:
                continue
            fit, pr = b["fit"], b["projection"]
            exp = fit["exponent"]
            biggest = max(p["n"] for p in b["points"])
            valid = exp is not None and EXPONENT_OK[0] <= exp <= EXPONENT_OK[1] and biggest >= MIN_PROJECTED_N
            why = ("" if valid else
                   f"– (n ≤ {biggest:,}" + (f", b = {exp:.2f}" if exp is not None else "") + ": no projection)")
            rows.append([r["date"], _device(r, judge_by_load_average=True),
                         name, ", ".join(f"{p['n'] // 1000}k" for p in b["points"]),
                         f"{fit['seconds_per_n2']:.3g}", "–" if exp is None else f"{exp:.2f}",
                         f"{100 * fit['max_relative_residual']:.0f} %",
                         _duration(pr["seconds_per_layer"]) if valid else why,
                         _duration(pr["seconds_per_sweep"]) if valid else "–",
                         _duration(pr["bucc_seconds_per_layer"]) if valid else "–",
                         _duration(pr["bucc_seconds_per_sweep"]) if valid else "–", f"`{r['command']}`"])
    return _table(["date", "device", "backend", "sizes", "fitted s / n² (dim as run)", "exponent b (n^b)",
                   "max residual", "400k × 400k, one layer", "… 25 layers", "BUCC 4 languages dev+test, one layer",
                   "… 25 layers", "command"], rows)


SWEEP_MODELS = ("xlmr-base", "xlmr-large")


def sweep_table() -> str:
    """What one BUCC cell costs at full size per model (every layer, the figures `make plan` uses)."""
    from xstilts.study import plan

    throughput, sizes = plan.load_json(plan.THROUGHPUT_FILE), plan.load_json(plan.SIZES_FILE)
    rows = []
    for model in SWEEP_MODELS:
        c = plan.retrieval_cell_cost(model, "bucc2018", throughput, sizes)
        mark = lambda src: "" if src.startswith("measured") else " [unmeasured]"  # noqa: E731
        rows.append([model, f"{c['sentences']:,}", str(c["layers"]),
                     _duration(c["embed_seconds"]) + mark(c["embedding_source"]),
                     f"{c['search']}: " + _duration(c["search_seconds_per_layer"]) + mark(c["search_source"]),
                     _duration(c["search_seconds"]) + mark(c["search_source"]),
                     f"{c['embedding_bytes_peak'] / 1e9:,.0f} GB", f"{c['largest_side_bytes'] / 1e9:,.0f} GB",
                     f"{c['embedding_bytes_total'] / 1e9:,.0f} GB",
                     f"`python -m xstilts.plan retrieval-cost --model {model} --task bucc2018`"])
    return _table(["model", "sentences (4 languages, dev + test, both sides)", "layers", "embedding (one pass)",
                   "search, one layer", "search, all layers", "embeddings at a time (one split, both sides)",
                   "largest side (spilled above --embedding_memory_gb)", "embeddings written in all", "command"], rows)


def _command_status(run: dict, target: str | None) -> str:
    """ok / FAILED by the exit status, and whether the wall time kept its target ("<= 300 s")."""
    if run["exit_status"] != 0:
        return f"FAILED (exit {run['exit_status']})"
    limit = target.removeprefix("<=").removesuffix("s").strip() if target else ""
    if limit.replace(".", "", 1).isdigit() and run["seconds"] > float(limit):
        return f"ok, **{run['seconds'] - float(limit):.0f} s over its target**"
    return "ok"


def commands_table() -> str:
    rows = []
    for _, r in _load("commands-*.json"):
        for name, run in r["runs"].items():
            rows.append([r["date"], _device(dict(r, device=f"{r['cpu']}, {r['cores']} cores")),
                         r["commit"][:10], f"`{run['command']}`", run["minutes"],
                         _command_status(run, r["targets"].get(name)),
                         r["targets"].get(name, "–"), f"`{r['command']}`"])
    return _table(["date", "device", "commit", "what (fresh clone)", "wall time", "status", "target", "command"], rows)


def dataprep_table() -> str:
    """Loading + featurizing the largest training sets at full size, a first run and a second with the same cache."""
    rows = []
    for _, r in _load("dataprep-*.json"):
        for name, c in r["cases"].items():
            first, second = c["runs"]["first"], c["runs"]["second"]

            def run(x):
                if x["exit_status"] != 0:
                    return f"FAILED (exit {x['exit_status']})"
                return f"{_duration(x['wall_s'])} wall, {_duration(x['cpu_s'])} CPU, {x['peak_rss_gb']:.2f} GB"

            reuse = "yes (no new cache file)" if c["second_reuses_cache"] else \
                f"**no** ({second['new_cache_files']} new cache files)"
            rows.append([r["date"], _device(r), f"{name} (`{c['script']}`)", _n(c["rows_at_full_size"]), run(first),
                         run(second), reuse, f"`{r['command']}`"])
    return _table(["date", "device", "case", "training rows", "first run (wall, CPU, peak RSS)",
                   "second run, same cache", "second run reuses the tokenized cache", "command"], rows)


def render() -> str:
    parts = [("Training throughput (`bench_train.py`)", train_table),
             ("Zero-shot evaluation throughput (`bench_eval.py`)", eval_table),
             ("Retrieval: sentence-embedding throughput (`bench_embed.py`)", embed_table),
             ("Retrieval: BUCC margin mining, FAISS vs brute force (`bench_mining.py`)", mining_table),
             ("Retrieval: mining cost against corpus size, per search backend (`bench_scaling.py`)",
              scaling_points_table),
             ("Retrieval: the fitted n² curve and its projection to BUCC's full size (`bench_scaling.py`)",
              scaling_fit_table),
             ("Retrieval: one BUCC cell at full size, every layer (`make plan`'s figures, configs/throughput.json)",
              sweep_table),
             ("Data preparation at full size: load + featurize, first and second run (`bench_dataprep.py`)",
              dataprep_table),
             ("CPU: the README's two commands (`bench_commands.py`)", commands_table)]
    out = []
    for title, fn in parts:
        out += [f"### {title}", "", fn(), ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help=f"replace the part of {README.name} between the markers")
    args = p.parse_args(argv)
    text = render()
    if not args.write:
        print(text)
        return 0
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        print(f"error: {README} lacks the markers {BEGIN} / {END}", file=sys.stderr)
        return 2
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n\n{text}\n{END}{tail}")
    print(f"wrote the tables into {README}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
