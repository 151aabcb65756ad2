"""Sentence(-pair) classification: MNLI, QQP, ANLI+, SST-2 (intermediate); XNLI, PAWS-X (target).

Schemas: ``nyu-mll/glue`` (ClassLabel ``label``), ``facebook/anli`` (splits ``train_r1`` .. ``test_r3``),
``stanfordnlp/snli`` (``label`` -1 = no gold label), ``google/xtreme`` ``XNLI`` (one config, a ``language``
column, string ``gold_label``) and ``PAWS-X.<lang>`` (``label`` a *string* "0"/"1"; no ``id`` column). All of
them are parquet on the Hub (no loading script).
"""

from __future__ import annotations

from . import languages as L
from .types import Concat, Source, Task

NLI_LABELS = ("entailment", "neutral", "contradiction")
NLI_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}
XNLI_COLUMNS = {"text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"}
PAWSX_COLUMNS = {"text_a": "sentence1", "text_b": "sentence2", "label": "label"}
QQP_COLUMNS = {"text_a": "question1", "text_b": "question2", "label": "label"}

MNLI_TRAIN = Source("nyu-mll/glue", "mnli", "train", NLI_COLUMNS)

# ----------------------------------------------------------------------------- intermediate tasks
MNLI = Task(
    name="mnli", phase="intermediate", format="pair_classification",
    description="MultiNLI (English), 3-way NLI",
    metric="accuracy", labels=NLI_LABELS, languages=("en",),
    train=MNLI_TRAIN,
    dev=Source("nyu-mll/glue", "mnli", "validation_matched", NLI_COLUMNS),
)

QQP = Task(
    name="qqp", phase="intermediate", format="pair_classification",
    description="Quora Question Pairs (GLUE), duplicate question detection",
    metric="accuracy", labels=("not_duplicate", "duplicate"), languages=("en",),
    train=Source("nyu-mll/glue", "qqp", "train", QQP_COLUMNS),
    dev=Source("nyu-mll/glue", "qqp", "validation", QQP_COLUMNS),
)

# ANLI+ = ANLI rounds 1-3 + MNLI + SNLI, one shared 3-way NLI head (jiant guides/tasks/task_specific.md: "the
# full ANLI dataset, which is SNLI+MNLI+A1+A2+A3 ... have all tasks point to the same NLI head"). The training
# splits are concatenated (one dataset, so shuffling samples them in proportion to their sizes, the jiant
# recipe's proportional sampling); SNLI rows with label -1 are dropped by the loader.
# Dev (checkpoint selection): the three ANLI dev rounds together (dev_r1+dev_r2+dev_r3, 3,200 pairs). Neither
# the paper nor jiant's notes fix it (jiant evaluates every sub-task on its own validation set); the
# adversarial rounds are the part that ANLI+ adds over MNLI, so their dev sets are the selection metric.
ANLI_ROUNDS = (1, 2, 3)
ANLI_PLUS = Task(
    name="anli_plus", phase="intermediate", format="pair_classification",
    description="ANLI+ = ANLI rounds 1-3 + MNLI + SNLI training sets, one 3-way NLI head; dev = ANLI dev r1-r3",
    metric="accuracy", labels=NLI_LABELS, languages=("en",),
    train=Concat(tuple(Source("facebook/anli", "plain_text", f"train_r{r}", NLI_COLUMNS) for r in ANLI_ROUNDS)
                 + (MNLI_TRAIN, Source("stanfordnlp/snli", "plain_text", "train", NLI_COLUMNS))),
    dev=Concat(tuple(Source("facebook/anli", "plain_text", f"dev_r{r}", NLI_COLUMNS) for r in ANLI_ROUNDS)),
)

SST2 = Task(
    name="sst2", phase="intermediate", format="pair_classification",
    description="SST-2 (GLUE) binary sentiment, single sentence (optional: the paper's first version used it)",
    metric="accuracy", labels=("negative", "positive"), languages=("en",),
    train=Source("nyu-mll/glue", "sst2", "train", {"text_a": "sentence", "label": "label"}),
    dev=Source("nyu-mll/glue", "sst2", "validation", {"text_a": "sentence", "label": "label"}),
)

# ----------------------------------------------------------------------------- target tasks
XNLI = Task(
    name="xnli", phase="target", format="pair_classification", xtreme_name="xnli",
    description="XNLI: train on English MNLI, zero-shot on 15 languages",
    metric="accuracy", labels=NLI_LABELS, languages=L.XNLI,
    train=MNLI_TRAIN,
    dev=Source("google/xtreme", "XNLI", "validation", XNLI_COLUMNS, lang_column="language"),
    test=Source("google/xtreme", "XNLI", "test", XNLI_COLUMNS, lang_column="language"),
)

# Labels are the strings of the Hub's ``label`` column and of the XTREME leaderboard files ("0" = not a
# paraphrase, "1" = paraphrase): predictions are written as these strings, exactly what evaluate.py compares.
PAWSX = Task(
    name="pawsx", phase="target", format="pair_classification", xtreme_name="pawsx",
    description="PAWS-X paraphrase identification: train on English (PAWS-X.en), zero-shot on 7 languages "
                "(XTREME only; XTREME-R dropped it)",
    metric="accuracy", labels=("0", "1"), languages=L.PAWSX,
    train=Source("google/xtreme", "PAWS-X.en", "train", PAWSX_COLUMNS),
    dev=Source("google/xtreme", "PAWS-X.{code}", "validation", PAWSX_COLUMNS),
    test=Source("google/xtreme", "PAWS-X.{code}", "test", PAWSX_COLUMNS),
)

TASKS = (MNLI, XNLI, PAWSX, QQP, ANLI_PLUS, SST2)
