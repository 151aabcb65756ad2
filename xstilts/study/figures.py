"""Matplotlib figures without pyplot's global state, written atomically (report and retrieval plots share these)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def new_figure(width: float = 7.5, height: float = 4.8):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # Agg canvas bound to this figure only: no pyplot, no global backend state
    return fig


def save_figure(fig, path: Path, dpi: int = 150) -> None:
    """Render to a temporary PNG in the same directory, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
