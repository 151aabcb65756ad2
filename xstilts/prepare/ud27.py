"""UD-POS test sets of XTREME-R's five extra languages (lt pl uk wo ro) from Universal Dependencies 2.7.

``google/xtreme`` has ``udpos.<Language>`` for XTREME's 33 languages only (UD 2.5). XTREME-R adds
Lithuanian, Polish, Ukrainian, Wolof and Romanian from UD **2.7** (google-research/xtreme
``scripts/download_data.sh``: every treebank of the language, test files in sorted order). The Hub's
``universal-dependencies/universal_dependencies`` is UD 2.7 but script-only (parquet only on
``refs/convert/parquet``), one config per treebank, and its ``upos`` ClassLabel has another order and an
extra ``_``; so the kit converts the release itself, once, into a local mirror with exactly the
``google/xtreme`` ``udpos.<Language>`` schema (``tokens``, ``pos_tags`` ClassLabel of the 17 UPOS tags in
the Hub's order)::

    make data-udpos-ud27                      # downloads ud-treebanks-v2.7.tgz from LINDAT, then runs:
    python -m xstilts.ud27 UD_TREEBANKS_DIR   # -> data/local/udpos-ud27/udpos.<Language>/test-00000-of-00001.parquet

Rows are read the way the Hub's ``google/xtreme`` loader reads UD 2.5 for the other 33 languages: a line
with >= 10 tab-separated fields whose FORM and UPOS are not ``_`` is a token (so multi-word-token range
lines and empty nodes are dropped and the syntactic words kept); a blank line ends a sentence. XTREME's own
preprocessing instead replaces the syntactic words of a multi-word token by its fused form
(``conllu_to_conll.py --replace_subtokens_with_fused_forms``); for these five languages that changes the
tokens of sentences with contractions (mostly Polish), see docs/tagging.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..data.mirror import Mirror
from ..errors import UsageError, exits_on_usage_error
from ..paths import KIT_DATA
from ..tasks.languages import UD27 as LANGUAGES
from ..tasks.tagging import UD27_HUB_ID, UPOS

HUB_ID = UD27_HUB_ID


def features():
    from datasets import ClassLabel, Features, List, Value

    return Features({"tokens": List(Value("string")), "pos_tags": List(ClassLabel(names=list(UPOS)))})


def read_conllu(text: str, where: str = "") -> list[dict]:
    """Sentences of one CoNLL-U file as ``{"tokens", "pos_tags"}`` (tag names), google/xtreme's rules."""
    out, tokens, tags = [], [], []
    for n, line in enumerate(text.split("\n"), 1):
        row = line.rstrip("\r").split("\t") if line.rstrip("\r") else []
        if len(row) >= 10 and row[1] != "_" and row[3] != "_":
            if row[3] not in UPOS:
                raise UsageError(f"{where} line {n}: UPOS {row[3]!r} is not one of the 17 UD tags")
            tokens.append(row[1])
            tags.append(row[3])
        if not row and tokens:
            out.append({"tokens": tokens, "pos_tags": tags})
            tokens, tags = [], []
    return out


def treebank_test_files(ud_dir: Path, lang: str) -> list[Path]:
    """Every ``<lang>_<treebank>-ud-test.conllu`` of the release, sorted by file name."""
    return sorted((p for p in ud_dir.glob("*/*-ud-test.conllu") if p.name.split("_")[0] == lang),
                  key=lambda p: p.name)


def convert(ud_dir: str | Path, out_root: str | Path, languages: Sequence[str] = tuple(LANGUAGES)) -> dict:
    """Write ``<out_root>/local/udpos-ud27`` (Hub-mirror layout); returns sentences per language and file."""
    ud_dir = Path(ud_dir)
    if not ud_dir.is_dir():
        raise UsageError(f"UD directory {str(ud_dir)!r} is not a directory (expected the unpacked "
                         f"ud-treebanks-v2.7 with UD_<Language>-<Treebank>/ subdirectories)")
    unknown = [l for l in languages if l not in LANGUAGES]
    if unknown:
        raise UsageError(f"unknown language(s) {', '.join(unknown)}; valid choices: {', '.join(LANGUAGES)}")
    plan = {lang: treebank_test_files(ud_dir, lang) for lang in languages}
    missing = [lang for lang, files in plan.items() if not files]
    if missing:
        raise UsageError(f"no <lang>_*-ud-test.conllu below {ud_dir} for: {', '.join(missing)}")
    m = Mirror(Path(out_root))
    report = {}
    for lang, files in plan.items():
        rows = []
        for p in files:
            got = read_conllu(p.read_text(encoding="utf-8"), str(p))
            report.setdefault(lang, {})[p.name] = len(got)
            rows.extend(got)
        m.write(HUB_ID, f"udpos.{LANGUAGES[lang]}", "test", rows, features())
    m.describe(HUB_ID, {"pretty_name": "UD-POS test sets of XTREME-R's extra languages (UD 2.7)"},
               "Written by `python -m xstilts.ud27` (make data-udpos-ud27) from the Universal Dependencies 2.7 "
               "release (https://hdl.handle.net/11234/1-3424, licences per treebank). Schema of google/xtreme "
               "udpos.<Language>.\n")
    m.finish(None)
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xstilts.ud27", description=__doc__.split("\n\n")[0])
    p.add_argument("ud_dir", help="unpacked ud-treebanks-v2.7 directory")
    p.add_argument("--out_root", default=None, help="mirror root (default: <kit>/data); writes <root>/local/udpos-ud27")
    p.add_argument("--languages", default=",".join(LANGUAGES), help="comma list (default: lt,pl,uk,wo,ro)")
    return p


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> int:
    import json

    args = build_parser().parse_args(argv)
    langs = [l.strip() for l in args.languages.split(",") if l.strip()]
    report = convert(args.ud_dir, args.out_root or KIT_DATA, langs)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
