"""`python -m xstilts.plan`: the study grid, its cost and SLURM arrays.

The command line of :mod:`xstilts.study.plan`, kept at its old name.
"""

from .study.plan import main

if __name__ == "__main__":
    raise SystemExit(main())
