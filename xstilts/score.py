"""`python -m xstilts.score`: the offline XTREME / XTREME-R leaderboard scorer.

The command line of :mod:`xstilts.scoring.xtreme`, kept at its old name.
"""

from .scoring.xtreme import main

if __name__ == "__main__":
    raise SystemExit(main())
