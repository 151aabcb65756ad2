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

from .install import installed_git_state
from .paths import INSTALLED, KIT_ROOT

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"

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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
    except json.JSONDecodeError as e:
        raise ResultsSchemaError(f"{path}: not valid JSON ({e})") from e
    validate(d, str(path))
    return d


def is_finished(out_dir: str | Path) -> bool:
    p = Path(out_dir) / RESULTS_FILE
    if not p.exists():
        return False
    try:
        read_results(p)
        return True
    except ResultsSchemaError:
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
