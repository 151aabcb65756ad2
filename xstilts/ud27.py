"""`python -m xstilts.ud27`: the UD 2.7 test treebanks of XTREME-R's extra UD-POS languages (make data-udpos-ud27) (the command line of xstilts.prepare.ud27)."""

from .prepare.ud27 import main

if __name__ == "__main__":
    raise SystemExit(main())
