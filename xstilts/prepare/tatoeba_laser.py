"""Tatoeba for XTREME-R (az lt pl uk ro): not in ``google/xtreme``; downloaded, checked and converted here.

XTREME's download script takes ``data/tatoeba/v1/tatoeba.<iso3>-eng.{<iso3>,eng}`` from
github.com/facebookresearch/LASER; so does ``make data-tatoeba`` (the raw files at a pinned commit), and it
converts each pair into the same layout and fields as a ``google/xtreme`` ``tatoeba.<iso3>`` config:
``<dir>/local/tatoeba-laser/tatoeba.<iso3>/test-00000-of-00001.parquet`` with ``source_sentence`` (the foreign
line), ``target_sentence`` (the English line), ``source_lang`` (iso3), ``target_lang`` (``eng``). The task
declares it as a prepared source (``xstilts.tasks.retrieval.TATOEBA_LASER``): missing, the error names
``make data-tatoeba``. Downloads are checked as every download is (:mod:`xstilts.prepare.downloads`); the LASER
files also offline: line counts and the SHA-256 of their first 40 lines.

Command line::

    python -m xstilts.prepare.tatoeba_laser --out_dir data [--base_url URL] [--record_checksums]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Iterable

from ..data.mirror import Mirror
from ..errors import UsageError, choices_error, exits_on_usage_error
from ..tasks.languages import TATOEBA_XTREME_R_ADDED
from ..tasks.retrieval import TATOEBA_LASER_HUB_ID
from .downloads import (CHECKSUMS_FILE, DEFAULT_LOCAL_DIR, SUMS_NAME, download_dir, fetch, kit_checksums,
                        record_checksums, verify_file)

LASER_REPO = TATOEBA_LASER_HUB_ID
LASER_COMMIT = "fec5c7d63daa2bea9d127e8252b10e87278586c0"  # a commit holding data/tatoeba/v1 (unchanged since 2019)
LASER_BASE_URL = f"https://raw.githubusercontent.com/facebookresearch/LASER/{LASER_COMMIT}/data/tatoeba/v1/"
LASER_SPLIT = "test"  # LASER calls the 1000-pair sets its test set
LASER_ISO3 = tuple(TATOEBA_XTREME_R_ADDED.values())  # XTREME-R's additions (az lt pl uk ro)


def laser_file_names(iso3: str) -> tuple[str, str]:
    return f"tatoeba.{iso3}-eng.{iso3}", f"tatoeba.{iso3}-eng.eng"


def read_lines(path: Path) -> list[str]:
    """Lines without their line break (the LASER files are one sentence per line, UTF-8)."""
    return path.read_bytes().decode("utf-8").split("\n")[:-1] if path.stat().st_size else []


def check_laser_file(path: Path, *, lines: bool = True) -> None:
    """The file must end with a newline, have the recorded line count (``lines``), and its first 40 lines must
    have the recorded SHA-256 (verified offline against the vendored excerpt)."""
    section = kit_checksums("laser_tatoeba")
    data = path.read_bytes()
    parts = data.split(b"\n")
    if not data.endswith(b"\n"):
        raise UsageError(f"{path}: does not end with a newline (truncated download?)")
    expected_lines = section.get("lines", {}).get(path.name)
    if lines and expected_lines is not None and len(parts) - 1 != expected_lines:
        raise UsageError(f"{path}: {len(parts) - 1} lines, expected {expected_lines} (truncated or different file)")
    first40 = section.get("first40_sha256", {}).get(path.name)
    if first40 is not None:
        got = hashlib.sha256(b"".join(l + b"\n" for l in parts[:40])).hexdigest()
        if got != first40:
            raise UsageError(f"{path}: the first 40 lines differ from the LASER Tatoeba file the kit knows "
                             f"(SHA-256 {got}, expected {first40})")


def laser_features():
    from datasets import Features, Value

    return Features({k: Value("string") for k in ("source_sentence", "target_sentence", "source_lang", "target_lang")})


def laser_rows(raw_dir: str | os.PathLike, iso3: str, *, check_lines: bool = True) -> list[dict]:
    """Rows of ``tatoeba.<iso3>`` from ``<raw_dir>/tatoeba.<iso3>-eng.{<iso3>,eng}``: row i pairs line i."""
    raw_dir = Path(raw_dir)
    src_path, en_path = (raw_dir / n for n in laser_file_names(iso3))
    missing = [str(p) for p in (src_path, en_path) if not p.is_file()]
    if missing:
        raise UsageError(f"missing LASER Tatoeba file(s): {', '.join(missing)}. `make data-tatoeba` downloads "
                         f"them from {LASER_BASE_URL}")
    check_laser_file(src_path, lines=check_lines)
    check_laser_file(en_path, lines=check_lines)
    src, en = read_lines(src_path), read_lines(en_path)
    if len(src) != len(en):
        raise UsageError(f"{src_path} has {len(src)} lines but {en_path} has {len(en)}; they must align")
    return [{"source_sentence": s, "target_sentence": e, "source_lang": iso3, "target_lang": "eng"}
            for s, e in zip(src, en)]


def describe_laser(mirror, note: str = "") -> None:
    mirror.describe(LASER_REPO, {"pretty_name": "Tatoeba (LASER test sets) for XTREME-R, local copy"},
                    "Made by xstilts.retrieval_data (`make data-tatoeba`) from the LASER repository files "
                    "`data/tatoeba/v1/tatoeba.<iso3>-eng.{<iso3>,eng}` (github.com/facebookresearch/LASER): row i "
                    "pairs line i of both files. Same fields as the `google/xtreme` `tatoeba.<iso3>` configs. "
                    "Sentences from Tatoeba (tatoeba.org, CC BY 2.0 FR); credit: Tatoeba contributors.\n" + note)


def convert_laser_tatoeba(raw_dir: str | os.PathLike, out_dir: str | os.PathLike,
                          iso3s: Iterable[str] = LASER_ISO3, *, check_lines: bool = True) -> dict:
    """``<raw_dir>/tatoeba.<iso3>-eng.{<iso3>,eng}`` -> ``<out_dir>/local/tatoeba-laser/tatoeba.<iso3>/
    test-00000-of-00001.parquet`` (+ README.md listing every config on disk). Returns {iso3: rows}."""
    m = Mirror(Path(out_dir))
    counts = {}
    for iso3 in iso3s:
        rows = laser_rows(raw_dir, iso3, check_lines=check_lines)
        m.write(LASER_REPO, f"tatoeba.{iso3}", LASER_SPLIT, rows, laser_features())
        counts[iso3] = len(rows)
    describe_laser(m)
    m.finish(None)
    return counts


def download_laser_tatoeba(out_dir: str | os.PathLike, iso3s: Iterable[str] = LASER_ISO3,
                           base_url: str = LASER_BASE_URL, record: bool = False) -> dict:
    """Download, verify and convert the XTREME-R Tatoeba pairs into ``<out_dir>/local/tatoeba-laser``.

    Raw files are kept in ``<out_dir>/download/tatoeba-laser/`` with their ``SHA256SUMS``."""
    iso3s = list(iso3s)
    for iso3 in iso3s:
        if iso3 not in LASER_ISO3:
            raise choices_error("LASER Tatoeba language (iso3)", iso3, LASER_ISO3)
    raw = download_dir(out_dir, "tatoeba-laser")
    sums = raw / SUMS_NAME
    observed = {}
    for iso3 in iso3s:
        for name in laser_file_names(iso3):
            path = fetch(base_url.rstrip("/") + "/" + name, raw / name)
            observed[name] = verify_file(path, "laser_tatoeba", sums)["sha256"]
    counts = convert_laser_tatoeba(raw, out_dir, iso3s)
    if record:
        written = record_checksums("laser_tatoeba", observed)
        print(f"recorded {len(written)} checksum(s) in {CHECKSUMS_FILE}", file=sys.stderr)
    return {"rows": counts, "sha256": observed, "dir": str(Path(out_dir) / LASER_REPO)}


@exits_on_usage_error
def main(argv=None) -> int:
    t = argparse.ArgumentParser(prog="python -m xstilts.prepare.tatoeba_laser",
                                description="XTREME-R's Tatoeba languages az lt pl uk ro from the LASER repository.")
    t.add_argument("--out_dir", default=str(DEFAULT_LOCAL_DIR), help="data directory (default: the kit's data/)")
    t.add_argument("--langs", nargs="+", default=list(LASER_ISO3), help="ISO 639-3 codes")
    t.add_argument("--base_url", default=LASER_BASE_URL, help="where tatoeba.<iso3>-eng.* are fetched from")
    t.add_argument("--record_checksums", action="store_true",
                   help=f"write the observed SHA-256 into {CHECKSUMS_FILE.name} where none is recorded yet")
    args = t.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = download_laser_tatoeba(args.out_dir, args.langs, args.base_url, args.record_checksums)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
