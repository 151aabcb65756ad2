"""`python -m xstilts.report`: the report of a results tree.

The command line of :mod:`xstilts.study.report`, kept at its old name.
"""

from .study.report import main

if __name__ == "__main__":
    raise SystemExit(main())
