"""`python -m xstilts.ud27`: the UD 2.7 test treebanks of XTREME-R's extra UD-POS languages (make data-udpos-ud27).

The command line of :mod:`xstilts.prepare.ud27`, kept at its old name.
"""

from .prepare.ud27 import main

if __name__ == "__main__":
    raise SystemExit(main())
