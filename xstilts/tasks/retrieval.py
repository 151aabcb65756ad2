"""Sentence retrieval without fine-tuning (``run_retrieval.py``): Tatoeba and BUCC 2018.

Tatoeba: English <-> 36 (XTREME) / 41 (XTREME-R) languages, nearest-neighbour accuracy. XTREME-R's five extra
languages are not in google/xtreme. Their source is the file pair data/tatoeba/v1/tatoeba.<iso3>-eng.{<iso3>,eng}
of github.com/facebookresearch/LASER (what XTREME's download script fetches). `make data-tatoeba` converts them
into the Hub-mirror layout under the data root (or data/ without one) with google/xtreme's tatoeba fields;
never looked up on the Hub.

Two Tatoeba tasks, one per benchmark protocol (the same data and scoring, another encoder):

* ``tatoeba``: the encoder as given (pretrained, or the phase-2 checkpoint), XTREME's protocol
  (``scripts/run_tatoeba.sh`` at 5d7e462 embeds the raw model);
* ``tatoeba_squad``: XTREME-R's protocol. google-research/xtreme ``scripts/run_tatoeba.sh@838c13b:44-45`` overrides
  the model with ``/mnt/disk-1/models/squad/xlm-roberta-large_LR3e-5_EPOCH2.0_maxlen384_batchsize2_gradacc16``, an
  XLM-R large fine-tuned on SQuAD v1.1 as extractive QA (the directory name is ``train_qa.sh@838c13b:41``'s
  ``${MODEL}_LR${LR}_EPOCH${NUM_EPOCHS}_maxlen${MAXL}_batchsize${BATCH_SIZE}_gradacc${GRAD_ACC}``); the XTREME-R
  paper: "we move away from zero-shot retrieval and fine-tune models on SQuAD v1.1" (xtreme issue #97). Here the
  encoder is the recipe ``tatoeba_squad`` of the preset (``encoder_recipes``) applied to the cell's encoder: the
  pretrained model for ``none``, else the phase-2 checkpoint (``<ckpts>/<model>/<intermediate>.tatoeba_squad``,
  ``xstilts.run.layout.recipe_checkpoint_dir``). Both write the leaderboard folder ``tatoeba``; XTREME-R's
  membership (``benchmarks.py``) names ``tatoeba_squad``, XTREME's ``tatoeba``.

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

TATOEBA_SQUAD_RECIPE = "tatoeba_squad"  # the encoder recipe (a preset's encoder_recipes.<name>) it embeds with

TATOEBA_SQUAD = Task(
    name="tatoeba_squad", phase="retrieval", format="retrieval", xtreme_name="tatoeba",
    description="Tatoeba as XTREME-R evaluates it: 41 languages, embedded with the encoder first fine-tuned on "
                "SQuAD v1.1 (extractive QA, the preset's encoder recipe tatoeba_squad)",
    metric="accuracy", languages=L.TATOEBA_XTREME_R, lang_codes={**L.TATOEBA, **L.TATOEBA_XTREME_R_ADDED},
    test=TATOEBA.test,
    lang_sources={lang: TATOEBA_LASER for lang in L.TATOEBA_XTREME_R_ADDED},
    encoder_recipe=TATOEBA_SQUAD_RECIPE,
)

TASKS = (BUCC2018, TATOEBA, TATOEBA_SQUAD)
