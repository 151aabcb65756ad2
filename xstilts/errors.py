"""How scripts end: bad input is reported clearly, with exit code 2, before any expensive work; a stopped run
(SIGTERM, Ctrl-C, a full disk) ends with one line saying where it can resume, never with a traceback.

A leaf: the standard library only (every part of the kit raises these)."""

from __future__ import annotations

import functools
import sys
from typing import Iterable


class UsageError(Exception):
    """A user-facing error about bad input (names the bad value and the valid choices)."""


class Preempted(Exception):
    """Training stopped on SIGTERM after saving a checkpoint; re-running the same command resumes."""


PREEMPTED_EXIT_CODE = 143  # 128 + SIGTERM, what schedulers expect


class Diverged(Exception):
    """A phase-2 run whose training loss became non-finite before any checkpoint was selected: there is no
    encoder to save (its record is written; xstilts.training.divergence). Exit code 3: make calibrate counts
    it as a diverged candidate, make grid stops there."""


DIVERGED_EXIT_CODE = 3


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


def exits_on_usage_error(main):
    """Command-line entry points: UsageError -> 'error: ...', exit 2; Preempted (SIGTERM during training) -> exit
    143 (checkpoint saved); Ctrl-C -> one line, exit 130. No traceback for any of them. The phase scripts add what
    a run holds (its output directory's lock, where it can resume): ``xstilts.run.start.script_main``."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UsageError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except Preempted as e:
            print(f"preempted: {e}", file=sys.stderr)
            sys.exit(PREEMPTED_EXIT_CODE)
        except Diverged as e:
            print(f"diverged: {e}", file=sys.stderr)
            sys.exit(DIVERGED_EXIT_CODE)
        except KeyboardInterrupt:
            print("interrupted (Ctrl-C)", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT_CODE)

    return wrapper
