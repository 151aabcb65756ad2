"""Where the kit's own files live (resolved from the package, not the working directory)."""

from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = KIT_ROOT / "configs"
PRESETS = CONFIGS / "presets"
KIT_DATA = KIT_ROOT / "data"  # where make targets write prepared data when no DATA_DIR / --data_root is given


def kit_relative(path: str | Path) -> str:
    """``path`` relative to the kit root when it lies inside it (stable across checkouts), else absolute."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(KIT_ROOT))
    except ValueError:
        return str(p)
