"""`python -m xstilts.lareqa_data`: the LAReQA data (make data-lareqa).

The command line of :mod:`xstilts.prepare.lareqa`, kept at its old name.
"""

from .prepare.lareqa import main

if __name__ == "__main__":
    raise SystemExit(main())
