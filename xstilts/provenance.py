"""What produced a record: library versions, the kit's git state, the device, the command (stored with every
result, phase-2 checkpoint and Trainer checkpoint marker).

The git state of a checkout (or an editable install of one) comes from git. A non-editable install has no git
around it (and asking git from site-packages could find an unrelated repository above it): pip's record of the
install (``direct_url.json``, PEP 610) gives the commit of a ``pip install git+<url>`` install."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys

from . import __version__
from .paths import INSTALLED, KIT_ROOT


def library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "datasets", "tokenizers", "accelerate", "evaluate", "deepspeed",
                "faiss-cpu", "faiss-gpu", "numpy", "seqeval", "sentencepiece", "xstilts"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    out["xstilts"] = __version__
    return out


def installed_git_state() -> dict:
    """{"commit", "dirty"} of a non-editable install: the commit pip built it from, or None when pip installed
    it from a folder or an archive (no commit recorded). A VCS install is built from a clean clone."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution("xstilts").read_text("direct_url.json")
    except PackageNotFoundError:
        text = None
    commit = (json.loads(text).get("vcs_info") or {}).get("commit_id") if text else None
    return {"commit": commit, "dirty": False if commit else None}


def git_state() -> dict:
    if INSTALLED:  # a non-editable install: no checkout to ask
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
