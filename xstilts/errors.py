"""Usage errors: bad input is reported clearly, with exit code 2, before any expensive work."""

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


def exits_on_usage_error(main):
    """Script entry points: UsageError -> 'error: ...', exit 2; Preempted -> exit 143 (checkpoint saved)."""

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

    return wrapper
