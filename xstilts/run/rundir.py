"""The output directory of a run: one run at a time, and nothing of an earlier run taken for the new one.

* **Lock** (``xstilts.lock``): the main process of a run creates it atomically with its record of who holds it
  (pid, host, start time, command; written to a temporary file, then hard-linked to the lock's name: the check
  and the claim are one step, and the lock is never seen empty) and removes it when the
  script ends, however it ends. A second run into the directory is refused naming the holder. A lock left by
  a process of this host that no longer runs (killed, crashed) is stale: the log says so and the new run takes
  it over. A lock of another host is refused (this host cannot tell whether that process still runs); the
  message says how to remove it.
* **Superseding**: what an earlier run computed is never deleted and never left where it could pass for the
  new run's output. ``supersede`` moves it into ``superseded/<UTC time>/`` (``results.json`` and
  ``xstilts_meta.json`` renamed ``*.superseded.json`` there, so neither the report nor a later run finds
  them), with a ``SUPERSEDED.json`` saying when, why and by which command.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..files import atomic_write_json, file_mode
from .layout import (CANDIDATES_DIR, EMBEDDINGS_DIR, LOCK_FILE, META_FILE, PER_LAYER_CSV, PER_LAYER_PNG,
                     PREDICTIONS_DIR, RESULTS_FILE, RUN_FILE, SUPERSEDED_DIR, TRAINER_DIR)

logger = logging.getLogger(__name__)

SUPERSEDED_RECORD = "SUPERSEDED.json"
# What runs write at the top of an output directory (phase 3 and retrieval cells, phase-2 checkpoints). Only
# these names are ever moved: an --output_dir may hold other files of the user's.
OUTPUTS = (RESULTS_FILE, META_FILE, RUN_FILE, PREDICTIONS_DIR, PER_LAYER_CSV, PER_LAYER_PNG, CANDIDATES_DIR,
           "config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer*", "special_tokens_map.json",
           "added_tokens.json", "sentencepiece*.model", "spiece.model", "vocab*", "merges.txt")
# Scratch state of an unfinished run: discarded when a run starts afresh (--overwrite)
SCRATCH = (TRAINER_DIR, EMBEDDINGS_DIR, ".staging-encoder")
_RENAMED = {RESULTS_FILE: "results.superseded.json", META_FILE: "xstilts_meta.superseded.json"}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _command() -> list[str]:
    return [os.path.basename(sys.argv[0])] + sys.argv[1:]


# ----------------------------------------------------------------------------- writability
def ensure_writable(out: Path) -> None:
    """Create ``out`` and make sure files can be created in it; a clear UsageError (exit 2) otherwise.

    Tried, not inferred from permission bits: as root ``os.access`` says yes on a read-only mount."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".xstilts-write-test-{os.getpid()}"
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o666)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"output_dir {str(out)!r} is not writable ({e.strerror or e}): choose another --output_dir "
                         f"or fix its permissions / free space") from None


# ----------------------------------------------------------------------------- the lock
@dataclass
class DirLock:
    path: Path
    holder: dict


_HELD: list[DirLock] = []  # locks this process holds; released by release_all() when the script ends


def held_dirs() -> list[Path]:
    """Output directories this process holds the lock of (the script wrapper's error messages name them)."""
    return [lock.path.parent for lock in _HELD]


def _process_start(pid: int) -> str | None:
    """Start time of a process in clock ticks since boot (Linux /proc), to tell a reused pid from the holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    if started is not None:
        now = _process_start(pid)
        if now is not None and now != started:
            return False  # the pid was reused by another process
    return True


def _holder_record() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(),
            "process_start": _process_start(os.getpid()), "command": _command()}


def _read_holder(path: Path) -> dict | None:
    """The lock's holder record; None if the lock vanished. A lock is written right after its creation, so an
    empty or partial file is re-read for a moment before it is reported as unreadable."""
    for _ in range(20):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            d = json.loads(text)
            if isinstance(d, dict) and "pid" in d and "host" in d:
                return d
        except json.JSONDecodeError:
            pass
        time.sleep(0.1)
    raise UsageError(f"lock file {str(path)!r} is unreadable: if no run is using {str(path.parent)!r}, delete the "
                     f"lock file and re-run")


def _describe(holder: dict) -> str:
    cmd = " ".join(holder.get("command") or [])
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}" + (f": {cmd}" if cmd else "")


def _create(path: Path, record: dict) -> bool:
    """Claim the lock: True if this process now holds it, False if it existed. The record is written and synced to
    a private temporary file first, which is then hard-linked to the lock's name (``link`` fails when the name
    exists: one step, like ``O_EXCL``), so nobody ever reads an empty or half-written lock. Where the filesystem
    has no hard links, the lock is created with ``O_CREAT | O_EXCL`` and written at once (readers re-read an empty
    one for a moment: ``_read_holder``)."""
    text = json.dumps(record, indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    try:
        _write_new(tmp, text)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as e:  # no hard links here (some network and FUSE filesystems)
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            logger.debug("no hard links in %s (%s): creating the lock with O_EXCL", path.parent, e)
    finally:
        tmp.unlink(missing_ok=True)
    try:
        _write_new(path, text)
    except FileExistsError:
        return False
    return True


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` (``O_EXCL``) holding ``text``, synced; on failure (a full disk) nothing is left behind."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _remove_stale(path: Path, holder: dict) -> None:
    """Remove a stale lock (its holder no longer runs). Several processes may find the same stale lock at once:
    each holds an exclusive ``flock`` on the file while it checks that the path still names that very file and
    holder, so exactly one removes it and the others go back to creating a fresh lock (which one wins)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another process is removing it right now
        except OSError as e:  # no flock on this filesystem: the same-file check below still applies
            logger.debug("flock unavailable on %s (%s)", path, e)
        try:
            same_file = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            return
        if same_file and _read_holder(path) == holder:
            os.unlink(path)
    finally:
        os.close(fd)


def acquire(out: Path) -> DirLock:
    """Take the exclusive lock of output directory ``out`` for this process (see the module docstring)."""
    path = out / LOCK_FILE
    record = _holder_record()
    for _ in range(10):
        if _create(path, record):
            lock = DirLock(path, record)
            _HELD.append(lock)
            return lock
        holder = _read_holder(path)
        if holder is None:
            continue  # released meanwhile
        here = socket.gethostname()
        if holder.get("host") != here:
            raise UsageError(
                f"output_dir {str(out)!r} is locked by a run on another host ({_describe(holder)}); this host "
                f"({here}) cannot tell whether it still runs. If you are sure it does not (the job was killed), "
                f"delete {str(path)!r} and re-run")
        pid = holder.get("pid")
        if isinstance(pid, int) and _alive(pid, holder.get("process_start")):
            raise UsageError(f"output_dir {str(out)!r} is in use by another run ({_describe(holder)}); wait for it "
                             f"to finish or use another --output_dir")
        logger.warning("taking over the stale lock %s: its holder (%s) no longer runs (killed or crashed); what it "
                       "left is resumed or redone as usual", path, _describe(holder))
        _remove_stale(path, holder)
    raise UsageError(f"could not lock output_dir {str(out)!r}: other processes keep claiming it")


def release(lock: DirLock) -> None:
    """Remove the lock file if it still is this process's (never another run's)."""
    if lock in _HELD:
        _HELD.remove(lock)
    try:
        holder = json.loads(lock.path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    if holder == lock.holder:
        lock.path.unlink(missing_ok=True)
    else:
        logger.warning("lock %s is no longer this run's (now: %s); left in place", lock.path, _describe(holder))


def release_all() -> None:
    for lock in list(_HELD):
        release(lock)


# ----------------------------------------------------------------------------- settings
def settings_diff(old, new, prefix: str = "") -> list[str]:
    """The settings that differ, as ``key: old -> new`` (nested dicts: ``outer.inner: old -> new``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            name = f"{prefix}{k}"
            if k not in old:
                out.append(f"{name}: (absent) -> {new[k]!r}")
            elif k not in new:
                out.append(f"{name}: {old[k]!r} -> (absent)")
            else:
                out += settings_diff(old[k], new[k], f"{name}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]


def read_settings(path: Path) -> dict | None:
    """A run's settings file (``xstilts_run.json``); None if absent; a UsageError naming the file if corrupt."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        problem = None if isinstance(d, dict) else "not a JSON object"
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problem = str(e)
    if problem is not None:
        raise UsageError(f"{str(path)!r} is corrupted ({problem}); it records the settings of the run in "
                         f"{str(path.parent)!r}, so nothing there can be shown to belong to this run. Pass --overwrite "
                         f"to start it afresh (results there are moved to {SUPERSEDED_DIR}/, not deleted), or use "
                         f"another --output_dir")
    return d


# ----------------------------------------------------------------------------- superseding
def supersede(out: Path, reason: str, names=OUTPUTS) -> Path | None:
    """Move what matches ``names`` in ``out`` into a new ``superseded/<UTC time>/`` folder; returns it (None if
    there was nothing to move). Logged; never deletes."""
    present = []
    for pattern in names:
        for p in sorted(out.glob(pattern)):
            if p not in present and p.name not in (LOCK_FILE, SUPERSEDED_DIR):
                present.append(p)
    if not present:
        return None
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest = out / SUPERSEDED_DIR / stamp
    n = 1
    while dest.exists():
        dest = out / SUPERSEDED_DIR / f"{stamp}-{n}"
        n += 1
    dest.mkdir(parents=True)
    moved = {}
    for p in present:
        target = dest / _RENAMED.get(p.name, p.name)
        os.rename(p, target)
        moved[p.name] = target.name

    atomic_write_json(dest / SUPERSEDED_RECORD, {"superseded_at": _now(), "reason": reason, "by_command": _command(),
                                                 "host": socket.gethostname(), "files": moved})
    logger.warning("%s: moved %s from %s to %s (kept, not deleted: remove it when you no longer need it)", reason,
                   ", ".join(sorted(moved)), out, dest)
    return dest


def discard_scratch(out: Path) -> None:
    """Remove an unfinished run's scratch state (Trainer checkpoints, embedding spill files) for a fresh start."""
    import shutil

    for name in SCRATCH:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
            logger.info("removed %s (scratch state of the earlier run)", p)


_DISK_FULL_TEXT = ("No space left on device", "os error 28", "Disk quota exceeded", "os error 122", "StorageFull")


def is_disk_full(e: BaseException, dirs=()) -> bool:
    """Whether ``e`` comes from a full disk (or quota). Libraries do not all say so: Python raises OSError ENOSPC,
    safetensors names the OS error in its message, ``torch.save`` only says "unexpected pos"; so an error is also
    taken for a full disk when one of ``dirs`` has less than 1 MiB left."""
    import shutil

    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if any(t in str(e) for t in _DISK_FULL_TEXT):
        return True
    for d in dirs:
        try:
            if shutil.disk_usage(d).free < 2 ** 20:
                return True
        except OSError:
            pass
    return False
