"""LAReQA data: SQuAD v1.1 (English training) and XQuAD-R (evaluation), prepared for the dual encoder.

The Hub copy of XQuAD-R (``google-research-datasets/xquad_r``) drops the sentence segmentation that LAReQA's
candidate pool is made of, so the kit reads the LAReQA release instead (github.com/google-research-datasets/
lareqa, ``xquad-r/<lang>.json``: SQuAD JSON plus ``sentence_breaks`` / ``sentences`` per paragraph), and the
SQuAD v1.1 JSON files the XTREME-R recipe trains on (``train_lareqa.sh``: ``train-v1.1.json``, dev
``dev-v1.1.json``). ``make data-lareqa`` downloads both and converts them into one local-only repo in the
Hub-mirror layout, ``<dir>/local/lareqa/`` (read from the ``--data_root`` mirror when it holds it, else from
the kit's ``data/``; see ``xstilts.tasks.dual_encoder``):

``squad/{train,validation}-00000-of-00001.parquet``   SQuAD v1.1 train / dev, English
``xquad_r.<lang>/test-00000-of-00001.parquet``       XQuAD-R, 11 languages

One row per question (the fields of :data:`FEATURES`): ``id`` (the question id, shared by the 11 translations
of a question: LAReQA's ``xling_id``), ``lang``, ``question``, ``context_id`` (``<lang>_<n>``, the n-th
paragraph of the file, as LAReQA numbers them), ``context``, ``sentences`` (the paragraph's sentences, the
candidate answers) and ``answer_sentence`` (the index of the sentence holding the answer's first character;
a question whose answer starts outside every sentence is skipped and counted, as LAReQA does). XQuAD-R keeps
its release's ``sentence_breaks``; SQuAD has none, and the kit segments it with :func:`split_sentences` (its
own rule-based splitter; XTREME uses a sed-style splitter of its own, so the two segmentations can differ on
a few abbreviations).

    python -m xstilts.lareqa_data --out_dir data                    # download + convert (make data-lareqa)
    python -m xstilts.lareqa_data --out_dir DIR --source_dir SRC    # convert files already on disk

``SRC`` holds ``xquad-r/<lang>.json`` and ``squad/{train,dev}-v1.1.json`` (the layout the download leaves).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import sys
import urllib.request
import zipfile
from pathlib import Path

from ..data.mirror import claim_local_repo, write_local_repo
from ..errors import UsageError, exits_on_usage_error
from ..tasks.dual_encoder import LAREQA_HUB_ID, LAREQA_MAKE_TARGET
from ..tasks.languages import XQUAD_R

logger = logging.getLogger(__name__)

REPO_ID = LAREQA_HUB_ID
MAKE_TARGET = LAREQA_MAKE_TARGET
XQUAD_R_LANGS = XQUAD_R
LAREQA_ZIP_URL = "https://github.com/google-research-datasets/lareqa/archive/refs/heads/master.zip"
SQUAD_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/{name}"
SQUAD_FILES = {"train": "train-v1.1.json", "validation": "dev-v1.1.json"}


def features():
    from datasets import Features, List, Value

    s = Value("string")
    return Features({"id": s, "lang": s, "question": s, "context_id": s, "context": s,
                     "sentences": List(s), "answer_sentence": Value("int32")})


# ------------------------------------------------------------------------------------- sentence splitting
# Words that end with a period without ending the sentence (lower-cased, without the final period).
_ABBREVIATIONS = frozenset("""
mr mrs ms dr prof sr jr st mt ft rev gen col lt maj capt sgt adm gov sen rep pres fr msgr
vs etc e.g i.e cf al approx ca fl no nos vol pp p op ch sec art fig inc ltd co corp bros dept est
jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k u.n d.c a.m p.m ph.d b.a m.a
""".split())
# A possible sentence end: terminal punctuation, closing quotes/brackets and citation marks like "[12]", then
# whitespace; it is a sentence end when what follows can start a sentence (see _starts_sentence).
_LATIN_END = re.compile(r"""[.!?]+['"”’)\]]*(?:\[[^\]\s]{1,20}\])*\s+""")
_OPENERS = "'\"“‘«(["
# Scripts whose sentences end with their own full stop (no space or capital needed after it).
_CJK_END = re.compile(r"""[。！？]+['"”’」』）)]*|[।॥]""")
_WORD_BEFORE = re.compile(r"([\w.]+)\.$")


def _is_abbreviation(text: str, end: int) -> bool:
    """Does the period at ``text[end - 1]`` belong to an abbreviation or an initial ("J. K. Rowling")?"""
    m = _WORD_BEFORE.search(text[:end])
    if not m:
        return False
    word = m.group(1)
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial
    return word.lower() in _ABBREVIATIONS


def _starts_sentence(text: str, i: int) -> bool:
    """Can a sentence start at ``text[i]``: a digit, an upper-case letter, or a letter of a script without
    case (Arabic, Devanagari, Thai, CJK, ...), possibly after an opening quote or bracket."""
    while i < len(text) and text[i] in _OPENERS:
        i += 1
    if i >= len(text):
        return False
    ch = text[i]
    return ch.isdigit() or (ch.isalpha() and (ch.isupper() or ch.lower() == ch.upper()))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` character spans of the sentences of ``text`` (whitespace at the edges excluded;
    the spans cover every non-space character in order)."""
    cuts = set()
    for m in _LATIN_END.finditer(text):
        if not _starts_sentence(text, m.end()):
            continue
        punct = m.group(0).rstrip()
        if punct == "." and _is_abbreviation(text, m.start() + 1):
            continue
        cuts.add(m.end())
    for m in _CJK_END.finditer(text):
        cuts.add(m.end())
    spans, start = [], 0
    for cut in sorted(cuts) + [len(text)]:
        piece = text[start:cut]
        stripped = piece.strip()
        if stripped:
            s = start + (len(piece) - len(piece.lstrip()))
            spans.append((s, s + len(stripped)))
        start = cut
    return spans


# ------------------------------------------------------------------------------------------- conversion

def squad_rows(squad: dict, lang: str, *, source: str, use_release_breaks: bool) -> tuple[list[dict], int]:
    """SQuAD-format JSON -> (rows, number of skipped questions). ``use_release_breaks``: read each paragraph's
    ``sentence_breaks`` (the LAReQA release); else segment the context with :func:`split_sentences`."""
    if not isinstance(squad, dict) or not isinstance(squad.get("data"), list):
        raise UsageError(f"{source}: not SQuAD-format JSON (no 'data' list)")
    rows, skipped, n_par = [], 0, 0
    for article in squad["data"]:
        for par in article.get("paragraphs", []):
            n_par += 1
            context = par["context"]
            if use_release_breaks:
                if "sentence_breaks" not in par:
                    raise UsageError(f"{source}: paragraph {n_par} has no 'sentence_breaks'; this is not the LAReQA "
                                     f"release (the Hub copy google-research-datasets/xquad_r drops them). Run "
                                     f"`make {MAKE_TARGET}`")
                breaks = [(int(s), int(e)) for s, e in par["sentence_breaks"]]
            else:
                breaks = split_sentences(context)
            sentences = [context[s:e] for s, e in breaks]
            context_id = f"{lang}_{n_par}"
            for qa in par.get("qas", []):
                if not qa.get("answers"):
                    raise UsageError(f"{source}: question {qa.get('id')!r} has no answer")
                start = int(qa["answers"][0]["answer_start"])  # the first answer, as XTREME's loaders use
                idx = next((i for i, (s, e) in enumerate(breaks) if s <= start < e), None)
                if idx is None:
                    skipped += 1  # the answer starts outside every sentence (a segmentation error upstream)
                    continue
                rows.append({"id": qa["id"], "lang": lang, "question": qa["question"], "context_id": context_id,
                             "context": context, "sentences": sentences, "answer_sentence": idx})
    return rows, skipped


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"missing {path}; `make {MAKE_TARGET}` downloads it") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not valid JSON: {e}") from None


def build_tables(source_dir: Path) -> tuple[dict, dict]:
    """``({(config, split): rows}, {"<config>/<split>": counts})`` from the release files in ``source_dir``."""
    source_dir = Path(source_dir)
    tables, counts = {}, {}
    for split, name in SQUAD_FILES.items():
        path = source_dir / "squad" / name
        rows, skipped = squad_rows(read_json(path), "en", source=str(path), use_release_breaks=False)
        tables[("squad", split)] = rows
        counts[f"squad/{split}"] = {"questions": len(rows), "skipped": skipped}
    for lang in XQUAD_R_LANGS:
        path = source_dir / "xquad-r" / f"{lang}.json"
        rows, skipped = squad_rows(read_json(path), lang, source=str(path), use_release_breaks=True)
        tables[(f"xquad_r.{lang}", "test")] = rows
        counts[f"xquad_r.{lang}/test"] = {"questions": len(rows), "skipped": skipped}
    return tables, counts


README_HEADER = {"pretty_name": "LAReQA (XQuAD-R) and SQuAD v1.1, prepared by xstilts"}
README_BODY = ("Local-only repo written by `python -m xstilts.lareqa_data` (`make data-lareqa`).\n\n"
               "* `xquad_r.<lang>` (test): XQuAD-R from the LAReQA release (github.com/google-research-datasets/"
               "lareqa, `xquad-r/<lang>.json`, CC BY-SA 4.0), one row per question with its paragraph's sentences "
               "(the release's `sentence_breaks`).\n"
               "* `squad` (train, validation): SQuAD v1.1 `train-v1.1.json` / `dev-v1.1.json` (CC BY-SA 4.0), "
               "segmented into sentences by `xstilts.lareqa_data.split_sentences`.\n")


def convert(source_dir: Path, out_dir: Path, *, overwrite: bool = False) -> dict:
    """Write ``<out_dir>/local/lareqa`` from ``source_dir`` (``xquad-r/<lang>.json``, ``squad/*-v1.1.json``);
    returns counts per config."""
    claim_local_repo(out_dir, REPO_ID, overwrite)
    tables, counts = build_tables(source_dir)
    feats = features()
    write_local_repo(out_dir, REPO_ID, tables, lambda config: feats, README_HEADER,
                     README_BODY + f"\nCounts: {json.dumps(counts)}\n")
    for key, c in counts.items():
        if c["skipped"]:
            logger.warning("%s: skipped %d question(s) whose answer starts outside every sentence", key, c["skipped"])
    return counts


# ---------------------------------------------------------------------------------------------- download

def _fetch(url: str) -> bytes:
    logger.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=120) as r:  # noqa: S310 (fixed https URLs)
            return r.read()
    except OSError as e:  # URLError, HTTPError, timeouts
        raise UsageError(f"cannot download {url}: {e}. Without network access, fetch the files elsewhere and "
                         f"convert them with --source_dir (xquad-r/<lang>.json, squad/train-v1.1.json, "
                         f"squad/dev-v1.1.json)") from None


def download(dest: Path) -> Path:
    """Fetch the LAReQA release archive and the SQuAD v1.1 JSON files into ``dest`` (the layout ``convert``
    reads). Files already there are kept."""
    dest = Path(dest)
    xq = dest / "xquad-r"
    if not all((xq / f"{lang}.json").exists() for lang in XQUAD_R_LANGS):
        with zipfile.ZipFile(io.BytesIO(_fetch(LAREQA_ZIP_URL))) as z:
            for name in z.namelist():
                parts = name.split("/")
                if len(parts) == 3 and parts[1] == "xquad-r" and parts[2].endswith(".json"):
                    xq.mkdir(parents=True, exist_ok=True)
                    (xq / parts[2]).write_bytes(z.read(name))
                if len(parts) == 2 and parts[1] == "LICENSE":
                    (dest / "LICENSE.lareqa").write_bytes(z.read(name))
    for name in SQUAD_FILES.values():
        path = dest / "squad" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_fetch(SQUAD_URL.format(name=name)))
    return dest


@exits_on_usage_error
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xstilts.lareqa_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--out_dir", default="data", help="writes <out_dir>/local/lareqa (default: data)")
    p.add_argument("--source_dir", default=None,
                   help="convert these files (xquad-r/<lang>.json, squad/{train,dev}-v1.1.json) instead of downloading")
    p.add_argument("--download_dir", default=None,
                   help="where downloads go (default: <out_dir>/download/lareqa); existing files are reused")
    p.add_argument("--overwrite", action="store_true", help="replace an existing <out_dir>/local/lareqa")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    src = Path(args.source_dir) if args.source_dir else download(
        Path(args.download_dir) if args.download_dir else Path(args.out_dir) / "download" / "lareqa")
    counts = convert(src, Path(args.out_dir), overwrite=args.overwrite)
    print(json.dumps({"written": str(Path(args.out_dir) / REPO_ID), "counts": counts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
