"""Machine-translated training data: the translated intermediate tasks and the translate-train data of target tasks.

Intermediate tasks (phase 2; each ``variant_of`` its English task: trained with that task's preset entry, compared
with it in the report's arms section). The English dev split of the English task selects the checkpoint:

``mnli_tt``       MultiNLI train machine-translated into the 14 non-English XNLI languages (no English)
``mnli_tta``      English MultiNLI train + those 14 translations (translate-train-all)
``squad_v1_tt``   SQuAD v1.1 train machine-translated into XQuAD's 10 non-English languages (no English)
``squad_v1_tta``  English SQuAD v1.1 train + those 10 translations

Target tasks with translations (``run_target.py --train_languages tt|tta|<list>``: NOT zero-shot; every result
says so with ``zero_shot: false`` and ``train_languages``, and the report keeps it out of the zero-shot tables):
``TRANSLATE_TRAIN`` below. ``tt`` = every translation of the task, ``tta`` = the task's own English training
data plus every translation (XLM-R's translate-train-all, Conneau et al. 2020 section 4); a comma list picks
languages (``en`` = the English training data). XTREME's own "translate-train" baseline trains one model per
target language: ``--train_languages de --languages de``.

Two machine translations, never mixed in one task:

* **XNLI-MT 1.0** (Conneau et al. 2018, dl.fbaipublicfiles.com/XNLI/XNLI-MT-1.0.zip): MultiNLI's training set in
  the XNLI languages, on the Hub as ``facebook/xnli`` config ``<lang>`` split ``train`` (fields premise,
  hypothesis, label ClassLabel[entailment, neutral, contradiction]: the kit's NLI label order, checked on load).
  The translated data XLM-R's translate-train-all XNLI numbers used. XTREME published a second, different MNLI
  translation (gs://xtreme_translations/XNLI): NOT used.
* **XTREME's translate-train release** (Hu et al. 2020, gs://xtreme_translations): SQuAD v1.1 train into XQuAD's
  10 non-English languages and TyDiQA-GoldP's English train into its 8 others, SQuAD-format JSON that is not on
  the Hub: ``make data-squad-translate-train`` / ``make data-tydiqa-translate-train`` download it (SHA-256
  checked) and write the prepared repo ``local/xtreme_translations`` (configs ``SQuAD.<lang>``,
  ``TyDiQA-GoldP.<lang>``; xstilts/prepare/translations.py).
* PAWS-X ships its own machine-translated training sets (Yang et al. 2019), on the Hub as ``google/xtreme``
  ``PAWS-X.<lang>`` split ``train``: those are PAWS-X's translate-train data here (XTREME also published its own
  PAWS-X translations, not used).

Which translated data Phang et al. 2020 used could not be established (only the abstract of arXiv 2005.13013 was
reachable): these arms use the sources above, not necessarily the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from . import languages as L
from .classification import MNLI, MNLI_TRAIN, NLI_COLUMNS, NLI_LABELS, PAWSX_COLUMNS
from .qa import QA_COLUMNS, SQUAD_DEV, SQUAD_TRAIN
from .types import Concat, PreparedSource, Source, Task

XNLI_MT_REPO = "facebook/xnli"
XNLI_MT_ABOUT = "XNLI-MT 1.0: MultiNLI train machine-translated by the XNLI authors (facebook/xnli <lang> train)"

# the prepared repo of XTREME's translate-train release (xstilts/prepare/translations.py writes it)
TRANSLATIONS_REPO = "local/xtreme_translations"
SQUAD_TT_CONFIG, TYDIQA_TT_CONFIG = "SQuAD.{code}", "TyDiQA-GoldP.{code}"
SQUAD_TT_TARGET, TYDIQA_TT_TARGET = "data-squad-translate-train", "data-tydiqa-translate-train"
SQUAD_TT_ABOUT = "XTREME's SQuAD v1.1 translate-train data (machine-translated SQuAD v1.1 train, gs://xtreme_translations)"
TYDIQA_TT_ABOUT = ("XTREME's TyDiQA-GoldP translate-train data (its English train machine-translated, "
                   "gs://xtreme_translations)")
PAWSX_TT_ABOUT = "PAWS-X's own machine-translated train (Yang et al. 2019; google/xtreme PAWS-X.<lang> train)"


def xnli_mt(lang: str) -> Source:
    return Source(XNLI_MT_REPO, lang, "train", NLI_COLUMNS, language=lang)


def squad_translation(lang: str) -> PreparedSource:
    return PreparedSource(TRANSLATIONS_REPO, SQUAD_TT_CONFIG.format(code=lang), "train", QA_COLUMNS, language=lang,
                          about=f"{SQUAD_TT_ABOUT} ({lang})", make_target=SQUAD_TT_TARGET)


def tydiqa_translation(lang: str) -> PreparedSource:
    return PreparedSource(TRANSLATIONS_REPO, TYDIQA_TT_CONFIG.format(code=lang), "train", QA_COLUMNS,
                          language=lang, about=f"{TYDIQA_TT_ABOUT} ({lang})", make_target=TYDIQA_TT_TARGET)


def pawsx_translation(lang: str) -> Source:
    return Source("google/xtreme", f"PAWS-X.{lang}", "train", PAWSX_COLUMNS, language=lang)


XNLI_MT = {lang: xnli_mt(lang) for lang in L.XNLI_MT}
SQUAD_TRANSLATIONS = {lang: squad_translation(lang) for lang in L.SQUAD_TRANSLATE_TRAIN}
TYDIQA_TRANSLATIONS = {lang: tydiqa_translation(lang) for lang in L.TYDIQA_TRANSLATE_TRAIN}
PAWSX_TRANSLATIONS = {lang: pawsx_translation(lang) for lang in L.PAWSX_TRANSLATED}

# ----------------------------------------------------------------------------- intermediate tasks
MNLI_TT = Task(
    name="mnli_tt", phase="intermediate", format="pair_classification", variant_of="mnli",
    description="MultiNLI machine-translated into the 14 non-English XNLI languages (XNLI-MT 1.0), no English; "
                "English MNLI dev for selection",
    metric="accuracy", labels=NLI_LABELS, languages=("en",),
    train=Concat(tuple(XNLI_MT.values())), dev=MNLI.dev,
)

MNLI_TTA = Task(
    name="mnli_tta", phase="intermediate", format="pair_classification", variant_of="mnli",
    description="English MultiNLI + its XNLI-MT 1.0 translations into 14 languages (translate-train-all)",
    metric="accuracy", labels=NLI_LABELS, languages=("en",),
    train=Concat((MNLI_TRAIN, *XNLI_MT.values())), dev=MNLI.dev,
)

SQUAD_V1_TT = Task(
    name="squad_v1_tt", phase="intermediate", format="span_qa", variant_of="squad_v1",
    description="SQuAD v1.1 machine-translated into XQuAD's 10 non-English languages (XTREME translate-train), "
                "no English; English SQuAD dev for selection",
    metric="f1", languages=("en",),
    train=Concat(tuple(SQUAD_TRANSLATIONS.values())), dev=SQUAD_DEV,
)

SQUAD_V1_TTA = Task(
    name="squad_v1_tta", phase="intermediate", format="span_qa", variant_of="squad_v1",
    description="English SQuAD v1.1 + its XTREME translations into 10 languages (translate-train-all)",
    metric="f1", languages=("en",),
    train=Concat((SQUAD_TRAIN, *SQUAD_TRANSLATIONS.values())), dev=SQUAD_DEV,
)

TASKS = (MNLI_TT, MNLI_TTA, SQUAD_V1_TT, SQUAD_V1_TTA)


# ----------------------------------------------------------------------------- translate-train targets
@dataclass(frozen=True)
class TranslateTrain:
    """The translated training sets of one target task: language -> Source (``en``, the task's own English
    training data, is not listed: it is the task's ``train``)."""

    sources: Mapping[str, Source]
    about: str


TT, TTA = "tt", "tta"  # every translation / English + every translation (translate-train-all)
MODES = (TT, TTA)

TRANSLATE_TRAIN = {
    "xnli": TranslateTrain(XNLI_MT, XNLI_MT_ABOUT),
    "pawsx": TranslateTrain(PAWSX_TRANSLATIONS, PAWSX_TT_ABOUT),
    "xquad": TranslateTrain(SQUAD_TRANSLATIONS, SQUAD_TT_ABOUT),
    # MLQA trains on SQuAD as XQuAD does: the same translations (all ten; MLQA's six languages are among them)
    "mlqa": TranslateTrain(SQUAD_TRANSLATIONS, SQUAD_TT_ABOUT),
    "tydiqa": TranslateTrain(TYDIQA_TRANSLATIONS, TYDIQA_TT_ABOUT),
}
