"""One home for a run: arguments, presets, DeepSpeed, the results path scheme, the start of a run and its
result record. ``run_intermediate.py``, ``run_target.py``, ``run_retrieval.py`` and multi-task training all
start a run through this package."""
