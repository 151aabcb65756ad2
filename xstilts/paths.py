"""Where the kit's own files live (resolved from the package, not the working directory).

In a checkout, or an editable install of one, KIT_ROOT is the repository root (configs/, ds_configs/, data/,
models/). A non-editable install (`pip install <path>` or `pip install git+<url>`) carries copies of configs/ and
ds_configs/ inside the package, under xstilts/_kit/ (pyproject.toml), and KIT_ROOT is that folder; the make
targets, data/ and models/ need a checkout.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
INSTALLED = (PACKAGE_DIR / "_kit").is_dir()  # only a built wheel has it; a checkout never does
KIT_ROOT = PACKAGE_DIR / "_kit" if INSTALLED else PACKAGE_DIR.parent
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
