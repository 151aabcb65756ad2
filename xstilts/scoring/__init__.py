"""Scoring: the offline port of the XTREME / XTREME-R leaderboard scorer (``xtreme``), its QA metrics (``qa``),
plain metrics for non-XTREME tasks (``metrics``) and the leaderboard-layout prediction files (``predictions``)."""
