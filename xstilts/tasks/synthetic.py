"""The synthetic world's tasks (data written by ``python -m xstilts.synthetic.build``; docs/synthetic.md).

* ``synth_nli``      intermediate: English 3-way NLI between single clauses (schema of nyu-mll/glue mnli)
* ``synth_nli_tt``   intermediate arm (``make demo-arms``): synth_nli's training rows translated into every derived
                     language (the world knows every sentence's meaning, so the translations are exact), no English;
                     ``synth_nli_tta``: English + those translations (config ``translated.<code>`` per language)
* ``synth_mlm``      auxiliary objective (``--tasks synth_nli,synth_mlm``): masked LM on new monolingual text of
                     every world language (``xstilts-synthetic/text`` config ``<code>``, the wikimedia/wikipedia
                     schema), the synthetic counterpart of ``mlm``
* ``synth_pair``     target: paraphrase identification (PAWS-X-like), English train, zero-shot on every
                     synthetic language (validation/test in the google/xtreme XNLI schema, one config
                     with a language column)
* ``synth_tatoeba``  retrieval: parallel sentences, config ``tatoeba.<code>`` per derived language
* ``synth_pos``      target: part-of-speech tagging (schema of google/xtreme udpos), English train, zero-shot on
                     every synthetic language (config ``pos.<code>``); format ``token_tagging``, scored like
                     UD-POS (seqeval F1 as the leaderboard scorer computes it, plus token accuracy)

The repo ids, configs and label sets are declared here; the world builder (``xstilts.synthetic.build``) writes
its data under these names. The language lists are the default world's (``languages.SYNTHETIC``); a world built
with other languages is evaluated on its own: its ``world.json`` lists them (``Task.languages_file``, read by the
run when the world is the data root).
"""

from __future__ import annotations

from . import languages as L
from .classification import NLI_LABELS
from .tagging import UPOS
from .types import Concat, Source, Task

ORG = "xstilts-synthetic"
NLI_REPO, PAIR_REPO, TATOEBA_REPO, POS_REPO = f"{ORG}/nli", f"{ORG}/pair", f"{ORG}/tatoeba", f"{ORG}/pos"
TEXT_REPO = f"{ORG}/text"  # the MLM arm's monolingual text
NLI_CONFIG, PAIR_TRAIN_CONFIG, PAIR_EVAL_CONFIG = "default", "en", "pairs"
NLI_TRANSLATED_CONFIG, TEXT_CONFIG = "translated.{code}", "{code}"
TATOEBA_CONFIG, POS_CONFIG = "tatoeba.{code}", "pos.{code}"
PAIR_LABELS = ("not_paraphrase", "paraphrase")

LANGUAGES = L.SYNTHETIC
WORLD_FILE = "world.json"  # in the data root: the world's settings, its languages among them
DERIVED_LANGUAGES = tuple(c for c in LANGUAGES if c != "en")

TRAIN_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}
EVAL_COLUMNS = {"text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"}
POS_COLUMNS = {"tokens": "tokens", "tags": "pos_tags"}

SYNTH_NLI = Task(
    name="synth_nli", phase="intermediate", format="pair_classification",
    description="synthetic English NLI between single clauses (xstilts.synthetic), 3-way, labels from the meaning",
    metric="accuracy", labels=NLI_LABELS, languages=("en",),
    train=Source(NLI_REPO, NLI_CONFIG, "train", TRAIN_COLUMNS),
    dev=Source(NLI_REPO, NLI_CONFIG, "validation_matched", TRAIN_COLUMNS),
)

SYNTH_PAIR = Task(
    name="synth_pair", phase="target", format="pair_classification",
    description="synthetic paraphrase identification: train on English, zero-shot on every synthetic language",
    metric="accuracy", labels=PAIR_LABELS, languages=LANGUAGES, languages_file=WORLD_FILE,
    train=Source(PAIR_REPO, PAIR_TRAIN_CONFIG, "train", TRAIN_COLUMNS),
    dev=Source(PAIR_REPO, PAIR_EVAL_CONFIG, "validation", EVAL_COLUMNS, lang_column="language"),
    test=Source(PAIR_REPO, PAIR_EVAL_CONFIG, "test", EVAL_COLUMNS, lang_column="language"),
)

SYNTH_TATOEBA = Task(
    name="synth_tatoeba", phase="retrieval", format="retrieval",
    description="synthetic parallel-sentence retrieval: English <-> every derived synthetic language",
    metric="accuracy", languages=DERIVED_LANGUAGES, languages_file=WORLD_FILE,
    test=Source(TATOEBA_REPO, TATOEBA_CONFIG, "validation",
                {"source": "source_sentence", "target": "target_sentence"}),
)

SYNTH_POS = Task(
    name="synth_pos", phase="target", format="token_tagging",
    description="synthetic part-of-speech tagging: train on English, zero-shot on every synthetic language",
    metric="f1", labels=UPOS, languages=LANGUAGES, languages_file=WORLD_FILE,
    train=Source(POS_REPO, POS_CONFIG.format(code="en"), "train", POS_COLUMNS),
    dev=Source(POS_REPO, POS_CONFIG, "validation", POS_COLUMNS),
    test=Source(POS_REPO, POS_CONFIG, "test", POS_COLUMNS),
)

# ---------------------------------------------------------------- the alternative arms (docs/synthetic.md)
# declared for the default world's languages (a world built with other languages lacks these configs: the run
# stops before any model loads, naming the config)
NLI_TRANSLATIONS = tuple(Source(NLI_REPO, NLI_TRANSLATED_CONFIG.format(code=c), "train", TRAIN_COLUMNS, language=c)
                         for c in DERIVED_LANGUAGES)

SYNTH_NLI_TT = Task(
    name="synth_nli_tt", phase="intermediate", format="pair_classification", variant_of="synth_nli",
    description="synth_nli's first training rows translated into every derived language (exact translations), no "
                "English; English dev for selection",
    metric="accuracy", labels=NLI_LABELS, languages=("en",),
    train=Concat(NLI_TRANSLATIONS), dev=SYNTH_NLI.dev,
)

SYNTH_NLI_TTA = Task(
    name="synth_nli_tta", phase="intermediate", format="pair_classification", variant_of="synth_nli",
    description="synth_nli's English training rows + their translations into every derived language",
    metric="accuracy", labels=NLI_LABELS, languages=("en",),
    train=Concat((SYNTH_NLI.train, *NLI_TRANSLATIONS)), dev=SYNTH_NLI.dev,
)

TEXT_COLUMNS = {"text": "text", "title": "title", "id": "id"}
SYNTH_MLM = Task(
    name="synth_mlm", phase="intermediate", format="masked_lm", auxiliary=True,
    description="masked LM on new monolingual text of every synthetic language (the pretrained LM head reused); "
                "joins an intermediate task: --tasks synth_nli,synth_mlm",
    metric="accuracy", languages=LANGUAGES,
    # two objects: the format holds out the first documents of the same split for dev (xstilts/formats/masked_lm.py)
    train=Source(TEXT_REPO, TEXT_CONFIG, "train", TEXT_COLUMNS),
    dev=Source(TEXT_REPO, TEXT_CONFIG, "train", TEXT_COLUMNS),
)

TASKS = (SYNTH_NLI, SYNTH_PAIR, SYNTH_TATOEBA, SYNTH_POS, SYNTH_NLI_TT, SYNTH_NLI_TTA, SYNTH_MLM)
