"""Registry entries for the synthetic world's tasks (data written by ``python -m xstilts.synthetic.build``).

* ``synth_nli``      intermediate: English 3-way NLI between single clauses (schema of nyu-mll/glue mnli)
* ``synth_pair``     target: paraphrase identification (PAWS-X-like), English train, zero-shot on every
                     synthetic language (validation/test in the google/xtreme XNLI schema, one config
                     with a language column)
* ``synth_tatoeba``  retrieval: parallel sentences, config ``tatoeba.<code>`` per derived language
* ``synth_pos``      target: part-of-speech tagging (schema of google/xtreme udpos), English train, zero-shot on
                     every synthetic language (config ``pos.<code>``); format ``token_tagging``, scored like
                     UD-POS (seqeval F1 as the leaderboard scorer computes it, plus token accuracy)

The language lists are the default catalogue (``world.DEFAULT_LANGUAGES``); a world built with other
languages is registered by setting ``XSTILTS_SYNTH_LANGUAGES=en,lex,...`` (comma list, English first).
"""

from __future__ import annotations

import os

from ..registry import NLI_LABELS, Source, Task, register
from .build import (NLI_CONFIG, NLI_REPO, PAIR_EVAL_CONFIG, PAIR_REPO, PAIR_TRAIN_CONFIG, POS_CONFIG, POS_REPO,
                    TATOEBA_REPO)
from .world import DEFAULT_LANGUAGES, PAIR_LABELS, UPOS

LANGUAGES_ENV = "XSTILTS_SYNTH_LANGUAGES"


def synthetic_languages() -> tuple[str, ...]:
    spec = os.environ.get(LANGUAGES_ENV, "").strip()
    if not spec:
        return DEFAULT_LANGUAGES
    codes = [c.strip() for c in spec.split(",") if c.strip()]
    return tuple(["en"] + [c for c in codes if c != "en"])


SYNTH_LANGS = synthetic_languages()
SYNTH_DERIVED = tuple(c for c in SYNTH_LANGS if c != "en")

_TRAIN_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}
_EVAL_COLUMNS = {"text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"}

register(Task(
    name="synth_nli", phase="intermediate", format="pair_classification",
    description="synthetic English NLI between single clauses (xstilts.synthetic), 3-way, labels from the meaning",
    metric="accuracy", labels=NLI_LABELS, languages=("en",),
    train=Source(NLI_REPO, NLI_CONFIG, "train", _TRAIN_COLUMNS),
    dev=Source(NLI_REPO, NLI_CONFIG, "validation_matched", _TRAIN_COLUMNS),
))

register(Task(
    name="synth_pair", phase="target", format="pair_classification",
    description="synthetic paraphrase identification: train on English, zero-shot on every synthetic language",
    metric="accuracy", labels=PAIR_LABELS, languages=SYNTH_LANGS,
    train=Source(PAIR_REPO, PAIR_TRAIN_CONFIG, "train", _TRAIN_COLUMNS),
    dev=Source(PAIR_REPO, PAIR_EVAL_CONFIG, "validation", _EVAL_COLUMNS, lang_column="language"),
    test=Source(PAIR_REPO, PAIR_EVAL_CONFIG, "test", _EVAL_COLUMNS, lang_column="language"),
))

register(Task(
    name="synth_tatoeba", phase="retrieval", format="retrieval",
    description="synthetic parallel-sentence retrieval: English <-> every derived synthetic language",
    metric="accuracy", languages=SYNTH_DERIVED,
    test=Source(TATOEBA_REPO, "tatoeba.{code}", "validation",
                {"source": "source_sentence", "target": "target_sentence"}),
))

_POS_COLUMNS = {"tokens": "tokens", "tags": "pos_tags"}

register(Task(
    name="synth_pos", phase="target", format="token_tagging",
    description="synthetic part-of-speech tagging: train on English, zero-shot on every synthetic language",
    metric="f1", labels=UPOS, languages=SYNTH_LANGS,
    train=Source(POS_REPO, POS_CONFIG.format(code="en"), "train", _POS_COLUMNS),
    dev=Source(POS_REPO, POS_CONFIG, "validation", _POS_COLUMNS),
    test=Source(POS_REPO, POS_CONFIG, "test", _POS_COLUMNS),
))
