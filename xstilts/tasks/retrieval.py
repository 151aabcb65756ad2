"""Sentence retrieval without fine-tuning (``run_retrieval.py``): Tatoeba and BUCC 2018.

Tatoeba: English <-> 36 (XTREME) / 41 (XTREME-R) languages, nearest-neighbour accuracy. XTREME-R's five extra
languages are not in google/xtreme. Their source is the file pair data/tatoeba/v1/tatoeba.<iso3>-eng.{<iso3>,eng}
of github.com/facebookresearch/LASER (what XTREME's download script fetches). `make data-tatoeba` converts them
into the Hub-mirror layout under the data root (or data/ without one) with google/xtreme's tatoeba fields;
never looked up on the Hub.

BUCC 2018 (de fr ru zh, each against English) is evaluated on the FULL comparable corpora of the original
release (hundreds of thousands of sentences a side, gold parallel pairs hidden among them), not on the
gold-only ``google/xtreme`` ``bucc18.<lang>`` configs, which keep one row per gold pair and so cannot be
mined. ``make data-bucc`` downloads the release archives and converts them into ``<data dir>/local/bucc2018/``
(xstilts.prepare.bucc); the task has no Hub ``Source``. As in XTREME: dev = the BUCC *sample* release (its
gold chooses the mining threshold), test = the BUCC *training* release (scored with that threshold).
Metric: F1 of the mined (source id, English id) pairs (the leaderboard scorer's ``bucc2018``; XTREME only,
XTREME-R dropped BUCC).
"""

from __future__ import annotations

from . import languages as L
from .types import PreparedSource, Source, Task

TATOEBA_COLUMNS = {"source": "source_sentence", "target": "target_sentence"}

TATOEBA_LASER_HUB_ID = "local/tatoeba-laser"
TATOEBA_LASER = PreparedSource(
    TATOEBA_LASER_HUB_ID, "tatoeba.{code}", "test", TATOEBA_COLUMNS,
    about="Tatoeba for XTREME-R's az lt pl uk ro (LASER test sets, local/tatoeba-laser; not in google/xtreme)",
    make_target="data-tatoeba")

BUCC2018_DIR = "local/bucc2018"  # <data dir>/local/bucc2018/<lang>-en.{dev,test}.{<lang>,en,gold} (make data-bucc)

BUCC2018 = Task(
    name="bucc2018", phase="retrieval", format="bitext_mining", xtreme_name="bucc2018",
    description="BUCC 2018 parallel-sentence mining (de fr ru zh -> en), ratio margin, threshold from dev gold",
    metric="f1", languages=L.BUCC2018,
)

TATOEBA = Task(
    name="tatoeba", phase="retrieval", format="retrieval", xtreme_name="tatoeba",
    description="Tatoeba: English <-> 36 (XTREME) / 41 (XTREME-R) languages nearest-neighbour sentence retrieval",
    metric="accuracy", languages=tuple(L.TATOEBA), lang_codes={**L.TATOEBA, **L.TATOEBA_XTREME_R_ADDED},
    test=Source("google/xtreme", "tatoeba.{code}", "validation", TATOEBA_COLUMNS),
    languages_xtreme_r=L.TATOEBA_XTREME_R,
    lang_sources={lang: TATOEBA_LASER for lang in L.TATOEBA_XTREME_R_ADDED},
)

TASKS = (BUCC2018, TATOEBA)
