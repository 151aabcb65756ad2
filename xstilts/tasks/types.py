"""The declaration types: where a task's data lives (``Source`` and its kinds, ``Concat``) and what a task is
(``Task``).

Frozen dataclasses that hold data only: nothing here reads a file, checks a directory or knows a command-line
option's value. Reading and checking is the data layer's (``xstilts.data.sources``), per source kind:

``Source``           a split of a Hugging Face Hub dataset (or of its ``--data_root`` mirror)
``PreparedSource``   a split of a local-only repo in the Hub-mirror layout that a make target writes from public
                     data the Hub lacks in a usable form (UD 2.7 test treebanks, LASER Tatoeba files)
``ReleaseSource``    the same, for a task whose every language comes from the make target (LAReQA, Mewsli-X)
``OptionDirSource``  licensed data that users supply themselves, in a documented plain-text format, with a
                     command-line option (CCGbank: ``--ccg_dir``)

Every dataset is named by its real Hugging Face Hub id and config. ``--data_root`` (or ``XSTILTS_DATA_ROOT``)
redirects those ids to a local mirror with the same layout (the test fixtures in ``tests/fixtures/hub`` are one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

# Source.revision of Hub repos that still hold a loading script (refused by datasets >= 4): the Hub's parquet
# export branch, read by folder (<config>/<split>/*.parquet; see xstilts.data.load_source)
PARQUET_EXPORT = "refs/convert/parquet"

PHASES = ("intermediate", "target", "retrieval")


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
    # the language of every row when it is not English and no column says it (a translated training set: the
    # rows of XNLI-MT's "de" config are German); None: English, or ``lang_column`` / ``{code}`` tells
    language: str | None = None
    # read when this source cannot be loaded (xstilts.data.sources.load_source), after a clear log line; its rows
    # are verified against the counts and content hash recorded here, and the result records which was read
    fallback: "Fallback | None" = field(default=None, kw_only=True)

    def config_for(self, code: str | None) -> str:
        return self.config.format(code=code) if "{code}" in self.config else self.config

    def describe(self, code: str | None = None) -> dict:
        out = {"hub_id": self.hub_id, "config": self.config_for(code), "split": self.split, "revision": self.revision}
        if self.language is not None:
            out["language"] = self.language
        if self.fallback is not None:
            out["fallback"] = dict(self.fallback.source.describe(code), rows=self.fallback.rows,
                                   content_sha256=self.fallback.content_sha256)
        return out


@dataclass(frozen=True)
class Fallback:
    """A second copy of a source's rows (a parquet mirror of a script-only Hub repo). ``rows``: the primary's row
    count of the split; ``content_sha256``: ``xstilts.data.sources.content_hash`` of the primary's rows over the
    source's columns (None: not recorded yet, so the fallback is checked by its row count only, and the run says
    so); ``evidence``: where the equality of the two copies was established."""

    source: Source
    rows: int
    content_sha256: str | None
    evidence: str


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


@dataclass(frozen=True)
class PreparedSource(Source):
    """A split of a local-only repo (``hub_id`` ``local/...``) in the Hub-mirror layout, written by
    ``make <make_target>``; read from ``<data_root>/<hub_id>`` with a data root, else from the kit's ``data/``.
    ``about`` says what it is and where it comes from (the error when it is missing names the make target)."""

    about: str = ""
    make_target: str = ""

    def describe(self, code: str | None = None) -> dict:
        return dict(super().describe(code), local=True, prepared_by=f"make {self.make_target}")


@dataclass(frozen=True)
class ReleaseSource(PreparedSource):
    """A prepared split of a task whose every language comes from the make target (not an XTREME-R addition
    next to Hub data): when it is missing, nothing can be left out instead."""


@dataclass(frozen=True)
class OptionDirSource(Source):
    """One split of files in a directory given on the command line as ``--<option>``, in the plain-text format
    of ``reader`` (the data layer's reader of that format). ``about`` says where the data comes from."""

    about: str = ""
    option: str = ""
    reader: str = ""

    def describe(self, code: str | None = None) -> dict:
        return dict(super().describe(code), local=True)


def source_parts(source: Source | Concat | None) -> tuple[Source, ...]:
    """The plain Sources behind ``source`` (itself, or a Concat's parts)."""
    if source is None:
        return ()
    return source.parts if isinstance(source, Concat) else (source,)


@dataclass(frozen=True)
class Task:
    """One task: its English training data, the English dev split used for checkpoint selection, the
    evaluation data per language, the format that turns rows into model inputs, and the metric.

    ``metric`` is the one number the task is selected and reported on: the format computes it (a key of its
    per-language scores), checkpoint selection uses it on English dev, and every result stores it as
    ``metric`` with ``average[metric]``."""

    name: str
    phase: str  # "intermediate" | "target" | "retrieval" ("stage": an unlisted training stage, see ``stages``)
    format: str  # "pair_classification" | "token_tagging" | "span_qa" | "multiple_choice" | "dual_encoder" | ...
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
    # named alternatives to the declared train/dev/test sources, chosen with --source_variant NAME: NAME ->
    # {"train" | "dev" | "test": Source}. The declared sources are the variant ``hub``; a result records the
    # sources it read, so the variant shows in it (udpos: ``xtreme``, XTREME's own preprocessing of UD 2.5)
    source_variants: Mapping[str, Mapping[str, Source]] = field(default_factory=dict)
    # format-specific settings, as data (multiple_choice: {"template": ...}, see that format's docstring)
    format_options: Mapping[str, str] = field(default_factory=dict)
    # English training stages run first, in this order, inside the same run_target.py run (unlisted Tasks of
    # the same format; each trains on its train split, selects on its dev split, and hands the whole model,
    # head included, to the next stage; the task's own train split comes last). XCOPA: Social IQa, then COPA.
    stages: tuple["Task", ...] = ()
    # retrieval: the encoder recipe (a preset's ``encoder_recipes.<name>``) whose fine-tuned encoder the task embeds
    # with: run_retrieval.py refuses any other encoder. Empty: the pretrained or phase-2 encoder as it is
    encoder_recipe: str = ""
    # a file in the data root that lists the languages the data holds, as {"languages": [{"code": ...}, ...]}
    # (a generated world: xstilts.synthetic writes world.json); when it is there the run evaluates those languages
    # instead of ``languages`` (English left out when ``languages`` leaves it out)
    languages_file: str = ""
    # an objective that only joins other intermediate tasks in a multi-task run and is never selected on (the
    # multilingual MLM, ``--tasks mnli,mlm``): not trained alone, listed after a task it joins
    auxiliary: bool = False
    # an arm of an English intermediate task (its translated data, xstilts/tasks/translated.py): the English task
    # it trains like (that task's preset entry) and is compared with in the report
    variant_of: str = ""

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
