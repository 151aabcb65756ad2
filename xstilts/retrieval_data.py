"""Retrieval data that is not on the Hugging Face Hub: where it lives, how it is downloaded and checked.

* **Local data directory** (the kit's rule for every local-only source, ``xstilts.local_data``): read from the
  data root (``--data_root`` / ``$XSTILTS_DATA_ROOT``) when one is given, else from ``data/`` in the kit;
  ``make data-bucc`` and ``make data-tatoeba`` write there (``DATA_DIR=...`` elsewhere). BUCC 2018 lives in
  ``<dir>/local/bucc2018/`` (:mod:`xstilts.bucc_data`), the five XTREME-R Tatoeba languages in
  ``<dir>/local/tatoeba-laser/`` (below); the downloads themselves in ``<dir>/download/<name>/``.
* **Tatoeba for XTREME-R** (az lt pl uk ro): not in ``google/xtreme``. XTREME's download script takes
  ``data/tatoeba/v1/tatoeba.<iso3>-eng.{<iso3>,eng}`` from github.com/facebookresearch/LASER; so does
  ``make data-tatoeba`` (the raw files at a pinned commit), and it converts each pair into the same layout
  and fields as a ``google/xtreme`` ``tatoeba.<iso3>`` config: ``<dir>/local/tatoeba-laser/tatoeba.<iso3>/
  test-00000-of-00001.parquet`` with ``source_sentence`` (the foreign line), ``target_sentence`` (the English
  line), ``source_lang`` (iso3), ``target_lang`` (``eng``). The registry declares it as a
  ``local_data.PreparedSource`` (``registry.TATOEBA_LASER``): missing, the error names ``make data-tatoeba``.
* **Checksums** (:func:`verify_file`): the expected SHA-256 of every downloaded file comes from
  ``xstilts/data_checksums.json`` when recorded there, else from the ``SHA256SUMS`` written next to the
  downloads by an earlier run (trust on first use); a mismatch is refused. A file with no recorded sum is
  accepted with its observed sum printed and marked UNVERIFIED. ``--record_checksums`` (``RECORD=1``) writes
  observed sums into ``xstilts/data_checksums.json`` (null entries only).

Command line::

    python -m xstilts.retrieval_data tatoeba --out_dir data [--base_url URL] [--record_checksums]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Iterable, Mapping

from .errors import UsageError, choices_error, exits_on_usage_error
from .local_data import KIT_DATA
from .paths import KIT_ROOT

logger = logging.getLogger(__name__)

DEFAULT_LOCAL_DIR = KIT_DATA  # the kit's data/
CHECKSUMS_FILE = Path(__file__).with_name("data_checksums.json")  # package data (also in a wheel)
SUMS_NAME = "SHA256SUMS"

LASER_REPO = "local/tatoeba-laser"  # registry.TATOEBA_LASER.hub_id
LASER_COMMIT = "fec5c7d63daa2bea9d127e8252b10e87278586c0"  # a commit holding data/tatoeba/v1 (unchanged since 2019)
LASER_BASE_URL = f"https://raw.githubusercontent.com/facebookresearch/LASER/{LASER_COMMIT}/data/tatoeba/v1/"
LASER_SPLIT = "test"  # LASER calls the 1000-pair sets its test set
LASER_ISO3 = ("aze", "lit", "pol", "ukr", "ron")  # XTREME-R's additions (az lt pl uk ro)


def local_root(data_root: Path | str | None) -> Path:
    """Where local-only data is read from: the data root if given, else the kit's ``data/``."""
    return Path(data_root) if data_root is not None else DEFAULT_LOCAL_DIR


def download_dir(out_dir: str | os.PathLike, name: str) -> Path:
    return Path(out_dir) / "download" / name


# --------------------------------------------------------------------------------------------- checksums

def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def kit_checksums(dataset: str) -> dict:
    """The ``dataset`` section of xstilts/data_checksums.json."""
    table = json.loads(CHECKSUMS_FILE.read_text(encoding="utf-8"))
    if dataset not in table:
        raise choices_error("checksum section", dataset, [k for k in table if not k.startswith("_")])
    return table[dataset]


def read_sums(path: Path) -> dict[str, str]:
    """``sha256sum``-format file -> {name: hex}; missing file -> {}."""
    out = {}
    if not path.is_file():
        return out
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise UsageError(f"{path} line {n}: expected '<sha256 hex>  <file name>', got {line[:80]!r}")
        out[Path(parts[1].lstrip("*")).name] = parts[0].lower()
    return out


def write_sums(path: Path, sums: Mapping[str, str]) -> None:
    from .results import atomic_write_text

    atomic_write_text(path, "".join(f"{h}  {name}\n" for name, h in sorted(sums.items())))


def verify_file(path: Path, dataset: str, local_sums: Path) -> dict:
    """Check ``path`` against the recorded SHA-256 (kit table first, then ``local_sums``); record the observed
    sum in ``local_sums``. Returns ``{"sha256", "verified_against"}``; a mismatch raises UsageError."""
    name = path.name
    observed = sha256_file(path)
    kit = (kit_checksums(dataset).get("files") or {}).get(name)
    local = read_sums(local_sums).get(name)
    for expected, where in ((kit, f"{CHECKSUMS_FILE.name} (kit)"), (local, str(local_sums))):
        if expected is not None and expected.lower() != observed:
            raise UsageError(f"{path}: SHA-256 {observed} does not match the recorded {expected} in {where}. "
                             "The download is corrupt or the file changed upstream: delete it and download again; "
                             "if upstream really changed, check the new file and update the record by hand")
    verified = "kit table" if kit else ("earlier download (SHA256SUMS)" if local else None)
    if verified is None:
        print(f"UNVERIFIED  {observed}  {name}  (no recorded checksum: recorded now in {local_sums}; "
              f"`RECORD=1` / --record_checksums writes it into {_shown(CHECKSUMS_FILE)})",
              file=sys.stderr)
    sums = read_sums(local_sums)
    sums[name] = observed
    write_sums(local_sums, sums)
    return {"sha256": observed, "verified_against": verified}


def _shown(path: Path) -> str:
    try:
        return str(Path(path).relative_to(KIT_ROOT))
    except ValueError:
        return str(path)


def record_checksums(dataset: str, observed: Mapping[str, str]) -> list[str]:
    """Write observed sums into the kit table for entries that are still null. Returns the names written."""
    from .results import atomic_write_text

    table = json.loads(CHECKSUMS_FILE.read_text(encoding="utf-8"))
    files = table[dataset]["files"]
    written = []
    for name, h in observed.items():
        if name in files and files[name] is None:
            files[name] = h
            written.append(name)
    if written:
        atomic_write_text(CHECKSUMS_FILE, json.dumps(table, indent=2, ensure_ascii=False) + "\n")
    return written


# --------------------------------------------------------------------------------------------- download

def fetch(url: str, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (via ``dest.part``, renamed when complete); an existing ``dest`` is kept."""
    if dest.is_file():
        logger.info("%s exists; not downloading it again (delete it to re-download)", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    logger.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as f:
            shutil.copyfileobj(r, f, length=1 << 20)
    except OSError as e:  # URLError, HTTPError, timeouts
        part.unlink(missing_ok=True)
        raise UsageError(f"download of {url} failed: {e}. Check the network (or put the file at {dest} by hand "
                         "and run the same command again)") from None
    os.replace(part, dest)
    return dest


# --------------------------------------------------------------------------------------------- Tatoeba (LASER)

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
    from .hubmirror import Mirror

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
    p = argparse.ArgumentParser(prog="python -m xstilts.retrieval_data",
                                description="Download and convert retrieval data that is not on the Hub.")
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tatoeba", help="XTREME-R's Tatoeba languages az lt pl uk ro from the LASER repository")
    t.add_argument("--out_dir", default=str(DEFAULT_LOCAL_DIR), help="data directory (default: the kit's data/)")
    t.add_argument("--langs", nargs="+", default=list(LASER_ISO3), help="ISO 639-3 codes")
    t.add_argument("--base_url", default=LASER_BASE_URL, help="where tatoeba.<iso3>-eng.* are fetched from")
    t.add_argument("--record_checksums", action="store_true",
                   help=f"write the observed SHA-256 into {CHECKSUMS_FILE.name} where none is recorded yet")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = download_laser_tatoeba(args.out_dir, args.langs, args.base_url, args.record_checksums)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
