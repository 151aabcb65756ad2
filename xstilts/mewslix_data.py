"""`python -m xstilts.mewslix_data`: the Mewsli-X data (make data-mewslix).

The command line of :mod:`xstilts.prepare.mewslix`, kept at its old name.
"""

from .prepare.mewslix import main

if __name__ == "__main__":
    raise SystemExit(main())
