"""CCG supertagging data (CCGbank, LDC2005T13): the kit's plain-text format, its reader, and a converter
from CCGbank's AUTO files.

CCGbank is licensed by the LDC (https://catalog.ldc.upenn.edu/LDC2005T13) and is not on the Hugging Face
Hub, so the ``ccg`` task reads a local directory given with ``--ccg_dir DIR`` (the data layer calls
:func:`check_split` / :func:`load_split` for it):

    DIR/train.txt   sections 02-21      (split "train")
    DIR/dev.txt     section 00          (split "validation": checkpoint selection)
    DIR/test.txt    section 23          (split "test": optional, the kit does not read it)

One sentence per line; tokens separated by single spaces; each token written ``word|supertag`` (split at
the LAST ``|``: supertags never contain one). Empty lines are skipped. Example::

    Tom|N saw|(S[dcl]\\NP)/NP the|NP[nb]/N dog|N .|.

Make it from a CCGbank copy with (``make data-ccg CCGBANK=/path/to/ccgbank`` runs the same)::

    python -m xstilts.ccg convert /path/to/ccgbank/data/AUTO DIR

which reads every ``wsj_SSNN.auto`` below the AUTO directory (section SS from the file name) and takes
each leaf ``(<L category modPOS origPOS word predarg>)`` in order: the word and its category.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import UsageError, exits_on_usage_error
from ..tasks.tagging import CCG_ABOUT as ABOUT
from ..tasks.tagging import CCG_FORMAT as FORMAT_LINE

SPLIT_FILES = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}
SECTIONS = {"train": tuple(f"{s:02d}" for s in range(2, 22)), "validation": ("00",), "test": ("23",)}


class FormatError(UsageError):
    pass


def parse_line(line: str, where: str) -> tuple[list[str], list[str]]:
    """``word|tag word|tag ...`` -> (words, tags); a malformed token is an error naming ``where``."""
    words, tags = [], []
    for tok in line.split(" "):
        if tok == "":
            raise FormatError(f"{where}: empty token (two spaces in a row, or a leading/trailing space); "
                              f"expected {FORMAT_LINE}")
        word, sep, tag = tok.rpartition("|")
        if not sep or not word or not tag:
            hint = ""
            if line.startswith("ID=") or line.startswith("(<"):
                hint = " This looks like a CCGbank AUTO file: convert it with `python -m xstilts.ccg convert`."
            elif "\t" in line:
                hint = " Tabs are not separators here."
            raise FormatError(f"{where}: token {tok!r} is not word|supertag; expected {FORMAT_LINE}.{hint}")
        words.append(word)
        tags.append(tag)
    return words, tags


def read_file(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """Every sentence of one file: (tokens per sentence, supertags per sentence)."""
    tokens, tags = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            w, t = parse_line(line, f"{path}, line {n}")
            tokens.append(w)
            tags.append(t)
    if not tokens:
        raise FormatError(f"{path} holds no sentence; expected {FORMAT_LINE}")
    return tokens, tags


def write_file(path: Path, sentences: Iterable[tuple[Sequence[str], Sequence[str]]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for words, tags in sentences:
            for w in words:
                if not w or any(c.isspace() for c in w):
                    raise FormatError(f"word {w!r} is empty or contains whitespace; it cannot be written as "
                                      f"word|supertag")
            f.write(" ".join(f"{w}|{t}" for w, t in zip(words, tags)) + "\n")
            n += 1
    return n


# ------------------------------------------------------------------------------------ reading --ccg_dir
# The data layer reads a ``reader="ccg"`` OptionDirSource (the task ``ccg``) with these (xstilts.data.sources).

def check_split(directory: Path, split: str, option: str, about: str) -> None:
    """``directory`` (the value of ``--<option>``) holds the split's file, and its first line is in the format."""
    p = directory / SPLIT_FILES[split]
    if not p.is_file():
        raise UsageError(f"--{option} {str(directory)!r} has no {p.name} (split {split!r}). {about}")
    with open(p, encoding="utf-8") as f:  # the first line tells a wrong format at once
        for n, line in enumerate(f, 1):
            if line.strip():
                parse_line(line.rstrip("\r\n"), f"{p}, line {n}")
                break


def load_split(directory: Path, split: str):
    """The split as a ``datasets.Dataset`` with columns ``tokens`` and ``tags``."""
    from datasets import Dataset, Features, List, Value

    tokens, tags = read_file(directory / SPLIT_FILES[split])
    features = Features({"tokens": List(Value("string")), "tags": List(Value("string"))})
    return Dataset.from_dict({"tokens": tokens, "tags": tags}, features=features)


def describe_split(split: str) -> dict:
    return {"file": SPLIT_FILES[split], "format": FORMAT_LINE}


# ------------------------------------------------------------------------------------ AUTO -> kit format
_LEAF = re.compile(r"\(<L (\S+) (\S+) (\S+) (\S+) (\S+)>\)")
_AUTO_NAME = re.compile(r"wsj_(\d\d)(\d\d)\.auto$")


def auto_leaves(tree: str) -> tuple[list[str], list[str]]:
    """(words, categories) of one AUTO derivation line, left to right."""
    words, cats = [], []
    for m in _LEAF.finditer(tree):
        cats.append(m.group(1))
        words.append(m.group(4))
    return words, cats


def read_auto(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of one AUTO file: each ``ID=...`` line followed by its derivation line."""
    out = []
    lines = Path(path).read_text(encoding="utf-8", errors="strict").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if not line.startswith("ID="):
            raise FormatError(f"{path}, line {i + 1}: expected an 'ID=...' header line of a CCGbank AUTO file, "
                              f"got {line[:60]!r}")
        if i + 1 >= len(lines) or not lines[i + 1].strip().startswith("(<"):
            raise FormatError(f"{path}, line {i + 2}: expected the derivation of {line.split()[0]} "
                              f"(a line starting with '(<')")
        words, cats = auto_leaves(lines[i + 1])
        if not words:
            raise FormatError(f"{path}, line {i + 2}: no leaf '(<L category POS POS word predarg>)' found")
        out.append((words, cats))
        i += 2
    return out


def convert(auto_dir: str | Path, out_dir: str | Path) -> dict:
    """CCGbank AUTO files -> ``out_dir/{train,dev,test}.txt``; returns counts per split."""
    auto_dir, out_dir = Path(auto_dir), Path(out_dir)
    if not auto_dir.is_dir():
        raise UsageError(f"CCGbank AUTO directory {str(auto_dir)!r} is not a directory (expected "
                         f"<ccgbank>/data/AUTO with sections 00..24)")
    files = sorted((p for p in auto_dir.rglob("*.auto") if _AUTO_NAME.search(p.name)), key=lambda p: p.name)
    if not files:
        raise UsageError(f"no wsj_SSNN.auto file below {auto_dir} (expected <ccgbank>/data/AUTO/SS/wsj_SSNN.auto)")
    by_section: dict[str, list[Path]] = {}
    for p in files:
        by_section.setdefault(_AUTO_NAME.search(p.name).group(1), []).append(p)
    report = {}
    for split, sections in SECTIONS.items():
        sents = [s for sec in sections for p in by_section.get(sec, []) for s in read_auto(p)]
        if not sents:
            if split != "test":
                raise UsageError(f"no AUTO file of section(s) {sections[0]}..{sections[-1]} below {auto_dir}: "
                                 f"cannot write {SPLIT_FILES[split]}")
            continue
        n = write_file(out_dir / SPLIT_FILES[split], sents)
        tags = Counter(t for _, ts in sents for t in ts)
        report[split] = {"file": SPLIT_FILES[split], "sentences": n, "tokens": sum(tags.values()),
                         "supertags": len(tags)}
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xstilts.ccg", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="CCGbank AUTO files -> the kit's supertag format (train/dev/test.txt)")
    c.add_argument("auto_dir", help="CCGbank's data/AUTO directory (sections 00..24)")
    c.add_argument("out_dir", help="output directory; pass it as --ccg_dir")
    v = sub.add_parser("check", help="read a --ccg_dir directory and print its size and supertag count")
    v.add_argument("ccg_dir")
    return p


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> int:
    import json

    args = build_parser().parse_args(argv)
    if args.command == "convert":
        report = convert(args.auto_dir, args.out_dir)
    else:
        report = {}
        for split, name in SPLIT_FILES.items():
            p = Path(args.ccg_dir) / name
            if p.is_file():
                tokens, tags = read_file(p)
                report[split] = {"file": name, "sentences": len(tokens), "tokens": sum(map(len, tags)),
                                 "supertags": len({t for s in tags for t in s})}
        if "train" not in report or "validation" not in report:
            raise UsageError(f"{args.ccg_dir} lacks train.txt or dev.txt. {ABOUT}")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
