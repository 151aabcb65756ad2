"""XTREME's own UD-POS data, rebuilt from Universal Dependencies 2.5 the way XTREME's scripts build it
(``make data-udpos-xtreme``; issue 18, docs/tagging.md "UD-POS on the Hub vs XTREME").

``google/xtreme`` ``udpos.<Language>`` differs from the files XTREME trains and tests on
(:mod:`xstilts.prepare.udpos_audit`): its Greek also reads the Ancient Greek treebanks, and it drops multi-word
tokens where XTREME keeps the fused form. This module reproduces XTREME's pipeline at google-research/xtreme
838c13b and writes the result as a Hub-layout mirror ``local/udpos-xtreme`` with the ``google/xtreme`` schema
(configs ``udpos.<Language>``, splits train / validation / test, ``tokens`` + ``pos_tags`` ClassLabel of the 17
UPOS tags in the Hub's order), read by ``--source_variant xtreme`` of task ``udpos``.

The pipeline, step by step (``scripts/download_data.sh@838c13b`` and the files it calls):

1. **Archive**: ``ud-treebanks-v2.5.tgz`` from LINDAT (``download_data.sh:64``). Its SHA-256 and size are those
   recorded by huggingface/datasets for the same URL (``datasets/xtreme/dataset_infos.json@8803c182e6^``); the
   download is refused when they differ (``data_checksums.json``, section ``ud25``).
2. **Treebank selection** (``download_data.sh:80-85``): a ``*/*.conllu`` file is kept when the part of its name
   before the first ``_`` is one of XTREME's 33 codes (``:65``): ``el_gdt-…`` is Greek, ``grc_proiel-…`` is not.
3. **Fused forms** (``:91-92``: ``conllu_to_conll.py --replace_subtokens_with_fused_forms``;
   ``third_party/ud-conversion-tools/lib/conll.py``): of each multi-word token's syntactic words one, the span
   head, keeps its UPOS and takes the fused FORM (``conll.py:184``); the others are removed (``:198-201``). The
   span head (``_choose_spanhead_from_heuristics``, ``:104-128``) is the word with the fewest ancestors in the
   sentence graph (``nx.ancestors``; the graph holds the basic tree AND the enhanced ``DEPS`` edges whose head is
   an integer, ``conll.py:24-28,381-385``); on a tie, the first of the tied words whose UPOS ranks best in the
   language's precedence list (``conllu_to_conll.py:28-37``). A tie on a UPOS the list lacks makes the tool raise
   (``list.index``), so the file is not converted and XTREME's data lacks it: :class:`ToolFailure`, reported.
   Empty nodes (``8.1``) are not read (``conll.py:10-11``).
4. **XTREME's reader** (``utils_preprocess.py:190-289``, ``udpos_preprocess``): per language, every converted file
   in name order (``:273``), its split by the substring ``train`` / ``dev`` / ``test`` of the file name, in that
   order (``:277-282``); FORM and UPOS stripped (``:203-204``); a sentence whose forms are ``_`` for all but at
   most one word is dropped (``:197-200``); spaces and U+200C are removed inside every form (``:221``).

XTREME then writes the test files without tags (``:252-253``: the labels were hidden for its leaderboard); the
mirror keeps the gold tags that pipeline read, so the kit can score them. Model-specific steps (sub-word
splitting of long sentences, ``preprocess_udpos.sh``) are the tagging format's and are recorded with each result.
XTREME-R's five UD 2.7 languages are not rebuilt here (``make data-udpos-ud27``, Hub rules).

    make data-udpos-xtreme [DATA_DIR=/mirror]     # = python -m xstilts.prepare.udpos_xtreme --download --out_root DIR
    python -m xstilts.prepare.udpos_xtreme --ud PATH --out_root DIR   # an extracted release or the .tgz itself
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..data.mirror import Mirror
from ..errors import UsageError, exits_on_usage_error
from ..paths import KIT_DATA
from ..tasks.languages import UDPOS as LANGUAGES
from ..tasks.tagging import UDPOS_XTREME_HUB_ID as HUB_ID
from ..tasks.tagging import UPOS
from .downloads import SUMS_NAME, download_dir, fetch, verify_file

UD25_URL = "https://lindat.mff.cuni.cz/repository/xmlui/bitstream/handle/11234/1-3105/ud-treebanks-v2.5.tgz"
UD25_TGZ = "ud-treebanks-v2.5.tgz"
CHECKSUM_SECTION = "ud25"

# conllu_to_conll.py@838c13b:28-32: the UPOS precedence lists (the default one ends with "" from split(" ")).
PRECEDENCE = {
    "default": "VERB NOUN PROPN PRON ADJ NUM ADV INTJ AUX ADP DET PART CCONJ SCONJ X PUNCT ".split(" "),
    "es": "VERB AUX PRON ADP DET".split(" "),
    "fr": "VERB AUX PRON NOUN ADJ ADV ADP DET PART SCONJ CONJ".split(" "),
    "it": "VERB AUX ADV PRON ADP DET INTJ".split(" "),
}
# utils_preprocess.py@838c13b:277-282: a file's split is the first of these its name contains
SPLITS = (("train", "train"), ("dev", "validation"), ("test", "test"))


class ToolFailure(Exception):
    """conllu_to_conll.py@838c13b raises on this file, so XTREME's data holds none of it."""


def xtreme_language(file_name: str) -> str:
    """``download_data.sh:80-82``: the part of the file name before the first ``_``."""
    return file_name.split("_")[0]


def _ancestors(parents: dict[int, set[int]], node: int) -> set[int]:
    """``nx.ancestors``: every node with a path to ``node``, without ``node`` itself (cycles allowed)."""
    seen, todo = set(), list(parents.get(node, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(parents.get(n, ()))
    seen.discard(node)
    return seen


def _span_head(span: list[int], parents: dict[int, set[int]], upos: dict[int, str], precedence: list[str]) -> int:
    """``conll.py:104-128``: the single word of the span closest to the root, else the best-ranked UPOS."""
    depth = [len(_ancestors(parents, x)) for x in span]
    top = min(depth)
    if Counter(depth)[top] == 1:
        return span[depth.index(top)]
    best, head = len(precedence) + 1, -1
    for x, d in zip(span, depth):
        if d == top:
            if upos[x] not in precedence:  # list.index raises ValueError in the tool
                raise ToolFailure(f"UPOS {upos[x]!r} of a tied span head is not in the precedence list")
            if precedence.index(upos[x]) < best:
                best, head = precedence.index(upos[x]), x
    return head


def fused_sentence(rows: list[list[str]], precedence: list[str]) -> list[tuple[str, str]]:
    """One sentence's word lines (10 CoNLL-U fields; range lines included, empty nodes and comments not) as
    XTREME's ``.conll`` holds it after ``--replace_subtokens_with_fused_forms``: (FORM, UPOS) per token."""
    form, upos, parents, ranges = {}, {}, {}, []
    for row in rows:
        if "-" in row[0]:
            lo, hi = (int(x) for x in row[0].split("-"))
            ranges.append((lo, hi, row[1]))
            continue
        i = int(row[0])
        form[i], upos[i] = row[1], row[3]
        # conll.py:381: an edge from HEAD (``_`` is parse_id's None, a node of its own); :384-385 + :24-28: one
        # from every enhanced head in DEPS that is an integer (not an empty node like 8.1)
        parents.setdefault(i, set()).add(None if row[6] == "_" else int(row[6]))
        if row[8] != "_":
            parents[i].update(int(p.split(":")[0]) for p in row[8].split("|") if p.split(":")[0].isdigit())
    removed = set()
    for lo, hi, fused in sorted(ranges):
        span = list(range(lo, hi + 1))
        head = _span_head(span, parents, upos, precedence)
        form[head] = fused
        removed.update(x for x in span if x != head)
    return [(form[i], upos[i]) for i in sorted(form) if i not in removed]


def convert_conllu(text: str, lang: str, where: str = "") -> list[list[tuple[str, str]]]:
    """A CoNLL-U file -> its sentences as XTREME's ``.conll`` (``conll.py:350-390`` reader + fused forms). A
    last sentence without a closing blank line is not read (the tool appends a sentence at a blank line only)."""
    precedence = PRECEDENCE.get(lang, PRECEDENCE["default"])
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # readlines() in text mode
    if lines and lines[-1] == "":
        lines.pop()
    out, rows = [], []
    for n, line in enumerate(lines, 1):
        if not line:
            if not any("-" not in r[0] for r in rows):  # write_conll: max() of an empty sentence raises
                raise ToolFailure(f"{where} line {n}: a sentence without words (e.g. two blank lines)")
            out.append(fused_sentence(rows, precedence))
            rows = []
        elif not line.startswith("#"):
            parts = line.split("\t")
            if len(parts) != 10:  # conll.py:375-377 raises
                raise ToolFailure(f"{where} line {n}: {len(parts)} columns, expected 10")
            if "." not in parts[0]:
                rows.append(parts)
    return out


def xtreme_sentences(sentences: Iterable[list[tuple[str, str]]]) -> list[dict]:
    """``utils_preprocess.py:191-225``: strip, drop sentences of ``_`` forms, remove spaces and U+200C."""
    out = []
    for sent in sentences:
        words = [w.strip() for w, _ in sent]
        tags = [t.strip() for _, t in sent]
        empty = sum(w == "_" for w in words)
        if empty == 0 or empty < len(words) - 1:
            out.append({"tokens": ["".join(w.replace("\u200c", "").split(" ")) for w in words], "pos_tags": tags})
    return out


def split_of(file_name: str) -> str | None:
    return next((split for key, split in SPLITS if key in file_name), None)


def _release_files(ud: Path) -> Iterator[tuple[str, str]]:
    """(file name, text) of every ``*/*.conllu`` of an extracted release directory or its ``.tgz``."""
    if ud.is_dir():
        for p in ud.glob("*/*.conllu"):
            yield p.name, p.read_text(encoding="utf-8")
        return
    with tarfile.open(ud, "r:*") as tar:
        for m in tar:
            name = Path(m.name).name  # download_data.sh:79: <release>/<treebank>/<file>.conllu only
            if (m.isfile() and len(Path(m.name).parts) == 3 and name.endswith(".conllu")
                    and xtreme_language(name) in LANGUAGES):
                yield name, tar.extractfile(m).read().decode("utf-8")


def features():
    from datasets import ClassLabel, Features, List, Value

    return Features({"tokens": List(Value("string")), "pos_tags": List(ClassLabel(names=list(UPOS)))})


def convert(ud: str | Path, out_root: str | Path, languages: Sequence[str] = tuple(LANGUAGES)) -> dict:
    """Write ``<out_root>/local/udpos-xtreme``; returns, per language, the sentences per file and split, and the
    files the reference tool fails on (``not_converted``)."""
    ud = Path(ud)
    if not ud.exists():
        raise UsageError(f"UD 2.5 release {str(ud)!r} does not exist (give the extracted ud-treebanks-v2.5 "
                         f"directory or {UD25_TGZ})")
    unknown = [l for l in languages if l not in LANGUAGES]
    if unknown:
        raise UsageError(f"unknown language(s) {', '.join(unknown)}; valid choices: {', '.join(LANGUAGES)}")
    files = sorted((name, text) for name, text in _release_files(ud) if xtreme_language(name) in languages
                   and name.endswith(".conllu"))
    report = {lang: {"files": {}, "not_converted": {}} for lang in languages}
    data = {lang: {split: [] for _, split in SPLITS} for lang in languages}
    for name, text in files:  # utils_preprocess.py:273: in file-name order
        lang, split = xtreme_language(name), split_of(name)
        try:
            sentences = xtreme_sentences(convert_conllu(text, lang, name))
        except ToolFailure as e:
            report[lang]["not_converted"][name] = str(e)
            print(f"NOT CONVERTED  {name}: {e} (conllu_to_conll.py@838c13b fails on it, so XTREME's data lacks it "
                  "too)", file=sys.stderr)
            continue
        if split is None:  # utils_preprocess.py:283-284 prints 'split not found' and reads nothing of it
            continue
        for s in sentences:
            bad = [t for t in s["pos_tags"] if t not in UPOS]
            if bad:
                raise UsageError(f"{name}: UPOS {bad[0]!r} is not one of the 17 UD tags")
        data[lang][split].extend(sentences)
        report[lang]["files"][name] = {"split": split, "sentences": len(sentences)}
    missing = [lang for lang in languages if not report[lang]["files"] and not report[lang]["not_converted"]]
    if missing:
        raise UsageError(f"no <lang>_*.conllu of {', '.join(missing)} in {ud}: is it the UD 2.5 release?")
    m = Mirror(Path(out_root))
    for lang in languages:
        for split, rows in data[lang].items():
            if rows:
                m.write(HUB_ID, f"udpos.{LANGUAGES[lang]}", split, rows, features())
    m.describe(HUB_ID, {"pretty_name": "UD-POS as XTREME's scripts build it (UD 2.5, fused forms)"},
               "Written by `python -m xstilts.prepare.udpos_xtreme` (make data-udpos-xtreme) from the Universal "
               "Dependencies 2.5 release (https://hdl.handle.net/11234/1-3105, licences per treebank), as "
               "google-research/xtreme@838c13b builds its UD-POS files (treebanks chosen by file-name language "
               "code, multi-word tokens replaced by their fused form); test files keep their gold tags. Schema of "
               "google/xtreme udpos.<Language>.\n\n```json\n" + json.dumps(report, indent=1, ensure_ascii=False)
               + "\n```\n")
    m.finish(None)
    return report


def download(out_root: Path) -> Path:
    """``ud-treebanks-v2.5.tgz`` under ``<out_root>/download/ud25``, checked against its recorded SHA-256."""
    d = download_dir(out_root, "ud25")
    path = fetch(UD25_URL, d / UD25_TGZ, timeout=600.0)
    verify_file(path, CHECKSUM_SECTION, d / SUMS_NAME)
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xstilts.prepare.udpos_xtreme", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--download", action="store_true", help=f"fetch {UD25_URL} (checked against its SHA-256)")
    src.add_argument("--ud", help="an extracted ud-treebanks-v2.5 directory, or the .tgz (not checksummed)")
    p.add_argument("--out_root", default=None, help="mirror root (default: <kit>/data); writes <root>/local/udpos-xtreme")
    p.add_argument("--languages", default=",".join(LANGUAGES), help="comma list (default: XTREME's 33)")
    return p


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = Path(args.out_root) if args.out_root else KIT_DATA
    ud = download(root) if args.download else Path(args.ud)
    langs = [l.strip() for l in args.languages.split(",") if l.strip()]
    report = convert(ud, root, langs)
    print(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
