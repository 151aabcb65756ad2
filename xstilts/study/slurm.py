"""``make slurm``: the grid as SLURM array jobs, one Make file target per array task.

The generated script is both the submitter and the job body:

    bash slurm/xstilts-grid.sh          # on the login node: submits the arrays (sbatch), runs nothing itself

* ``phase2``   array: one phase-2 checkpoint per task (``make $(CKPTS)/<model>/<task>/xstilts_meta.json``);
* ``baseline`` array: cells without intermediate training (no dependency, they start at once);
* ``phase3``   array: cells that start from a phase-2 checkpoint (target tasks and retrieval),
  submitted with ``--dependency=afterok:<phase2 job id>`` (all phase-2 tasks must succeed);
* ``recipe``   array (only when a target names an encoder recipe, e.g. ``tatoeba_squad``): the recipe's
  checkpoints, one per (model, intermediate), after the phase2 array;
* ``encoder``  array: the cells that embed with a recipe's checkpoint, after the recipe array.

Each array task runs ``make <its file target>`` with the grid's variables, so resumption is Make's: a finished
cell is skipped, a failed or pre-empted one (SIGTERM: checkpoint saved, exit 143) is redone from its last
checkpoint when the script is submitted again. Nothing here needs SLURM to be installed to be generated or tested.
"""

from __future__ import annotations

import argparse
import datetime
import math
import shlex
from pathlib import Path

from ..errors import UsageError
from ..paths import KIT_ROOT
from ..files import atomic_write_text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="slurm/xstilts-grid.sh", help="the script to write")
    p.add_argument("--kit_dir", default=str(KIT_ROOT), help="where the tasks run make (the kit checkout)")
    p.add_argument("--make_var", action="append", default=[], metavar="NAME=VALUE",
                   help="a Make variable every task passes on (MODELS=..., DATA_ARGS=..., LAUNCH=..., MODEL_DIR_x=...)")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per array task (--gres=gpu:N)")
    p.add_argument("--cpus", type=int, default=8, help="--cpus-per-task")
    p.add_argument("--mem", default="", help="--mem, e.g. 64G (default: the partition's)")
    p.add_argument("--time", default="", help="--time for every array (default: 2 x the largest estimated cell, >= 1 h)")
    p.add_argument("--partition", default="")
    p.add_argument("--account", default="")
    p.add_argument("--max_parallel", type=int, default=0, help="at most this many tasks of an array at once (%%N)")
    p.add_argument("--sbatch_extra", default="", help="more sbatch options, e.g. '--qos=high --constraint=h100'")
    p.add_argument("--logs", default="slurm/logs", help="directory for the tasks' output (relative to kit_dir)")
    p.add_argument("--job_name", default="xstilts")


def _make_vars(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.replace("_", "").replace("-", "").isalnum():
            raise UsageError(f"--make_var {item!r}: expected NAME=VALUE")
        out.append((name, value))
    return out


def _slurm_time(hours: float) -> str:
    total_min = max(60, int(math.ceil(hours * 60 / 15.0)) * 15)
    days, rem = divmod(total_min, 24 * 60)
    h, m = divmod(rem, 60)
    return f"{days}-{h:02d}:{m:02d}:00" if days else f"{h:02d}:{m:02d}:00"


def array_times(grid, args, estimate, train_args: str, eval_args: str = "") -> tuple[dict[str, str], str]:
    """--time per array: the given one, or 2 x the largest estimated wall time of its cells (at least 1 h).
    ``estimate(cell, train_args, eval_args)`` is the plan's estimate of one cell (xstilts.study.plan)."""
    groups = {"phase2": grid.phase2, "baseline": grid.baseline_cells, "phase3": grid.dependent_cells,
              "recipe": grid.recipes, "encoder": grid.recipe_cells}
    if args.time:
        return {k: args.time for k in groups}, f"--time {args.time} (given)"
    out, unmeasured, unknown = {}, False, False
    for name, cells in groups.items():
        worst = 0.0
        for c in cells:
            e = estimate(c, train_args, eval_args)
            if e.gpu_hours is None:
                unknown = True
                continue
            unmeasured |= not e.measured
            worst = max(worst, e.gpu_hours / max(1, args.gpus))
        out[name] = "1-00:00:00" if unknown and not worst else _slurm_time(2 * worst)
    note = "--time: 2 x the largest estimated cell of each array (at least 1 h)"
    if unmeasured:
        note += "; the estimates are UNMEASURED (configs/throughput.json), check before relying on them"
    if unknown:
        note += "; some cells have no estimate (arrays without any: 1 day)"
    return out, note


def render_script(grid, args, estimate) -> str:
    mvars = _make_vars(args.make_var)
    train_args = dict(mvars).get("TRAIN_ARGS", "")
    times, time_note = array_times(grid, args, estimate, train_args, dict(mvars).get("EVAL_ARGS", ""))
    kit = str(Path(args.kit_dir).resolve())
    q = shlex.quote
    arrays = [("phase2", grid.phase2, None), ("baseline", grid.baseline_cells, None),
              ("phase3", grid.dependent_cells, "phase2")]
    if grid.recipes:
        arrays += [("recipe", grid.recipes, "phase2"), ("encoder", grid.recipe_cells, "recipe")]
    lines = [
        "#!/bin/bash",
        f"# xstilts study grid on SLURM, written by `make slurm` (python -m xstilts.plan slurm) on "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}.",
        "#",
        f"# Submit from a login node:   bash {args.out}",
        "# Each array task runs `make <one file target>` in the kit with the variables below, so finished cells",
        "# are skipped and failed or pre-empted ones resume from their checkpoint when you submit again.",
        "#   phase2   = phase-2 checkpoints (run_intermediate.py)",
        "#   baseline = cells without intermediate training (no dependency)",
        "#   phase3   = cells from a phase-2 checkpoint, --dependency=afterok on the phase2 array",
        *(["#   recipe   = encoder-recipe checkpoints (run_intermediate.py --encoder_recipe), after phase2",
           "#   encoder  = cells that embed with a recipe checkpoint, after recipe"] if grid.recipes else []),
        f"# {time_note}",
        "# If a phase2 task fails, phase3 stays pending (DependencyNeverSatisfied): scancel it, fix, submit again.",
        "",
        "set -euo pipefail",
        f"KIT={q(kit)}",
        "MAKE_VARS=(",
        *[f"  {q(f'{n}={v}')}" for n, v in mvars],
        ")",
    ]
    for name, cells, _ in arrays:
        lines.append(f"{name.upper()}_CELLS=(")
        lines += [f"  {q(c.target)}" for c in cells]
        lines.append(")")
    lines += [
        "",
        "# ---- job body: one array task = one cell",
        'if [[ -n "${SLURM_ARRAY_TASK_ID:-}" && $# -ge 1 ]]; then',
        '  case "$1" in',
        *[f'    {name}) CELLS=("${{{name.upper()}_CELLS[@]}}") ;;' for name, _, _ in arrays],
        '    *) echo "unknown array $1" >&2; exit 2 ;;',
        "  esac",
        '  CELL="${CELLS[$SLURM_ARRAY_TASK_ID]}"',
        '  echo "xstilts: $1 task $SLURM_ARRAY_TASK_ID of job ${SLURM_ARRAY_JOB_ID:-?} on $(hostname): $CELL"',
        '  cd "$KIT"',
        "  # SLURM signals this shell (--signal=B:TERM@300) before the time limit; pass SIGTERM on to the cell's",
        "  # process group (its own: set -m): the run saves a checkpoint and exits 143; make ignores SIGTERM (started",
        "  # with it ignored) and reports the failure, so the cell is redone (resumed) on the next submission.",
        "  set -m",
        '  ( trap "" TERM; exec make --no-print-directory "${MAKE_VARS[@]}" "$CELL" ) &',
        "  CHILD=$!",
        """  trap 'echo "xstilts: SIGTERM: passing it on (checkpoint, then exit)"; kill -TERM -- -"$CHILD"' TERM""",
        "  set +e",
        '  wait "$CHILD"; RC=$?',
        '  while kill -0 "$CHILD" 2>/dev/null; do wait "$CHILD"; RC=$?; done',
        '  echo "xstilts: $CELL: make exited with $RC"',
        '  exit "$RC"',
        "fi",
        "",
        "# ---- submitter",
        'command -v sbatch >/dev/null || { echo "sbatch not found: run this on a SLURM login node" >&2; exit 1; }',
        'SELF="$(readlink -f "$0")"',
        f'mkdir -p "$KIT"/{q(args.logs)}',
    ]
    common = [f"--chdir={kit}", f"--output={kit}/{args.logs}/%x-%A_%a.out", f"--gres=gpu:{args.gpus}",
              f"--cpus-per-task={args.cpus}", "--ntasks=1", "--signal=B:TERM@300"]
    for flag, value in (("--mem", args.mem), ("--partition", args.partition), ("--account", args.account)):
        if value:
            common.append(f"{flag}={value}")
    common_s = " ".join(q(c) for c in common) + (f" {args.sbatch_extra}" if args.sbatch_extra else "")
    throttle = f"%{args.max_parallel}" if args.max_parallel else ""
    lines.append(f"SBATCH=(sbatch --parsable {common_s})")
    for name, cells, after in arrays:
        if not cells:
            lines.append(f"# {name}: no cells")
            continue
        dep = ""
        if after and dict((n, c) for n, c, _ in arrays)[after]:
            dep = f' --dependency=afterok:"${after.upper()}_JOB"'
        lines.append(f'{name.upper()}_JOB=$("${{SBATCH[@]}}" --job-name={q(args.job_name + "-" + name)} '
                     f'--time={times[name]} --array=0-{len(cells) - 1}{throttle}{dep} "$SELF" {name})')
        lines.append(f'echo "submitted {name}: job ${name.upper()}_JOB, {len(cells)} task(s)'
                     + (f', after {after} job ${after.upper()}_JOB' if dep else "") + '"')
    return "\n".join(lines) + "\n"


def write_script(grid, args, estimate) -> Path:
    path = Path(args.out)
    atomic_write_text(path, render_script(grid, args, estimate))
    path.chmod(0o755)
    return path
