"""The synthetic world's tasks (data written by ``python -m xstilts.synthetic.build``; docs/synthetic.md).

* ``synth_nli``      intermediate: English 3-way NLI between single clauses (schema of nyu-mll/glue mnli)
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
from .types import Source, Task

ORG = "xstilts-synthetic"
NLI_REPO, PAIR_REPO, TATOEBA_REPO, POS_REPO = f"{ORG}/nli", f"{ORG}/pair", f"{ORG}/tatoeba", f"{ORG}/pos"
NLI_CONFIG, PAIR_TRAIN_CONFIG, PAIR_EVAL_CONFIG = "default", "en", "pairs"
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

TASKS = (SYNTH_NLI, SYNTH_PAIR, SYNTH_TATOEBA, SYNTH_POS)
