"""`python -m xstilts.lareqa_data`: the LAReQA data (make data-lareqa) (the command line of xstilts.prepare.lareqa)."""

from .prepare.lareqa import main

if __name__ == "__main__":
    raise SystemExit(main())
