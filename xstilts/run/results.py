"""results.json: one file per run, written atomically, with everything needed to trust the number (its schema,
validation, reading and writing); what produced it is :mod:`xstilts.provenance`."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UsageError
from ..files import atomic_write_json
from .layout import RESULTS_FILE, RUN_FILE

SCHEMA_VERSION = 1

REQUIRED = {
    "schema_version": int,
    "kind": str,  # "target" | "retrieval" | "intermediate"
    "model": dict,
    "target_task": (str, type(None)),
    "intermediate_task": (str, type(None)),
    "seed": int,
    "metric": str,
    "per_language": dict,
    "average": dict,
    "hyperparameters": dict,
    "provenance": dict,
    "timing": dict,
}


class ResultsSchemaError(ValueError):
    pass


class UntrainedResultError(ResultsSchemaError, UsageError):
    """A result (or phase-2 checkpoint) whose checkpoint selection is empty: zero training steps or no English
    dev evaluation. Never written, never read as a result (exit 2 in the scripts)."""


def check_selection(selection, where: str, *, unselected_ok: bool = False) -> None:
    """Refuse a selection record that selected nothing: a result from an untrained head (``--num_train_epochs
    0``), from a ``best_dev`` run that never evaluated English dev, or from a ``step:N`` run that stopped elsewhere
    must not pass for a trained, selected model. (``final`` and ``step:N`` select no checkpoint by design:
    ``xstilts.training.selection``.) ``unselected_ok``: the record of a ``best_dev`` run whose loss became
    non-finite before any checkpoint was selected (``diverged_unselected``): it trained, selected nothing and says
    so, with null scores."""
    if not isinstance(selection, dict):
        raise UntrainedResultError(f"{where}: no checkpoint selection record")
    if not isinstance(selection.get("global_step"), int) or selection["global_step"] < 1:
        raise UntrainedResultError(f"{where}: training ran {selection.get('global_step')} optimizer steps (check "
                                   f"--num_train_epochs / --max_steps): refusing to record the untrained model")
    rule = selection.get("rule", "best_dev")
    if rule == "final":
        return
    if isinstance(rule, str) and rule.startswith("step:"):
        if rule != f"step:{selection['global_step']}" and not unselected_ok:
            raise UntrainedResultError(f"{where}: selection {rule} but the model is that of step "
                                       f"{selection['global_step']}: refusing to record another step's model")
        return
    if not selection.get("best_checkpoint") and not unselected_ok:
        raise UntrainedResultError(
            f"{where}: no checkpoint was selected on English dev after {selection['global_step']} steps (no "
            f"evaluation ran: --eval_steps_or_epoch larger than the run?): refusing to record an unselected model")


def validate(d: dict, where: str = "results") -> None:
    """Raise ResultsSchemaError naming the file and field if ``d`` is not a valid result."""
    if not isinstance(d, dict):
        raise ResultsSchemaError(f"{where}: not a JSON object")
    for key, typ in REQUIRED.items():
        if key not in d:
            raise ResultsSchemaError(f"{where}: missing field {key!r}")
        if not isinstance(d[key], typ):
            raise ResultsSchemaError(f"{where}: field {key!r} has type {type(d[key]).__name__}")
    if d["schema_version"] != SCHEMA_VERSION:
        raise ResultsSchemaError(f"{where}: schema_version {d['schema_version']} (this kit reads {SCHEMA_VERSION})")
    for k in ("name", "path_or_id", "n_params"):
        if k not in d["model"]:
            raise ResultsSchemaError(f"{where}: model.{k} missing")
    metric = d["metric"]
    if metric not in d["average"]:
        raise ResultsSchemaError(f"{where}: average lacks the task metric {metric!r}")
    for lang, m in d["per_language"].items():
        if not isinstance(m, dict) or metric not in m:
            raise ResultsSchemaError(f"{where}: per_language[{lang!r}] lacks {metric!r}")
    if "selection" in d:
        check_selection(d["selection"], where, unselected_ok=diverged_unselected(d))


def diverged_unselected(d: dict) -> bool:
    """A record of a run whose training loss became non-finite (xstilts.training.divergence) before any checkpoint
    was selected: its scores are null, and it is kept as the evidence of the divergence."""
    div = d.get("divergence")
    return bool(isinstance(div, dict) and div.get("diverged") and div.get("reason") == "non_finite_loss"
                and not (d.get("selection") or {}).get("best_checkpoint"))


def write_results(path: str | Path, d: dict) -> None:
    validate(d, str(path))
    atomic_write_json(path, d)


def read_results(path: str | Path) -> dict:
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsSchemaError(f"{path}: not valid JSON ({e})") from e
    validate(d, str(path))
    return d


def is_finished(out_dir: str | Path, settings: dict | None = None) -> bool:
    """Whether ``out_dir`` holds the finished result of the run with ``settings`` (default: the settings file of
    the directory): a valid results.json that records exactly those settings. A result of other settings, or one
    that records none, is never taken for the run's."""
    out = Path(out_dir)
    if settings is None:
        try:
            settings = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
    try:
        return read_results(out / RESULTS_FILE).get("run_settings") == settings
    except (OSError, ResultsSchemaError):
        return False
