"""`python -m xstilts.plan`: the study grid, its cost and SLURM arrays (the command line of xstilts.study.plan)."""

from .study.plan import main

if __name__ == "__main__":
    raise SystemExit(main())
