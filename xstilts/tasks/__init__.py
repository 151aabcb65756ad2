"""Task declarations: pure data, one module per family, imported by every other part of the kit and importing
nothing else from it.

``TASKS`` maps every task name to its :class:`~xstilts.tasks.types.Task`, built here from the families'
explicit ``TASKS`` tuples (no registration by import side effect). Listing order (choices in messages, --help,
``python -m xstilts.tasks list``): the README's first examples (mnli, xnli, tatoeba), then family by family.
Adding a task = one ``Task`` in its family module (and in that module's ``TASKS``) plus fixtures in
``tests/fixtures/hub`` (same Hub layout). Adding a language = one entry in ``languages.py``.

    languages.py    every language table          benchmarks.py   XTREME / XTREME-R membership, groups, the study's lists
    translated.py   translated training data      mlm.py          the multilingual MLM objective (auxiliary)
    types.py        Source, Concat, Task          <family>.py     the tasks of one family, as module constants
"""

from __future__ import annotations

from . import classification, dual_encoder, mlm, multiple_choice, qa, retrieval, synthetic, tagging, translated
from .types import PHASES, Task

FAMILIES = (classification, tagging, qa, multiple_choice, retrieval, dual_encoder, translated, mlm, synthetic)
FIRST = (classification.MNLI, classification.XNLI, retrieval.TATOEBA)  # listed first


def _catalogue() -> dict[str, Task]:
    out: dict[str, Task] = {t.name: t for t in FIRST}
    for family in FAMILIES:
        for task in family.TASKS:
            if task.name in out and task not in FIRST:
                raise ValueError(f"task {task.name!r} declared twice ({family.__name__})")
            out.setdefault(task.name, task)
    return out


TASKS: dict[str, Task] = _catalogue()


def names(*phases: str) -> list[str]:
    """Task names in listing order, of the given phases (all tasks when none is given)."""
    return [t.name for t in TASKS.values() if not phases or t.phase in phases]


def get(name: str, phase: str | None = None) -> Task:
    """The task called ``name``. KeyError when there is none; ValueError when it belongs to another phase
    than ``phase`` (the run layer turns both into a UsageError listing the choices)."""
    task = TASKS[name]
    if phase is not None and task.phase != phase:
        raise ValueError(f"task {name!r} is a {task.phase} task, not a {phase} task")
    return task


__all__ = ["PHASES", "TASKS", "Task", "get", "names"]
