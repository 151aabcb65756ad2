"""Extractive span QA (format ``span_qa``): SQuAD 1.1 / 2.0 (intermediate); XQuAD, MLQA, TyDiQA-GoldP (target).

Data choices (see docs/qa.md):

* XQuAD and MLQA train on SQuAD v1.1 (``rajpurkar/squad`` train), as XTREME does. Their English dev split for
  checkpoint selection is the SQuAD v1.1 validation set (XTREME trains on SQuAD and its scripts evaluate on
  SQuAD dev; note that XQuAD-en is a 1,190-question subset of SQuAD dev, inherited from XTREME).
* TyDiQA-GoldP trains on the English part of ``google/xtreme`` ``tydiqa`` train and evaluates ``tydiqa``
  validation per language. Neither split has a language column: the language is the id's prefix
  (``english-...``, ``arabic-...``; XTREME ``utils_preprocess.py`` splits the same way). ``lang_codes`` maps
  each scorer code to that prefix. The English dev used for selection is the English part of the same
  validation split (TyDi GoldP has no other English dev; XTREME's script predicts on it as well), so the
  English test number of TyDiQA is selected on; the other eight languages are never looked at in training.
* XTREME-R adds Romanian to XQuAD; ``google/xtreme`` has no ``XQuAD.ro``, so it is read from ``google/xquad``
  config ``xquad.ro`` (same fields, ``answers`` struct in text-first order).
"""

from __future__ import annotations

from . import languages as L
from .types import Source, Task

# ``Source.lang_column`` value meaning "the language is the prefix of the id before the first '-'",
# mapped to the kit's code through ``Task.lang_codes`` (see xstilts.formats.span_qa.load).
LANG_FROM_ID_PREFIX = "id"

# Tasks whose questions may have no answer (SQuAD 2.0): null-score prediction and the v2 metric.
VERSION_2_WITH_NEGATIVE = frozenset({"squad_v2"})

QA_COLUMNS = {"id": "id", "context": "context", "question": "question", "answers": "answers", "title": "title"}
QA_COLUMNS_NO_TITLE = {"id": "id", "context": "context", "question": "question", "answers": "answers"}

SQUAD_TRAIN = Source("rajpurkar/squad", "plain_text", "train", QA_COLUMNS)
SQUAD_DEV = Source("rajpurkar/squad", "plain_text", "validation", QA_COLUMNS)

# ----------------------------------------------------------------------------- intermediate tasks
SQUAD_V1 = Task(
    name="squad_v1", phase="intermediate", format="span_qa",
    description="SQuAD 1.1 (English), extractive span QA",
    metric="f1", languages=("en",), train=SQUAD_TRAIN, dev=SQUAD_DEV,
)

SQUAD_V2 = Task(
    name="squad_v2", phase="intermediate", format="span_qa",
    description="SQuAD 2.0 (English), extractive span QA with unanswerable questions (null answer)",
    metric="f1", languages=("en",),
    train=Source("rajpurkar/squad_v2", "squad_v2", "train", QA_COLUMNS),
    dev=Source("rajpurkar/squad_v2", "squad_v2", "validation", QA_COLUMNS),
)

# ----------------------------------------------------------------------------- target tasks
XQUAD = Task(
    name="xquad", phase="target", format="span_qa", xtreme_name="xquad",
    description="XQuAD: train on English SQuAD 1.1, zero-shot on 11 (XTREME) / 12 (XTREME-R: + ro) languages",
    metric="f1", languages=L.XQUAD, languages_xtreme_r=L.XQUAD_XTREME_R,
    train=SQUAD_TRAIN, dev=SQUAD_DEV,
    test=Source("google/xtreme", "XQuAD.{code}", "validation", QA_COLUMNS_NO_TITLE),
    lang_sources={lang: Source("google/xquad", "xquad.{code}", "validation", QA_COLUMNS_NO_TITLE)
                  for lang in L.XQUAD_XTREME_R_ADDED},
)

MLQA = Task(
    name="mlqa", phase="target", format="span_qa", xtreme_name="mlqa",
    description="MLQA: train on English SQuAD 1.1, zero-shot on 7 languages (same-language pairs, test split)",
    metric="f1", languages=L.MLQA,
    train=SQUAD_TRAIN, dev=SQUAD_DEV,
    test=Source("google/xtreme", "MLQA.{code}.{code}", "test", QA_COLUMNS),
)

TYDIQA = Task(
    name="tydiqa", phase="target", format="span_qa", xtreme_name="tydiqa",
    description="TyDiQA-GoldP: train on its English part, zero-shot on 9 languages (validation split)",
    metric="f1", languages=tuple(L.TYDIQA), lang_codes=L.TYDIQA,
    train=Source("google/xtreme", "tydiqa", "train", QA_COLUMNS, lang_column=LANG_FROM_ID_PREFIX),
    dev=Source("google/xtreme", "tydiqa", "validation", QA_COLUMNS, lang_column=LANG_FROM_ID_PREFIX),
    test=Source("google/xtreme", "tydiqa", "validation", QA_COLUMNS, lang_column=LANG_FROM_ID_PREFIX),
)

TASKS = (SQUAD_V1, SQUAD_V2, XQUAD, MLQA, TYDIQA)
