"""Write the synthetic world's data: Hub-layout datasets, an MLM corpus and ``world.json``.

    python -m xstilts.synthetic.build --out DIR [--seed 1] [--languages en lex cyr ...]
                                      [--sizes corpus=4000 nli_train=4000 ...]

Output (``DIR`` is then a ``--data_root`` for the phase scripts)::

    DIR/xstilts-synthetic/nli/README.md + default/{train,validation_matched}-00000-of-00001.parquet
        English NLI between single clauses, the schema of nyu-mll/glue mnli (premise, hypothesis, label
        ClassLabel, idx); every premise with one hypothesis per label
    DIR/xstilts-synthetic/pair/README.md
        en/train-00000-of-00001.parquet            English paraphrase training pairs (MNLI-train schema,
                                                   label ClassLabel[not_paraphrase, paraphrase])
        pairs/{validation,test}-00000-of-00001.parquet   every language, the google/xtreme XNLI schema
                                                   (language, sentence1, sentence2, gold_label); the same
                                                   meaning pairs in every language (parallel, like XNLI)
    DIR/xstilts-synthetic/tatoeba/README.md + tatoeba.<code>/validation-00000-of-00001.parquet
        parallel sentences, the google/xtreme tatoeba.<iso3> schema (source = the language, target = English)
    DIR/xstilts-synthetic/pos/README.md + pos.<code>/{train (en only),validation,test}-00000-of-00001.parquet
        part-of-speech tagging, the google/xtreme udpos.<Language> schema (tokens, pos_tags ClassLabel[17 UPOS]);
        the same sentences in every language (validation/test)
    DIR/xstilts-synthetic/nli/translated.<code>/train-00000-of-00001.parquet
        the alternative arms' translated NLI (synth_nli_tt / synth_nli_tta): English training row i realised in
        derived language i mod k (k derived languages), so the k configs together hold every English training
        row exactly once, in another language (the same meanings and labels as synth_nli's training set)
    DIR/xstilts-synthetic/text/README.md + <code>/train-00000-of-00001.parquet
        the MLM arm's text (synth_mlm): new monolingual lines of every language (not corpus.txt's), grouped into
        documents, the wikimedia/wikipedia schema (id, url, title, text)
    DIR/corpus.txt     monolingual MLM text, every language, NO parallel sentences (independent samples)
    DIR/world.json     settings, lexicons, sizes, label counts, sha256 of every file

Every file is a deterministic function of (seed, languages, sizes) for fixed datasets/pyarrow versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
from collections import Counter
from pathlib import Path

from ..data.mirror import parquet_name, write_parquet
from ..data.mirror import write_readme as _write_readme
from ..tasks.classification import NLI_LABELS
from ..tasks.synthetic import (NLI_CONFIG, NLI_REPO, NLI_TRANSLATED_CONFIG, ORG, PAIR_EVAL_CONFIG, PAIR_LABELS,
                               PAIR_REPO, PAIR_TRAIN_CONFIG, POS_CONFIG, POS_REPO, TATOEBA_CONFIG, TATOEBA_REPO,
                               TEXT_CONFIG, TEXT_REPO, WORLD_FILE)
from ..tasks.tagging import UPOS
from .world import (CATALOGUE, DEFAULT_LANGUAGES, ENGLISH, World, english_order_tokens, nli_triplet, pair_example,
                    parse_language, random_clause, seed_of, Scene)


DEFAULT_SIZES = {  # the measured demo settings (docs/synthetic.md)
    "corpus": 4000,  # MLM lines per language (1-3 clauses each)
    "nli_train": 9000,  # English NLI: 3000 premises x one hypothesis per label (the demo trains one epoch)
    "nli_dev": 600,  # 200 premises
    "pair_train": 1000,  # English paraphrase training pairs (balanced); small, where STILTs should help
    "pair_dev": 300,  # per language (English rows select the checkpoint; the others are for tuning)
    "pair_test": 600,  # per language
    "tatoeba": 500,  # parallel sentences per language
    "pos_train": 500,  # English tagged sentences (1-2 clauses); tagging is learnt fast
    "pos_dev": 300,  # per language (English rows select the checkpoint)
    "pos_test": 500,  # per language
    "text": 600,  # the MLM arm's lines per language (documents of TEXT_LINES_PER_DOCUMENT lines)
}
TEXT_LINES_PER_DOCUMENT = 10


def _features():
    from datasets import ClassLabel, Features, List, Value

    s = Value("string")
    return {
        "mnli": Features({"premise": s, "hypothesis": s, "label": ClassLabel(names=list(NLI_LABELS)),
                          "idx": Value("int32")}),
        "pair_train": Features({"premise": s, "hypothesis": s, "label": ClassLabel(names=list(PAIR_LABELS)),
                                "idx": Value("int32")}),
        "xnli": Features({"language": s, "sentence1": s, "sentence2": s, "gold_label": s}),
        "tatoeba": Features({"source_sentence": s, "target_sentence": s, "source_lang": s, "target_lang": s}),
        "udpos": Features({"tokens": List(s), "pos_tags": List(ClassLabel(names=list(UPOS)))}),
        "wikipedia": Features({"id": s, "url": s, "title": s, "text": s}),
    }


# ---------------------------------------------------------------------------- Hub layout (as tests/fixtures)
def write_readme(repo: Path, pretty: str, configs: dict[str, list[str]], body: str) -> None:
    _write_readme(repo, {"pretty_name": pretty}, configs, body)


# ---------------------------------------------------------------------------- generators
def _balanced(labels, n: int, rng: random.Random) -> list[str]:
    out = [labels[i % len(labels)] for i in range(n)]
    rng.shuffle(out)
    return out


def _key(a, b) -> tuple:
    return tuple(english_order_tokens(a, ENGLISH)), tuple(english_order_tokens(b, ENGLISH))


def gen_nli_meanings(world: World, n: int, split: str, seen: set) -> list[tuple]:
    """(premise clause, hypothesis clause, label) of n // 3 premises, each with one hypothesis per label (so exactly
    balanced), in shuffled order; no (premise, hypothesis) pair occurs twice in the task, across splits too."""
    rng = random.Random(seed_of(world.seed, "nli", split))
    rows = []
    while len(rows) < n - n % len(NLI_LABELS):
        p, hyps = nli_triplet(rng, world.kb)
        keys = [_key(p, h) for h, _, _ in hyps]
        if any(k in seen for k in keys):
            continue
        seen.update(keys)
        rows += [(p, h, label) for h, label, _ in hyps]
    rng.shuffle(rows)
    return rows


def nli_rows(world: World, meanings: list[tuple], code: str) -> list[dict]:
    return [{"premise": world.realise(p, code), "hypothesis": world.realise(h, code), "label": NLI_LABELS.index(l),
             "idx": i} for i, (p, h, l) in enumerate(meanings)]


def gen_nli(world: World, n: int, split: str, seen: set) -> list[dict]:
    """English NLI rows (``gen_nli_meanings`` realised in English)."""
    return nli_rows(world, gen_nli_meanings(world, n, split, seen), "en")


def translated_nli(world: World, meanings: list[tuple]) -> dict[str, list[tuple]]:
    """The training meanings dealt out to the derived languages: row i to derived language i mod k, so that the
    languages together hold every row once (the translated arm's data: same meanings, same budget)."""
    codes = [l.code for l in world.derived]
    return {code: meanings[j::len(codes)] for j, code in enumerate(codes)}


def gen_pairs(world: World, n: int, split: str, seen: set) -> list[tuple]:
    rng = random.Random(seed_of(world.seed, "pair", split))
    out = []
    for label in _balanced(PAIR_LABELS, n, rng):
        while True:
            a, b, got = pair_example(rng, world.kb, label)
            if _key(a, b) not in seen:
                seen.add(_key(a, b))
                break
        out.append((a, b, got))
    return out


def gen_tatoeba(world: World, n: int) -> list:
    """n clauses whose realisations are distinct in every language."""
    rng = random.Random(seed_of(world.seed, "tatoeba"))
    clauses, seen = [], {code: set() for code in world.codes}
    while len(clauses) < n:
        c = random_clause(rng, world.kb)
        texts = {code: world.realise(c, code) for code in world.codes}
        if any(texts[code] in seen[code] for code in world.codes):
            continue
        for code in world.codes:
            seen[code].add(texts[code])
        clauses.append(c)
    return clauses


def gen_pos(world: World, n: int, split: str, seen: set) -> list[list]:
    """n texts of 1-2 clauses true in one scene (like corpus lines), distinct across splits (English)."""
    rng = random.Random(seed_of(world.seed, "pos", split))
    out = []
    while len(out) < n:
        scene = Scene(world.kb, rng, 2 if rng.random() < 0.7 else 3)
        clauses = scene.text(1 if rng.random() < 0.5 else 2)
        key = world.realise(clauses, "en")
        if key in seen:
            continue
        seen.add(key)
        out.append(clauses)
    return out


CORPUS_CLAUSES = ((1, 0.35), (2, 0.5), (3, 0.15))  # clauses per corpus line (joined by "and")


def corpus_by_language(world: World, n: int, stream: str = "corpus") -> dict[str, list[str]]:
    """n lines per language, each 1-3 clauses true in one scene (so text carries meaning), sampled
    independently per language (no line is generated as a translation of another); ``stream`` names the random
    stream (``corpus``: pre-training, ``text``: the MLM arm's new text)."""
    out = {}
    counts, probs = zip(*CORPUS_CLAUSES)
    for lang in world.languages:
        rng = random.Random(seed_of(world.seed, stream, lang.code))
        lines = []
        for _ in range(n):
            k = rng.choices(counts, probs)[0]
            scene = Scene(world.kb, rng, 2 if rng.random() < 0.7 else 3)
            lines.append(world.realise(scene.text(k), lang.code))
        out[lang.code] = lines
    return out


def gen_corpus(world: World, n: int) -> list[str]:
    """The pre-training corpus: ``corpus_by_language``, interleaved."""
    per_lang = list(corpus_by_language(world, n).values())
    return [per_lang[j][i] for i in range(n) for j in range(len(per_lang))]


def overlap_with_english(rows: list[dict], codes) -> dict:
    """How much of each language's evaluation text is English text: the share of pairs identical to the
    English pair, and of running words that are English words (cognates, shared anchors). Zero-shot
    numbers of languages with much overlap partly measure English, not transfer."""
    def words(text: str) -> list[str]:
        return text[:-1].split()

    by_lang: dict[str, list[dict]] = {c: [] for c in codes}
    for r in rows:
        by_lang[r["language"]].append(r)
    en = by_lang["en"]
    en_words = {w for r in en for w in words(r["sentence1"]) + words(r["sentence2"])}
    out = {}
    for code in codes:
        rs = by_lang[code]
        toks = [w for r in rs for w in words(r["sentence1"]) + words(r["sentence2"])]
        same = sum(a["sentence1"] == b["sentence1"] and a["sentence2"] == b["sentence2"] for a, b in zip(en, rs))
        out[code] = {"pairs_identical_to_english": round(same / max(1, len(rs)), 4),
                     "running_words_that_are_english": round(sum(w in en_words for w in toks) / max(1, len(toks)), 4)}
    return out


# ---------------------------------------------------------------------------- build
def build(out: str | Path, *, seed: int = 1, languages=DEFAULT_LANGUAGES, sizes: dict | None = None) -> dict:
    from datasets import disable_progress_bars

    disable_progress_bars()
    out = Path(out)
    sizes = dict(DEFAULT_SIZES, **(sizes or {}))
    for k in ("nli_train", "nli_dev"):
        sizes[k] -= sizes[k] % 3
    for k in ("pair_train", "pair_dev", "pair_test"):
        sizes[k] -= sizes[k] % 2
    langs = tuple(parse_language(l) if isinstance(l, str) else l for l in languages)
    if not langs or langs[0].code != "en":
        langs = (ENGLISH,) + tuple(l for l in langs if l.code != "en")
    world = World(seed=seed, languages=langs)
    feats = _features()
    org = out / ORG
    if org.exists():
        shutil.rmtree(org)
    counts: dict = {}

    # English NLI (intermediate task)
    seen: set = set()
    repo = out / NLI_REPO
    nli_splits = {"train": sizes["nli_train"], "validation_matched": sizes["nli_dev"]}
    nli_configs = {NLI_CONFIG: list(nli_splits)}
    for split, n in nli_splits.items():
        meanings = gen_nli_meanings(world, n, split, seen)
        rows = nli_rows(world, meanings, "en")
        write_parquet(repo / parquet_name(NLI_CONFIG, split), rows, feats["mnli"])
        counts[f"nli/{split}"] = dict(Counter(NLI_LABELS[r["label"]] for r in rows))
        if split == "train":  # the translated arm (synth_nli_tt / synth_nli_tta)
            for code, part in translated_nli(world, meanings).items():
                config = NLI_TRANSLATED_CONFIG.format(code=code)
                write_parquet(repo / parquet_name(config, "train"), nli_rows(world, part, code), feats["mnli"])
                nli_configs[config] = ["train"]
                counts[f"nli/{config}/train"] = len(part)
    write_readme(repo, "xstilts synthetic English NLI", nli_configs,
                 "Synthetic English NLI from `xstilts.synthetic` (schema of `nyu-mll/glue` `mnli`). "
                 "Labels are computed from the sentences' meanings. See `world.json` one level up. Configs "
                 "`translated.<code>` (train): English training row i realised in derived language i mod k, for the "
                 "translated-data arms `synth_nli_tt` / `synth_nli_tta`.\n")

    # paraphrase target task
    seen = set()
    repo = out / PAIR_REPO
    train = gen_pairs(world, sizes["pair_train"], "train", seen)
    rows = [{"premise": world.realise(a, "en"), "hypothesis": world.realise(b, "en"),
             "label": PAIR_LABELS.index(l), "idx": i} for i, (a, b, l) in enumerate(train)]
    write_parquet(repo / parquet_name(PAIR_TRAIN_CONFIG, "train"), rows, feats["pair_train"])
    counts["pair/en/train"] = dict(Counter(l for _, _, l in train))
    for split in ("validation", "test"):
        pairs = gen_pairs(world, sizes["pair_dev" if split == "validation" else "pair_test"], split, seen)
        rows = [{"language": code, "sentence1": world.realise(a, code), "sentence2": world.realise(b, code),
                 "gold_label": l} for code in world.codes for a, b, l in pairs]
        write_parquet(repo / parquet_name(PAIR_EVAL_CONFIG, split), rows, feats["xnli"])
        counts[f"pair/{PAIR_EVAL_CONFIG}/{split}"] = {"per_language": dict(Counter(l for _, _, l in pairs)),
                                                      "languages": list(world.codes)}
        if split == "test":
            overlap = overlap_with_english(rows, world.codes)
    write_readme(repo, "xstilts synthetic paraphrase identification",
                 {PAIR_TRAIN_CONFIG: ["train"], PAIR_EVAL_CONFIG: ["validation", "test"]},
                 "Synthetic paraphrase identification (PAWS-X-like: high word overlap) from `xstilts.synthetic`. "
                 "Config `en`: English training pairs in the MNLI-train schema. Config `pairs`: validation/test "
                 "for every language in the `google/xtreme` XNLI schema, the same meaning pairs in every language.\n")

    # Tatoeba-style retrieval
    repo = out / TATOEBA_REPO
    clauses = gen_tatoeba(world, sizes["tatoeba"])
    configs = {}
    for lang in world.derived:
        rows = [{"source_sentence": world.realise(c, lang.code), "target_sentence": world.realise(c, "en"),
                 "source_lang": lang.code, "target_lang": "en"} for c in clauses]
        write_parquet(repo / parquet_name(TATOEBA_CONFIG.format(code=lang.code), "validation"), rows, feats["tatoeba"])
        configs[TATOEBA_CONFIG.format(code=lang.code)] = ["validation"]
    write_readme(repo, "xstilts synthetic parallel sentences", configs,
                 "Parallel sentences by construction (the same clause realised in two languages), in the "
                 "`google/xtreme` `tatoeba.<iso3>` schema. Source = the synthetic language, target = English.\n")

    # part-of-speech tagging (udpos-like): English train, every language validation / test
    repo = out / POS_REPO
    seen = set()
    configs = {}
    split_texts = {split: gen_pos(world, sizes[key], split, seen)
                   for split, key in (("train", "pos_train"), ("validation", "pos_dev"), ("test", "pos_test"))}
    for code in world.codes:
        config = POS_CONFIG.format(code=code)
        configs[config] = []
        for split, texts in split_texts.items():
            if split == "train" and code != "en":
                continue
            rows = []
            for clauses in texts:
                tokens, tags = world.tagged(clauses, code)
                rows.append({"tokens": tokens, "pos_tags": [UPOS.index(t) for t in tags]})
            write_parquet(repo / parquet_name(config, split), rows, feats["udpos"])
            configs[config].append(split)
            if code == "en":
                counts[f"pos/{split}"] = {"sentences": len(rows), "tags": dict(sorted(Counter(
                    UPOS[t] for r in rows for t in r["pos_tags"]).items()))}
    write_readme(repo, "xstilts synthetic part-of-speech tagging", configs,
                 "Synthetic part-of-speech tagging from `xstilts.synthetic`, in the `google/xtreme` `udpos.<Language>` "
                 "schema (`tokens`, `pos_tags` with the 17 UPOS tags). Config `pos.<code>` per language: English has "
                 "`train`; every language has `validation` and `test`, the same sentences in every language. A token's "
                 "tag is the category of the English word it translates.\n")

    # the MLM arm's text (synth_mlm): new lines, not corpus.txt's, as documents
    repo = out / TEXT_REPO
    configs = {}
    for code, lines in corpus_by_language(world, sizes["text"], "text").items():
        docs = [lines[i:i + TEXT_LINES_PER_DOCUMENT] for i in range(0, len(lines), TEXT_LINES_PER_DOCUMENT)]
        rows = [{"id": str(i), "url": f"synthetic://{code}/{i}", "title": f"{code} {i}", "text": "\n".join(d)}
                for i, d in enumerate(docs)]
        config = TEXT_CONFIG.format(code=code)
        write_parquet(repo / parquet_name(config, "train"), rows, feats["wikipedia"])
        configs[config] = ["train"]
    write_readme(repo, "xstilts synthetic monolingual text", configs,
                 "Monolingual text of every synthetic language for the MLM arm (`synth_mlm`), in the "
                 "`wikimedia/wikipedia` schema (id, url, title, text; url and title are synthetic): documents of "
                 f"{TEXT_LINES_PER_DOCUMENT} lines, each line 1-3 clauses true in one scene, sampled independently per "
                 "language (no line is a translation of another) and apart from `corpus.txt` (pre-training).\n")

    # MLM corpus
    corpus = gen_corpus(world, sizes["corpus"])
    (out / "corpus.txt").write_text("".join(l + "\n" for l in corpus), encoding="utf-8", newline="\n")

    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != WORLD_FILE)
    desc = world.describe()
    desc.update({
        "hub_ids": {"nli": NLI_REPO, "pair": PAIR_REPO, "tatoeba": TATOEBA_REPO, "pos": POS_REPO, "text": TEXT_REPO},
        "pair_test_overlap_with_english": overlap,
        "sizes": sizes,
        "label_counts": counts,
        "corpus_lines": len(corpus),
        "files": {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
    })
    (out / WORLD_FILE).write_text(json.dumps(desc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return desc


def parse_sizes(items: list[str] | None) -> dict:
    sizes = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or key not in DEFAULT_SIZES or not value.isdigit():
            raise SystemExit(f"error: --sizes {item!r}: expected key=N with key one of {', '.join(DEFAULT_SIZES)}")
        sizes[key] = int(value)
    return sizes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (a --data_root for the phase scripts)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--languages", nargs="+", default=list(DEFAULT_LANGUAGES),
                    help=f"catalogue codes ({', '.join(CATALOGUE)}) or code:key=value,... settings; 'en' first")
    ap.add_argument("--sizes", nargs="*", metavar="KEY=N",
                    help="override sizes: " + " ".join(f"{k}={v}" for k, v in DEFAULT_SIZES.items()))
    args = ap.parse_args(argv)
    try:
        langs = [parse_language(s) for s in args.languages]
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    desc = build(args.out, seed=args.seed, languages=langs, sizes=parse_sizes(args.sizes))
    print(f"wrote {args.out}: languages {', '.join(l['code'] for l in desc['languages'])}; "
          f"{desc['corpus_lines']} corpus lines; sizes {desc['sizes']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
