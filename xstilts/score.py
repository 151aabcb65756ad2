"""`python -m xstilts.score`: the offline XTREME / XTREME-R leaderboard scorer (the command line of xstilts.scoring.xtreme)."""

from .scoring.xtreme import main

if __name__ == "__main__":
    raise SystemExit(main())
