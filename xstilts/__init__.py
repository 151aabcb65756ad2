"""xstilts: English intermediate-task training (X-STILTs) x model size, on XTREME / XTREME-R.

The logic lives here once; the top-level ``run_*.py`` scripts are thin wrappers.
"""

__version__ = "0.1.0"
