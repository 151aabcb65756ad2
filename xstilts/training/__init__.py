"""Training: the Trainer harness (``trainer``), English training stages (``stages``), zero-shot evaluation of every
language in one pass (``evaluation``), multi-task training (``multitask``) and heads / hand-off between phases
(``modeling``)."""
