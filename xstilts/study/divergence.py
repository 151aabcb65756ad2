"""Diverged runs in the report: which runs are left out of every mean, and the mark beside each number they touch.

A run is diverged when its result says so (``divergence.diverged`` is true: its English dev metric at selection
stayed within a stated margin of chance, or its training loss became NaN/inf), or when the phase-2 encoder it
started from says so (``intermediate_meta.divergence``). The record is written by the training side
(issue 20; docs/study.md): ``{"diverged", "reason", "rule", "metric", "dev_value", "chance",
"margin", "first_non_finite_step", "evidence"}``. A replacement run (``make grid DIVERGED_RETRIES=N``) is an
ordinary run of the next seed that records ``replaces: {"seed", "path", "reason"}``.

The report keeps diverged runs out of means, standard deviations, intervals and the power table (a collapsed
baseline seed would look like a large gain), uses replacements where present (they are ordinary runs), lists
every diverged run per size with its evidence, and puts :data:`MARK` beside every number computed from a group
that lost a run. Results without a divergence record were not checked; the section counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..run.layout import BASELINE
from ..run.results import ResultsSchemaError
from .markdown import format_params, md_table

MARK = "§"


def record(d: dict) -> dict | None:
    """The divergence record that excludes this result (its own, or its phase-2 encoder's), else None."""
    own = _checked(d.get("divergence"), d, "divergence")
    if own is not None and own["diverged"]:
        return own
    meta = d.get("intermediate_meta")
    phase2 = _checked(meta.get("divergence"), d, "intermediate_meta.divergence") if isinstance(meta, dict) else None
    if phase2 is not None and phase2["diverged"]:
        return dict(phase2, phase=2, phase2_task=meta.get("task"))
    return None


def _checked(rec, d: dict, where: str) -> dict | None:
    if rec is None:
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("diverged"), bool):
        raise ResultsSchemaError(f"{d.get('_source', '?')}: {where} must be an object with a boolean 'diverged' "
                                 f"(got {rec!r})")
    return rec


def is_diverged(d: dict) -> bool:
    return record(d) is not None


def is_checked(d: dict) -> bool:
    """Whether the run carries a divergence record at all (runs written before the check carry none)."""
    return isinstance(d.get("divergence"), dict)


def split_runs(runs: list[dict]) -> tuple[list[dict], list[dict]]:
    """(kept, diverged), each in the given order."""
    kept = [r for r in runs if not is_diverged(r)]
    return kept, [r for r in runs if is_diverged(r)]


def mark(n_excluded: int) -> str:
    return MARK if n_excluded else ""


@dataclass
class Diverged:
    model: str
    n_params: int
    intermediate: str
    target: str
    seed: int
    source: str
    rec: dict
    replaced_by: list[str]  # "seed k" of the runs that record replacing this one


def _evidence(rec: dict) -> str:
    parts = []
    if rec.get("phase") == 2:
        parts.append(f"phase-2 encoder ({rec.get('phase2_task') or '?'}) diverged")
    reason = rec.get("reason")
    if reason == "non_finite_loss" or rec.get("first_non_finite_step") is not None:
        parts.append(f"non-finite loss at step {rec.get('first_non_finite_step', '?')}")
    if rec.get("dev_value") is not None:
        text = f"English dev {rec.get('metric', 'metric')} {100 * rec['dev_value']:.1f}"
        if rec.get("chance") is not None:
            text += f" vs chance {100 * rec['chance']:.1f}"
            if rec.get("margin") is not None:
                text += f" + margin {100 * rec['margin']:.1f}"
        parts.append(text)
    if not parts:
        parts.append(str(reason or "diverged"))
    return "; ".join(parts)


def _key(d: dict) -> tuple[str, str, str]:
    return d["model"]["name"], d.get("intermediate_task") or BASELINE, d.get("target_task")


def diverged_runs(results: list[dict], n_params: dict[str, int]) -> list[Diverged]:
    """Every diverged result with the runs that replace it (matched by model, arm, target and replaced seed);
    ``n_params``: model name -> size."""
    replacements: dict[tuple, list[str]] = {}
    for d in results:
        rep = d.get("replaces")
        if isinstance(rep, dict) and rep.get("seed") is not None:
            replacements.setdefault((*_key(d), rep["seed"]), []).append(
                f"seed {d['seed']}" + (f" (diverged too {MARK})" if is_diverged(d) else ""))
    out = []
    for d in results:
        rec = record(d)
        if rec is None or not d.get("target_task"):
            continue
        model, inter, target = _key(d)
        out.append(Diverged(model, n_params[model], inter, target, d["seed"], d["_source"], rec,
                            replacements.get((model, inter, target, d["seed"]), [])))
    return sorted(out, key=lambda x: (x.n_params, x.model, x.intermediate != BASELINE, x.intermediate, x.target,
                                      x.seed))


def section(results: list[dict], diverged: list[Diverged]) -> str:
    """The report's "Diverged runs" section: per size, every run left out, why, and what replaced it."""
    # trained results only: a retrieval result trains nothing after phase 2 (its encoder's record applies)
    trained = [d for d in results if d.get("target_task") and d.get("kind") != "retrieval"]
    unchecked = sum(1 for d in trained if not is_checked(d))
    lines = []
    if not diverged:
        lines.append("No run is marked diverged: nothing is left out of the tables.")
    else:
        replaced = sum(1 for x in diverged if x.replaced_by)
        lines.append(f"{len(diverged)} diverged run(s) are left out of every mean, standard deviation, interval and "
                     f"power figure; {replaced} of them have a replacement run (an ordinary run of another seed, "
                     f"included). {MARK} beside a number: it is computed without the diverged run(s) of that cell.")
        rows = []
        for x in diverged:
            rows.append([x.model, format_params(x.n_params), x.intermediate, x.target, str(x.seed),
                         x.rec.get("reason") or "–", _evidence(x.rec),
                         ", ".join(x.replaced_by) or "none", f"`{Path(x.source).parent}`"])
        lines += ["", md_table(["model", "params", "intermediate", "target", "seed", "reason", "evidence",
                                "replaced by", "run"], rows)]
        rules = sorted({x.rec.get("rule") for x in diverged if x.rec.get("rule")})
        lines += [""] + [f"- Rule: {r}" for r in rules]
        by_model: dict[str, int] = {}
        for x in diverged:
            by_model[x.model] = by_model.get(x.model, 0) + 1
        lines.append("- Per size: " + ", ".join(f"{m} {n}" for m, n in by_model.items()) + ".")
    if unchecked:
        lines.append(f"- {unchecked} of {len(trained)} trained result(s) carry no divergence record (written before "
                     f"the check existed): they were not checked and are included as they are.")
    return "\n".join(lines)
