"""`python -m xstilts.bucc_data`: the BUCC 2018 release archives to the kit's layout (make data-bucc).

The command line of :mod:`xstilts.prepare.bucc`, kept at its old name.
"""

from .prepare.bucc import main

if __name__ == "__main__":
    raise SystemExit(main())
