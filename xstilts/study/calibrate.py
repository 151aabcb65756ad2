"""Learning-rate calibration per size x task, selected on English dev only (``make calibrate``; docs/calibration.md).

    make calibrate MODELS="xlmr-base xlmr-large" INTERMEDIATE="none mnli" TARGETS="xnli udpos" \\
        [CAL_SEEDS="1 2"] [CAL_RATES="5e-6 1e-5 2e-5"] [CAL_SCHEDULE="--max_steps 2000"] [CAL_DIR=calibration]
    make grid ... CALIBRATION=calibration/overlay.json

What is calibrated, for every model of MODELS:

* phase 2: every intermediate task of INTERMEDIATE (``none`` aside), from the pretrained model;
* phase 3, arm ``none``: every training target of TARGETS from the pretrained model (when INTERMEDIATE lists
  ``none``); arm ``<intermediate>``: every training target from the phase-2 calibration encoder of that
  intermediate task trained at its chosen rate (seed: the first of CAL_SEEDS). Retrieval targets train nothing.

Each candidate is an ordinary run (``run_intermediate.py`` / ``run_target.py --learning_rate R``) in the
calibration tree (``xstilts.run.layout``: ``<cal>/<model>/phase2/<intermediate>/lr<R>/seed<k>`` and
``<cal>/<model>/<arm>/<task>/lr<R>/seed<k>``): resumable, locked, skipped when finished, never inside a results
tree. Target candidates evaluate English dev only (``--eval_split validation --languages en``): no target-language
data is read. The schedule is the preset's, with TRAIN_ARGS, then CAL_SCHEDULE (a shortened schedule, e.g.
``--max_steps 2000`` or ``--num_train_epochs 1``; only the flags of ``SCHEDULE_FLAGS``), stated in the overlay.

**Default grid** (``default_rates``): rates on the ladder 1, 2, 3, 5, 7 x 10^k around the preset's rate for the
(model, task), with more weight on smaller rates for larger models (larger models usually need smaller rates):

    up to 12 layers (base and smaller)   one ladder step below, the preset's rate, one step above   (3 rates)
    13 to 24 layers (large)              two steps below, the preset's rate, one step above          (4 rates)
    more than 24 layers (XL, XXL)        three steps below and the preset's rate                     (4 rates)

e.g. XNLI on xlmr-base (preset 2e-5): 1e-5 2e-5 3e-5; on xlmr-large (3e-5): 1e-5 2e-5 3e-5 5e-5; on xlmr-xl
(3e-5): 7e-6 1e-5 2e-5 3e-5. CAL_RATES replaces the grid for every (model, task).

**Choice** (``choose``): the rate with the highest mean over CAL_SEEDS of the English dev metric at checkpoint
selection (the task's metric; a multi-task phase 2: the mean of its tasks'); a rate with a diverged seed
(xstilts.training.divergence) is not eligible; ties go to the smaller rate. A choice at the edge of the grid
is flagged (the optimum may lie beyond it). When every rate diverged, the entry has no rate (``status``) and
``make grid CALIBRATION=...`` refuses that cell unless CALIBRATION_MISSING=preset.

**The overlay** (``<cal>/overlay.json``, CAL_OUT): ``format``, ``created``, ``provenance`` (kit commit, versions,
command), ``preset``, ``selection`` (the rule), ``seeds``, ``schedule``, ``grid`` (the rule or CAL_RATES),
``models`` (name, path, layers, grid rule), and the entries ``phase2.<model>.<intermediate>`` and
``target.<model>.<arm>.<task>``, each with the chosen ``learning_rate``, the preset's, the ``metric``, ``status``,
``init`` (what the runs started from), ``schedule_in_force`` and every candidate's dev score per seed, mean,
diverged seeds and result files. ``xstilts.run.overlay`` reads it (preset < overlay < command line).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError, choices_error
from ..files import atomic_write_json, sha256_file
from ..paths import PRESETS, kit_relative
from ..provenance import provenance
from ..run import layout
from ..run.models import registry
from ..run.overlay import MISSING_CHOICES, OVERLAY_FORMAT, PHASE2, TARGET, lookup, model_key, read_overlay
from ..run.args import run_preset_entry
from ..run.presets import resolve_preset
from ..tasks import TASKS
from . import plan as plan_lib

BASELINE = layout.BASELINE
LADDER = (1.0, 2.0, 3.0, 5.0, 7.0)  # mantissas of the rate ladder, x 10^k
# (up to this many layers, ladder steps below the preset's rate, steps above, description)
SIZE_GRIDS = ((12, 1, 1, "up to 12 layers (base and smaller): one step below, the preset's rate, one above"),
              (24, 2, 1, "13-24 layers (large): two steps below, the preset's rate, one above"),
              (None, 3, 0, "more than 24 layers (XL, XXL): three steps below and the preset's rate"))
SCHEDULE_FLAGS = ("num_train_epochs", "max_steps", "max_train_samples", "max_eval_samples", "eval_steps_or_epoch",
                  "early_stopping_patience")
SELECTION_RULE = ("the highest mean over the seeds of the English dev metric at checkpoint selection (the task's "
                  "metric; a multi-task phase 2: the mean of its tasks'); a rate with a diverged seed is not "
                  "eligible; ties: the smaller rate. Never target-language data")
NO_RATE = "no rate: every candidate diverged"


# ----------------------------------------------------------------------------- the grid of rates
def ladder(lo: float, hi: float) -> list[float]:
    """The ladder's rates in [lo, hi]."""
    out = []
    for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in LADDER:
            r = float(f"{m}e{k}")
            if lo * (1 - 1e-9) <= r <= hi * (1 + 1e-9):
                out.append(r)
    return out


def around(rate: float, below: int, above: int) -> list[float]:
    """``below`` ladder steps under ``rate``, ``rate`` itself (on the ladder or not), ``above`` steps over it."""
    rungs = sorted(set(ladder(rate / 100, rate * 100)) | {float(rate)})
    i = rungs.index(float(rate))
    return rungs[max(0, i - below): i + above + 1]


def size_rule(num_layers: int | None) -> tuple[int, int, str]:
    for limit, below, above, text in SIZE_GRIDS:
        if limit is None or (num_layers or 0) <= limit:
            return below, above, text
    raise AssertionError("unreachable")


def num_layers(model: str, model_dirs: dict[str, str]) -> int | None:
    if model in model_dirs:
        try:
            return int(json.loads((Path(model_dirs[model]) / "config.json").read_text())["num_hidden_layers"])
        except (OSError, ValueError, KeyError):
            return None
    return registry().get(model, {}).get("num_layers")


def preset_rate(preset: str, task: str, model: str) -> float | None:
    """The preset's learning rate for the run ``task`` stands for on ``model``: its preset entry as the scripts
    resolve it (``run_preset_entry``: a translated arm or a task + auxiliary objective takes its task's entry, a
    mix the multi-task block)."""
    key = model if model in registry() else ""
    values = resolve_preset(preset, run_preset_entry(task), key).values
    rate = values.get("learning_rate")
    return float(rate) if rate is not None else None


def parse_rates(text: str) -> list[float]:
    rates = []
    for word in (text or "").replace(",", " ").split():
        try:
            r = float(word)
        except ValueError:
            raise UsageError(f"CAL_RATES: {word!r} is not a number") from None
        if not math.isfinite(r) or r <= 0:
            raise UsageError(f"CAL_RATES: {word!r} is not a learning rate > 0")
        rates.append(float(layout.rate_name(r)))
    if len(set(rates)) != len(rates):
        raise UsageError(f"CAL_RATES lists a rate twice: {text!r}")
    return sorted(rates)


def parse_schedule(text: str) -> dict[str, str]:
    """CAL_SCHEDULE: ``--flag value`` pairs of ``SCHEDULE_FLAGS`` only (a shortened schedule, nothing else)."""
    words, out = shlex.split(text or ""), {}
    i = 0
    while i < len(words):
        w = words[i]
        name, eq, value = w[2:].partition("=") if w.startswith("--") else ("", "", "")
        if not eq:
            if not w.startswith("--") or i + 1 >= len(words):
                raise UsageError(f"CAL_SCHEDULE {text!r}: expected --flag value pairs, e.g. '--max_steps 2000'")
            value = words[i + 1]
            i += 1
        if name not in SCHEDULE_FLAGS:
            raise choices_error("CAL_SCHEDULE flag", f"--{name}", [f"--{f}" for f in SCHEDULE_FLAGS],
                                "A calibration shortens the schedule only; the rate is its grid's")
        out[name] = value
        i += 1
    return out


# ----------------------------------------------------------------------------- what make calibrate runs
@dataclass(frozen=True)
class CalRun:
    """One calibration run: a Make file target."""

    stage: str  # PHASE2 | TARGET
    model: str
    intermediate: str  # phase 2: its task; target: the arm's intermediate task (none: the pretrained model)
    task: str
    rate: float
    seed: int
    target: str  # results.json / xstilts_meta.json
    arm: str = BASELINE  # target runs: the arm folder (none or <intermediate>-lr<phase-2 rate>)
    phase2_rate: float | None = None
    encoder: str | None = None  # the phase-2 calibration encoder a target run starts from


@dataclass
class Calibration:
    models: list[str]
    intermediate: list[str]
    targets: list[str]  # training targets only (retrieval targets train nothing)
    seeds: list[int]
    preset: str = "xtreme"
    cal_dir: str = layout.CALIBRATION
    rates: list[float] | None = None  # CAL_RATES (None: the default grid)
    schedule: str = ""  # CAL_SCHEDULE
    train_args: str = ""  # TRAIN_ARGS (also given to every calibration run)
    model_dirs: dict[str, str] = field(default_factory=dict)
    skipped_targets: list[str] = field(default_factory=list)  # retrieval targets: nothing to calibrate

    @property
    def arms(self) -> list[str]:
        return list(self.intermediate)

    @property
    def phase2_tasks(self) -> list[str]:
        return [i for i in self.intermediate if i != BASELINE]

    def candidates(self, model: str, task: str) -> tuple[list[float], str]:
        """The rates tried for (model, task) and the rule that gave them."""
        if self.rates:
            return list(self.rates), "CAL_RATES (given)"
        base = preset_rate(self.preset, task, model)
        if base is None:
            raise UsageError(f"preset {self.preset!r} sets no learning_rate for {task} on {model}: give the grid "
                             f"with CAL_RATES")
        below, above, text = size_rule(num_layers(model, self.model_dirs))
        return around(base, below, above), f"default: ladder 1-2-3-5-7 x 10^k around the preset's {base:g}; {text}"


def _inside(a: str, b: str) -> bool:
    pa, pb = Path(a).resolve(), Path(b).resolve()
    return pa == pb or pb in pa.parents


def calibration_from_args(args, *, check_models: bool = True) -> Calibration:
    """The calibration of the Makefile's variables, every name and value checked (UsageError otherwise).
    ``check_models=False`` (``words``: Make lists the runs when it reads mk/calibrate.mk, also under ``make -n``
    before a demo model is built): the model names and directories are not checked here; ``check``, the first
    command of ``make calibrate``, checks them before any run."""
    model_dirs = plan_lib._model_dirs(args.model_dir)
    grid = plan_lib.build_grid(args.models, args.intermediate, args.targets, args.seeds, results=args.results,
                               ckpts=args.ckpts, preset=args.preset, model_dirs=model_dirs, validate=check_models)
    if not check_models:
        plan_lib.check_tasks(grid.intermediate, grid.targets)
    training = [t for t in grid.targets if TASKS[t].phase == "target"]
    skipped = [t for t in grid.targets if TASKS[t].phase != "target"]
    if any(s < 1 for s in grid.seeds):
        raise UsageError(f"CAL_SEEDS must be positive integers, got {args.seeds!r}")
    for root, what in ((args.results, "RESULTS"), (args.ckpts, "CKPTS")):
        if _inside(args.cal_dir, root) or _inside(root, args.cal_dir):
            raise UsageError(f"CAL_DIR {args.cal_dir!r} overlaps {what} {root!r}: calibration runs live in their own "
                             f"tree, never mixed with the study's results (e.g. CAL_DIR=calibration)")
    if plan_lib.flag_value(args.train_args, "learning_rate") is not None:
        raise UsageError("TRAIN_ARGS sets --learning_rate: a calibration tries its grid of rates (CAL_RATES)")
    parse_schedule(args.schedule)
    cal = Calibration(grid.models, grid.intermediate, training, grid.seeds, args.preset, args.cal_dir.rstrip("/") or "/",
                      parse_rates(args.rates) or None, args.schedule, args.train_args, model_dirs, skipped)
    for m in cal.models:  # the grid of every (model, task) resolves now (a preset without a rate: refused here)
        for t in cal.phase2_tasks + cal.targets:
            cal.candidates(m, t)
    return cal


def eval_language(task: str) -> str:
    """The language a target calibration run evaluates (on the dev split): English; a task without English
    among its languages (XCOPA) its first language's dev split, never read by the choice."""
    t = TASKS[task]
    return "en" if "en" in t.all_languages else t.languages[0]


def phase2_runs(cal: Calibration) -> list[CalRun]:
    runs = []
    for m in cal.models:
        for i in cal.phase2_tasks:
            rates, _ = cal.candidates(m, i)
            for r in rates:
                for s in cal.seeds:
                    runs.append(CalRun(PHASE2, m, i, i, r, s,
                                       layout.calibration_phase2_meta(m, i, r, s, cal.cal_dir)))
    return runs


def target_runs(cal: Calibration, encoder_rates: dict[tuple[str, str], float | None]) -> list[CalRun]:
    """The target-task runs; ``encoder_rates``: the chosen phase-2 rate of each (model, intermediate) (None or
    absent: not chosen yet or none; its arm is left out)."""
    runs = []
    for m in cal.models:
        for i in cal.arms:
            x = None
            if i != BASELINE:
                x = encoder_rates.get((m, i))
                if x is None:
                    continue
            arm = layout.calibration_arm(i, x)
            encoder = None if i == BASELINE else layout.calibration_phase2_dir(m, i, x, cal.seeds[0], cal.cal_dir)
            for t in cal.targets:
                rates, _ = cal.candidates(m, t)
                for r in rates:
                    for s in cal.seeds:
                        runs.append(CalRun(TARGET, m, i, t, r, s,
                                           layout.calibration_cell_file(m, arm, t, r, s, cal.cal_dir), arm, x, encoder))
    return runs


# ----------------------------------------------------------------------------- reading the candidates, choosing
def read_candidate(path: str) -> dict | None:
    """(dev value at selection, diverged, record) of one calibration run; None when it has not run."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UsageError(f"{p}: not readable ({e})") from None
    div = d.get("divergence") or {}
    if p.name == layout.META_FILE and not d.get("finished") and not div.get("diverged"):
        return None  # an unfinished phase-2 run (no divergence record): not run yet
    best = (d.get("selection") or {}).get("best_metric")
    dev = float(best) if isinstance(best, (int, float)) and math.isfinite(best) else None
    return {"dev": dev, "diverged": bool(div.get("diverged")), "reason": div.get("reason"), "record": d}


def candidates_of(runs: list[CalRun]) -> tuple[list[dict], list[str]]:
    """The candidates of one (model, arm, task) from its runs: per rate the dev score of every seed, their
    mean, the diverged seeds and the files; and the runs that have not finished."""
    by_rate: dict[float, dict] = {}
    missing = []
    for run in runs:
        c = by_rate.setdefault(run.rate, {"learning_rate": run.rate, "dev": {}, "diverged_seeds": [], "runs": {}})
        got = read_candidate(run.target)
        c["runs"][str(run.seed)] = run.target
        if got is None:
            missing.append(run.target)
            continue
        c["dev"][str(run.seed)] = got["dev"]
        if got["diverged"]:
            c["diverged_seeds"].append(run.seed)
    out = []
    for r in sorted(by_rate):
        c = by_rate[r]
        vals = list(c["dev"].values())
        c["mean"] = sum(vals) / len(vals) if vals and all(v is not None for v in vals) else None
        out.append(c)
    return out, missing


def choose(cands: list[dict]) -> tuple[float | None, str]:
    """The chosen rate and why (``SELECTION_RULE``)."""
    eligible = [c for c in cands if not c["diverged_seeds"] and c["mean"] is not None]
    if not eligible:
        return None, NO_RATE
    best = max(eligible, key=lambda c: (round(c["mean"], 12), -c["learning_rate"]))
    rates = [c["learning_rate"] for c in cands]
    note = "chosen"
    if len(rates) > 1 and best["learning_rate"] in (min(rates), max(rates)):
        note = (f"chosen at the {'smallest' if best['learning_rate'] == min(rates) else 'largest'} rate of the grid: "
                f"the best rate may lie beyond it (widen the grid with CAL_RATES)")
    return best["learning_rate"], note


def encoder_choices(cal: Calibration) -> dict[tuple[str, str], dict]:
    """Per (model, intermediate): the phase-2 candidates, the chosen rate, why, and the runs not finished."""
    runs = phase2_runs(cal)
    out = {}
    for m in cal.models:
        for i in cal.phase2_tasks:
            cands, missing = candidates_of([r for r in runs if (r.model, r.task) == (m, i)])
            rate, status = choose(cands) if not missing else (None, "not finished")
            out[(m, i)] = {"candidates": cands, "learning_rate": rate, "status": status, "missing": missing}
    return out


# ----------------------------------------------------------------------------- Make: the runs of one stage
def make_words(cal: Calibration, stage: str) -> list[str]:
    """The runs of a stage as words Make splits on ``:`` (mk/calibrate.mk):

    phase2  MODEL:INTERMEDIATE:RATE:SEED
    target  MODEL:INTERMEDIATE:PHASE2_RATE:ENCODER_SEED:TASK:RATE:SEED:LANGUAGE   (- for the pretrained arm)
    """
    if stage == PHASE2:
        return [f"{r.model}:{r.intermediate}:{layout.rate_name(r.rate)}:{r.seed}" for r in phase2_runs(cal)]
    choices = encoder_choices(cal)
    for (m, i), c in choices.items():
        if c["learning_rate"] is None:
            print(f"make calibrate: arm {i} of {m} is left out: its phase-2 calibration has "
                  f"{'unfinished runs' if c['missing'] else 'no rate (every candidate diverged)'}", file=sys.stderr)
    rates = {k: c["learning_rate"] for k, c in choices.items()}
    return [f"{r.model}:{r.intermediate}:{layout.rate_name(r.phase2_rate) if r.phase2_rate else '-'}:"
            f"{cal.seeds[0] if r.phase2_rate else '-'}:{r.task}:{layout.rate_name(r.rate)}:{r.seed}:"
            f"{eval_language(r.task)}" for r in target_runs(cal, rates)]


# ----------------------------------------------------------------------------- the overlay
def _schedule_in_force(cands: list[dict]) -> dict | None:
    for c in cands:
        for path in c["runs"].values():
            got = read_candidate(path)
            if got is not None:
                hp = got["record"].get("hyperparameters") or {}
                if not hp:  # a phase-2 run that diverged before selection records its settings only
                    hp = (got["record"].get("run_settings") or {}).get("hyperparameters") or {}
                return {k: hp.get(k) for k in ("num_train_epochs", "max_steps", "max_train_samples",
                                               "effective_train_batch_size", "eval_steps", "eval_strategy")}
    return None


def _model_record(cal: Calibration, m: str, runs: list[CalRun]) -> dict:
    path = cal.model_dirs.get(m) or (registry().get(m) or {}).get("hub_id") or (registry().get(m) or {}).get("path")
    for run in runs:  # what the runs recorded (the path from_pretrained received)
        got = read_candidate(run.target) if run.model == m else None
        if got is not None:
            path = (got["record"].get("model") or {}).get("path_or_id") or path
            break
    n = num_layers(m, cal.model_dirs)
    return {"path_or_id": path, "num_layers": n, "grid_rule": "CAL_RATES (given)" if cal.rates else size_rule(n)[2]}


def _entry(cal: Calibration, m: str, task: str, cands: list[dict], init) -> dict:
    rate, status = choose(cands)
    grid, rule = cal.candidates(m, task)
    t = TASKS.get(task)
    return {"learning_rate": rate, "status": status,
            "metric": t.metric if t is not None else "average (of the tasks' English dev metrics)",
            "preset_learning_rate": preset_rate(cal.preset, task, m), "grid": grid, "grid_rule": rule,
            "init": init, "schedule_in_force": _schedule_in_force(cands), "candidates": cands}


def build_overlay(cal: Calibration) -> dict:
    """The overlay of a finished calibration; a UsageError listing the runs that have not finished."""
    choices = encoder_choices(cal)
    rates = {k: c["learning_rate"] for k, c in choices.items()}
    p2, tg = phase2_runs(cal), target_runs(cal, rates)
    missing = [t for c in choices.values() for t in c["missing"]]
    phase2: dict = {}
    for (m, i), c in choices.items():
        phase2.setdefault(m, {})[i] = _entry(cal, m, i, c["candidates"], "the pretrained model")
    target: dict = {}
    for m in cal.models:
        for i in cal.arms:
            if i != BASELINE and rates.get((m, i)) is None:
                continue  # no encoder: that arm cannot be calibrated (its phase-2 entry says why)
            for t in cal.targets:
                runs = [r for r in tg if (r.model, r.intermediate, r.task) == (m, i, t)]
                cands, miss = candidates_of(runs)
                missing += miss
                init = "the pretrained model" if i == BASELINE else {
                    "phase2_learning_rate": rates[(m, i)], "checkpoint": runs[0].encoder}
                target.setdefault(m, {}).setdefault(i, {})[t] = _entry(cal, m, t, cands, init)
    if missing:
        shown = ", ".join(missing[:5]) + (f", ... ({len(missing)} in all)" if len(missing) > 5 else "")
        raise UsageError(f"the calibration has runs that have not finished: {shown}. Run `make calibrate` with the "
                         f"same variables (finished runs are skipped)")
    preset_file = PRESETS / f"{cal.preset}.json"
    return {
        "format": OVERLAY_FORMAT,
        "description": "Learning rates chosen per (model, arm, task) on English dev by make calibrate "
                       "(xstilts/study/calibrate.py). Used by make grid CALIBRATION=<this file>: preset < this "
                       "overlay < command line.",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "provenance": provenance(),
        "preset": {"name": cal.preset, "file": kit_relative(preset_file), "sha256": sha256_file(preset_file)},
        "selection": {"split": "English dev", "rule": SELECTION_RULE},
        "seeds": cal.seeds,
        "schedule": {"flags": cal.schedule, "train_args": cal.train_args,
                     "note": ("shortened: the preset's schedule with these flags (schedule_in_force of each entry)"
                              if cal.schedule else "the preset's full schedule")},
        "grid": {"rates": cal.rates, "rule": "CAL_RATES (given)" if cal.rates else __doc__.split("**Default grid**")[1]
                 .split("**Choice**")[0].strip(), "ladder": list(LADDER)},
        "calibration_dir": cal.cal_dir,
        "targets_not_calibrated": {t: "retrieval: trains nothing" for t in cal.skipped_targets},
        "models": {m: _model_record(cal, m, p2 + tg) for m in cal.models},
        PHASE2: phase2,
        TARGET: target,
    }


# what may differ between two writes of the same calibration: when and by which command it was written
UNSTAMPED = ("created", "provenance")


def write_overlay(overlay: dict, out: str | Path) -> str:
    """Write ``overlay`` at ``out``, never silently replacing another: an overlay there with the same content
    (``created`` and ``provenance`` aside) is kept as it is (results that used it keep naming the same file and
    sha256); a different one is first renamed ``<stem>.superseded-<its created>.json``. Returns what was done."""
    out = Path(out)
    try:
        old = json.loads(out.read_text(encoding="utf-8"))
    except FileNotFoundError:
        old = None
    except (OSError, ValueError):
        old = {}  # unreadable: kept aside below like any other different overlay
    def content(d: dict) -> dict:
        return {k: v for k, v in d.items() if k not in UNSTAMPED}

    if isinstance(old, dict) and old and content(old) == content(json.loads(json.dumps(overlay))):
        return f"{out}: unchanged (the same choices from the same runs), kept as written {old.get('created')}"
    note = f"{out}: written"
    if old is not None:
        stamp = str((old or {}).get("created") or "unknown").replace(":", "")
        kept = out.with_name(f"{out.stem}.superseded-{stamp}{out.suffix}")
        out.rename(kept)
        note = f"{out}: written; the previous overlay (different choices or inputs) is kept as {kept}"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, overlay)
    return note


def render_choices(overlay: dict) -> str:
    lines = []
    for m, per in overlay[PHASE2].items():
        for i, e in per.items():
            lines.append(_choice_line(f"{m}  phase 2  {i}", e))
    for m, arms in overlay[TARGET].items():
        for arm, per in arms.items():
            for t, e in per.items():
                lines.append(_choice_line(f"{m}  {'from the pretrained model' if arm == BASELINE else 'after ' + arm}"
                                          f"  {t}", e))
    return "\n".join(lines)


def _choice_line(name: str, e: dict) -> str:
    scores = ", ".join(f"{c['learning_rate']:g}: " + (f"{c['mean']:.4f}" if c["mean"] is not None else "n/a")
                       + (" (diverged)" if c["diverged_seeds"] else "") for c in e["candidates"])
    rate = f"{e['learning_rate']:g}" if e["learning_rate"] is not None else "none"
    return f"  {name}: {rate} (preset {e['preset_learning_rate']}; {e['metric']} {scores}) [{e['status']}]"


def render_markdown(overlay: dict, path: str) -> str:
    """The overlay as a report section (``make demo``'s report note): what was calibrated how, and per (model,
    phase 2 or arm, task) the chosen rate, the preset's and every candidate's English dev score."""
    sched = overlay.get("schedule") or {}
    head = (f"**Learning rates calibrated** by `make calibrate` ({path}; created {overlay.get('created')}, kit commit "
            f"{str((overlay.get('provenance') or {}).get('git_commit'))[:12]}): chosen on English dev only, "
            f"seeds {' '.join(map(str, overlay.get('seeds') or []))}, schedule: "
            + (f"shortened, the preset's with `{sched['flags']}`" if sched.get("flags") else "the preset's full one")
            + ". A rate with a diverged seed is not eligible. Runs this overlay has no rate for used the preset's "
              "(their `learning_rate_source` says so).")
    rows = []
    for m, per in overlay[PHASE2].items():
        rows += [(m, "phase 2", i, e) for i, e in per.items()]
    for m, arms in overlay[TARGET].items():
        rows += [(m, "from the pretrained model" if arm == BASELINE else f"after {arm}", t, e)
                 for arm, per in arms.items() for t, e in per.items()]
    lines = ["| model | run | task | chosen rate | preset's rate | English dev per rate |", "|---|---|---|---|---|---|"]
    for m, where, t, e in rows:
        scores = ", ".join(f"{c['learning_rate']:g}: " + (f"{100 * c['mean']:.1f}" if c["mean"] is not None
                                                           else "n/a") + (" (diverged)" if c["diverged_seeds"] else "")
                           for c in e["candidates"])
        rate = f"{e['learning_rate']:g}" if e["learning_rate"] is not None else f"none ({e['status']})"
        lines.append(f"| {m} | {where} | {t} | {rate} | {e['preset_learning_rate']} | {e['metric']} {scores} |")
    return head + "\n\n" + "\n".join(lines)


# ----------------------------------------------------------------------------- make grid CALIBRATION=...
def check_grid(path: str, grid, missing: str) -> list[str]:
    """The training runs of ``grid`` (plan.Grid) the overlay at ``path`` has no rate for (refused up front with
    CALIBRATION_MISSING=refuse, listed otherwise). Keys as ``xstilts.run.overlay`` looks them up."""
    if missing not in MISSING_CHOICES:
        raise choices_error("CALIBRATION_MISSING", missing, list(MISSING_CHOICES))
    data = read_overlay(path)
    lacking = []
    for c in grid.phase2:
        if lookup(data, PHASE2, model_key(data, c.model), c.task) is None:
            lacking.append(f"phase2.{c.model}.{c.task}")
    for c in grid.cells:
        if c.kind == "target" and lookup(data, TARGET, model_key(data, c.model), c.task, c.intermediate) is None:
            lacking.append(f"target.{c.model}.{c.intermediate}.{c.task}")
    return list(dict.fromkeys(lacking))


# ----------------------------------------------------------------------------- make plan: the cost
def render_plan(cal: Calibration, throughput: dict | None = None, sizes: dict | None = None) -> str:
    """What ``make calibrate`` with these variables runs and costs: one line per (model, phase 2 or arm, task)
    with its rates, seeds, status and device-hours (``plan.estimate`` of one run, with TRAIN_ARGS + CAL_SCHEDULE),
    and the total. Target arms from a phase-2 encoder are priced before that encoder's rate is chosen."""
    throughput = throughput if throughput is not None else plan_lib.load_json(plan_lib.THROUGHPUT_FILE)
    sizes = sizes if sizes is not None else plan_lib.load_json(plan_lib.SIZES_FILE)
    train_args = f"{cal.train_args} {cal.schedule}".strip()
    # a target candidate evaluates English dev only (no zero-shot pass): its evaluation rows are the dev rows
    dev_only = dict(sizes, tasks={t: dict(v, eval=v.get("dev", 0)) for t, v in sizes.get("tasks", {}).items()})
    choices = encoder_choices(cal)
    lines = [f"Calibration (make calibrate CAL_DIR={cal.cal_dir}): learning rates per model x task on English dev, "
             f"seeds {' '.join(map(str, cal.seeds))}, schedule: "
             + (f"the preset's with {cal.schedule}" if cal.schedule else "the preset's full schedule")]
    total, n_runs, todo, unmeasured, units = 0.0, 0, 0.0, False, set()
    groups = [(PHASE2, m, i, i) for m in cal.models for i in cal.phase2_tasks]
    groups += [(TARGET, m, i, t) for m in cal.models for i in cal.arms for t in cal.targets]
    for stage, m, i, t in groups:
        rates, _ = cal.candidates(m, t)
        kind = "phase2" if stage == PHASE2 else "target"
        est = plan_lib.estimate(plan_lib.Cell(kind, m, i, t, cal.seeds[0], ""), throughput,
                                sizes if stage == PHASE2 else dev_only, cal.preset, train_args)
        n = len(rates) * len(cal.seeds)
        n_runs += n
        if stage == PHASE2:
            files = [layout.calibration_phase2_meta(m, i, r, s, cal.cal_dir) for r in rates for s in cal.seeds]
        else:
            x = choices.get((m, i), {}).get("learning_rate") if i != BASELINE else None
            files = [] if i != BASELINE and x is None else [
                layout.calibration_cell_file(m, layout.calibration_arm(i, x), t, r, s, cal.cal_dir)
                for r in rates for s in cal.seeds]
        done = sum(read_candidate(f) is not None for f in files)
        name = f"phase 2 {i}" if stage == PHASE2 else f"{'pretrained' if i == BASELINE else 'after ' + i} -> {t}"
        if est.gpu_hours is None:
            cost = f"n/a ({est.detail})"
        else:
            total += est.gpu_hours * n
            todo += est.gpu_hours * (n - done)
            unmeasured |= not est.measured
            units.add(est.unit)
            cost = f"{plan_lib._hours(est.gpu_hours * n)} {est.unit}" + ("" if est.measured else " [unmeasured]")
        lines.append(f"  [{done}/{n} done] {m}  {name}: rates {' '.join(f'{r:g}' for r in rates)} x "
                     f"{len(cal.seeds)} seed(s)  {cost}  ({est.detail})")
    if cal.skipped_targets:
        lines.append(f"  not calibrated (retrieval, no training): {' '.join(cal.skipped_targets)}")
    unit = units.pop() if len(units) == 1 else "device-h"
    lines.append(f"Calibration total: {n_runs} run(s); estimated {plan_lib._hours(total)} {unit}, "
                 f"{plan_lib._hours(todo)} {unit} still to run" + (" (UNMEASURED estimate)" if unmeasured else ""))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line
def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", required=True)
    p.add_argument("--intermediate", required=True)
    p.add_argument("--targets", required=True)
    p.add_argument("--seeds", default="1", help="CAL_SEEDS")
    p.add_argument("--rates", default="", help="CAL_RATES (default: the size-dependent grid)")
    p.add_argument("--schedule", default="", help="CAL_SCHEDULE, e.g. '--max_steps 2000'")
    p.add_argument("--preset", default="xtreme")
    p.add_argument("--cal_dir", default=layout.CALIBRATION)
    p.add_argument("--results", default=layout.RESULTS)
    p.add_argument("--ckpts", default=layout.CHECKPOINTS)
    p.add_argument("--train_args", default="")
    p.add_argument("--model_dir", action="append", default=[], metavar="NAME=PATH")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xstilts.study.calibrate", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("check", "check the variables of make calibrate"),
                        ("words", "the runs of one stage, for mk/calibrate.mk"),
                        ("write", "choose the rates and write the overlay"),
                        ("plan", "what make calibrate runs and costs (make plan)")):
        sp = sub.add_parser(name, help=help_)
        _args(sp)
        if name == "words":
            sp.add_argument("--stage", required=True, choices=(PHASE2, TARGET))
        if name == "write":
            sp.add_argument("--out", required=True)
    show = sub.add_parser("show", help="an overlay as a markdown report section")
    show.add_argument("--calibration", required=True)
    g = sub.add_parser("check-grid", help="make grid CALIBRATION=...: every training run has a rate")
    for flag in ("--models", "--intermediate", "--targets", "--calibration"):
        g.add_argument(flag, required=True)
    g.add_argument("--seeds", default="1")
    g.add_argument("--missing", default="refuse")
    g.add_argument("--model_dir", action="append", default=[], metavar="NAME=PATH")
    args = p.parse_args(argv)
    try:
        if args.command == "show":
            print(render_markdown(read_overlay(args.calibration), args.calibration))
            return 0
        if args.command == "check-grid":
            grid = plan_lib.build_grid(args.models, args.intermediate, args.targets, args.seeds,
                                       model_dirs=plan_lib._model_dirs(args.model_dir))
            lacking = check_grid(args.calibration, grid, args.missing)
            if lacking and args.missing == "refuse":
                raise UsageError(f"calibration overlay {args.calibration} has no learning rate for "
                                 f"{', '.join(lacking)}. Calibrate them (make calibrate), or set "
                                 f"CALIBRATION_MISSING=preset to use the preset's rate for them (recorded as such)")
            for name in lacking:
                print(f"WARNING: {args.calibration} has no rate for {name}: the preset's rate is used "
                      f"(CALIBRATION_MISSING=preset; recorded in its learning_rate_source)", file=sys.stderr)
            return 0
        try:
            cal = calibration_from_args(args, check_models=args.command != "words")
        except UsageError as e:
            if args.command != "plan":
                raise
            # make plan prices the grid first; a setting only the calibration refuses must not fail the plan
            print(f"Calibration (make calibrate): not priced with these settings: {e}")
            return 0
        if args.command == "check":
            n2, nt = len(phase2_runs(cal)), len(target_runs(cal, {(m, i): 1.0 for m in cal.models
                                                                     for i in cal.phase2_tasks}))
            print(f"make calibrate: {len(cal.models)} model(s), phase 2 {' '.join(cal.phase2_tasks) or '(none)'}, "
                  f"arms {' '.join(cal.arms)}, targets {' '.join(cal.targets) or '(none)'}, seeds "
                  f"{' '.join(map(str, cal.seeds))}: {n2} phase-2 and {nt} target run(s) in {cal.cal_dir}; schedule: "
                  + (f"the preset's with {cal.schedule}" if cal.schedule else "the preset's full schedule")
                  + (f"; not calibrated (retrieval): {' '.join(cal.skipped_targets)}" if cal.skipped_targets else ""))
            return 0
        if args.command == "words":
            print(" ".join(make_words(cal, args.stage)))
            return 0
        if args.command == "plan":
            print(render_plan(cal))
            return 0
        overlay = build_overlay(cal)
        print(write_overlay(overlay, args.out))
        print(f"Calibration overlay: {args.out} (selection on English dev; seeds {' '.join(map(str, cal.seeds))}; "
              f"schedule: {overlay['schedule']['note']}{' ' + cal.schedule if cal.schedule else ''})")
        print(render_choices(overlay))
        print(f"Use it: make grid ... CALIBRATION={args.out}")
        return 0
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
