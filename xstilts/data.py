"""Dataset resolution: real Hub ids, optionally redirected to a local mirror with the Hub's layout.

With no data root, ``load_dataset(hub_id, config, split=..., revision=...)`` is called unchanged.
With ``--data_root DIR`` (or ``XSTILTS_DATA_ROOT=DIR``) the same call reads ``DIR/<hub_id>``, a
directory laid out like the Hub repo (``<config>/<split>-*.parquet`` plus a README whose YAML
lists the configs). The test fixtures in ``tests/fixtures/hub`` are such a mirror.

A mirror is checked before it is read (``mirror_files``: every data file of the config present, a readable
parquet file with rows and with the columns the README declares, split sizes as the README says), and
the ``datasets`` cache of a mirror load is keyed by the content of what is read (``mirror_fingerprint``).
``datasets`` alone keys a local repo's cache on its README (file patterns, declared infos) only: a second
mirror with the same README, or a file changed in place, would be served the first load's cached rows.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from .errors import UsageError
from .registry import PARQUET_EXPORT, Concat, Source, Task, source_parts

DATA_ROOT_ENV = "XSTILTS_DATA_ROOT"


def resolve_data_root(cli_value: str | None) -> Path | None:
    value = cli_value if cli_value else os.environ.get(DATA_ROOT_ENV) or None
    if value is None:
        return None
    root = Path(value)
    if not root.is_dir():
        src = "--data_root" if cli_value else DATA_ROOT_ENV
        raise UsageError(f"data root {value!r} (from {src}) is not a directory; pass a directory that mirrors "
                         f"the Hub layout (<root>/<org>/<dataset>/<config>/<split>-*.parquet), e.g. tests/fixtures/hub")
    return root


def _card(repo_dir: str) -> dict:
    """The YAML front matter of ``<repo_dir>/README.md`` ({} without one); parsed once per README version."""
    readme = Path(repo_dir) / "README.md"
    try:
        st = readme.stat()
    except FileNotFoundError:
        return {}
    return _parse_card(str(readme), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _parse_card(readme: str, size: int, mtime_ns: int) -> dict:
    import yaml

    text = Path(readme).read_text(encoding="utf-8")
    m = re.match(r"^---\s*\n(.*?)\n---", text, re.S)
    if not m:
        return {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # a full google/xtreme card is large
    try:
        meta = yaml.load(m.group(1), Loader=loader) or {}
    except yaml.YAMLError as e:
        raise UsageError(f"{readme}: the YAML front matter does not parse ({e})") from None
    return meta if isinstance(meta, dict) else {}


def _local_configs(repo_dir: str) -> dict[str, list[str]]:
    """config name -> split names, read from the README's YAML ``configs:`` block."""
    out = {}
    for c in _card(repo_dir).get("configs", []) or []:
        files = c.get("data_files", [])
        if isinstance(files, list):
            splits = [f.get("split", "train") for f in files if isinstance(f, dict)]
        else:
            splits = ["train"]
        out[c["config_name"]] = splits
    return out


def _declared_info(card: dict, config: str) -> dict:
    """The README's ``dataset_info`` entry of ``config`` ({} when it declares none)."""
    infos = card.get("dataset_info") or []
    if isinstance(infos, dict):
        infos = [infos]
    for info in infos:
        if isinstance(info, dict) and info.get("config_name", "default") == config:
            return info
    return {}


def mirror_files(repo: Path, config: str) -> dict[str, list[Path]]:
    """split -> data files of ``config`` in a local mirror, checked: a clear error (naming the file) for a
    missing file, a parquet file that does not open, an empty one, one without a column the README
    declares, and split sizes other than the README's. Reads parquet footers only (milliseconds).

    ``datasets`` builds every split of a config at once, so every split is checked, not only the one used."""
    import pyarrow.parquet as pq
    from datasets.data_files import resolve_pattern, sanitize_patterns

    card = _card(str(repo))
    entry = next((c for c in card.get("configs", []) or [] if c.get("config_name") == config), None)
    if entry is None:
        raise UsageError(f"dataset {str(repo)!r} has no config {config!r} in README.md")
    base = repo / entry["data_dir"] if entry.get("data_dir") else repo
    info = _declared_info(card, config)
    declared = [f["name"] for f in info.get("features", []) or [] if isinstance(f, dict) and "name" in f]
    sizes = {s["name"]: s.get("num_examples") for s in info.get("splits", []) or [] if isinstance(s, dict)}
    where = f"{repo}/README.md (config {config!r})"
    # without declared features `datasets` takes the first file's columns and fills columns missing from
    # a later file with None: every file must have the columns of the first one
    reference = (where + " declares", declared) if declared else None
    out: dict[str, list[Path]] = {}
    for split, patterns in sanitize_patterns(entry.get("data_files") or []).items():
        files = []
        for pattern in patterns:
            try:
                files += [Path(f) for f in resolve_pattern(pattern, base_path=str(base))]
            except FileNotFoundError:
                raise UsageError(f"{where} lists {pattern!r} for split {split!r}, but no such file exists under "
                                 f"{base}: the mirror is incomplete; copy or regenerate the missing file") from None
        rows = 0
        for f in files:
            if f.suffix != ".parquet":
                continue
            try:
                meta = pq.ParquetFile(f).metadata
            except Exception as e:  # pyarrow raises ArrowInvalid / OSError for truncated or foreign files
                raise UsageError(f"{f} is not a readable parquet file ({e}); it is corrupt or truncated: "
                                 f"download or regenerate it") from None
            if meta.num_rows == 0:
                raise UsageError(f"{f} (split {split!r} of config {config!r}) holds 0 rows: an empty split; "
                                 f"download or regenerate it")
            columns = meta.schema.to_arrow_schema().names
            if reference is None:
                reference = (f"{f} (the first file of config {config!r}) has", columns)
            missing = [c for c in reference[1] if c not in columns]
            if missing:
                raise UsageError(f"{f} lacks column(s) {', '.join(missing)} that {reference[0]}; its columns "
                                 f"are {', '.join(sorted(columns))}. The file is from another version of the "
                                 f"dataset or was cut short: download or regenerate it")
            rows += meta.num_rows
        expected = sizes.get(split)
        if expected is not None and files and all(f.suffix == ".parquet" for f in files) and rows != expected:
            raise UsageError(f"split {split!r} of config {config!r} holds {rows} rows in {base}, but {where} says "
                             f"{expected}: README and data files are from different versions; regenerate the "
                             f"README (or the files)")
        out[split] = files
    return out


def mirror_fingerprint(repo: Path, files: dict[str, list[Path]]) -> str:
    """A key for everything a mirror load of one config reads: the README (its declared features shape
    the rows) and the content of every data file, with its split and path inside the repo. Two mirrors
    with the same content share a key (and a cache); any changed byte changes it. SHA-256 reads about
    1 GB/s, a small cost next to a load."""
    import hashlib

    from .prepare.downloads import sha256_file

    h = hashlib.sha256()
    readme = repo / "README.md"
    h.update(f"README.md {sha256_file(readme) if readme.exists() else '-'}\n".encode())
    for split in sorted(files):
        for f in sorted(files[split]):
            h.update(f"{split} {Path(os.path.relpath(f, repo.resolve())).as_posix()} {sha256_file(f)}\n".encode())
    return h.hexdigest()[:16]


def check_source(source: Source | Concat, data_root: Path | None, code: str | None = None) -> None:
    """Fail early (before any model loads) if a local mirror lacks the config or split (of every part)."""
    if hasattr(source, "check_local"):  # data not on the Hub (xstilts.local_data.LocalSource) checks itself
        return source.check_local(data_root, code)
    if data_root is None:
        return  # the Hub is the authority; load_dataset reports problems itself
    if isinstance(source, Concat):
        for part in source.parts:
            check_source(part, data_root, code)
        return
    repo = data_root / source.hub_id
    config = source.config_for(code)
    if not repo.is_dir():
        raise UsageError(f"data root {str(data_root)!r} has no dataset {source.hub_id!r} (expected directory {repo})")
    configs = _local_configs(str(repo))
    if config not in configs:
        raise UsageError(f"dataset {source.hub_id!r} under data root {str(data_root)!r} has no config {config!r}; "
                         f"available configs: {', '.join(sorted(configs)) or '(none: README.md lacks a configs: block)'}")
    if source.split not in configs[config]:
        raise UsageError(f"config {config!r} of {source.hub_id!r} has no split {source.split!r}; "
                         f"available splits: {', '.join(configs[config])}")


def check_task_data(task: Task, languages: list[str], data_root: Path | None, *, train: bool, dev: bool,
                    test: bool) -> None:
    if train and task.train:
        check_source(task.train, data_root)
    if dev and task.dev:
        check_source(task.dev, data_root, task.code(task.dev_language))
    if test and task.test:
        for lang in languages:
            check_source(task.eval_source(lang), data_root, task.code(lang))
    for stage in task.stages if train else ():  # training stages run first (XCOPA: Social IQa, then COPA)
        check_task_data(stage, [], data_root, train=True, dev=True, test=False)
    # the files themselves (corrupt, empty, missing columns): after every presence check
    if train and task.train:
        check_source_files(task.train, data_root)
    if dev and task.dev:
        check_source_files(task.dev, data_root, task.code(task.dev_language))
    if test and task.test:
        for lang in languages:
            check_source_files(task.eval_source(lang), data_root, task.code(lang))


def check_source_files(source: Source | Concat, data_root: Path | None, code: str | None = None) -> None:
    """The data files a mirror load of ``source`` reads are sound (``mirror_files``); nothing to check for
    the Hub or for data given as a directory option (read by its own reader)."""
    from .local_data import PreparedSource

    if isinstance(source, Concat):
        for part in source.parts:
            check_source_files(part, data_root, code)
    elif isinstance(source, PreparedSource):
        check_source_files(source.plain(), source.root(data_root), code)
    elif data_root is not None and not hasattr(source, "load_local"):
        mirror_files(data_root / source.hub_id, source.config_for(code))


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


def load_source(source: Source, data_root: Path | None, code: str | None = None):
    """Load one split as a ``datasets.Dataset`` (from the Hub or the local mirror)."""
    from datasets import load_dataset

    if hasattr(source, "load_local"):  # data not on the Hub (xstilts.local_data.LocalSource) loads itself
        return source.load_local(data_root, code)

    config = source.config_for(code)
    if data_root is not None:
        # A local mirror: check its files, then key the cache on their content (config_id names the cache
        # folder <dataset>/<config_id>/..., and the loaded dataset's fingerprint, hence every .map cache made
        # from it, derives from that folder; `datasets` keys `Dataset.from_generator` caches the same way).
        repo = data_root / source.hub_id
        key = mirror_fingerprint(repo, mirror_files(repo, config))
        try:
            return load_dataset(str(repo), config, split=source.split, config_id=f"{config}-data={key}")
        except FileNotFoundError as e:  # `datasets` resolves the README's first config on every load
            m = re.search(r"Unable to find '([^']+)'", str(e))
            raise UsageError(f"{repo}: {m.group(1) if m else e} is missing. `datasets` opens the first config that "
                             f"README.md lists on every load of the repo: a partial mirror must keep that "
                             f"config's files, or list in its README only the configs it holds") from None
    kwargs = {}
    if source.revision:
        kwargs["revision"] = source.revision
        if source.revision == PARQUET_EXPORT:
            # The Hub's parquet export of a script-only repo holds <config>/<split>/*.parquet and no README
            # `configs:`; `datasets` sees one unnamed config there, so the config is chosen by its folder.
            return load_dataset(source.hub_id, data_dir=config, split=source.split, **kwargs)
    return load_dataset(source.hub_id, config, split=source.split, **kwargs)


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


PAIR_FEATURES = {"text_a": "string", "text_b": "string", "label": "int64", "lang": "string"}


def proportional_shares(sizes: list[int], total: int) -> list[int]:
    """Split ``total`` over parts in proportion to ``sizes`` (largest remainder; ties go to the earlier part)."""
    n = sum(sizes)
    if total >= n:
        return list(sizes)
    exact = [total * s / n for s in sizes]
    out = [int(x) for x in exact]
    for i in sorted(range(len(sizes)), key=lambda i: (-(exact[i] - out[i]), i))[: total - sum(out)]:
        out[i] += 1
    return out


def load_pair_classification(task: Task, source: Source | Concat, data_root: Path | None,
                             languages: list[str] | None = None, max_samples: int | None = None):
    """Rows -> canonical ``{text_a, text_b, label, lang}``; one dataset even for many languages.

    * A source without a ``text_b`` column mapping is single-sentence classification (SST-2): ``text_b`` is None.
    * Rows of a *training* source that have no gold label (-1: GLUE test splits, SNLI pairs without annotator
      consensus) are dropped, and the count is logged; evaluation splits keep every row.
    * A ``Concat`` (ANLI+) is loaded part by part into one dataset in the task's one label set; with
      ``max_samples`` every part keeps the same share (proportional, from the start of each part).
    """
    import logging

    from datasets import Features, Value, concatenate_datasets

    if isinstance(source, Concat):
        dss = [load_pair_classification(task, part, data_root, languages) for part in source.parts]
        if max_samples is not None:
            dss = [d.select(range(k)) for d, k in zip(dss, proportional_shares([len(d) for d in dss], max_samples))]
        return concatenate_datasets(dss)

    log = logging.getLogger(__name__)
    training = source in source_parts(task.train)
    features = Features({k: Value(v) for k, v in PAIR_FEATURES.items()})
    parts = []
    for lang, code, source in language_groups(task, source, languages):
        where = f"{source.hub_id}/{source.config_for(code)}[{source.split}]"
        ds = load_source(source, data_root, code)
        check_columns(ds, source, code)
        to_int = label_mapper(ds, source.columns["label"], task.labels, where)
        lang_col = source.lang_column
        if lang_col and languages is not None:
            wanted = set(languages)
            ds = ds.filter(lambda v: v in wanted, input_columns=lang_col)
        cols = source.columns
        fixed_lang = lang or "en"

        def convert(batch):
            n = len(batch[cols["text_a"]])
            return {
                "text_a": batch[cols["text_a"]],
                "text_b": batch[cols["text_b"]] if "text_b" in cols else [None] * n,
                "label": [to_int(v) for v in batch[cols["label"]]],
                "lang": batch[lang_col] if lang_col else [fixed_lang] * n,
            }

        ds = ds.map(convert, batched=True, remove_columns=ds.column_names, features=features)
        if training:
            n = len(ds)
            ds = ds.filter(lambda v: v >= 0, input_columns="label")
            if len(ds) < n:
                log.info("%s: dropped %d of %d training rows without a gold label (-1)", where, n - len(ds), n)
        parts.append(ds)
    return combine_languages(parts, task, f"{source.hub_id}/{source.config}[{source.split}]", languages, max_samples)


def combine_languages(parts: list, task: Task, where: str, languages: list[str] | None = None,
                      max_samples: int | None = None):
    """One dataset from per-language parts (a ``lang`` column): every requested language must have rows (else a
    UsageError naming the missing ones and the ones there are), then the first ``max_samples`` rows."""
    from collections import Counter

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


def load_retrieval_pairs(task: Task, source: Source, data_root: Path | None, lang: str):
    """Aligned sentence pairs for one language: (non-English sentences, English sentences).

    Row i of both lists are translations of each other (Tatoeba: the gold is the row index).
    The Hub loader keeps a trailing newline on Tatoeba lines; it is stripped here.
    """
    code = task.code(lang)
    ds = load_source(source, data_root, code)
    check_columns(ds, source, code)
    src = [s.rstrip("\n") for s in ds[source.columns["source"]]]
    tgt = [s.rstrip("\n") for s in ds[source.columns["target"]]]
    return src, tgt
