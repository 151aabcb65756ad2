"""The learning rate of a run and where it came from: preset < calibration overlay < command line.

A calibration overlay is the JSON file ``make calibrate`` writes (``xstilts.study.calibrate``; docs/calibration.md):
the learning rate chosen on English dev for each (model, arm, task), with the provenance of the choice. A run
given ``--calibration FILE`` (``make grid CALIBRATION=FILE``) takes its rate from it:

    phase 2        ``phase2.<model>.<intermediate>``          (run_intermediate.py; a mix: its name, e.g. all)
    phase 3        ``target.<model>.<arm>.<task>``            (run_target.py; arm = none or the intermediate task
                                                             of the --intermediate_checkpoint)

``--learning_rate`` on the command line still wins. An overlay without an entry for the run is refused
(``--calibration_missing refuse``, the default: a study must not mix calibrated and uncalibrated arms unawares);
``--calibration_missing preset`` takes the preset's rate instead and records that the overlay had none.

Every trained result and phase-2 checkpoint records ``hyperparameters.learning_rate_source``:
``{"kind": "preset" | "calibration" | "command_line", "file": <preset or overlay path>, "calibration": {...}}``
(the overlay's grid, metric, seeds, schedule, date, commit and the entry's candidates when kind is
calibration). The source is provenance, not identity: a run's settings fingerprint holds the rate, not the
source.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from ..errors import UsageError, choices_error
from ..files import sha256_file
from ..paths import PRESETS, kit_relative

logger = logging.getLogger(__name__)

OVERLAY_FORMAT = "xstilts-calibration/1"
MISSING_CHOICES = ("refuse", "preset")
PHASE2, TARGET = "phase2", "target"  # the overlay's two tables


def read_overlay(path: str | Path) -> dict:
    """The overlay at ``path``, checked (a UsageError naming the file otherwise)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"calibration overlay {str(p)!r} does not exist (write one with `make calibrate`)") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"calibration overlay {str(p)!r} is not readable JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != OVERLAY_FORMAT:
        raise UsageError(f"{p} is not a calibration overlay (expected \"format\": \"{OVERLAY_FORMAT}\", written by "
                         f"`make calibrate`)")
    for table in (PHASE2, TARGET):
        if not isinstance(data.get(table), dict):
            raise UsageError(f"calibration overlay {p}: no {table!r} table")
    return data


def model_key(data: dict, name: str, path_or_id: str | None = None) -> str | None:
    """The overlay's name for a run's model: its registry / Make name, else the model whose recorded path is the
    run's (a MODEL_DIR_<name> mapping files results under a name that is not the folder's)."""
    models = data.get("models") or {}
    if name in models:
        return name
    if path_or_id:
        want = os.path.realpath(path_or_id) if os.path.exists(path_or_id) else path_or_id
        for key, m in models.items():
            p = m.get("path_or_id") or ""
            if (os.path.realpath(p) if os.path.exists(p) else p) == want:
                return key
    return None


def lookup(data: dict, phase: str, model: str | None, task: str, arm: str | None = None) -> dict | None:
    """The overlay's entry for one run (None when it has none, or chose no rate for it)."""
    if model is None:
        return None
    table = (data.get(phase) or {}).get(model) or {}
    if phase == TARGET:
        table = table.get(arm) or {}
    entry = table.get(task)
    if not isinstance(entry, dict) or entry.get("learning_rate") is None:
        return None
    rate = entry["learning_rate"]
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not math.isfinite(rate) or rate <= 0:
        raise UsageError(f"calibration overlay: {phase}.{model}{'.' + arm if arm else ''}.{task}.learning_rate "
                         f"{rate!r} is not a learning rate > 0")
    return entry


def entry_name(phase: str, model: str, task: str, arm: str | None = None) -> str:
    return ".".join([phase, model, *([arm] if phase == TARGET else []), task])


def calibration_record(data: dict, path: str, phase: str, model: str, task: str, arm: str | None,
                       entry: dict) -> dict:
    """What a result records of the overlay entry it used."""
    return {
        "entry": entry_name(phase, model, task, arm),
        "created": data.get("created"),
        "commit": (data.get("provenance") or {}).get("git_commit"),
        "sha256": sha256_file(path),
        "metric": entry.get("metric"),
        "selection": data.get("selection"),
        "seeds": data.get("seeds"),
        "schedule": data.get("schedule"),
        "grid": [c.get("learning_rate") for c in entry.get("candidates") or []],
        "candidates": [{"learning_rate": c.get("learning_rate"), "mean": c.get("mean"),
                        "diverged_seeds": c.get("diverged_seeds")} for c in entry.get("candidates") or []],
        "init": entry.get("init"),
    }


def resolve_learning_rate(training_args, kit_args, given: set[str], preset: dict, *, phase: str, model_name: str,
                          path_or_id: str, task: str, arm: str | None = None) -> dict:
    """Apply the precedence preset < overlay < command line to ``training_args.learning_rate`` and return the
    ``learning_rate_source`` record. Called before any expensive work: a missing entry is a UsageError then."""
    preset_file = kit_relative(PRESETS / f"{preset['name']}.json")
    from_preset = "learning_rate" in (preset.get("values") or {})
    path = getattr(kit_args, "calibration", None)
    missing = getattr(kit_args, "calibration_missing", "refuse")
    if missing not in MISSING_CHOICES:
        raise choices_error("--calibration_missing", missing, list(MISSING_CHOICES))
    if "learning_rate" in given:
        source = {"kind": "command_line", "file": None}
        if path:
            source["note"] = f"--learning_rate on the command line overrides the calibration overlay {path}"
        return source
    source = {"kind": "preset", "file": preset_file}
    if not from_preset:
        source["note"] = "the preset sets no learning_rate: the transformers default"
    if not path:
        return source
    data = read_overlay(path)
    key = model_key(data, model_name, path_or_id)
    entry = lookup(data, phase, key, task, arm)
    name = entry_name(phase, key or model_name, task, arm)
    if entry is None:
        why = (f"calibration overlay {path} has no learning rate for {name}"
               + (f" (its entry: {_entry_status(data, phase, key, task, arm)})" if key else
                  f" (it calibrated the models {', '.join(sorted(data.get('models') or {}))})"))
        if missing == "refuse":
            raise UsageError(f"{why}. Calibrate it (`make calibrate`), or pass --calibration_missing preset "
                             f"(make: CALIBRATION_MISSING=preset) to use the preset's rate for it, recorded as such")
        logger.warning("%s: using the preset's learning rate %s (--calibration_missing preset)", why,
                       training_args.learning_rate)
        source["calibration_missing"] = {"file": str(path), "entry": name, "note": why}
        return source
    training_args.learning_rate = float(entry["learning_rate"])
    logger.info("learning rate %s from the calibration overlay %s (%s)", entry["learning_rate"], path, name)
    return {"kind": "calibration", "file": str(path),
            "calibration": calibration_record(data, str(path), phase, key, task, arm, entry)}


def _entry_status(data: dict, phase: str, model: str, task: str, arm: str | None) -> str:
    table = (data.get(phase) or {}).get(model) or {}
    if phase == TARGET:
        table = table.get(arm) or {}
    entry = table.get(task)
    if entry is None:
        return "absent"
    return entry.get("status") or "no rate chosen"
