"""Markdown helpers shared by the report's sections (numbers are fractions; tables show them x100)."""

from __future__ import annotations

import math


def pct(x: float) -> str:
    return "nan" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def signed(x: float) -> str:
    return "nan" if x is None or math.isnan(x) else f"{100 * x:+.1f}"


def format_params(n: int) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)


def md_table(header: list[str], rows: list[list[str]], right: int = 0) -> str:
    """GitHub markdown table; columns from index ``right`` on are right-aligned (0: none)."""
    align = [("---:" if right and i >= right else "---") for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def interval(lo: float, hi: float) -> str:
    """``[lo, hi]`` in signed points (x100), or ``[n/a]``."""
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return "[n/a]"
    return f"[{signed(lo)}, {signed(hi)}]"
