"""XTREME-R's dual-encoder retrieval tasks: LAReQA and Mewsli-X (format ``dual_encoder``).

Neither dataset is on the Hugging Face Hub in a usable form, so both read a local-only repo that a make target
prepares from the public release (the ``--data_root`` mirror when it is given, as in the tests, else the kit's
``data/``):

* ``lareqa``: ``make data-lareqa`` -> ``local/lareqa`` (``xstilts.prepare.lareqa``): SQuAD v1.1 train/dev and
  XQuAD-R from the LAReQA release;
* ``mewslix``: ``make data-mewslix MEWSLIX_DIR=...`` -> ``local/mewslix`` (``xstilts.prepare.mewslix``).

Checkpoint rule: the preset's ``selection`` (``xstilts.run.protocol``; the result's ``protocol.selection``). The
``xtreme`` preset takes the final model for both (XTREME-R: Mewsli-X's final model; LAReQA's hand-picked
checkpoint-10000, recorded as a deviation); ``best_dev`` selects on the English-dev mAP@20 described below.
"""

from __future__ import annotations

from . import languages as L
from .types import ReleaseSource, Task

LAREQA_HUB_ID, LAREQA_MAKE_TARGET = "local/lareqa", "data-lareqa"
MEWSLIX_HUB_ID, MEWSLIX_MAKE_TARGET = "local/mewslix", "data-mewslix"


LAREQA_COLUMNS = {c: c for c in ("id", "question", "context_id", "context", "sentences", "answer_sentence")}
LAREQA_ABOUT = "LAReQA data (SQuAD v1.1 + XQuAD-R from the LAReQA release, local/lareqa)"


def _lareqa(config: str, split: str) -> ReleaseSource:
    return ReleaseSource(LAREQA_HUB_ID, config, split, LAREQA_COLUMNS, about=LAREQA_ABOUT,
                         make_target=LAREQA_MAKE_TARGET)


LAREQA = Task(
    name="lareqa", phase="target", format="dual_encoder", xtreme_name="lareqa",
    description="LAReQA: dual encoder trained on SQuAD v1.1 (question -> answer sentence in its paragraph), "
                "language-agnostic answer retrieval on XQuAD-R (11 languages pooled), mAP@20",
    metric="map@20", languages=L.XQUAD_R,
    train=_lareqa("squad", "train"),
    dev=_lareqa("squad", "validation"),
    test=_lareqa("xquad_r.{code}", "test"),
    format_options={
        "data": "lareqa",
        # BERT's pooler: google-research/xtreme third_party/bert.py@838c13b:19-21,48-66 (outputs[1])
        "pooling": "pooler", "logit_scale": "100", "query_max_length": "96",
        "softmax_group": "4",  # train_lareqa.sh: 4 pairs per GPU (x 4 accumulation)
        "selection": "the preset's rule (protocol.selection); English dev for best_dev: mAP@20 of the SQuAD v1.1 "
                     "dev questions over their paragraphs' sentences",
    },
)

MEWSLIX_ABOUT = "Mewsli-X data (local/mewslix, converted from the Mewsli-X release)"
MEWSLIX_PAIR_COLUMNS = {c: c for c in ("example_id", "mention", "entity_id", "entity_description")}
MEWSLIX_MENTION_COLUMNS = {c: c for c in ("example_id", "mention", "entity_id")}


def _mewslix(config: str, split: str, columns, lang_column=None) -> ReleaseSource:
    return ReleaseSource(MEWSLIX_HUB_ID, config, split, columns, lang_column, about=MEWSLIX_ABOUT,
                         make_target=MEWSLIX_MAKE_TARGET)


MEWSLIX = Task(
    name="mewslix", phase="target", format="dual_encoder", xtreme_name="mewslix",
    description="Mewsli-X: dual encoder trained on English Wikipedia mention-entity pairs, entity retrieval "
                "(FAISS, top 20) among the candidate entity descriptions for WikiNews mentions in 11 languages, "
                "mAP@20 as the XTREME-R scorer computes it (MRR@20)",
    metric="map@20", languages=L.MEWSLIX,
    train=_mewslix("wikipedia_pairs", "train", MEWSLIX_PAIR_COLUMNS),
    dev=_mewslix("wikipedia_pairs", "validation", MEWSLIX_PAIR_COLUMNS),
    test=_mewslix("wikinews_mentions", "test", MEWSLIX_MENTION_COLUMNS, lang_column="lang"),
    format_options={
        "data": "mewslix",
        # BERT's pooler: third_party/bert.py@838c13b, the model of run_retrieval_el.py:58-62
        "pooling": "pooler", "logit_scale": "100", "query_max_length": "64",
        "softmax_group": "8",  # train_mewslix.sh (XLM-R): 8 pairs per GPU (x 4 accumulation)
        "candidates": "candidate_set_entities/train",
        "selection": "the preset's rule (protocol.selection); English dev for best_dev: mAP@20 of the "
                     "wikipedia_pairs dev mentions over the dev pairs' entities",
    },
)

TASKS = (LAREQA, MEWSLIX)
