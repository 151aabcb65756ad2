"""Prediction files in the XTREME leaderboard layout: <dir>/test-<lang>.tsv (one label per line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .results import atomic_write_text


def write_classification_predictions(out_dir: Path, task, split: str, languages, langs: np.ndarray,
                                     preds: np.ndarray) -> Path:
    """Class names, one per line, in the dataset's row order for each language."""
    out_dir = Path(out_dir)
    prefix = "test" if split == "test" else "dev"
    for lang in languages:
        rows = preds[langs == lang]
        atomic_write_text(out_dir / f"{prefix}-{lang}.tsv", "".join(f"{task.labels[int(p)]}\n" for p in rows))
    return out_dir
