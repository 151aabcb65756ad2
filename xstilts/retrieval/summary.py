"""Per-language retrieval results summarised: averages over all languages, per language family
(``xstilts.tasks.languages.FAMILIES``) and per benchmark language list."""

from __future__ import annotations

from typing import Iterable, Sequence

from ..tasks.languages import FAMILIES

LANGUAGE_GROUPS = FAMILIES
_GROUP_OF = {lang: g for g, langs in LANGUAGE_GROUPS.items() for lang in langs}


def language_group(lang: str) -> str:
    """The family group of an XTREME language code (``other`` for anything not listed)."""
    return _GROUP_OF.get(lang, "other")


def group_languages(languages: Iterable[str]) -> dict[str, list[str]]:
    """``{group: [languages]}`` in LANGUAGE_GROUPS order, only groups that occur."""
    langs = list(languages)
    out = {g: [l for l in langs if language_group(l) == g] for g in LANGUAGE_GROUPS}
    return {g: ls for g, ls in out.items() if ls}


def mean_of(per_language: dict, key: str) -> float:
    vals = [m[key] for m in per_language.values() if m.get(key) is not None]
    return float(sum(vals) / len(vals)) if vals else float("nan")


def summarise(per_language: dict, keys: Sequence[str]) -> dict:
    """Average of ``keys`` over all languages, plus per language group."""
    return {
        "average": {k: mean_of(per_language, k) for k in keys},
        "groups": {g: {"languages": ls, **{k: mean_of({l: per_language[l] for l in ls}, k) for k in keys}}
                   for g, ls in group_languages(per_language).items()},
    }


def benchmark_averages(task, per_language: dict, metric: str) -> dict:
    """The task average over XTREME's and XTREME-R's language lists, where every language was evaluated
    (what ``python -m xstilts.score`` reports as the task's ``avg_metric``, / 100)."""
    out = {}
    if not task.xtreme_name:
        return out  # not an XTREME task (e.g. the synthetic world)
    for bench in ("xtreme", "xtreme-r"):
        langs = task.language_set(bench)
        if bench == "xtreme-r" and not task.languages_xtreme_r:
            continue  # the task is not part of XTREME-R (BUCC) or has the same list
        if langs and all(l in per_language for l in langs):
            out[bench] = {"languages": len(langs), metric: mean_of({l: per_language[l] for l in langs}, metric)}
    return out
