"""XTREME's translate-train release (Hu et al. 2020, gs://xtreme_translations): SQuAD v1.1 and TyDiQA-GoldP training
data machine-translated from English, downloaded, checked and converted into the prepared repo
``<dir>/local/xtreme_translations`` (Hub-mirror layout) that the translated tasks read (xstilts/tasks/translated.py).

    make data-squad-translate-train     SQuAD v1.1 train into ar de el es hi ru th tr vi zh  -> configs SQuAD.<lang>
    make data-tydiqa-translate-train    TyDiQA-GoldP English train into ar bn fi id ko ru sw te -> TyDiQA-GoldP.<lang>
    python -m xstilts.prepare.translations squad --out_dir data [--langs de es] [--from_dir DIR] [--overwrite]

The files are the ones TensorFlow Datasets reads (``question_answering/xquad.py``, ``tydi_qa.py``); XTREME's own
download script fetches none of them (its README points to the bucket). Their SHA-256 are recorded in
``data_checksums.json`` from TFDS's ``url_checksums/xquad.txt`` @ 24211da and ``tydi_qa.txt`` @ 0260618 (a
third-party record: every download is verified against it, and a mismatch is refused).

Each file is SQuAD v1.1 JSON. Every question becomes one row with rajpurkar/squad's fields (id, title, context,
question, answers {text, answer_start}); the translations' answer spans were projected by the translation
pipeline, so an answer's text is not always in its translated context: a question none of whose answers occurs in
the context is dropped (XTREME's SQuAD reader skips such examples too: "Could not find answer"), and every
conversion records how many questions it kept and dropped and how many answer starts do not point at their
text (the span-QA format moves those to the nearest occurrence) in ``manifest.json`` next to the data.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from ..data.mirror import Mirror
from ..errors import UsageError, choices_error, exits_on_usage_error
from ..files import atomic_write_json
from ..tasks import languages as L
from ..tasks.translated import (SQUAD_TT_CONFIG, SQUAD_TT_TARGET, TRANSLATIONS_REPO, TYDIQA_TT_CONFIG,
                                TYDIQA_TT_TARGET)
from .downloads import (CHECKSUMS_FILE, DEFAULT_LOCAL_DIR, SUMS_NAME, download_dir, fetch, record_checksums,
                        verify_file)

logger = logging.getLogger(__name__)

BUCKET = "https://storage.googleapis.com/xtreme_translations"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Release:
    name: str
    url: str  # with {lang}
    file: str  # with {lang}
    languages: tuple[str, ...]
    config: str  # with {code}
    checksums: str  # section of data_checksums.json
    make_target: str
    about: str


RELEASES = {
    "squad": Release("squad", f"{BUCKET}/SQuAD/translate-train/squad.translate.train.en-{{lang}}.json",
                     "squad.translate.train.en-{lang}.json", L.SQUAD_TRANSLATE_TRAIN, SQUAD_TT_CONFIG,
                     "xtreme_squad_translate_train", SQUAD_TT_TARGET,
                     "SQuAD v1.1 train, machine-translated from English (XTREME translate-train)"),
    "tydiqa": Release("tydiqa", f"{BUCKET}/TyDiQA-GoldP/translate-train/tydiqa.translate.train.en-{{lang}}.json",
                      "tydiqa.translate.train.en-{lang}.json", L.TYDIQA_TRANSLATE_TRAIN, TYDIQA_TT_CONFIG,
                      "xtreme_tydiqa_translate_train", TYDIQA_TT_TARGET,
                      "TyDiQA-GoldP English train, machine-translated from English (XTREME translate-train)"),
}


def squad_features():
    """rajpurkar/squad's features (struct order text, answer_start)."""
    from datasets import Features, List, Value

    s = Value("string")
    return Features({"id": s, "title": s, "context": s, "question": s,
                     "answers": {"text": List(s), "answer_start": List(Value("int32"))}})


def squad_rows(obj: dict, where: str) -> tuple[list[dict], dict]:
    """Rows of one SQuAD v1.1 JSON object, and what the conversion found (kept, dropped, misplaced starts)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise UsageError(f"{where}: not SQuAD-format JSON (no 'data' list)")
    rows, dropped, misplaced, ids = [], 0, 0, set()
    for article in obj["data"]:
        title = str(article.get("title", ""))
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            for qa in paragraph.get("qas", []):
                texts = [str(a["text"]) for a in qa.get("answers", [])]
                starts = [int(a["answer_start"]) for a in qa.get("answers", [])]
                if not any(t and t in context for t in texts):
                    dropped += 1
                    continue
                misplaced += sum(context[s:s + len(t)] != t for t, s in zip(texts, starts))
                qid = str(qa["id"])
                if qid in ids:
                    raise UsageError(f"{where}: question id {qid!r} occurs twice; the file is not the release the kit "
                                     f"knows")
                ids.add(qid)
                rows.append({"id": qid, "title": title, "context": context, "question": qa["question"],
                             "answers": {"text": texts, "answer_start": starts}})
    if not rows:
        raise UsageError(f"{where}: no question with its answer in the context: empty or not the expected file")
    return rows, {"questions": len(rows) + dropped, "kept": len(rows), "dropped_answer_not_in_context": dropped,
                  "answer_starts_not_at_text": misplaced}


def describe(mirror: Mirror) -> None:
    mirror.describe(TRANSLATIONS_REPO, {"pretty_name": "XTREME translate-train data (SQuAD v1.1, TyDiQA-GoldP), "
                                                       "local copy"},
                    "Made by xstilts.prepare.translations (`make data-squad-translate-train`, `make "
                    "data-tydiqa-translate-train`) from XTREME's translate-train release (gs://xtreme_translations, "
                    "Hu et al. 2020): machine translations of SQuAD v1.1 train (CC BY-SA 4.0) and of TyDiQA-GoldP's "
                    "English train (Apache 2.0) from English. One row per question, rajpurkar/squad's fields; "
                    "questions whose answer does not occur in the translated context are dropped (counts in "
                    f"{MANIFEST}).\n")


def convert(release: Release, files: dict[str, Path], out_dir: Path, *, sums: dict | None = None,
            overwrite: bool = False) -> dict:
    """``{lang: SQuAD JSON file}`` -> configs of ``<out_dir>/local/xtreme_translations`` (+ README listing every
    config on disk, + manifest.json). An existing config is replaced only with ``overwrite``."""
    repo = Path(out_dir) / TRANSLATIONS_REPO
    for lang in files:
        config = release.config.format(code=lang)
        if (repo / config).exists() and not overwrite:
            raise UsageError(f"{repo / config} already exists; pass --overwrite to convert it again")
    m = Mirror(Path(out_dir))
    manifest_path = repo / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    for lang, path in files.items():
        config = release.config.format(code=lang)
        try:
            obj = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as e:
            raise UsageError(f"{path}: not readable JSON ({e}); delete it and download again") from None
        rows, found = squad_rows(obj, str(path))
        m.write(TRANSLATIONS_REPO, config, "train", rows, squad_features())
        manifest[config] = {"release": release.about, "url": release.url.format(lang=lang),
                            "file": Path(path).name, **(sums or {}).get(lang, {}), **found}
        logger.info("%s: %d of %d questions kept (%d dropped: answer not in the translated context)", config,
                    found["kept"], found["questions"], found["dropped_answer_not_in_context"])
    describe(m)
    m.finish(None)
    atomic_write_json(manifest_path, manifest)
    return {c: manifest[c] for c in (release.config.format(code=l) for l in files)}


def prepare(release: Release, out_dir: str | Path, langs: list[str], *, from_dir: str | Path | None = None,
            record: bool = False, overwrite: bool = False) -> dict:
    """Download (or take from ``from_dir``), verify and convert the release's files of ``langs``."""
    for lang in langs:
        if lang not in release.languages:
            raise choices_error(f"{release.name} translate-train language", lang, release.languages)
    raw = Path(from_dir) if from_dir else download_dir(out_dir, "xtreme_translations")
    sums_file = download_dir(out_dir, "xtreme_translations") / SUMS_NAME
    files, sums = {}, {}
    for lang in langs:
        dest = raw / release.file.format(lang=lang)
        if from_dir:
            if not dest.is_file():
                raise UsageError(f"--from_dir {from_dir}: {dest.name} is not there ({release.url.format(lang=lang)})")
        else:
            fetch(release.url.format(lang=lang), dest, timeout=600.0)
        sums[lang] = verify_file(dest, release.checksums, sums_file)
        files[lang] = dest
    converted = convert(release, files, Path(out_dir), sums=sums, overwrite=overwrite)
    if record:
        written = record_checksums(release.checksums, {files[l].name: sums[l]["sha256"] for l in langs})
        print(f"recorded {len(written)} checksum(s) in {CHECKSUMS_FILE}", file=sys.stderr)
    return converted


@exits_on_usage_error
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xstilts.prepare.translations", description=__doc__.split("\n\n")[0])
    p.add_argument("release", choices=sorted(RELEASES), help="squad (SQuAD v1.1) or tydiqa (TyDiQA-GoldP)")
    p.add_argument("--out_dir", default=str(DEFAULT_LOCAL_DIR), help="data directory (default: the kit's data/)")
    p.add_argument("--langs", nargs="+", default=None, help="languages (default: every language of the release)")
    p.add_argument("--from_dir", default=None, help="take the release files from this directory instead of "
                                                    "downloading them (still SHA-256 checked)")
    p.add_argument("--overwrite", action="store_true", help="replace configs converted before")
    p.add_argument("--record_checksums", action="store_true",
                   help=f"write observed SHA-256 into {CHECKSUMS_FILE.name} where none is recorded yet")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    release = RELEASES[args.release]
    out = prepare(release, args.out_dir, args.langs or list(release.languages), from_dir=args.from_dir,
                  record=args.record_checksums, overwrite=args.overwrite)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
