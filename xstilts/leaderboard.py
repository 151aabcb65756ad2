"""`python -m xstilts.leaderboard`: one checkpoint's XTREME / XTREME-R leaderboard folder, scored.

The command line of :mod:`xstilts.study.leaderboard`, kept at its old name.
"""

from .study.leaderboard import main

if __name__ == "__main__":
    raise SystemExit(main())
