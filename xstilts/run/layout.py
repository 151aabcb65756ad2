"""The results path scheme: where every run of the study writes, stated once.

    <results>/<model>/<intermediate|none>/<task>/seed<k>/results.json   a cell (run_target.py / run_retrieval.py)
    <ckpts>/<model>/<intermediate>/xstilts_meta.json                     a phase-2 checkpoint (run_intermediate.py)
    <ckpts>/<model>/<intermediate|none>.<recipe>/xstilts_meta.json       that encoder (none: the pretrained model)
                                                                         fine-tuned by a preset's encoder recipe
                                                                         (run_intermediate.py --encoder_recipe), the
                                                                         encoder of a retrieval task that names it
    <results>/leaderboard/<benchmark>/<model>/<intermediate>/seed<k>/   one checkpoint's leaderboard folder
    <results>/<model>/<intermediate|none>/<task>/seed<k>-retry<r>/      the r-th replacement of a diverged cell

    <cal>/<model>/phase2/<intermediate>/lr<rate>/seed<k>/xstilts_meta.json     a phase-2 calibration run
    <cal>/<model>/<arm>/<task>/lr<rate>/seed<k>/results.json                   a target-task calibration run
    <cal>/overlay.json                                                         the chosen rates (make calibrate)

A replacement (``make grid DIVERGED_RETRIES=N``) trains with the seed of the run it replaces plus
``REPLACEMENT_SEED_STRIDE`` (seed 1 -> 1001 -> 2001): the next seed of the cell's own sequence, never one of the
grid's seeds (which stay below the stride). Calibration runs live in their own tree (``make calibrate
CAL_DIR``, default ``calibration``), never inside a results tree: the report never mixes them with the study.
A target-task calibration arm is ``none`` (from the pretrained model) or ``<intermediate>-lr<rate>`` (from the
phase-2 calibration encoder trained at the chosen phase-2 rate). Rates are written ``f"{rate:g}"`` (1e-05).

A multi-task intermediate is named ``a+b+c`` (its tasks, in the order given), or ``all`` for the study's nine
(``xstilts.tasks.benchmarks.MULTITASK_ALL``). A translate-train cell (NOT zero-shot) files its target as
``<task>@<tt|tta|languages>`` (``translate_train_name``). Inside a run folder: the finish file (``results.json`` /
``xstilts_meta.json``, written last), ``xstilts_run.json`` (the run's settings), ``xstilts.lock`` (while a run
writes), ``trainer/`` (Trainer checkpoints), ``predictions/`` / ``labels/`` (leaderboard layout), a retrieval
cell's ``per_layer.{png,csv}`` and ``superseded/`` (earlier runs' outputs, never deleted).

Paths are built as strings joined with ``/``, exactly as Make spells its file targets. Make uses the same
scheme through functions generated from this module into ``mk/layout.mk`` (``python -m xstilts.run.layout mk``;
``make tasks-mk``); the plan, the report's readers, the leaderboard and the scripts' default ``--output_dir``
call the functions here.
"""

from __future__ import annotations

import sys

from ..tasks.benchmarks import MULTITASK_ALL

BASELINE = "none"  # the intermediate-task name of cells without intermediate training
RESULTS, CHECKPOINTS = "results", "checkpoints"  # default roots (Makefile RESULTS / CKPTS)
RESULTS_FILE = "results.json"  # a cell's result; its presence marks the cell finished
META_FILE = "xstilts_meta.json"  # a phase-2 checkpoint's record; written last
RUN_FILE = "xstilts_run.json"  # the settings of the run that owns the folder
LOCK_FILE = "xstilts.lock"  # held by the run writing into the folder (xstilts.run.rundir)
SUPERSEDED_DIR = "superseded"  # what an earlier run of the folder wrote, moved aside (xstilts.run.rundir)
TRAINER_DIR = "trainer"  # Trainer checkpoints (removed after a successful run)
PREDICTIONS_DIR, LABELS_DIR = "predictions", "labels"  # leaderboard-layout files of a cell
PER_LAYER_PNG, PER_LAYER_CSV = "per_layer.png", "per_layer.csv"  # a retrieval cell's metric by layer
CANDIDATES_DIR = "candidates"  # BUCC: every test candidate with its score (--write_candidates)
EMBEDDINGS_DIR = "embeddings.tmp"  # BUCC: embeddings spilled to disk while a split is mined
LEADERBOARD_DIR = "leaderboard"
MIXTURE_SEP, MIXTURE_ALL = "+", "all"
TRANSLATE_TRAIN_SEP = "@"  # a translate-train cell's target folder: <task>@<tt|tta|de-fr> (NOT zero-shot)

CALIBRATION = "calibration"  # default root of the calibration runs (make calibrate CAL_DIR)
OVERLAY_FILE = "overlay.json"  # the overlay make calibrate writes in it (CAL_OUT)
PHASE2_ARM_DIR = "phase2"  # under <cal>/<model>: the phase-2 calibration runs
REPLACEMENT_SEED_STRIDE = 1000

# the scheme, with the roots as parameters (also the source of the Make functions)
CELL = "{results}/{model}/{intermediate}/{task}/seed{seed}"
CHECKPOINT = "{ckpts}/{model}/{intermediate}"
RECIPE_SEP = "."  # not in any task or mixture name
RECIPE_CHECKPOINT = CHECKPOINT + RECIPE_SEP + "{recipe}"
LEADERBOARD = "{results}/" + LEADERBOARD_DIR + "/{benchmark}/{model}/{intermediate}/seed{seed}"
REPLACEMENT = CELL + "-retry{retry}"
CAL_PHASE2 = "{cal}/{model}/" + PHASE2_ARM_DIR + "/{intermediate}/lr{rate}/seed{seed}"
CAL_CELL = "{cal}/{model}/{arm}/{task}/lr{rate}/seed{seed}"
CAL_ARM = "{intermediate}-lr{rate}"


def _root(path: str) -> str:
    return str(path).rstrip("/") or "/"


def cell_dir(model: str, intermediate: str, task: str, seed: int, results: str = RESULTS) -> str:
    return CELL.format(results=_root(results), model=model, intermediate=intermediate, task=task, seed=seed)


def cell_file(model: str, intermediate: str, task: str, seed: int, results: str = RESULTS) -> str:
    """The cell's Make file target: its ``results.json``."""
    return f"{cell_dir(model, intermediate, task, seed, results)}/{RESULTS_FILE}"


def checkpoint_dir(model: str, intermediate: str, ckpts: str = CHECKPOINTS) -> str:
    return CHECKPOINT.format(ckpts=_root(ckpts), model=model, intermediate=intermediate)


def checkpoint_meta(model: str, intermediate: str, ckpts: str = CHECKPOINTS) -> str:
    """The phase-2 checkpoint's Make file target: its ``xstilts_meta.json``."""
    return f"{checkpoint_dir(model, intermediate, ckpts)}/{META_FILE}"


def recipe_checkpoint_dir(model: str, intermediate: str, recipe: str, ckpts: str = CHECKPOINTS) -> str:
    """The encoder of cell (model, intermediate) fine-tuned by the preset's encoder recipe ``recipe``
    (``intermediate`` may be the baseline ``none``: the pretrained model, fine-tuned)."""
    return RECIPE_CHECKPOINT.format(ckpts=_root(ckpts), model=model, intermediate=intermediate, recipe=recipe)


def recipe_checkpoint_meta(model: str, intermediate: str, recipe: str, ckpts: str = CHECKPOINTS) -> str:
    """That checkpoint's Make file target: its ``xstilts_meta.json``."""
    return f"{recipe_checkpoint_dir(model, intermediate, recipe, ckpts)}/{META_FILE}"


def leaderboard_dir(benchmark: str, model: str, intermediate: str, seed: int, results: str = RESULTS) -> str:
    return LEADERBOARD.format(results=_root(results), benchmark=benchmark, model=model, intermediate=intermediate,
                              seed=seed)


def replacement_dir(model: str, intermediate: str, task: str, seed: int, retry: int, results: str = RESULTS) -> str:
    """The folder of the ``retry``-th replacement (1, 2, ...) of the cell of ``seed``."""
    return REPLACEMENT.format(results=_root(results), model=model, intermediate=intermediate, task=task, seed=seed,
                              retry=retry)


def replacement_file(model: str, intermediate: str, task: str, seed: int, retry: int, results: str = RESULTS) -> str:
    return f"{replacement_dir(model, intermediate, task, seed, retry, results)}/{RESULTS_FILE}"


def replacement_seed(replaced_seed: int) -> int:
    """The seed of the run that replaces a diverged run of ``replaced_seed``."""
    return int(replaced_seed) + REPLACEMENT_SEED_STRIDE


def rate_name(rate: float) -> str:
    """A learning rate as paths and Make spell it: ``f"{rate:g}"`` (2e-05, 0.0005)."""
    return f"{float(rate):g}"


def calibration_arm(intermediate: str, phase2_rate: float | None = None) -> str:
    """A target-task calibration arm: ``none``, or the intermediate task with its phase-2 rate."""
    return BASELINE if intermediate == BASELINE else CAL_ARM.format(intermediate=intermediate,
                                                                   rate=rate_name(phase2_rate))


def calibration_phase2_dir(model: str, intermediate: str, rate: float, seed: int, cal: str = CALIBRATION) -> str:
    return CAL_PHASE2.format(cal=_root(cal), model=model, intermediate=intermediate, rate=rate_name(rate), seed=seed)


def calibration_phase2_meta(model: str, intermediate: str, rate: float, seed: int, cal: str = CALIBRATION) -> str:
    return f"{calibration_phase2_dir(model, intermediate, rate, seed, cal)}/{META_FILE}"


def calibration_cell_dir(model: str, arm: str, task: str, rate: float, seed: int, cal: str = CALIBRATION) -> str:
    return CAL_CELL.format(cal=_root(cal), model=model, arm=arm, task=task, rate=rate_name(rate), seed=seed)


def calibration_cell_file(model: str, arm: str, task: str, rate: float, seed: int, cal: str = CALIBRATION) -> str:
    return f"{calibration_cell_dir(model, arm, task, rate, seed, cal)}/{RESULTS_FILE}"


def mixture_name(tasks) -> str:
    """The intermediate-task name of a multi-task mix: ``all`` for the study's nine, else ``a+b+c``."""
    tasks = list(tasks)
    return MIXTURE_ALL if sorted(tasks) == sorted(MULTITASK_ALL) else MIXTURE_SEP.join(tasks)


def is_mixture(name: str) -> bool:
    """Whether an intermediate-task name stands for a multi-task mix (``all`` or ``a+b+...``)."""
    return name == MIXTURE_ALL or MIXTURE_SEP in name


def mixture_tasks(name: str) -> list[str]:
    """The task names of a mix's name (``all`` -> the study's nine)."""
    return list(MULTITASK_ALL) if name == MIXTURE_ALL else name.split(MIXTURE_SEP)


def translate_train_name(task: str, label: str) -> str:
    """The target folder (and grid name) of a translate-train cell: ``xnli@tta`` = run_target.py --task xnli
    --train_languages tta. Kept apart from the zero-shot cell ``xnli`` of the same model and checkpoint."""
    return f"{task}{TRANSLATE_TRAIN_SEP}{label}"


def split_target(name: str) -> tuple[str, str | None]:
    """(task, translate-train label or None) of a target grid name."""
    task, sep, label = name.partition(TRANSLATE_TRAIN_SEP)
    return task, (label if sep else None)


def _make(template: str, params: tuple[str, ...]) -> str:
    for i, p in enumerate(params, 1):
        template = template.replace("{" + p + "}", f"$({i})")
    return template


def make_functions() -> str:
    """The scheme in Make (mk/layout.mk): the same templates, the roots and names as call arguments."""
    cell = _make(CELL, ("results", "model", "intermediate", "task", "seed"))
    ckpt = _make(CHECKPOINT, ("ckpts", "model", "intermediate"))
    retry = _make(REPLACEMENT, ("results", "model", "intermediate", "task", "seed", "retry"))
    cal_phase2 = _make(CAL_PHASE2, ("cal", "model", "intermediate", "rate", "seed"))
    cal_cell = _make(CAL_CELL, ("cal", "model", "arm", "task", "rate", "seed"))
    cal_arm = _make(CAL_ARM, ("intermediate", "rate"))
    recipe = _make(RECIPE_CHECKPOINT, ("ckpts", "model", "intermediate", "recipe"))
    return f"""\
# Generated by `python -m xstilts.run.layout mk` (make tasks-mk) from xstilts/run/layout.py: do not edit.
# The results path scheme (see that module's docstring); tests/test_architecture.py checks this file is current.

# $(call cell_path,RESULTS,MODEL,INTERMEDIATE,TASK,SEED): a cell's file target
cell_path = {cell}/{RESULTS_FILE}
# $(call ckpt_dir,CKPTS,MODEL,INTERMEDIATE): a phase-2 checkpoint; ckpt_meta: its file target
ckpt_dir = {ckpt}
ckpt_meta = $(call ckpt_dir,$(1),$(2),$(3))/{META_FILE}
# $(call recipe_ckpt_dir,CKPTS,MODEL,INTERMEDIATE,RECIPE): that encoder fine-tuned by an encoder recipe; recipe_ckpt_meta
recipe_ckpt_dir = {recipe}
recipe_ckpt_meta = $(call recipe_ckpt_dir,$(1),$(2),$(3),$(4))/{META_FILE}
# $(call task_arg,INTERMEDIATE): run_intermediate.py's task flag (a mix a{MIXTURE_SEP}b or {MIXTURE_ALL}: --tasks a,b)
task_arg = $(if $(or $(findstring {MIXTURE_SEP},$(1)),$(filter {MIXTURE_ALL},$(1))),--tasks $(subst {MIXTURE_SEP},$(comma),$(1)),--task $(1))
# $(call target_arg,TARGET): run_target.py's task flags (a translate-train cell t{TRANSLATE_TRAIN_SEP}m: --task t --train_languages m)
target_arg = $(if $(findstring {TRANSLATE_TRAIN_SEP},$(1)),--task $(firstword $(subst {TRANSLATE_TRAIN_SEP}, ,$(1))) --train_languages $(lastword $(subst {TRANSLATE_TRAIN_SEP}, ,$(1))),--task $(1))
override BASELINE := {BASELINE}
override MIXTURE_ALL := {MIXTURE_ALL}
override LABELS_DIR := {LABELS_DIR}
# $(call replacement_path,RESULTS,MODEL,INTERMEDIATE,TASK,SEED,RETRY): the RETRY-th replacement of a diverged cell
replacement_path = {retry}/{RESULTS_FILE}
# calibration runs (make calibrate): $(call cal_phase2_dir,CAL,MODEL,INTERMEDIATE,RATE,SEED), its meta;
# $(call cal_cell_path,CAL,MODEL,ARM,TASK,RATE,SEED); $(call cal_arm,INTERMEDIATE,PHASE2_RATE)
cal_phase2_dir = {cal_phase2}
cal_phase2_meta = $(call cal_phase2_dir,$(1),$(2),$(3),$(4),$(5))/{META_FILE}
cal_cell_path = {cal_cell}/{RESULTS_FILE}
cal_arm = $(if $(filter {BASELINE},$(1)),{BASELINE},{cal_arm})
override META_FILE := {META_FILE}
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["mk"]:
        print("usage: python -m xstilts.run.layout mk   (prints mk/layout.mk)", file=sys.stderr)
        return 2
    sys.stdout.write(make_functions())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
