"""The study on top of the runs: the grid as data and its cost (``plan``), SLURM arrays (``slurm``), the report
(``report``, ``published``, ``figures``) and one checkpoint's leaderboard folder (``leaderboard``)."""
