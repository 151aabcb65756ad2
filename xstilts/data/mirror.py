"""Write local mirrors of Hugging Face Hub dataset repos (the layout ``--data_root`` reads).

``<root>/<org>/<name>/README.md`` (YAML front matter with ``dataset_info`` and ``configs``) and
``<root>/<org>/<name>/<config>/<split>-00000-of-00001.parquet`` written by ``datasets`` (so the Arrow
schema carries the Hub's feature types). ``datasets.load_dataset(<repo dir>, <config>)`` loads it
exactly as it loads the Hub repo. Used by the test-fixture builder, the converters (``xstilts.prepare``) and
``xstilts.synthetic``.

``Mirror`` collects repos, configs and splits as they are written, then writes every README and an
MLM corpus (every distinct text string, in the order written) at the end. Output is deterministic.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

from ..errors import UsageError

# Everything str.splitlines() treats as a line boundary.
_LINE_BREAKS = {ord(c): " " for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def parquet_name(config: str, split: str) -> str:
    return f"{config}/{split}-00000-of-00001.parquet"


def write_parquet(path: Path, rows: list[dict], features) -> None:
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: [r[k] for r in rows] for k in features}
    Dataset.from_dict(data, features=features).to_parquet(str(path))


def config_info(repo: Path, config: str, splits: list[str]) -> dict:
    """dataset_info entry for one config, read back from its parquet files."""
    import pyarrow.parquet as pq
    from datasets import Features

    features, split_infos, download_size = None, [], 0
    for split in splits:
        path = repo / parquet_name(config, split)
        table = pq.read_table(path)
        f = Features.from_arrow_schema(table.schema)  # HF metadata embedded by to_parquet
        assert features is None or f == features, (config, split)
        features = f
        split_infos.append({"name": split, "num_bytes": table.nbytes, "num_examples": table.num_rows})
        download_size += path.stat().st_size
    return {"config_name": config, "features": features._to_yaml_list(), "splits": split_infos,
            "download_size": download_size,
            "dataset_size": sum(s["num_bytes"] for s in split_infos)}


def write_readme(repo: Path, header: dict, configs: dict[str, list[str]], body: str) -> None:
    """README.md with Hub-style YAML: dataset_info (per config) then configs (data_files)."""
    import yaml

    names = sorted(configs)
    meta = dict(header)
    meta["dataset_info"] = [config_info(repo, c, configs[c]) for c in names]
    meta["configs"] = [{"config_name": c,
                        "data_files": [{"split": s, "path": parquet_name(c, s)} for s in configs[c]]}
                       for c in names]
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    (repo / "README.md").write_text(f"---\n{text}---\n\n{body}", encoding="utf-8", newline="\n")


def read_readme(repo: Path) -> tuple[dict, str]:
    """(header without dataset_info/configs, body) of an existing mirror README."""
    import re

    import yaml

    text = (Path(repo) / "README.md").read_text(encoding="utf-8")
    m = re.match(r"^---\n(.*?)\n---\n\n?(.*)$", text, re.S)
    if not m:
        return {}, text
    meta = yaml.safe_load(m.group(1)) or {}
    return {k: v for k, v in meta.items() if k not in ("dataset_info", "configs")}, m.group(2)


def _texts(value) -> Iterable[str]:
    """Corpus lines of a field value: a string is one line; a list of strings (tokens, choices) is one
    line joined by spaces; other values contribute nothing."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        yield " ".join(value)


class Mirror:
    """Collects what is written under ``root`` and writes READMEs and the corpus at ``finish``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.repos: dict[str, dict] = {}  # repo id -> {"configs": {config: [splits]}, "header", "body", "readme"}
        self.corpus: dict[str, None] = {}  # insertion-ordered set of text lines

    def repo_dir(self, repo_id: str) -> Path:
        return self.root / repo_id

    def _repo(self, repo_id: str) -> dict:
        return self.repos.setdefault(repo_id, {"configs": {}, "header": {}, "body": "", "readme": None})

    def describe(self, repo_id: str, header: dict, body: str) -> None:
        r = self._repo(repo_id)
        r["header"], r["body"] = header, body

    def add_corpus(self, rows: list[dict], fields: Iterable[str]) -> None:
        fields = list(fields)
        for row in rows:
            for field in fields:
                for text in _texts(row[field]):
                    text = text.translate(_LINE_BREAKS)
                    if text.strip():
                        self.corpus.setdefault(text)

    def _register(self, repo_id: str, config: str, split: str) -> None:
        splits = self._repo(repo_id)["configs"].setdefault(config, [])
        assert split not in splits, (repo_id, config, split)
        splits.append(split)

    def write(self, repo_id: str, config: str, split: str, rows: list[dict], features,
              corpus_fields: Iterable[str] = ()) -> Path:
        path = self.repo_dir(repo_id) / parquet_name(config, split)
        write_parquet(path, rows, features)
        self._register(repo_id, config, split)
        self.add_corpus(rows, corpus_fields)
        return path

    def copy(self, src_repo: Path, repo_id: str, config: str, split: str, features=None,
             corpus_fields: Iterable[str] = ()) -> Path:
        """Copy one parquet file byte for byte (checking its features when given)."""
        import pyarrow.parquet as pq
        from datasets import Features

        rel = parquet_name(config, split)
        dst = self.repo_dir(repo_id) / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(src_repo) / rel, dst)
        if features is not None:
            got = Features.from_arrow_schema(pq.read_schema(dst))
            assert got == features and list(got) == list(features), (repo_id, config, got)
        self._register(repo_id, config, split)
        if corpus_fields:
            self.add_corpus(pq.read_table(dst).to_pylist(), corpus_fields)
        return dst

    def copy_readme(self, src_repo: Path, repo_id: str) -> None:
        """Use the source repo's README verbatim instead of generating one."""
        self._repo(repo_id)["readme"] = Path(src_repo) / "README.md"

    def on_disk(self, repo_id: str) -> dict[str, list[str]]:
        """Every config/split of a repo present on disk (written now or by an earlier build), with the
        splits written in this build first in their order."""
        d = self.repo_dir(repo_id)
        known = self.repos.get(repo_id, {}).get("configs", {})
        out: dict[str, list[str]] = {}
        for f in sorted(d.glob("*/*-00000-of-00001.parquet")):
            config, split = f.parent.name, f.name[: -len("-00000-of-00001.parquet")]
            out.setdefault(config, [])
            if split not in known.get(config, []):
                out[config].append(split)
        for config, splits in out.items():
            out[config] = list(known.get(config, [])) + splits
        return out

    def finish(self, corpus_path: Path | None = None) -> int:
        """Write each touched repo's README (listing every config on disk) and, if asked, the corpus."""
        for repo_id, r in self.repos.items():
            d = self.repo_dir(repo_id)
            d.mkdir(parents=True, exist_ok=True)
            if r["readme"] is not None:
                shutil.copyfile(r["readme"], d / "README.md")
            else:
                header, body = r["header"], r["body"]
                if not header and (d / "README.md").exists():  # partial build: keep the repo's description
                    header, body = read_readme(d)
                write_readme(d, header, self.on_disk(repo_id), body)
        if corpus_path is not None:
            Path(corpus_path).write_text("".join(f"{t}\n" for t in self.corpus), encoding="utf-8", newline="\n")
        return len(self.corpus)


def claim_local_repo(out_dir: Path, repo_id: str, overwrite: bool) -> Path:
    """Refuse to replace an existing prepared repo ``<out_dir>/<repo_id>`` unless ``overwrite`` (check it before
    any slow conversion)."""
    target = Path(out_dir) / repo_id
    if (target / "README.md").exists() and not overwrite:
        raise UsageError(f"{target} already exists; pass --overwrite to convert again")
    return target


def write_local_repo(out_dir: Path, repo_id: str, tables: dict, features_of, header: dict, body: str) -> Path:
    """Write ``{(config, split): rows}`` as the repo ``<out_dir>/<repo_id>`` (a prepared, local-only dataset),
    replacing what was there (``claim_local_repo`` first). ``features_of(config)`` gives each config's Features."""
    target = Path(out_dir) / repo_id
    if target.exists():
        shutil.rmtree(target)
    m = Mirror(out_dir)
    for (config, split), rows in tables.items():
        m.write(repo_id, config, split, rows, features_of(config))
    m.describe(repo_id, header, body)
    m.finish(None)
    return target
