"""Where the kit's own files live (resolved from the package, not the working directory)."""

from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = KIT_ROOT / "configs"
PRESETS = CONFIGS / "presets"
