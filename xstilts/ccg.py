"""`python -m xstilts.ccg`: CCGbank AUTO files to the kit's supertag format, and its check (the command line of xstilts.prepare.ccg)."""

from .prepare.ccg import main

if __name__ == "__main__":
    raise SystemExit(main())
