"""Reading Hub sources: real Hub ids, optionally redirected to a local mirror with the Hub's layout.

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
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from ..errors import UsageError
from ..files import sha256_file
from ..tasks.types import PARQUET_EXPORT, Source

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

    h = hashlib.sha256()
    readme = repo / "README.md"
    h.update(f"README.md {sha256_file(readme) if readme.exists() else '-'}\n".encode())
    for split in sorted(files):
        for f in sorted(files[split]):
            h.update(f"{split} {Path(os.path.relpath(f, repo.resolve())).as_posix()} {sha256_file(f)}\n".encode())
    return h.hexdigest()[:16]


def _module_key(repo: Path) -> tuple:
    """The repo, its README's version (size and mtime, as ``_card`` keys its parse) and the names of its files (a
    file added or taken away is a new key)."""
    try:
        st = (repo / "README.md").stat()
        version = (st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        version = None
    listing = sorted(os.path.relpath(os.path.join(d, f), repo) for d, dirs, fs in os.walk(repo)
                     for f in fs if not f.startswith("."))
    return (str(repo.resolve()), version, tuple(listing))


@lru_cache(maxsize=16)
def _local_module(path: str, key: tuple):
    """``datasets``' module of a local repo (its README parsed, every config's files resolved, hashed), built once
    per README version in a process."""
    from datasets.load import LocalDatasetModuleFactory

    return LocalDatasetModuleFactory(path).get_module()


@contextmanager
def _module_read_once(repo: Path):
    """Inside the block, ``load_dataset(str(repo), ...)`` reuses this process's module of ``repo`` (a copy: the
    loader pops keys from its ``builder_kwargs``) instead of re-reading the repo.

    Why: for a local repo ``datasets`` re-parses README.md (pure-Python YAML), resolves the files of every config
    and hashes them on every ``load_dataset`` call. A google/xtreme card lists hundreds of configs, and a Tatoeba
    run loads one config per language: 41 loads re-read the same card. The module depends only on the README and the
    repo's file listing, and is keyed on both; which rows are read (and their cache folder) stays keyed on the
    content of the files read (``config_id``, ``mirror_fingerprint``)."""
    import dataclasses

    import datasets.load as dl

    path = str(repo)
    original = dl.dataset_module_factory
    key = _module_key(repo)

    def factory(p, *args, **kwargs):
        if p == path and not args and not kwargs.get("data_dir") and not kwargs.get("data_files"):
            module = _local_module(path, key)
            return dataclasses.replace(module, builder_kwargs=dict(module.builder_kwargs))
        return original(p, *args, **kwargs)

    dl.dataset_module_factory = factory
    try:
        yield
    finally:
        dl.dataset_module_factory = original


def check_source(source: Source, data_root: Path | None, code: str | None = None) -> None:
    """Fail early (before any model loads) if a local mirror lacks the config or split of ``source``."""
    if data_root is None:
        return  # the Hub is the authority; load_dataset reports problems itself
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


def check_files(source: Source, data_root: Path | None, code: str | None = None) -> None:
    """The data files a mirror load of ``source`` reads are sound (``mirror_files``); nothing to check for the
    Hub."""
    if data_root is not None:
        mirror_files(data_root / source.hub_id, source.config_for(code))


def load_source(source: Source, data_root: Path | None, code: str | None = None):
    """Load one split as a ``datasets.Dataset`` (from the Hub, or the local mirror under ``data_root``)."""
    from datasets import load_dataset

    config = source.config_for(code)
    if data_root is not None:
        # A local mirror: check its files, then key the cache on their content (config_id names the cache
        # folder <dataset>/<config_id>/..., and the loaded dataset's fingerprint, hence every .map cache made
        # from it, derives from that folder; `datasets` keys `Dataset.from_generator` caches the same way).
        repo = data_root / source.hub_id
        files = mirror_files(repo, config)
        key = mirror_fingerprint(repo, files)
        try:
            with _module_read_once(repo):
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
