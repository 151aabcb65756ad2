"""Prediction and label files in the XTREME leaderboard layout: <dir>/<task>/test-<lang>.tsv.

Classification: one class name per line; Tatoeba: for each English sentence, the 0-based index of
the retrieved sentence (labels: the gold index). The same folders score with ``python -m xstilts.score``.
"""

from __future__ import annotations

from pathlib import Path

from ..files import atomic_write_text


def leaderboard_file(root: str | Path, task, lang: str, split: str = "test") -> Path:
    prefix = "test" if split == "test" else "dev"
    return Path(root) / task.xtreme_name / f"{prefix}-{lang}.tsv"


def write_lines(root: str | Path, task, lang: str, rows, split: str = "test") -> Path:
    path = leaderboard_file(root, task, lang, split)
    atomic_write_text(path, "".join(f"{r}\n" for r in rows))
    return path


def write_all(roots, task, per_language: dict, split: str = "test") -> None:
    """Write ``{lang: rows}`` under every root in ``roots`` (None entries skipped)."""
    for root in roots:
        if root:
            for lang, rows in per_language.items():
                write_lines(root, task, lang, rows, split)
