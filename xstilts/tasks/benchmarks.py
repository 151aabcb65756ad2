"""Benchmark membership and groups (XTREME, XTREME-R), and the study's default task lists.

Each benchmark's tasks and groups are those of google-research/xtreme ``evaluate.py`` (commit 838c13b,
Apache-2.0), in that script's order (the order the scorer adds task scores in). Each task's language list per
benchmark (evaluate.py's TASK2LANGS) is DERIVED from the task declarations (``Task.language_set``), not
re-listed here.
"""

from __future__ import annotations

from .classification import ANLI_PLUS, MNLI, PAWSX, QQP, XNLI
from .dual_encoder import LAREQA, MEWSLIX
from .multiple_choice import COSMOSQA, CSQA, HELLASWAG, XCOPA
from .qa import MLQA, SQUAD_V1, SQUAD_V2, TYDIQA, XQUAD
from .retrieval import BUCC2018, TATOEBA, TATOEBA_SQUAD
from .tagging import CCG, PANX, UDPOS

BENCHMARKS = ("xtreme", "xtreme-r")

# evaluate.py XTREME_TASK2LANGS / XTREME_R_TASK2LANGS: the tasks, in that script's order. Tatoeba is the same
# leaderboard folder in both, evaluated by another protocol: XTREME embeds the raw encoder (tatoeba), XTREME-R the
# SQuAD v1.1-fine-tuned one (tatoeba_squad; run_tatoeba.sh@838c13b:44-45, see xstilts.tasks.retrieval)
BENCHMARK_TASKS = {
    "xtreme": (PAWSX, XNLI, PANX, UDPOS, BUCC2018, TATOEBA, XQUAD, MLQA, TYDIQA),
    "xtreme-r": (XNLI, PANX, UDPOS, TATOEBA_SQUAD, XCOPA, LAREQA, MEWSLIX, XQUAD, MLQA, TYDIQA),
}

# evaluate.py XTREME_GROUP2TASK / XTREME_R_GROUP2TASK (the scorer's groups: its averages and file suffixes)
SCORER_GROUPS = {
    "xtreme": {"classification": (PAWSX, XNLI), "tagging": (UDPOS, PANX), "qa": (XQUAD, MLQA, TYDIQA),
               "retrieval": (BUCC2018, TATOEBA)},
    "xtreme-r": {"classification": (XNLI, XCOPA), "tagging": (UDPOS, PANX), "qa": (XQUAD, MLQA, TYDIQA),
                 "retrieval": (TATOEBA_SQUAD, MEWSLIX), "multi_choice": (XCOPA,)},
}

# evaluate.py lists these tasks with an EMPTY language list (XTREME-R LAReQA: no languages, no metric); the
# kit's scorer scores them on the task's own languages only when their files are there (xstilts.score)
UNLISTED_LANGUAGES = {"xtreme": (), "xtreme-r": (LAREQA,)}

# The groups of the benchmark papers' result tables, which the report's benchmark section follows (Hu et al.
# 2020, Table 2; Ruder et al. 2021, Table 3). They differ from the scorer's in XTREME-R: XCOPA counts once
# (classification) and retrieval includes LAReQA.
PAPER_GROUPS = {
    "XTREME": {"classification": (PAWSX, XNLI), "structured prediction": (UDPOS, PANX),
               "question answering": (XQUAD, MLQA, TYDIQA), "retrieval": (BUCC2018, TATOEBA)},
    "XTREME-R": {"classification": (XNLI, XCOPA), "structured prediction": (UDPOS, PANX),
                 "question answering": (XQUAD, MLQA, TYDIQA), "retrieval": (TATOEBA_SQUAD, MEWSLIX, LAREQA)},
}


def task_names(benchmark: str) -> list[str]:
    """The benchmark's task folder names, in evaluate.py's order."""
    return [t.xtreme_name for t in BENCHMARK_TASKS[benchmark]]


def kit_task_names(benchmark: str) -> list[str]:
    """The kit's tasks that make up the benchmark (the cells of `make xtreme` / `make xtreme-r`), in that order."""
    return [t.name for t in BENCHMARK_TASKS[benchmark]]


def task2langs(benchmark: str) -> dict[str, list[str]]:
    """evaluate.py's TASK2LANGS for ``benchmark``, derived from the task declarations."""
    unlisted = UNLISTED_LANGUAGES[benchmark]
    return {t.xtreme_name: [] if t in unlisted else list(t.language_set(benchmark))
            for t in BENCHMARK_TASKS[benchmark]}


def group2task(benchmark: str) -> dict[str, list[str]]:
    """evaluate.py's GROUP2TASK for ``benchmark``."""
    return {g: [t.xtreme_name for t in ts] for g, ts in SCORER_GROUPS[benchmark].items()}


def paper_groups() -> dict[str, dict[str, tuple[str, ...]]]:
    """The report's benchmark groups by task name."""
    return {b: {g: tuple(t.name for t in ts) for g, ts in groups.items()} for b, groups in PAPER_GROUPS.items()}


# ----------------------------------------------------------------------------- the study (Makefile defaults)
# The nine intermediate tasks of Phang et al. 2020, in the paper's table order: the default INTERMEDIATE of
# `make grid` and the multi-task mix `--tasks all`.
STUDY_INTERMEDIATE = (ANLI_PLUS, MNLI, QQP, SQUAD_V1, SQUAD_V2, HELLASWAG, CCG, COSMOSQA, CSQA)
MULTITASK_ALL = tuple(t.name for t in STUDY_INTERMEDIATE)
# Every task of XTREME or XTREME-R, in the order of the benchmarks' tables (classification, structured prediction,
# QA, then the retrieval tasks): the default TARGETS of `make grid`.
STUDY_TARGETS = (XNLI, PAWSX, UDPOS, PANX, XQUAD, MLQA, TYDIQA, XCOPA, LAREQA, MEWSLIX, BUCC2018, TATOEBA,
                 TATOEBA_SQUAD)
