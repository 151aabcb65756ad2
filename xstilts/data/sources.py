"""Reading a task's data: the checks and loads of every source kind, with the run's data settings passed in.

Every check runs before any model or dataset loads (``check_task_data``), so a missing or damaged input stops a
run at once with a message naming the file, the make target or the option. Per kind
(:mod:`xstilts.tasks.types`):

``Source``           the Hub, or the ``--data_root`` mirror with the Hub's layout (:mod:`xstilts.data.hub`)
``PreparedSource``   a local-only repo in the Hub-mirror layout under the data root when one is given, else under
(``ReleaseSource``)  the kit's ``data/``, where ``make <make_target>`` writes by default (``DATA_DIR=...``:
                     elsewhere). Not there: an error naming the make target
``OptionDirSource``  files in the directory given as ``--<option>`` (``DataSettings.option_dirs``), read by the
                     reader of their format (``READERS``: CCGbank's word|supertag lines, ``xstilts.prepare.ccg``).
                     Not given: an error saying where the data comes from and what format is expected

``DataSettings`` is what a run knows about where data lives (root and option directories); functions here take
it (or a data root path, or None for the Hub) and keep nothing between calls.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import UsageError
from ..paths import KIT_DATA
from ..prepare import ccg
from ..tasks.types import Concat, OptionDirSource, PreparedSource, ReleaseSource, Source, Task
from . import hub

READERS = {"ccg": ccg}  # OptionDirSource.reader -> check_split / load_split / describe_split of that format


@dataclass(frozen=True)
class DataSettings:
    """Where a run reads data from: ``root`` (``--data_root``: a Hub mirror; None: the Hub, and the kit's ``data/``
    for prepared sources) and the directories given by options (``{"ccg_dir": ...}``)."""

    root: Path | None = None
    option_dirs: Mapping[str, str | None] = field(default_factory=dict)
    # what this run read in place of a source that could not be loaded (load_source fills it, describe_source
    # records it): "<hub_id>/<config>[<split>]" of the primary -> the fallback's description and checks
    fallbacks_used: dict = field(default_factory=dict, compare=False)


def as_settings(data: DataSettings | str | Path | None) -> DataSettings:
    """``data`` as DataSettings: a path (or None) is a data root with no option directories."""
    if isinstance(data, DataSettings):
        return data
    return DataSettings(Path(data) if data is not None else None)


def local_root(data_root: Path | str | None) -> Path:
    """Where local-only data is read from: the data root if given, else the kit's ``data/``."""
    return Path(data_root) if data_root is not None else KIT_DATA


# ----------------------------------------------------------------------------- local kinds
def prepared_root(source: PreparedSource, data_root: Path | None) -> Path:
    """The root ``R`` such that ``R/<hub_id>`` holds the prepared mirror; an error naming the make target when
    it is not there."""
    r = local_root(data_root)
    if not (r / source.hub_id / "README.md").is_file():
        where = f"--data_root {r}" if data_root is not None else f"the kit's {r} (no --data_root given)"
        target = f"make {source.make_target}" + (f" DATA_DIR={r}" if data_root is not None else "")
        if isinstance(source, ReleaseSource):
            raise UsageError(f"{source.about} is not prepared under {where}: expected {r / source.hub_id} (Hub-mirror "
                             f"layout). Run `{target}` (docs/xtreme_r.md)")
        leave_out = (f"leave {source.language} out of --train_languages" if source.language is not None  # translated
                     else "leave these languages out (e.g. --languages xtreme)")
        raise UsageError(f"{source.about or source.hub_id} not prepared under {where}: expected {r / source.hub_id} "
                         f"(Hub-mirror layout). Run `{target}`, or {leave_out}")
    return r


def option_directory(source: OptionDirSource, data: DataSettings) -> Path:
    """The directory given as ``--<option>``; an error saying where the data comes from when it is not given."""
    value = data.option_dirs.get(source.option)
    if not value:
        raise UsageError(f"--{source.option} is required for this task: {source.about}")
    d = Path(value)
    if not d.is_dir():
        raise UsageError(f"--{source.option} {value!r} is not a directory. {source.about}")
    return d


# ----------------------------------------------------------------------------- every kind
def check_source(source: Source | Concat, data, code: str | None = None) -> None:
    """Fail early (before any model loads) if the data of ``source`` (every part of a Concat) is not there."""
    data = as_settings(data)
    if isinstance(source, Concat):
        for part in source.parts:
            check_source(part, data, code)
    elif isinstance(source, OptionDirSource):
        READERS[source.reader].check_split(option_directory(source, data), source.split, source.option,
                                           source.about)
    elif isinstance(source, PreparedSource):
        root = prepared_root(source, data.root)
        try:
            hub.check_source(source, root, code)
        except UsageError as e:
            raise UsageError(f"{e} ({source.about or source.hub_id}: written by `make {source.make_target}`)") from None
    elif source.fallback is not None:
        try:
            hub.check_source(source, data.root, code)
        except UsageError as e:  # the mirror lacks it: its fallback must be there (load_source reads that one)
            try:
                hub.check_source(source.fallback.source, data.root, code)
            except UsageError as f:
                raise UsageError(f"{e}; and its fallback: {f}") from None
    else:
        hub.check_source(source, data.root, code)


def check_files(source: Source | Concat, data, code: str | None = None) -> None:
    """The data files a mirror load of ``source`` reads are sound (corrupt, empty, missing columns); nothing to
    check for the Hub or for a directory option (its reader checks its own files)."""
    data = as_settings(data)
    if isinstance(source, Concat):
        for part in source.parts:
            check_files(part, data, code)
    elif isinstance(source, PreparedSource):
        hub.check_files(source, prepared_root(source, data.root), code)
    elif isinstance(source, Source) and source.fallback is not None:
        try:
            hub.check_source(source, data.root, code)
        except UsageError:
            hub.check_files(source.fallback.source, data.root, code)
        else:
            hub.check_files(source, data.root, code)
    elif not isinstance(source, OptionDirSource):
        hub.check_files(source, data.root, code)


def _key(source: Source, code: str | None) -> str:
    return f"{source.hub_id}/{source.config_for(code)}[{source.split}]"


def content_hash(ds, source: Source) -> str:
    """sha256 of a split's rows over the columns ``source`` maps (a comma list counts as its columns), each row as
    canonical JSON with every value a string, rows sorted: independent of row order and of dtype (a label
    stored as int or as string hashes alike)."""
    import hashlib
    import json

    columns = sorted({c for v in source.columns.values() for c in v.split(",") if "." not in c})
    rows = sorted(json.dumps([str(r[c]) for c in columns], ensure_ascii=False) for r in ds.select_columns(columns))
    h = hashlib.sha256()
    for row in rows:
        h.update(row.encode("utf-8") + b"\n")
    return h.hexdigest()


def _load_fallback(source: Source, data: DataSettings, code: str | None, error: Exception):
    """The fallback of ``source``, after a log line naming both and the primary's error; verified by its row count
    and, when recorded, its content hash (a mismatch: UsageError); recorded in ``data.fallbacks_used``."""
    import logging

    log = logging.getLogger(__name__)
    fb = source.fallback
    where, fb_where = _key(source, code), _key(fb.source, code)
    log.warning("data: %s could not be loaded (%s: %s); reading its FALLBACK %s instead (%s)", where,
                type(error).__name__, str(error).splitlines()[0] if str(error) else "", fb_where, fb.evidence)
    try:
        ds = hub.load_source(fb.source, data.root, code)
    except Exception as e:
        raise UsageError(f"{where} could not be loaded ({type(error).__name__}: {error}) and neither could its "
                         f"fallback {fb_where} ({type(e).__name__}: {e})") from None
    if len(ds) != fb.rows:
        raise UsageError(f"fallback {fb_where} of {where} has {len(ds)} rows, the primary has {fb.rows}: not the "
                         f"same data; not used")
    digest = content_hash(ds, source)
    if fb.content_sha256 is not None and digest != fb.content_sha256:
        raise UsageError(f"fallback {fb_where} of {where}: content sha256 {digest} differs from the primary's "
                         f"{fb.content_sha256}: not the same rows; not used")
    verified = "row count and content hash" if fb.content_sha256 else "row count only (no content hash recorded)"
    log.warning("data: fallback %s for %s: %d rows, content sha256 %s; verified by %s", fb_where, where, len(ds),
                digest, verified)
    data.fallbacks_used[where] = dict(fb.source.describe(code), rows=len(ds), content_sha256=digest,
                                      verified_by=verified, evidence=fb.evidence,
                                      primary_error=f"{type(error).__name__}: {str(error)[:300]}")
    return ds


def load_source(source: Source, data, code: str | None = None):
    """One split as a ``datasets.Dataset``; a source with a ``fallback`` that cannot be loaded is read from the
    fallback (``_load_fallback``)."""
    data = as_settings(data)
    if type(source) is Source and source.fallback is not None:
        try:
            return hub.load_source(source, data.root, code)
        except Exception as e:  # script-only repo, missing parquet export, absent from the mirror: try the copy
            return _load_fallback(source, data, code, e)
    if isinstance(source, OptionDirSource):
        reader = READERS[source.reader]
        directory = option_directory(source, data)
        reader.check_split(directory, source.split, source.option, source.about)
        return reader.load_split(directory, source.split)
    if isinstance(source, PreparedSource):
        return hub.load_source(source, prepared_root(source, data.root), code)
    return hub.load_source(source, data.root, code)


def describe_source(source: Source | Concat, data, code: str | None = None) -> dict:
    """The source as the run's record describes it (an option directory with its resolved path and format)."""
    data = as_settings(data)
    if isinstance(source, Concat):
        return {"concatenation": [describe_source(p, data, code) for p in source.parts]}
    out = source.describe(code)
    used = data.fallbacks_used.get(_key(source, code)) if isinstance(source, Source) else None
    if used is not None:
        out["read_from_fallback"] = used
    if isinstance(source, OptionDirSource):
        value = data.option_dirs.get(source.option)
        out[source.option] = str(Path(value).resolve()) if value else None
        out.update(READERS[source.reader].describe_split(source.split))
    return out


def check_task_data(task: Task, languages: list[str], data, *, train: bool, dev: bool, test: bool) -> None:
    """Every source a run of ``task`` will read is there (then: its files are sound), before any work."""
    data = as_settings(data)
    sources = []  # (source, dataset code) in reading order
    if train and task.train:
        sources.append((task.train, None))
    if dev and task.dev:
        sources.append((task.dev, task.code(task.dev_language)))
    if test and task.test:
        sources += [(task.eval_source(lang), task.code(lang)) for lang in languages]
    for source, code in sources:
        check_source(source, data, code)
    for stage in task.stages if train else ():  # training stages run first (XCOPA: Social IQa, then COPA)
        check_task_data(stage, [], data, train=True, dev=True, test=False)
    # the files themselves (corrupt, empty, missing columns): after every presence check
    for source, code in sources:
        check_files(source, data, code)


# ----------------------------------------------------------------------------- rows of many languages
def language_groups(task: Task, source: Source, languages: list[str] | None):
    """How to load ``languages`` of ``source``: a list of (lang, dataset code, Source) to load one by one.

    lang is None when one load returns every language (one config with a language column, or an English-only
    dataset). Languages with their own Source (``Task.lang_sources``, when ``source`` is the test split) are
    loaded from it."""
    if languages is None:
        return [(None, None, source)]
    groups, shared = [], []
    for lang in languages:
        src = task.lang_sources.get(lang) if source is task.test else None
        if src is not None:
            groups.append((lang, task.code(lang), src))
        elif "{code}" in source.config:
            groups.append((lang, task.code(lang), source))
        else:
            shared.append(lang)
    if shared:
        groups.insert(0, (None, None, source))
    return groups


def check_columns(ds, source: Source, code: str | None = None) -> None:
    needed = list(source.columns.values()) + ([source.lang_column] if source.lang_column else [])
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise UsageError(f"dataset {source.hub_id}/{source.config_for(code)} [{source.split}] lacks field(s) "
                         f"{', '.join(missing)} that the registry expects; its fields are: {', '.join(ds.column_names)}")


def label_mapper(ds, column: str, labels: tuple[str, ...], where: str):
    """Return f(value)->int in the task's label order, whether the column is a ClassLabel or strings.

    A ClassLabel whose names differ from the registry is an error naming both lists.
    """
    from datasets import ClassLabel

    feat = ds.features[column]
    if isinstance(feat, ClassLabel):
        if tuple(feat.names) != tuple(labels):
            raise UsageError(f"{where}: label names of field {column!r} are {list(feat.names)}, "
                             f"but the registry expects {list(labels)}")
        return lambda v: int(v)
    index = {name: i for i, name in enumerate(labels)}

    def to_int(v):
        if v in index:
            return index[v]
        if v in (None, "", -1):
            return -1
        raise UsageError(f"{where}: label value {v!r} in field {column!r} is not one of {list(labels)}")

    return to_int


def combine_languages(parts: list, task: Task, where: str, languages: list[str] | None = None,
                      max_samples: int | None = None):
    """One dataset from per-language parts (a ``lang`` column): every requested language must have rows (else a
    UsageError naming the missing ones and the ones there are), then the first ``max_samples`` rows."""
    from datasets import concatenate_datasets

    ds = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    if languages is not None:
        counts = Counter(ds.with_format("arrow")["lang"].to_pylist())  # through Arrow: no row-by-row reads
        empty = [lang for lang in languages if not counts.get(lang)]
        if empty:
            raise UsageError(f"task {task.name}: no rows for language(s) {', '.join(empty)} in {where}; this "
                             f"split has: {sorted(counts)}")
    if max_samples is not None and max_samples < len(ds):
        ds = ds.select(range(max_samples))
    return ds
