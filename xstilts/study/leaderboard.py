"""Gather one checkpoint's grid cells into one XTREME / XTREME-R leaderboard folder and score it.

Every grid cell writes its predictions (``<cell>/predictions/<task>/test-<lang>.*``) and gold labels
(``<cell>/labels/...``) in the leaderboard layout. This module copies the cells of one
(model, intermediate, seed) into ``<results>/leaderboard/<benchmark>/<model>/<intermediate>/seed<k>/``
and scores the folder with ``xstilts.scoring.xtreme`` (the official evaluate.py's numbers), writing ``scores.json``.

    python -m xstilts.leaderboard --results results --benchmark xtreme-r --model xlmr-large \\
        --intermediate mnli --seed 1 --tasks xnli xcopa udpos panx xquad mlqa tydiqa mewslix lareqa tatoeba_squad

A leaderboard folder holds the benchmark's own protocol: XTREME-R's Tatoeba is the task ``tatoeba_squad`` (the
SQuAD v1.1-fine-tuned encoder), XTREME's is ``tatoeba`` (the raw one); the other is refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ..errors import UsageError, choices_error, exits_on_usage_error
from ..files import atomic_write_text
from ..run import layout
from ..scoring.xtreme import VERSIONS, score_folders
from ..tasks import TASKS
from ..tasks.benchmarks import BENCHMARK_TASKS


def gather(results: Path, benchmark: str, model: str, intermediate: str, seed: int, tasks: list[str]) -> Path:
    out = Path(layout.leaderboard_dir(benchmark, model, intermediate, seed, str(results)))
    missing = []
    cells = []
    for name in tasks:
        if name not in TASKS:
            raise choices_error("task", name, TASKS)
        task = TASKS[name]
        members = BENCHMARK_TASKS.get(benchmark, ())
        own = [t.name for t in members if t.xtreme_name == task.xtreme_name]
        if own and name not in own:  # the same leaderboard folder, another benchmark's protocol
            raise UsageError(f"task {name} is not {benchmark}'s protocol for its leaderboard folder "
                             f"{task.xtreme_name!r}: {benchmark} takes {', '.join(own)} (docs/retrieval.md)")
        cell = Path(layout.cell_dir(model, intermediate, name, seed, str(results)))
        if not (cell / layout.RESULTS_FILE).exists():
            missing.append(str(cell))
            continue
        result = json.loads((cell / layout.RESULTS_FILE).read_text(encoding="utf-8"))
        if result.get("zero_shot", True) is False:  # translate-train (run_target.py --train_languages)
            raise UsageError(f"{cell} holds a translate-train result (NOT zero-shot: trained on "
                             f"{', '.join(result.get('train_languages') or [])}): a leaderboard submission of "
                             f"zero-shot transfer cannot include it; its cell is {name}@<languages>")
        for kind in (layout.PREDICTIONS_DIR, layout.LABELS_DIR):
            src = cell / kind / task.xtreme_name
            if not src.is_dir():
                raise UsageError(f"{cell} has no {kind}/{task.xtreme_name}/ folder: re-run the cell (make deletes "
                                 f"nothing; remove {cell} first) with a kit version that writes {kind}")
        cells.append((task, cell))
    if missing:
        raise UsageError("cells without results.json (run them first, e.g. with make grid): " + ", ".join(missing))
    for kind in (layout.PREDICTIONS_DIR, layout.LABELS_DIR):
        for task, cell in cells:
            dst = out / kind / task.xtreme_name
            if dst.exists():
                shutil.rmtree(dst)  # a copy of the cell's files, refreshed from the cell every time
            shutil.copytree(cell / kind / task.xtreme_name, dst)
    return out


@exits_on_usage_error
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results")
    p.add_argument("--benchmark", required=True, choices=sorted(VERSIONS))
    p.add_argument("--model", required=True)
    p.add_argument("--intermediate", default="none")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tasks", nargs="+", required=True)
    p.add_argument("--partial", action="store_true",
                   help="score the languages present (partial mirrors); marked partial, not comparable")
    args = p.parse_args(argv)
    out = gather(Path(args.results), args.benchmark, args.model, args.intermediate, args.seed, args.tasks)
    scores = score_folders(str(out / layout.PREDICTIONS_DIR), str(out / layout.LABELS_DIR), args.benchmark,
                           partial=args.partial)
    atomic_write_text(out / "scores.json", json.dumps(scores, indent=2, ensure_ascii=False) + "\n")
    overall = scores["overall"]
    width = max(len(k) for k in overall) if overall else 0
    print(f"{args.benchmark} scores of {args.model} after {args.intermediate} (seed {args.seed}): {out / 'scores.json'}")
    for k, v in overall.items():
        print(f"  {k:<{width}}  {v:.2f}" if isinstance(v, (int, float)) else f"  {k:<{width}}  {v}")
    for task, d in scores["detailed"].items():
        print(f"  {task:<{width}}  {d.get('avg_metric', float('nan')):.2f}")
    if scores.get("partial"):
        print("  PARTIAL: languages missing in " + ", ".join(t for t, v in scores["partial"].items() if v) +
              " (scored on the languages present; not comparable with published numbers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
