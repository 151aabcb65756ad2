"""Task lookups for the run scripts: a task by name (bad names -> UsageError listing the choices) and the
``--languages`` spec of a task. The declarations themselves live in :mod:`xstilts.tasks`.
"""

from __future__ import annotations

from .errors import UsageError, choices_error
from .tasks import TASKS
from .tasks.types import PARQUET_EXPORT, Concat, Source, Task, source_parts  # noqa: F401  (re-exported)


def get_task(name: str, phase: str | None = None) -> Task:
    """Look a task up by name; with ``phase``, only tasks of that phase are valid."""
    valid = [t for t in TASKS.values() if phase is None or t.phase == phase]
    names = [t.name for t in valid]
    if name not in names:
        raise choices_error(f"{phase + ' ' if phase else ''}task", name, names)
    return TASKS[name]


LANGUAGE_SETS = ("xtreme", "xtreme-r", "all", "available")


def parse_languages(task: Task, spec: str | None) -> list[str]:
    """None/``xtreme`` -> XTREME's languages of the task; ``xtreme-r`` -> XTREME-R's; ``all`` -> both;
    else a comma list checked against the task, each language once, in the order given (``en,de,de`` is
    ``en,de``: a run's stored settings never depend on a repeated name)."""
    spec = (spec or "").strip()
    if spec in ("", "xtreme"):
        return list(task.languages)
    if spec == "xtreme-r":
        return list(task.language_set("xtreme-r"))
    if spec in ("all", "available"):  # "available" is narrowed to the data present by pipeline.prepare
        return list(task.all_languages)
    langs = list(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    for lang in langs:
        if lang not in task.all_languages:
            raise choices_error(f"language for task {task.name}", lang, [*task.all_languages, *LANGUAGE_SETS])
    if not langs:
        raise UsageError(f"no language given for task {task.name}")
    return langs
