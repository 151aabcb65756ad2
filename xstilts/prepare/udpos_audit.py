"""What ``google/xtreme`` ``udpos.<Language>`` holds against XTREME's own UD-POS files: treebank selection and
multi-word tokens (issue 18; the measurement behind docs/tagging.md "UD-POS on the Hub vs XTREME").

* **Treebank selection.** The Hub's loading script (huggingface/datasets ``datasets/xtreme/xtreme.py@8803c182e6^``,
  ``UdposParser.generate_examples:918-940``) reads every file of the UD 2.5 archive with
  ``f"_{lang}" in path and split in path and path.endswith(".conllu")`` (NYUAD excluded, ``:924``), where ``lang``
  is the language NAME (``Greek``). ``UD_Ancient_Greek-PROIEL`` contains ``_Greek``, so ``udpos.Greek`` merges
  Ancient Greek into Modern Greek. XTREME (``scripts/download_data.sh@838c13b:61-97``) keeps a file when the
  part of its NAME before the first ``_`` is the language CODE (``el_gdt-ud-test.conllu`` -> ``el``; Ancient Greek
  is ``grc``). :func:`hub_selects` / :func:`xtreme_selects` are the two rules; :func:`extra_treebanks` lists what
  the Hub adds, for a real release directory too (``python -m xstilts.prepare.udpos_audit UD_2.5_DIR``).
* **Multi-word tokens.** The Hub keeps a line whose FORM and UPOS are not ``_`` (``:930``): MWT range lines are
  dropped and the syntactic words kept (``στο`` -> ``σε`` + ``το``), as ``xstilts.prepare.ud27.read_conllu``.
  XTREME's ``conllu_to_conll.py --replace_subtokens_with_fused_forms`` keeps the fused form, with the UPOS of the
  span head. :func:`mwt_counts` says how many tokens that changes in a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import UsageError, exits_on_usage_error
from ..tasks import TASKS


def hub_selects(path: str, language: str, split: str) -> bool:
    """The Hub script's rule for ``udpos.<language>`` (``language``: its name, e.g. ``Greek``)."""
    return f"_{language}" in path and split in path and path.endswith(".conllu") and "NYUAD" not in path


def xtreme_selects(path: str, code: str, split: str) -> bool:
    """XTREME's rule: the file name's prefix before the first ``_`` is the language code (``el``)."""
    name = Path(path).name
    return name.split("_")[0] == code and f"-{split}." in name and name.endswith(".conllu")


def extra_treebanks(paths: Iterable[str], languages: Mapping[str, str], split: str = "test") -> dict:
    """Per language code (``languages``: code -> the Hub's language name): the files the Hub reads that XTREME does
    not, and the files XTREME reads that the Hub does not (only languages with a difference)."""
    paths = sorted(paths)
    out = {}
    for code, name in languages.items():
        hub = {p for p in paths if hub_selects(p, name, split)}
        xtreme = {p for p in paths if xtreme_selects(p, code, split)}
        if hub != xtreme:
            out[code] = {"hub_only": sorted(hub - xtreme), "xtreme_only": sorted(xtreme - hub)}
    return out


def mwt_counts(text: str) -> dict:
    """Multi-word tokens of one CoNLL-U file: the range lines, the syntactic words they cover, the sentences with
    one, and the token count of a sentence read the Hub's way (syntactic words) and XTREME's (fused forms)."""
    ranges = words = sentences = hub_tokens = 0
    in_sentence_mwt = False
    covered_until = 0
    fused_tokens = 0
    for line in text.split("\n") + [""]:
        row = line.rstrip("\r").split("\t") if line.strip() else []
        if not row:
            sentences += in_sentence_mwt
            in_sentence_mwt, covered_until = False, 0
            continue
        if len(row) < 10 or row[0].startswith("#"):
            continue
        if "-" in row[0]:
            lo, hi = (int(x) for x in row[0].split("-"))
            ranges += 1
            words += hi - lo + 1
            covered_until = hi
            in_sentence_mwt = True
            fused_tokens += 1
            continue
        if "." in row[0] or row[1] == "_" or row[3] == "_":
            continue
        hub_tokens += 1
        if int(row[0]) > covered_until:
            fused_tokens += 1
    return {"mwt_ranges": ranges, "syntactic_words_in_mwts": words, "sentences_with_mwt": sentences,
            "tokens_hub": hub_tokens, "tokens_fused_forms": fused_tokens}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xstilts.prepare.udpos_audit", description=__doc__.split("\n")[0])
    p.add_argument("ud_dir", help="an extracted UD release (ud-treebanks-v2.5/UD_*/*.conllu)")
    p.add_argument("--split", default="test")
    return p


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = Path(args.ud_dir)
    if not any(root.glob("*/*.conllu")):
        raise UsageError(f"{args.ud_dir!r} holds no UD_*/<file>.conllu: pass an extracted UD release directory")
    paths = [str(p.relative_to(root)) for p in root.glob("*/*.conllu")]
    udpos = TASKS["udpos"]
    languages = {c: udpos.lang_codes.get(c, c) for c in udpos.languages}
    extra = extra_treebanks(paths, languages, args.split)
    mwts = {code: {p: mwt_counts((root / p).read_text(encoding="utf-8")) for p in sorted(
        q for q in paths if xtreme_selects(q, code, args.split))} for code in languages}
    print(json.dumps({"treebank_differences": extra, "multi_word_tokens": mwts}, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
