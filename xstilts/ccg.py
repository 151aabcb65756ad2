"""`python -m xstilts.ccg`: CCGbank AUTO files to the kit's supertag format, and its check.

The command line of :mod:`xstilts.prepare.ccg`, kept at its old name.
"""

from .prepare.ccg import main

if __name__ == "__main__":
    raise SystemExit(main())
