"""Data that is not on the Hugging Face Hub: where it lives, how it is downloaded and checked.

* **Local data directory** (the kit's rule for every local-only source): read from the data root
  (``--data_root`` / ``$XSTILTS_DATA_ROOT``) when one is given, else from ``data/`` in the kit; the make targets
  (``make data-bucc``, ``make data-tatoeba``, ...) write there (``DATA_DIR=...`` elsewhere), each dataset in
  ``<dir>/local/<name>/``, the downloads themselves in ``<dir>/download/<name>/``.
* **Checksums** (:func:`verify_file`): the expected SHA-256 of every downloaded file comes from
  ``xstilts/prepare/data_checksums.json`` when recorded there, else from the ``SHA256SUMS`` written next to the
  downloads by an earlier run (trust on first use); a mismatch is refused. A file with no recorded sum is
  accepted with its observed sum printed and marked UNVERIFIED. ``--record_checksums`` (``RECORD=1``) writes
  observed sums into ``xstilts/prepare/data_checksums.json`` (null entries only).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Mapping

from ..errors import UsageError, choices_error
from ..files import atomic_write_text, sha256_file
from ..paths import KIT_DATA, KIT_ROOT

logger = logging.getLogger(__name__)

DEFAULT_LOCAL_DIR = KIT_DATA  # the kit's data/
CHECKSUMS_FILE = Path(__file__).with_name("data_checksums.json")  # package data (also in a wheel)
SUMS_NAME = "SHA256SUMS"


def download_dir(out_dir: str | os.PathLike, name: str) -> Path:
    return Path(out_dir) / "download" / name


# --------------------------------------------------------------------------------------------- checksums

def kit_checksums(dataset: str) -> dict:
    """The ``dataset`` section of xstilts/prepare/data_checksums.json."""
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
