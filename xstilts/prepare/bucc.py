"""BUCC 2018 data in the original release format, and its conversion to the kit layout.

The shared task (https://comparable.limsi.fr/bucc2018/) ships one archive per language pair and release:
``bucc2018-<lang>-en.sample-gold.tar.bz2`` and ``bucc2018-<lang>-en.training-gold.tar.bz2``. Each holds
``bucc2018/<lang>-en/<lang>-en.<release>.{<lang>,en,gold}``:

* ``<lang>-en.<release>.<lang>`` and ``<lang>-en.<release>.en``: one sentence a line, ``<id>\\t<sentence>``
  (ids like ``de-000000123`` / ``en-000000456``): the whole comparable corpus, distractors included;
* ``<lang>-en.<release>.gold``: the parallel pairs, ``<src_id>\\t<trg_id>``.

As in XTREME (and the Hugging Face ``bucc18`` configs), ``sample`` is the **dev** split and
``training`` the **test** split (XTREME issue #13). :func:`convert_release` writes
``<out_dir>/local/bucc2018/<lang>-en.{dev,test}.{<lang>,en,gold}``. It keeps the test gold, which XTREME's
download deletes, so the test F1 can be computed locally.

Command line (``make data-bucc`` runs the first)::

    python -m xstilts.prepare.bucc --out_dir data --download [--langs de fr ru zh] [--record_checksums]
    python -m xstilts.prepare.bucc --out_dir data --archive_dir DIR      # archives already downloaded into DIR

Every archive is checked against its recorded SHA-256 (``xstilts/prepare/data_checksums.json``, else
the ``SHA256SUMS`` of an earlier download next to the archives; see :mod:`xstilts.prepare.downloads`). The BUCC
sums are NOT recorded in the kit yet (it was built offline): the first download prints them as UNVERIFIED.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import UsageError, choices_error, exits_on_usage_error
from ..files import sha256_file
from ..retrieval.bucc import dedupe, gold_with_duplicated_text
from ..tasks.languages import BUCC2018
from ..tasks.retrieval import BUCC2018_DIR
from .downloads import SUMS_NAME, download_dir, fetch, read_sums, record_checksums, verify_file

logger = logging.getLogger(__name__)

LANGS = BUCC2018
RELEASE_OF_SPLIT = {"dev": "sample", "test": "training"}  # kit split -> BUCC release name
BUCC_URL = "https://comparable.limsi.fr/bucc2018/"
KIT_DIR = BUCC2018_DIR  # <data dir>/local/bucc2018/<lang>-en.{dev,test}.{<lang>,en,gold} (the local-data rule)
EXTS = ("src", "en", "gold")


@dataclass
class BuccSplit:
    lang: str
    split: str
    src_ids: list[str]
    src_sentences: list[str]
    trg_ids: list[str]
    trg_sentences: list[str]
    gold: set[tuple[str, str]] | None  # None when the split has no gold file

    def __len__(self) -> int:
        return len(self.src_ids)


def archive_name(lang: str, release: str) -> str:
    return f"bucc2018-{lang}-en.{release}-gold.tar.bz2"


def split_file(directory: str | os.PathLike, lang: str, split: str, ext: str) -> Path:
    """``<directory>/<lang>-en.<split>.<ext>`` with ``ext`` in ``{lang, "en", "gold"}`` (``"src"`` = lang)."""
    return Path(directory) / f"{lang}-en.{split}.{lang if ext == 'src' else ext}"


def read_sentences(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``<id>\\t<sentence>`` lines -> (ids, sentences); sentences are stripped of surrounding whitespace."""
    ids, sentences = [], []
    with open(path, encoding="utf-8", newline="") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            sid, sep, sentence = line.partition("\t")
            if not sep or not sid.strip():
                raise UsageError(f"{path} line {n}: expected '<id><TAB><sentence>', got {line[:80]!r}")
            ids.append(sid.strip())
            sentences.append(sentence.strip())
    return ids, sentences


def read_gold(path: str | os.PathLike) -> set[tuple[str, str]]:
    """``<src_id>\\t<trg_id>`` lines -> set of pairs."""
    gold = set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise UsageError(f"{path} line {n}: expected '<src_id><TAB><trg_id>', got {line[:80]!r}")
            gold.add((parts[0].strip(), parts[1].strip()))
    return gold


def read_split(directory: str | os.PathLike, lang: str, split: str) -> BuccSplit:
    """Read ``<directory>/<lang>-en.<split>.{<lang>,en,gold}``.

    ``split`` is the name in the file names: ``sample``/``training`` in an extracted release,
    ``dev``/``test`` in the kit layout. A missing gold file gives ``gold=None``.
    """
    src_path = split_file(directory, lang, split, "src")
    trg_path = split_file(directory, lang, split, "en")
    missing = [str(p) for p in (src_path, trg_path) if not p.is_file()]
    if missing:
        raise UsageError(f"BUCC 2018 {lang}-en {split}: missing {', '.join(missing)}. Convert the release "
                         f"archives with `python -m xstilts.prepare.bucc` (`make data-bucc` downloads them from "
                         f"{BUCC_URL})")
    src_ids, src_sentences = read_sentences(src_path)
    trg_ids, trg_sentences = read_sentences(trg_path)
    for path, ids in ((src_path, src_ids), (trg_path, trg_ids)):
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise UsageError(f"{path}: sentence id {dup!r} occurs more than once")
    gold_path = split_file(directory, lang, split, "gold")
    gold = read_gold(gold_path) if gold_path.is_file() else None
    if gold is not None:
        src_set, trg_set = set(src_ids), set(trg_ids)
        unknown = [p for p in gold if p[0] not in src_set or p[1] not in trg_set]
        if unknown:  # cannot be found by mining; they still count in the recall denominator
            logger.warning("%s: %d gold pair(s) name ids that are not in the sentence files, e.g. %s",
                           gold_path, len(unknown), sorted(unknown)[0])
    return BuccSplit(lang, split, src_ids, src_sentences, trg_ids, trg_sentences, gold)


# --------------------------------------------------------------------------------------------- archives

def load_checksums(table: Mapping[str, str] | str | os.PathLike | None) -> dict[str, str] | None:
    """A checksum table: ``{archive file name: sha256 hex}`` or a ``sha256sum``-style file
    (``<hex>  <file name>`` per line)."""
    if table is None:
        return None
    if isinstance(table, Mapping):
        return {Path(k).name: v.lower() for k, v in table.items()}

    if not Path(table).is_file():
        raise FileNotFoundError(table)
    return read_sums(Path(table))


def _member_bytes(archive: Path, wanted: str) -> bytes:
    """The content of the single regular file whose base name is ``wanted`` (any directory prefix)."""
    with tarfile.open(archive, "r:bz2") as tar:
        hits = [m for m in tar.getmembers() if m.isfile() and m.name.rsplit("/", 1)[-1] == wanted]
        if len(hits) != 1:
            raise UsageError(f"{archive}: expected one file named {wanted!r}, found {len(hits)} "
                             "(is this a BUCC 2018 release archive?)")
        f = tar.extractfile(hits[0])
        return f.read()


def convert_release(archive_dir: str | os.PathLike, out_dir: str | os.PathLike,
                    langs: Iterable[str] = LANGS, checksums: Mapping[str, str] | str | os.PathLike | None = None,
                    verified: Mapping[str, str | None] | None = None) -> dict:
    """Extract the BUCC 2018 release archives into ``<out_dir>/local/bucc2018/<lang>-en.{dev,test}.{<lang>,en,gold}``.

    Reads ``<archive_dir>/bucc2018-<lang>-en.{sample,training}-gold.tar.bz2`` (``sample`` -> dev,
    ``training`` -> test). With a ``checksums`` table, every archive's SHA-256 must match its entry.
    Only the three expected files are read from each archive (no paths from the archive are used
    for writing). Writes ``local/bucc2018/manifest.json`` (archives, hashes, counts) and returns it.
    """
    langs = list(langs)
    for lang in langs:
        if lang not in LANGS:
            raise choices_error("BUCC 2018 language", lang, LANGS)
    archive_dir = Path(archive_dir)
    table = load_checksums(checksums)
    jobs = [(lang, split, release, archive_dir / archive_name(lang, release))
            for lang in langs for split, release in RELEASE_OF_SPLIT.items()]
    missing = [str(path) for *_, path in jobs if not path.is_file()]
    if missing:
        raise UsageError(f"missing BUCC 2018 archive{'s' if len(missing) > 1 else ''}: {', '.join(missing)}. "
                         f"`make data-bucc` downloads {'them' if len(missing) > 1 else 'it'} from {BUCC_URL} "
                         f"(or put the file{'s' if len(missing) > 1 else ''} there by hand)")
    out = kit_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"source": BUCC_URL, "split_mapping": RELEASE_OF_SPLIT, "archives": {}, "splits": {}}
    for lang, split, release, path in jobs:
        digest = sha256_file(path)
        if table is not None:
            expected = table.get(path.name)
            if expected is None:
                raise UsageError(f"the checksum table has no entry for {path.name}")
            if digest != expected:
                raise UsageError(f"{path}: SHA-256 {digest} does not match the expected {expected} "
                                 f"(corrupt or different download; delete it and download again from {BUCC_URL})")
        against = (verified or {}).get(path.name) or ("checksums table" if table is not None else None)
        manifest["archives"][path.name] = {"sha256": digest, "verified": against is not None,
                                           "verified_against": against}
        for ext in EXTS:
            member = split_file("", lang, release, ext).name
            data = _member_bytes(path, member)
            target = split_file(out, lang, split, ext)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        s = read_split(out, lang, split)  # validates the written files
        dup = duplicate_counts(s)
        manifest["splits"][f"{lang}-{split}"] = {
            "release": release, "archive": path.name, "src_sentences": len(s.src_ids),
            "en_sentences": len(s.trg_ids), "gold_pairs": len(s.gold or ()), **dup}
        logger.info("bucc2018 %s %s (%s): %d %s / %d en sentences, %d gold pairs (%d involve a sentence text that "
                    "occurs more than once: never found with duplicates=drop)", lang, split, release,
                    len(s.src_ids), lang, len(s.trg_ids), len(s.gold or ()), dup["gold_pairs_with_duplicated_text"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def duplicate_counts(split: BuccSplit) -> dict:
    """Sentence texts that occur more than once on a side (LASER and XTREME drop them, jiant expands them to every
    id: ``xstilts.retrieval.bucc.DUPLICATES``), the ids they cover, and the gold pairs that involve one."""
    src, trg = dedupe(split.src_ids, split.src_sentences), dedupe(split.trg_ids, split.trg_sentences)
    out = {}
    for side, (_, t2i) in (("src", src), ("en", trg)):
        dup = [ids for ids in t2i.values() if len(ids) > 1]
        out[f"{side}_duplicated_texts"] = len(dup)
        out[f"{side}_ids_with_duplicated_text"] = sum(len(ids) for ids in dup)
    out["gold_pairs_with_duplicated_text"] = gold_with_duplicated_text(split.gold or (), src, trg)
    return out


def write_archive(archive_path: str | os.PathLike, src_dir: str | os.PathLike, lang: str, release: str) -> Path:
    """Pack ``<src_dir>/<lang>-en.<release>.{<lang>,en,gold}`` into a release-layout ``.tar.bz2``
    (``bucc2018/<lang>-en/...``), byte-for-byte reproducible: fixed mtime, owner and mode."""
    archive_path = Path(archive_path)
    archive_path.parent.mkdir(parents=True, exist_ok=True)

    def info(name: str, size: int | None) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, 0, "", ""
        if size is None:
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        else:
            ti.size, ti.mode = size, 0o644
        return ti

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info("bucc2018/", None))
        tar.addfile(info(f"bucc2018/{lang}-en/", None))
        for ext in EXTS:
            p = split_file(src_dir, lang, release, ext)
            data = p.read_bytes()
            tar.addfile(info(f"bucc2018/{lang}-en/{p.name}", len(data)), io.BytesIO(data))
    import bz2

    archive_path.write_bytes(bz2.compress(buf.getvalue(), compresslevel=9))
    return archive_path


def kit_dir(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / KIT_DIR


def check_available(data_dir: str | os.PathLike, langs: Iterable[str], hint: str = "") -> None:
    """Fail early (before any model loads) if the converted dev/test files of a language are missing."""
    d = kit_dir(data_dir)
    missing = [str(split_file(d, lang, split, ext)) for lang in langs for split in RELEASE_OF_SPLIT
               for ext in EXTS if not split_file(d, lang, split, ext).is_file()]
    if missing:
        shown = ", ".join(missing[:4]) + (f", ... ({len(missing)} files in all)" if len(missing) > 4 else "")
        raise UsageError(f"BUCC 2018 data not found under {d} (missing {shown}). Run `make data-bucc` "
                         f"(downloads the original BUCC 2018 archives from {BUCC_URL}, checks them and converts "
                         f"them into {KIT_DIR}/ under DATA_DIR, default data/){hint}")


def download_release(out_dir: str | os.PathLike, langs: Iterable[str] = LANGS, *, base_url: str = BUCC_URL,
                     archive_dir: str | os.PathLike | None = None, download: bool = True,
                     record: bool = False, checksums=None) -> dict:
    """Fetch (unless present) and verify the sample + training archives of ``langs``, then convert them into
    ``<out_dir>/local/bucc2018``. Archives go to ``archive_dir`` (default ``<out_dir>/download/bucc2018``) with
    a ``SHA256SUMS`` of what was observed. Returns the manifest."""

    langs = list(langs)
    for lang in langs:
        if lang not in LANGS:
            raise choices_error("BUCC 2018 language", lang, LANGS)
    adir = Path(archive_dir) if archive_dir is not None else download_dir(out_dir, "bucc2018")
    names = [archive_name(lang, release) for lang in langs for release in RELEASE_OF_SPLIT.values()]
    if download:
        for name in names:
            fetch(base_url.rstrip("/") + "/" + name, adir / name)
    missing = [str(adir / n) for n in names if not (adir / n).is_file()]
    if missing:
        raise UsageError(f"missing BUCC 2018 archive{'s' if len(missing) > 1 else ''}: {', '.join(missing)}. "
                         f"`make data-bucc` downloads them from {BUCC_URL} (or put them there by hand)")
    verified, observed = {}, {}
    for name in names:
        v = verify_file(adir / name, "bucc2018", adir / SUMS_NAME)
        verified[name], observed[name] = v["verified_against"], v["sha256"]
    manifest = convert_release(adir, out_dir, langs, checksums=checksums, verified=verified)
    if record:
        written = record_checksums("bucc2018", observed)
        logger.info("recorded %d checksum(s) in xstilts/prepare/data_checksums.json", len(written))
    return manifest


@exits_on_usage_error
def main(argv=None):
    parser = argparse.ArgumentParser(description="Download / convert the BUCC 2018 release archives to the kit layout.")
    parser.add_argument("--out_dir", required=True, help="data directory: writes <out_dir>/local/bucc2018/<lang>-en.{dev,test}.*")
    parser.add_argument("--download", action="store_true", help=f"fetch missing archives from --base_url ({BUCC_URL})")
    parser.add_argument("--archive_dir", default=None,
                        help="folder with bucc2018-<lang>-en.*-gold.tar.bz2 (default: <out_dir>/download/bucc2018)")
    parser.add_argument("--langs", nargs="+", default=list(LANGS))
    parser.add_argument("--base_url", default=BUCC_URL)
    parser.add_argument("--checksums", default=None, help="extra sha256sum-style file the archives must match")
    parser.add_argument("--record_checksums", action="store_true",
                        help="write the observed SHA-256 into xstilts/prepare/data_checksums.json where none is recorded")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = download_release(args.out_dir, args.langs, base_url=args.base_url, archive_dir=args.archive_dir,
                                download=args.download, record=args.record_checksums, checksums=args.checksums)
    print(json.dumps({"archives": manifest["archives"], "splits": manifest["splits"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
