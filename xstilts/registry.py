"""The task registry: every task is declared once, here, as data.

A task names its English training data, the English dev split used for checkpoint selection,
the evaluation data per language, the format that turns rows into model inputs, and the metric.
Adding a task means one entry here plus fixtures in ``tests/fixtures/hub`` (same Hub layout).

Every dataset is named by its real Hugging Face Hub id and config. ``--data_root`` (or the
``XSTILTS_DATA_ROOT`` variable) redirects those ids to a local mirror with the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .errors import UsageError, choices_error
from .local_data import PreparedSource

NLI_LABELS = ("entailment", "neutral", "contradiction")

# --- language lists (google-research/xtreme evaluate.py, XTREME_TASK2LANGS / XTREME_R_TASK2LANGS)
XNLI_LANGS = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")

# Tatoeba: XTREME's 36 languages (ISO-639-1 as the scorer names them) -> the Hub config's ISO-639-3 code.
TATOEBA_ISO3 = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa",
    "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin",
    "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz",
    "ko": "kor", "ml": "mal", "mr": "mar", "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh",
    "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie",
    "zh": "cmn",
    # XTREME-R additions (not in google/xtreme; LASER file names, see TATOEBA_LASER below)
    "az": "aze", "lt": "lit", "pl": "pol", "uk": "ukr", "ro": "ron",
}
# XTREME evaluate.py order
TATOEBA_LANGS = (
    "ar", "he", "vi", "id", "jv", "tl", "eu", "ml", "ta", "te", "af", "nl", "de", "el", "bn", "hi",
    "mr", "ur", "fa", "fr", "it", "pt", "es", "bg", "ru", "ja", "ka", "ko", "th", "sw", "zh", "kk",
    "tr", "et", "fi", "hu",
)
# XTREME-R: the same 36 plus five (evaluate.py XTREME_R_TASK2LANGS order)
TATOEBA_XTREME_R_ADDED = ("az", "lt", "pl", "uk", "ro")
TATOEBA_LANGS_XTREME_R = TATOEBA_LANGS + TATOEBA_XTREME_R_ADDED


# Source.revision of Hub repos that still hold a loading script (refused by datasets >= 4): the Hub's parquet
# export branch, read by folder (<config>/<split>/*.parquet; see data.load_source)
PARQUET_EXPORT = "refs/convert/parquet"


@dataclass(frozen=True)
class Source:
    """One split of one Hub dataset, and how its columns map onto the format's canonical fields.

    ``config`` may contain ``{code}``: it is filled with the language's dataset code
    (``Task.lang_codes``). ``lang_column`` names a column whose value selects the language
    when one config holds every language (XNLI).
    """

    hub_id: str
    config: str
    split: str
    columns: Mapping[str, str]
    lang_column: str | None = None
    revision: str | None = None  # pin a Hub revision (commit sha or branch); recorded in results

    def config_for(self, code: str | None) -> str:
        return self.config.format(code=code) if "{code}" in self.config else self.config

    def describe(self, code: str | None = None) -> dict:
        return {"hub_id": self.hub_id, "config": self.config_for(code), "split": self.split,
                "revision": self.revision}


@dataclass(frozen=True)
class Concat:
    """Several splits read as one dataset, in this order (ANLI+: ANLI rounds 1-3 + MNLI + SNLI train).

    Every part maps its own columns onto the same canonical fields, and all parts share the task's one label
    set (one head). Usable wherever a Task takes a Source for ``train`` or ``dev``; the loaders read it part by
    part (``parts``)."""

    parts: tuple[Source, ...]

    def __post_init__(self):
        if not self.parts or not all(isinstance(p, Source) for p in self.parts):
            raise ValueError("Concat needs one or more Source parts")

    @property
    def split(self) -> str:
        return "+".join(p.split for p in self.parts)

    def describe(self, code: str | None = None) -> dict:
        return {"concatenation": [p.describe(code) for p in self.parts]}


def source_parts(source: Source | Concat | None) -> tuple[Source, ...]:
    """The plain Sources behind ``source`` (itself, or a Concat's parts)."""
    if source is None:
        return ()
    return source.parts if isinstance(source, Concat) else (source,)


@dataclass(frozen=True)
class Task:
    name: str
    phase: str  # "intermediate" | "target" | "retrieval"
    format: str  # "pair_classification" | "retrieval" | ...
    description: str
    metric: str
    train: Source | Concat | None = None  # a Concat trains on several splits at once (ANLI+)
    dev: Source | Concat | None = None  # English dev: checkpoint selection only
    dev_language: str = "en"
    test: Source | None = None  # evaluated zero-shot on every language
    languages: tuple[str, ...] = ()
    lang_codes: Mapping[str, str] = field(default_factory=dict)  # scorer code -> dataset code
    labels: tuple[str, ...] = ()
    xtreme_name: str = ""  # folder name in the XTREME leaderboard layout
    # XTREME-R's language list where it differs from XTREME's (``languages``); empty = the same list
    languages_xtreme_r: tuple[str, ...] = ()
    # evaluation data of languages that are not in ``test``'s dataset (XTREME-R additions, e.g. UD 2.7
    # treebanks or unimelb-nlp/wikiann): lang -> Source used instead of ``test`` for that language
    lang_sources: Mapping[str, Source] = field(default_factory=dict)
    # format-specific settings, as data (multiple_choice: {"template": ...}, see that format's docstring)
    format_options: Mapping[str, str] = field(default_factory=dict)
    # English training stages run first, in this order, inside the same run_target.py run (unregistered Tasks
    # of the same format; each trains on its train split, selects on its dev split, and hands the whole model,
    # head included, to the next stage; the task's own train split comes last). XCOPA: Social IQa, then COPA.
    stages: tuple["Task", ...] = ()

    def code(self, lang: str) -> str:
        return self.lang_codes.get(lang, lang)

    @property
    def all_languages(self) -> tuple[str, ...]:
        extra = tuple(l for l in self.languages_xtreme_r if l not in self.languages)
        return tuple(self.languages) + extra

    def language_set(self, benchmark: str) -> tuple[str, ...]:
        """``xtreme`` -> XTREME's list, ``xtreme-r`` -> XTREME-R's list (the same where it does not differ)."""
        if benchmark == "xtreme-r" and self.languages_xtreme_r:
            return tuple(self.languages_xtreme_r)
        return tuple(self.languages)

    def eval_source(self, lang: str, split: str = "test") -> Source | None:
        """The Source holding ``lang``'s evaluation rows (``test``, or a per-language override)."""
        if lang in self.lang_sources and split == "test":
            return self.lang_sources[lang]
        return self.test if split == "test" else self.dev


_MNLI_TRAIN_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}

TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} registered twice")
    TASKS[task.name] = task
    return task


# ----------------------------------------------------------------------------- intermediate tasks
register(Task(
    name="mnli", phase="intermediate", format="pair_classification",
    description="MultiNLI (English), 3-way NLI",
    metric="accuracy", labels=NLI_LABELS, languages=("en",),
    train=Source("nyu-mll/glue", "mnli", "train", _MNLI_TRAIN_COLUMNS),
    dev=Source("nyu-mll/glue", "mnli", "validation_matched", _MNLI_TRAIN_COLUMNS),
))

# ----------------------------------------------------------------------------- target tasks
register(Task(
    name="xnli", phase="target", format="pair_classification", xtreme_name="xnli",
    description="XNLI: train on English MNLI, zero-shot on 15 languages",
    metric="accuracy", labels=NLI_LABELS, languages=XNLI_LANGS,
    train=Source("nyu-mll/glue", "mnli", "train", _MNLI_TRAIN_COLUMNS),
    dev=Source("google/xtreme", "XNLI", "validation",
               {"text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"}, lang_column="language"),
    test=Source("google/xtreme", "XNLI", "test",
                {"text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"}, lang_column="language"),
))

# ----------------------------------------------------------------------------- retrieval (no training)
# XTREME-R's five extra Tatoeba languages are not in google/xtreme. Their source is the file pair
# data/tatoeba/v1/tatoeba.<iso3>-eng.{<iso3>,eng} of github.com/facebookresearch/LASER (what XTREME's
# download script fetches). `make data-tatoeba` converts them into the Hub-mirror layout under the data
# root (or data/ without one) with google/xtreme's tatoeba fields; never looked up on the Hub.
TATOEBA_LASER = PreparedSource(
    "local/tatoeba-laser", "tatoeba.{code}", "test", {"source": "source_sentence", "target": "target_sentence"},
    about="Tatoeba for XTREME-R's az lt pl uk ro (LASER test sets, local/tatoeba-laser; not in google/xtreme)",
    make_target="data-tatoeba")

register(Task(
    name="tatoeba", phase="retrieval", format="retrieval", xtreme_name="tatoeba",
    description="Tatoeba: English <-> 36 (XTREME) / 41 (XTREME-R) languages nearest-neighbour sentence retrieval",
    metric="accuracy", languages=TATOEBA_LANGS, lang_codes=TATOEBA_ISO3,
    test=Source("google/xtreme", "tatoeba.{code}", "validation",
                {"source": "source_sentence", "target": "target_sentence"}),
    languages_xtreme_r=TATOEBA_LANGS_XTREME_R,
    lang_sources={lang: TATOEBA_LASER for lang in TATOEBA_XTREME_R_ADDED},
))


def get_task(name: str, phase: str | None = None) -> Task:
    """Look a task up by name; with ``phase``, only tasks of that phase are valid."""
    valid = [t for t in TASKS.values() if phase is None or t.phase == phase]
    names = [t.name for t in valid]
    if name not in names:
        raise choices_error(f"{phase + ' ' if phase else ''}task", name, names)
    return TASKS[name]


LANGUAGE_SETS = ("xtreme", "xtreme-r", "all", "available")


def parse_languages(task: Task, spec: str | None) -> list[str]:
    """None/``xtreme`` -> XTREME's languages of the task; ``xtreme-r`` -> XTREME-R's; ``all`` -> both;
    else a comma list checked against the task, each language once, in the order given (``en,de,de`` is
    ``en,de``: a run's stored settings never depend on a repeated name)."""
    spec = (spec or "").strip()
    if spec in ("", "xtreme"):
        return list(task.languages)
    if spec == "xtreme-r":
        return list(task.language_set("xtreme-r"))
    if spec in ("all", "available"):  # "available" is narrowed to the data present by pipeline.prepare
        return list(task.all_languages)
    langs = list(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    for lang in langs:
        if lang not in task.all_languages:
            raise choices_error(f"language for task {task.name}", lang, [*task.all_languages, *LANGUAGE_SETS])
    if not langs:
        raise UsageError(f"no language given for task {task.name}")
    return langs
from . import tasks as _task_families  # noqa: E402,F401
from .synthetic import tasks as _synthetic_tasks  # noqa: E402,F401
