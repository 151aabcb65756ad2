"""`python -m xstilts.report`: the report of a results tree (the command line of xstilts.study.report)."""

from .study.report import main

if __name__ == "__main__":
    raise SystemExit(main())
