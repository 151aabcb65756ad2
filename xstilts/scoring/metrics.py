"""Metrics as plain functions (offline; no evaluate.load from the Hub)."""

from __future__ import annotations

import numpy as np


def accuracy(predictions, labels) -> float:
    """Fraction of exact matches, over examples with a gold label (labels < 0 are ignored)."""
    p = np.asarray(predictions)
    y = np.asarray(labels)
    keep = y >= 0
    if keep.sum() == 0:
        return float("nan")
    return float((p[keep] == y[keep]).mean())
