"""The results path scheme: where every run of the study writes, stated once.

    <results>/<model>/<intermediate|none>/<task>/seed<k>/results.json   a cell (run_target.py / run_retrieval.py)
    <ckpts>/<model>/<intermediate>/xstilts_meta.json                     a phase-2 checkpoint (run_intermediate.py)
    <results>/leaderboard/<benchmark>/<model>/<intermediate>/seed<k>/   one checkpoint's leaderboard folder

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

# the scheme, with the roots as parameters (also the source of the Make functions)
CELL = "{results}/{model}/{intermediate}/{task}/seed{seed}"
CHECKPOINT = "{ckpts}/{model}/{intermediate}"
LEADERBOARD = "{results}/" + LEADERBOARD_DIR + "/{benchmark}/{model}/{intermediate}/seed{seed}"


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


def leaderboard_dir(benchmark: str, model: str, intermediate: str, seed: int, results: str = RESULTS) -> str:
    return LEADERBOARD.format(results=_root(results), benchmark=benchmark, model=model, intermediate=intermediate,
                              seed=seed)


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
    return f"""\
# Generated by `python -m xstilts.run.layout mk` (make tasks-mk) from xstilts/run/layout.py: do not edit.
# The results path scheme (see that module's docstring); tests/test_architecture.py checks this file is current.

# $(call cell_path,RESULTS,MODEL,INTERMEDIATE,TASK,SEED): a cell's file target
cell_path = {cell}/{RESULTS_FILE}
# $(call ckpt_dir,CKPTS,MODEL,INTERMEDIATE): a phase-2 checkpoint; ckpt_meta: its file target
ckpt_dir = {ckpt}
ckpt_meta = $(call ckpt_dir,$(1),$(2),$(3))/{META_FILE}
# $(call task_arg,INTERMEDIATE): run_intermediate.py's task flag (a mix a{MIXTURE_SEP}b or {MIXTURE_ALL}: --tasks a,b)
task_arg = $(if $(or $(findstring {MIXTURE_SEP},$(1)),$(filter {MIXTURE_ALL},$(1))),--tasks $(subst {MIXTURE_SEP},$(comma),$(1)),--task $(1))
# $(call target_arg,TARGET): run_target.py's task flags (a translate-train cell t{TRANSLATE_TRAIN_SEP}m: --task t --train_languages m)
target_arg = $(if $(findstring {TRANSLATE_TRAIN_SEP},$(1)),--task $(firstword $(subst {TRANSLATE_TRAIN_SEP}, ,$(1))) --train_languages $(lastword $(subst {TRANSLATE_TRAIN_SEP}, ,$(1))),--task $(1))
override BASELINE := {BASELINE}
override MIXTURE_ALL := {MIXTURE_ALL}
override LABELS_DIR := {LABELS_DIR}
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
