"""`python -m xstilts.mewslix_data`: the Mewsli-X data (make data-mewslix) (the command line of xstilts.prepare.mewslix)."""

from .prepare.mewslix import main

if __name__ == "__main__":
    raise SystemExit(main())
