"""Mewsli-X data, prepared for the dual encoder (entity retrieval among candidate entity descriptions).

Mewsli-X (Botha et al.; XTREME-R) is not on the Hugging Face Hub in an official copy. Its public release is
built by ``get-mewsli-x.sh`` of github.com/google-research/google-research
(``dense_representations_for_entity_retrieval/mel``): it downloads the descriptor archive
``https://storage.googleapis.com/gresearch/mewsli/mewsli-x_20220518_6.zip`` and the WikiNews dumps of 11
languages from archive.org, and restores the article text, leaving in ``mewsli_x/output/dataset/``:

``candidate_set_entities.jsonl``          the ~1M candidate entities (Entity: entity_id, title, description,
                                          sentence_spans, description_language, description_url)
``wikipedia_pairs-{train,dev}.jsonl``     English Wikipedia mention-entity pairs
                                          ({contextual_mention: {context, mention}, entity})
``wikinews_mentions-{dev,test}.jsonl``    WikiNews mentions in 11 languages ({context, mentions: [...]})

(XTREME's ``scripts/download_mewslix_data.sh`` runs the same script and moves these five files.) This
module converts them into one local-only repo in the Hub-mirror layout, ``<dir>/local/mewslix/``:

``candidate_set_entities/train-...parquet``   entity_id, title, description (the text encoded), language, url
``wikipedia_pairs/{train,validation}-...``    example_id, lang, mention (the query text), entity_id,
                                              entity_description (the positive's text), entity_language
``wikinews_mentions/{validation,test}-...``   example_id, lang, mention (the query text), entity_id, document_id

Text is prepared as the Mewsli-X baseline does (``third_party/utils_mewslix.py`` in google-research/xtreme):
a mention becomes ``"<mention>: <left> { <mention> } <right>"`` with the one sentence that holds it as
context (braces already in the text become parentheses), and an entity becomes its description sentences
joined by spaces; newlines and runs of spaces are collapsed. (Reimplemented here, not copied.)

    make data-mewslix MEWSLIX_DIR=/path/to/mewsli_x/output/dataset     # convert an existing release build
    python -m xstilts.mewslix_data --source_dir DIR --out_dir data
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

from ..data.mirror import claim_local_repo, write_local_repo
from ..errors import UsageError, exits_on_usage_error
from ..tasks.dual_encoder import MEWSLIX_HUB_ID, MEWSLIX_MAKE_TARGET
from ..tasks.languages import MEWSLIX

logger = logging.getLogger(__name__)

REPO_ID = MEWSLIX_HUB_ID
MAKE_TARGET = MEWSLIX_MAKE_TARGET
MENTION_LANGS = MEWSLIX
ARCHIVE_URL = "https://storage.googleapis.com/gresearch/mewsli/mewsli-x_20220518_6.zip"
FILES = {
    ("candidate_set_entities", "train"): "candidate_set_entities.jsonl",
    ("wikipedia_pairs", "train"): "wikipedia_pairs-train.jsonl",
    ("wikipedia_pairs", "validation"): "wikipedia_pairs-dev.jsonl",
    ("wikinews_mentions", "validation"): "wikinews_mentions-dev.jsonl",
    ("wikinews_mentions", "test"): "wikinews_mentions-test.jsonl",
}
_BRACED = re.compile(r"\{(.*?)\}")
_SPACES = re.compile(r"\s+")


def features(config: str):
    from datasets import Features, Value

    s = Value("string")
    names = {
        "candidate_set_entities": ("entity_id", "title", "description", "language", "url"),
        "wikipedia_pairs": ("example_id", "lang", "mention", "entity_id", "entity_description", "entity_language"),
        "wikinews_mentions": ("example_id", "lang", "mention", "entity_id", "document_id"),
    }[config]
    return Features({n: s for n in names})


def _normalize(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _spans(obj: dict, where: str) -> list[tuple[int, int]]:
    try:
        return [(int(s["start"]), int(s["end"])) for s in obj["sentence_spans"]]
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{where}: bad sentence_spans ({e!r})") from None


def entity_text(entity: dict, where: str = "entity") -> str:
    """The entity description as encoded: its sentences joined by spaces."""
    desc = entity["description"]
    return _normalize(" ".join(desc[s:e] for s, e in _spans(entity, where)))


def mention_text(context: dict, mention: dict, where: str = "mention") -> tuple[str, bool]:
    """(query text, whether the mention lay inside one sentence). The query keeps the sentence holding the
    mention (the whole context when no sentence holds all of it), marks the mention with braces and
    prepends it: ``"Smith: The verdict came back for { Smith } , who ..."``."""
    text = context["text"]
    span = mention["mention_span"]
    start, end, surface = int(span["start"]), int(span["end"]), span["text"]
    if text[start:end] != surface:
        raise UsageError(f"{where}: mention_span text {surface!r} != context[{start}:{end}] {text[start:end]!r}")
    sent = next(((s, e) for s, e in _spans(context, where) if s <= start < e and end <= e), None)
    s, e = sent if sent is not None else (0, len(text))
    left = _BRACED.sub(r"(\1)", text[s:start])
    right = _BRACED.sub(r"(\1)", text[end:e])
    return _normalize(f"{surface}: {left} {{ {surface} }} {right}"), sent is not None


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise UsageError(f"{path} line {n}: not JSON ({e})") from None
    except FileNotFoundError:
        raise UsageError(f"missing {path}: expected the Mewsli-X release files "
                         f"({', '.join(FILES.values())}); see `make {MAKE_TARGET}` in docs/xtreme_r.md") from None
    return rows


def entity_rows(records: list[dict], source: str) -> list[dict]:
    out = []
    for i, ent in enumerate(records):
        where = f"{source} line {i + 1}"
        try:
            out.append({"entity_id": ent["entity_id"], "title": ent["title"], "description": entity_text(ent, where),
                        "language": ent["description_language"], "url": ent["description_url"]})
        except KeyError as e:
            raise UsageError(f"{where}: not a Mewsli-X Entity (missing {e})") from None
    return out


def pair_rows(records: list[dict], source: str) -> tuple[list[dict], int]:
    out, outside = [], 0
    for i, rec in enumerate(records):
        where = f"{source} line {i + 1}"
        try:
            cm, ent = rec["contextual_mention"], rec["entity"]
            query, inside = mention_text(cm["context"], cm["mention"], where)
            out.append({"example_id": cm["mention"]["example_id"], "lang": cm["context"]["language"], "mention": query,
                        "entity_id": ent["entity_id"], "entity_description": entity_text(ent, where),
                        "entity_language": ent["description_language"]})
        except KeyError as e:
            raise UsageError(f"{where}: not a Mewsli-X MentionEntityPair (missing {e})") from None
        outside += not inside
    return out, outside


def mention_rows(records: list[dict], source: str) -> tuple[list[dict], int]:
    out, outside = [], 0
    for i, rec in enumerate(records):
        where = f"{source} line {i + 1}"
        try:
            ctx = rec["context"]
            if not ctx.get("text"):
                raise UsageError(f"{where}: the context has no text: this is a *_no_text file of the descriptor "
                                 f"archive; run the whole get-mewsli-x.sh (it restores the WikiNews text)")
            for mention in rec["mentions"]:
                query, inside = mention_text(ctx, mention, where)
                out.append({"example_id": mention["example_id"], "lang": ctx["language"], "mention": query,
                            "entity_id": mention["entity_id"], "document_id": ctx["document_id"]})
                outside += not inside
        except KeyError as e:
            raise UsageError(f"{where}: not Mewsli-X ContextualMentions (missing {e})") from None
    return out, outside


def build_tables(source_dir: Path) -> tuple[dict, dict]:
    """``({(config, split): rows}, {"<config>/<split>": counts})`` from the five release files."""
    source_dir = Path(source_dir)
    tables, counts = {}, {}
    for (config, split), name in FILES.items():
        path = source_dir / name
        records = read_jsonl(path)
        if config == "candidate_set_entities":
            rows, outside = entity_rows(records, str(path)), 0
        elif config == "wikipedia_pairs":
            rows, outside = pair_rows(records, str(path))
        else:
            rows, outside = mention_rows(records, str(path))
            unknown = sorted({r["lang"] for r in rows} - set(MENTION_LANGS))
            if unknown:
                raise UsageError(f"{path}: mention language(s) {unknown} are not Mewsli-X's {list(MENTION_LANGS)}")
        tables[(config, split)] = rows
        counts[f"{config}/{split}"] = {"rows": len(rows), "mention_outside_one_sentence": outside}
    ids = {r["entity_id"] for r in tables[("candidate_set_entities", "train")]}
    for split in ("validation", "test"):
        missing = sorted({r["entity_id"] for r in tables[("wikinews_mentions", split)]} - ids)
        if missing:
            raise UsageError(f"wikinews_mentions {split}: gold entities not in candidate_set_entities: {missing[:10]}")
    return tables, counts


README_HEADER = {"pretty_name": "Mewsli-X, prepared by xstilts"}
README_BODY = ("Local-only repo written by `python -m xstilts.mewslix_data` (`make data-mewslix`) from the Mewsli-X "
               "release files (google-research/google-research `dense_representations_for_entity_retrieval/mel`, "
               "`get-mewsli-x.sh`). Texts are prepared as the Mewsli-X baseline does (see the module docstring of "
               "`xstilts.mewslix_data`).\n")


def convert(source_dir: Path, out_dir: Path, *, overwrite: bool = False) -> dict:
    """Write ``<out_dir>/local/mewslix`` from the five release files in ``source_dir``; returns row counts."""
    claim_local_repo(out_dir, REPO_ID, overwrite)
    tables, counts = build_tables(source_dir)
    write_local_repo(out_dir, REPO_ID, tables, features, README_HEADER,
                     README_BODY + f"\nCounts: {json.dumps(counts)}\n")
    return counts


@exits_on_usage_error
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xstilts.mewslix_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--source_dir", required=True,
                   help="folder with the five Mewsli-X release files (get-mewsli-x.sh's mewsli_x/output/dataset)")
    p.add_argument("--out_dir", default="data", help="writes <out_dir>/local/mewslix (default: data)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing <out_dir>/local/mewslix")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not Path(args.source_dir).is_dir():
        raise UsageError(f"--source_dir {args.source_dir!r} is not a directory")
    counts = convert(Path(args.source_dir), Path(args.out_dir), overwrite=args.overwrite)
    print(json.dumps({"written": str(Path(args.out_dir) / REPO_ID), "counts": counts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
