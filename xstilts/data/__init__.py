"""Reading data: Hub sources and their local mirrors (``hub``), every source kind with the run's data settings
passed in (``sources``), and writing Hub-layout mirrors (``mirror``: converters, fixtures, the synthetic world)."""
