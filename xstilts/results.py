"""results.json: one file per run, written atomically, with everything needed to trust the number."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import UsageError
from .install import installed_git_state
from .paths import INSTALLED, KIT_ROOT

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
RUN_FILE = "xstilts_run.json"  # the settings of the run an output directory holds (written when it starts)

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


def check_selection(selection, where: str) -> None:
    """Refuse a selection record that selected nothing: a result from an untrained head (``--num_train_epochs
    0``) or from a run that never evaluated English dev must not pass for a trained, selected model."""
    if not isinstance(selection, dict):
        raise UntrainedResultError(f"{where}: no checkpoint selection record")
    if not isinstance(selection.get("global_step"), int) or selection["global_step"] < 1:
        raise UntrainedResultError(f"{where}: training ran {selection.get('global_step')} optimizer steps (check "
                                   f"--num_train_epochs / --max_steps): refusing to record the untrained model")
    if not selection.get("best_checkpoint"):
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
        check_selection(d["selection"], where)


def file_mode() -> int:
    """The mode a plain ``open()`` gives a new file: 0666 less the user's umask (so a group can share results).
    The umask is read from /proc (Linux); setting it to read it back is the fallback (not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())  # mkstemp creates 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


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


def library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "datasets", "tokenizers", "accelerate", "evaluate", "deepspeed",
                "faiss-cpu", "faiss-gpu", "numpy", "seqeval", "sentencepiece", "xstilts"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    from . import __version__

    out["xstilts"] = __version__
    return out


def git_state() -> dict:
    if INSTALLED:  # a non-editable install: no checkout to ask (xstilts/install.py)
        return installed_git_state()

    def run(*args):
        return subprocess.run(["git", *args], cwd=KIT_ROOT, capture_output=True, text=True, timeout=10)

    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = run("status", "--porcelain", "--untracked-files=no")
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return f"{n}x {torch.cuda.get_device_name(0)}"
    return f"cpu ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"


def provenance() -> dict:
    g = git_state()
    return {
        "versions": library_versions(),
        "git_commit": g["commit"],
        "git_dirty": g["dirty"],
        "platform": platform.platform(),
        "device": device_description(),
        "command": [os.path.basename(sys.argv[0])] + sys.argv[1:],
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
