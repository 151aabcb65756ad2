"""`python -m xstilts.leaderboard`: one checkpoint's XTREME / XTREME-R leaderboard folder, scored (the command line of xstilts.study.leaderboard)."""

from .study.leaderboard import main

if __name__ == "__main__":
    raise SystemExit(main())
