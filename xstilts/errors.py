"""How scripts end: bad input is reported clearly, with exit code 2, before any expensive work; a stopped run
(SIGTERM, Ctrl-C, a full disk) ends with one line saying where it can resume, never with a traceback."""

from __future__ import annotations

import functools
import sys
from typing import Iterable


class UsageError(Exception):
    """A user-facing error about bad input (names the bad value and the valid choices)."""


class Preempted(Exception):
    """Training stopped on SIGTERM after saving a checkpoint; re-running the same command resumes."""


PREEMPTED_EXIT_CODE = 143  # 128 + SIGTERM, what schedulers expect


def choices_error(what: str, value, valid: Iterable, hint: str = "") -> UsageError:
    valid = list(valid)
    shown = ", ".join(str(v) for v in valid[:60])
    if len(valid) > 60:
        shown += f", ... ({len(valid)} in all)"
    msg = f"unknown {what} {value!r}; valid choices: {shown}"
    if hint:
        msg += f". {hint}"
    return UsageError(msg)


INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, what shells report for Ctrl-C


def _checkpoint_note() -> str:
    """Where the run that was stopped can resume from (the latest complete checkpoint of its output directory)."""
    from .rundir import held_dirs
    from .training import last_checkpoint

    ckpts = [c for c in (last_checkpoint(d) for d in held_dirs()) if c]
    if ckpts:
        return f"latest complete checkpoint: {', '.join(ckpts)}; re-run the same command to resume from it"
    dirs = ", ".join(str(d) for d in held_dirs())
    return f"no checkpoint saved yet in {dirs}; re-running starts the run over" if dirs else "stopped"


def exits_on_usage_error(main):
    """Script entry points. UsageError -> 'error: ...', exit 2; Preempted (SIGTERM) -> exit 143 (checkpoint
    saved); Ctrl-C -> one line with the checkpoint to resume from, exit 130; a full disk -> one line naming the
    directory, exit 2. No traceback for any of them. The output directory's lock is released however main ends."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        from .rundir import held_dirs, is_disk_full, release_all

        try:
            return main(*args, **kwargs)
        except UsageError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except Preempted as e:
            print(f"preempted: {e}", file=sys.stderr)
            sys.exit(PREEMPTED_EXIT_CODE)
        except KeyboardInterrupt:
            print(f"interrupted (Ctrl-C): {_checkpoint_note()}", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT_CODE)
        except Exception as e:
            if not is_disk_full(e, held_dirs()):
                raise
            where = getattr(e, "filename", None) or ", ".join(str(d) for d in held_dirs()) or "the output directory"
            detail = " ".join(str(e).split())
            print(f"error: no space left on the device while writing {where} ({detail}): what was being written is "
                  f"incomplete (a checkpoint without its completion marker is skipped on resume). Free space and "
                  f"re-run the same command; {_checkpoint_note()}", file=sys.stderr)
            sys.exit(2)
        finally:
            release_all()

    return wrapper
