"""Token tagging: UD-POS and PAN-X (target), CCG supertagging (intermediate).

Language lists: ``languages.UDPOS`` / ``UDPOS_XTREME_R`` (XTREME 33 / XTREME-R 38) and ``languages.PANX`` /
``PANX_XTREME_R`` (40 / 48), so a run evaluates exactly what the official ``evaluate.py`` scores.

Sources of the languages that ``google/xtreme`` lacks (XTREME-R additions):
* UD-POS lt pl uk wo ro: UD 2.7 test treebanks converted once into a local mirror with the ``google/xtreme``
  schema (``make data-udpos-ud27``, ``xstilts.prepare.ud27``);
* PAN-X qu pl uk az lt pa gu ro: ``unimelb-nlp/wikiann`` (same 7-tag ClassLabel as PAN-X).
CCGbank is licensed (LDC2005T13): ``--ccg_dir``, a directory in the kit's plain-text format (reader, and converter
from CCGbank's AUTO files: ``xstilts.prepare.ccg``).
"""

from __future__ import annotations

from . import languages as L
from .types import OptionDirSource, PreparedSource, Source, Task

# google/xtreme udpos pos_tags ClassLabel order (the 17 UD tags)
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X")
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

UDPOS_COLUMNS = {"tokens": "tokens", "tags": "pos_tags"}
PANX_COLUMNS = {"tokens": "tokens", "tags": "ner_tags"}
CCG_COLUMNS = {"tokens": "tokens", "tags": "tags"}

UD27_HUB_ID = "local/udpos-ud27"  # written by `make data-udpos-ud27` (xstilts.prepare.ud27)
UDPOS_XTREME_HUB_ID = "local/udpos-xtreme"  # written by `make data-udpos-xtreme` (xstilts.prepare.udpos_xtreme)
UDPOS_XTREME_MAKE_TARGET = "data-udpos-xtreme"
UD27_MAKE_TARGET = "data-udpos-ud27"
CCG_FORMAT = "one sentence per line, tokens separated by spaces, each token written word|supertag"
CCG_ABOUT = ("CCGbank (LDC2005T13, https://catalog.ldc.upenn.edu/LDC2005T13) is licensed by the LDC and is not on "
             "the Hugging Face Hub; pass the directory of your converted copy with --ccg_dir DIR. DIR must hold "
             f"train.txt (sections 02-21) and dev.txt (section 00) in the kit's format: {CCG_FORMAT} "
             "(e.g. 'Tom|N saw|(S[dcl]\\NP)/NP the|NP[nb]/N dog|N .|.'). Make it from CCGbank's AUTO files with "
             "`python -m xstilts.ccg convert <ccgbank>/data/AUTO DIR` (or `make data-ccg CCGBANK=<ccgbank>`); "
             "see docs/tagging.md")

UD27_ABOUT = ("the UD-POS test sets of XTREME-R's extra languages (lt pl uk wo ro; Universal Dependencies 2.7, "
              "not in google/xtreme)")

UDPOS_XTREME_ABOUT = ("UD-POS as google-research/xtreme's scripts build it from UD 2.5 (treebanks chosen by the file "
                      "name's language code, so Greek is GDT only; multi-word tokens kept as their fused form), "
                      "selected with --source_variant xtreme")


def _udpos_xtreme(split: str, config: str) -> PreparedSource:
    return PreparedSource(UDPOS_XTREME_HUB_ID, config, split, UDPOS_COLUMNS, about=UDPOS_XTREME_ABOUT,
                          make_target=UDPOS_XTREME_MAKE_TARGET)


UDPOS = Task(
    name="udpos", phase="target", format="token_tagging", xtreme_name="udpos",
    description="UD-POS: train on English UD (udpos.English), zero-shot on 33 (XTREME) / 38 (XTREME-R) languages",
    metric="f1", labels=UPOS, languages=tuple(L.UDPOS), languages_xtreme_r=L.UDPOS_XTREME_R,
    lang_codes={**L.UDPOS, **L.UD27},
    train=Source("google/xtreme", "udpos.English", "train", UDPOS_COLUMNS),
    dev=Source("google/xtreme", "udpos.{code}", "validation", UDPOS_COLUMNS),
    test=Source("google/xtreme", "udpos.{code}", "test", UDPOS_COLUMNS),
    lang_sources={lang: PreparedSource(UD27_HUB_ID, "udpos.{code}", "test", UDPOS_COLUMNS, about=UD27_ABOUT,
                                       make_target=UD27_MAKE_TARGET)
                  for lang in L.UD27},
    # the Hub's udpos.Greek also reads Ancient Greek and drops multi-word tokens (xstilts.prepare.udpos_audit);
    # `xtreme` reads XTREME's own files instead (docs/tagging.md). XTREME-R's UD 2.7 languages keep lang_sources.
    source_variants={"xtreme": {"train": _udpos_xtreme("train", "udpos.English"),
                                "dev": _udpos_xtreme("validation", "udpos.{code}"),
                                "test": _udpos_xtreme("test", "udpos.{code}")}},
)

PANX = Task(
    name="panx", phase="target", format="token_tagging", xtreme_name="panx",
    description="PAN-X (WikiANN NER): train on PAN-X.en, zero-shot on 40 (XTREME) / 48 (XTREME-R) languages",
    metric="f1", labels=PANX_TAGS, languages=L.PANX, languages_xtreme_r=L.PANX_XTREME_R,
    train=Source("google/xtreme", "PAN-X.en", "train", PANX_COLUMNS),
    dev=Source("google/xtreme", "PAN-X.{code}", "validation", PANX_COLUMNS),
    test=Source("google/xtreme", "PAN-X.{code}", "test", PANX_COLUMNS),
    lang_sources={lang: Source("unimelb-nlp/wikiann", "{code}", "test", PANX_COLUMNS)
                  for lang in L.PANX_XTREME_R_ADDED},
)

CCG = Task(
    name="ccg", phase="intermediate", format="token_tagging",
    description="CCG supertagging on CCGbank (LDC2005T13, local --ccg_dir); ~1,363 supertags read from the train split",
    # supertagging is scored (and the checkpoint selected) by token accuracy, as in jiant and the CCG literature
    metric="accuracy", languages=("en",), labels=(),  # labels: read from the train split (token_tagging.labels)
    train=OptionDirSource("local/ccg", "ccg", "train", CCG_COLUMNS, about=CCG_ABOUT, option="ccg_dir", reader="ccg"),
    dev=OptionDirSource("local/ccg", "ccg", "validation", CCG_COLUMNS, about=CCG_ABOUT, option="ccg_dir",
                        reader="ccg"),
)

TASKS = (UDPOS, PANX, CCG)
