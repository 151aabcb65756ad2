"""The synthetic world (xstilts.synthetic): determinism, lexicons, labels vs meaning, word order,
Hub-layout data that loads, and a quick MLM pre-training on its corpus."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from xstilts.synthetic import build as sbuild
from xstilts.synthetic.world import (CATALOGUE, COLOURS, DEFAULT_LANGUAGES, ENGLISH, ENGLISH_VOCAB, NAMES, NLI_LABELS,
                                     NUMBERS, PAIR_LABELS, SCRIPTS, Clause, Knowledge, Language, Mod, Scene, World,
                                     cognate_words, english_order_tokens, meaning, nli_example, nli_label, pair_example,
                                     parse_language)

SMALL = {"corpus": 150, "nli_train": 60, "nli_dev": 30, "pair_train": 40, "pair_dev": 20, "pair_test": 20,
         "tatoeba": 30}


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    sbuild.build(out, seed=3, sizes=SMALL)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes(small_world, tmp_path):
    again = tmp_path / "again"
    sbuild.build(again, seed=3, sizes=SMALL)
    a, b = _files(small_world), _files(again)
    assert sorted(a) == sorted(b)
    assert "corpus.txt" in a and "world.json" in a and len(a) >= 15
    for name in a:
        assert a[name] == b[name], f"{name} differs between two builds with the same seed"
    other = tmp_path / "other"
    sbuild.build(other, seed=4, sizes=SMALL)
    assert _files(other)["corpus.txt"] != a["corpus.txt"]


# ---------------------------------------------------------------------------- lexicons and scripts
def test_lexicons_are_bijective_and_anchors_are_as_set():
    world = World(seed=1)
    assert world.codes == DEFAULT_LANGUAGES
    for lang in world.languages:
        lex = world.lexicons[lang.code]
        assert list(lex) == list(ENGLISH_VOCAB)  # total on the English surface vocabulary
        assert len(set(lex.values())) == len(lex), f"{lang.code}: two English words share a translation"
        inverse = {v: k for k, v in lex.items()}
        assert all(inverse[lex[w]] == w for w in lex)
        if not lang.relex:
            assert all(k == v for k, v in lex.items())
            continue
        cognates = cognate_words(lang, world.seed)
        for w, t in lex.items():
            anchor = (w in NAMES and lang.shared_names) or (w in NUMBERS and lang.shared_numbers)
            if anchor:
                assert t == w
            elif w in cognates and lang.script == "latin":
                assert t == w
            else:
                assert t not in ENGLISH_VOCAB, f"{lang.code}: new word {t!r} for {w!r} is an English word"
                assert set(t) <= set(SCRIPTS[lang.script].values()), (lang.code, w, t)
    # cognate groups are ranked once per world: the c75* languages share the same cognates, c50's are a subset
    c75 = cognate_words(CATALOGUE["c75"], 1)
    assert c75 == cognate_words(CATALOGUE["c75hf"], 1) == cognate_words(CATALOGUE["c75cy"], 1)
    assert cognate_words(CATALOGUE["c50"], 1) < c75 and not cognate_words(CATALOGUE["lex"], 1)
    assert len(c75) > 2 * len(ENGLISH_VOCAB) // 3 - len(NAMES) - len(NUMBERS)
    # no two languages invent the same new word
    new = [t for l in world.derived if l.relex for w, t in world.lexicons[l.code].items()
           if t != w and w not in cognate_words(l, world.seed)]
    assert len(new) == len(set(new))


def test_language_settings_are_validated():
    assert parse_language("xx:script=greek,order=VSO,shared_names=false").shared_names is False
    assert parse_language("c50:cognates=0.25").cognates == 0.25
    for bad in ("nope", "xx:order=SVX", "xx:colour=red", "xx:script=klingon", "xx:cognates=2"):
        with pytest.raises(ValueError):
            parse_language(bad)
    with pytest.raises(ValueError):
        World(languages=(CATALOGUE["lex"],))  # English must come first


# ---------------------------------------------------------------------------- labels follow from meaning
def _state(rng: random.Random):
    """A random possible world: lazily sampled values for whatever a literal asks about."""
    x, colour, rel, has = {}, {}, {}, {}

    def holds(lit) -> bool:
        kind = lit[0]
        if kind == "prop":
            _, d, e, pol = lit
            v = x.setdefault((e, d), rng.random())
            return (v > 0.5) == pol
        if kind == "colour":
            _, e, c, pol = lit
            return (colour.setdefault(e, rng.choice(COLOURS)) == c) == pol
        if kind == "rel":
            _, v, a, b, pol = lit
            return rel.setdefault((v, a, b), rng.random() < 0.5) == pol
        if kind == "more":
            _, d, a, b = lit
            return x.setdefault((a, d), rng.random()) > x.setdefault((b, d), rng.random())
        if kind == "has":
            _, e, o, n = lit
            return has.setdefault((e, o), int(rng.choice(NUMBERS))) == n
        raise ValueError(kind)

    return holds


def _models_of(lits, rng, n=60, tries=20000):
    """Up to n random states in which every literal of ``lits`` holds (rejection sampling)."""
    out = []
    for _ in range(tries):
        holds = _state(rng)
        if all(holds(l) for l in sorted(lits)):
            out.append(holds)
            if len(out) == n:
                break
    return out


def _truth_values(h_lits, states):
    return {all(s(l) for l in sorted(h_lits)) for s in states}


def test_nli_labels_follow_from_meaning():
    """Model-theoretic check, independent of the generator's rules: entailment = the hypothesis holds
    in every sampled state where the premise holds; contradiction = in none; neutral = in some."""
    world = World(seed=1)
    rng, check = random.Random(7), random.Random(8)
    seen = {label: 0 for label in NLI_LABELS}
    for i in range(90):
        target = NLI_LABELS[i % 3]
        p, h, label = nli_example(rng, world.kb, target)
        assert label == target
        states = _models_of(meaning(p), check)
        assert states, f"premise unsatisfiable: {world.realise(p, 'en')}"
        values = _truth_values(meaning(h), states)
        expected = {"entailment": {True}, "contradiction": {False}, "neutral": {True, False}}[label]
        if label == "neutral":  # the hypothesis can be true and can be false given the premise
            values |= _truth_values(meaning(h), _models_of(meaning(p), check, n=400))
        assert values == expected, (world.realise(p, "en"), world.realise(h, "en"), label, values)
        seen[label] += 1
    assert min(seen.values()) == 30


def test_paraphrase_labels_follow_from_meaning():
    world = World(seed=1)
    rng, check = random.Random(9), random.Random(10)
    for i in range(80):
        target = PAIR_LABELS[i % 2]
        a, b, label = pair_example(rng, world.kb, target)
        assert label == target
        assert world.realise(a, "en") != world.realise(b, "en")
        ma, mb = meaning(a), meaning(b)
        a_then_b = _truth_values(mb, _models_of(ma, check, n=200))
        b_then_a = _truth_values(ma, _models_of(mb, check, n=200))
        equivalent = a_then_b == {True} and b_then_a == {True}
        assert equivalent == (label == "paraphrase"), (world.realise(a, "en"), world.realise(b, "en"), label)


def test_surface_choices_keep_meaning_and_texts_are_true_in_their_scene():
    active = Clause("rel", "Maria", "see", "dog", voice="active", obj_mod=Mod("prop", "size", True))
    passive = Clause("rel", "Maria", "see", "dog", voice="passive", obj_mod=Mod("prop", "size", True, syn=True))
    assert meaning(active) == meaning(passive)
    en = World(seed=1)
    assert en.realise(active, "en") == "Maria sees the big dog."
    assert en.realise(passive, "en") == "the large dog is seen by Maria."
    # "small" == "not big"; "smaller than" is the converse of "bigger than"
    assert meaning(Clause("prop", "cat", "size", pole=False)) == meaning(Clause("prop", "cat", "size", neg=True))
    assert meaning(Clause("more", "cat", "size", "dog", pole=True)) == \
        meaning(Clause("more", "cat", "size", "dog", pole=False))
    assert en.realise(Clause("more", "cat", "size", "dog", pole=False), "en") == "the dog is smaller than the cat."
    # world knowledge is skewed (Zipf), so words can be told apart by their distribution
    kb = Knowledge(1)
    assert max(kb.entity_w.values()) > 5 * min(kb.entity_w.values())
    # every corpus line is a set of clauses true in one scene: no literal contradicts the scene or another
    rng = random.Random(5)
    for _ in range(200):
        scene = Scene(kb, rng, 3)
        lits = set()
        for c in scene.text(3):
            lits |= meaning(c)
        for lit in sorted(lits):
            kind = lit[0]
            if kind == "prop":
                assert scene.pol(lit[2], lit[1]) == lit[3]
            elif kind == "colour":
                assert (scene.colour(lit[1]) == lit[2]) == lit[3]
            elif kind == "rel":
                assert scene.rel(lit[1], lit[2], lit[3]) == lit[4]
            elif kind == "more":
                assert scene.x(lit[2], lit[1]) > scene.x(lit[3], lit[1])
            else:
                assert scene.has(lit[1], lit[2]) == lit[3]
            assert nli_label(frozenset(lits), frozenset([lit])) == "entailment"


# ---------------------------------------------------------------------------- word order
def test_word_order_settings_change_the_order_as_specified():
    head_final = Language("hf", relex=False, order="SOV", adj="after", det="after", adp="post", neg="final",
                          num="after")
    vso = Language("vso", relex=False, order="VSO")
    w = World(languages=(ENGLISH, head_final, vso, parse_language("cy:script=cyrillic,order=OVS")))
    c = Clause("rel", "Maria", "see", "dog", obj_mod=Mod("prop", "size", True))
    assert w.realise(c, "en") == "Maria sees the big dog."
    assert w.realise(c, "hf") == "Maria dog big the sees."
    assert w.realise(c, "vso") == "sees Maria the big dog."
    neg = Clause("rel", "Maria", "see", "dog", neg=True)
    assert w.realise(neg, "en") == "Maria does not see the dog."
    assert w.realise(neg, "hf") == "Maria dog the does see not."
    passive = Clause("rel", "Maria", "see", "dog", voice="passive")
    assert w.realise(passive, "hf") == "dog the Maria by is seen."  # postposition
    assert w.realise(Clause("has", "Maria", "books", n=3), "hf") == "Maria books 3 has."
    assert w.realise(Clause("more", "cat", "size", "dog"), "hf") == "cat the dog the than is bigger."
    # a relexified language: the same order as its settings, word by word through the lexicon
    lex = w.lexicons["cy"]
    tokens = english_order_tokens(c, w.language("cy"))
    assert tokens == ["the", "big", "dog", "sees", "Maria"]  # OVS
    assert w.realise(c, "cy") == " ".join(lex[t] for t in tokens) + "."
    assert w.realise(c, "cy").split()[-1] == "Maria."  # a shared anchor
    assert all(ch in SCRIPTS["cyrillic"].values() for ch in lex["sees"] + lex["dog"])


# ---------------------------------------------------------------------------- the written data
def test_written_data_loads_with_load_dataset(small_world, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import ClassLabel, load_dataset

    nli = load_dataset(str(small_world / "xstilts-synthetic/nli"), "default")
    assert sorted(nli) == ["train", "validation_matched"]
    assert list(nli["train"].features) == ["premise", "hypothesis", "label", "idx"]
    assert nli["train"].features["label"] == ClassLabel(names=list(NLI_LABELS))
    assert nli["train"].features["idx"].dtype == "int32"
    assert len(nli["train"]) == 60 and len(nli["validation_matched"]) == 30

    train = load_dataset(str(small_world / "xstilts-synthetic/pair"), "en", split="train")
    assert train.features["label"] == ClassLabel(names=list(PAIR_LABELS))
    test = load_dataset(str(small_world / "xstilts-synthetic/pair"), "pairs", split="test")
    assert list(test.features) == ["language", "sentence1", "sentence2", "gold_label"]
    by_lang = {}
    for row in test:
        by_lang.setdefault(row["language"], []).append(row["gold_label"])
    assert tuple(by_lang) == DEFAULT_LANGUAGES
    assert all(v == by_lang["en"] for v in by_lang.values())  # parallel across languages, like XNLI

    for code in DEFAULT_LANGUAGES[1:]:
        tat = load_dataset(str(small_world / "xstilts-synthetic/tatoeba"), f"tatoeba.{code}", split="validation")
        assert list(tat.features) == ["source_sentence", "target_sentence", "source_lang", "target_lang"]
        assert len(tat) == 30 and len(set(tat["target_sentence"])) == 30 and len(set(tat["source_sentence"])) == 30

    meta = json.loads((small_world / "world.json").read_text(encoding="utf-8"))
    assert [l["code"] for l in meta["languages"]] == list(DEFAULT_LANGUAGES)
    assert meta["label_counts"]["nli/train"] == {"entailment": 20, "neutral": 20, "contradiction": 20}


def test_registered_tasks_read_the_written_data(small_world):
    from xstilts import data as data_lib
    from xstilts.registry import get_task

    pair = get_task("synth_pair", phase="target")
    assert pair.languages == DEFAULT_LANGUAGES
    ds = data_lib.load_pair_classification(pair, pair.test, small_world, list(pair.languages))
    assert len(ds) == 20 * len(DEFAULT_LANGUAGES) and set(ds["label"]) == {0, 1}
    tr = data_lib.load_pair_classification(pair, pair.train, small_world)
    assert len(tr) == 40 and set(tr["lang"]) == {"en"}
    nli = get_task("synth_nli", phase="intermediate")
    assert len(data_lib.load_pair_classification(nli, nli.dev, small_world)) == 30
    tat = get_task("synth_tatoeba", phase="retrieval")
    assert tat.languages == DEFAULT_LANGUAGES[1:]
    for lang in tat.languages:
        data_lib.check_source(tat.test, small_world, tat.code(lang))
        src, en = data_lib.load_retrieval_pairs(tat, tat.test, small_world, lang)
        assert len(src) == len(en) == 30


def test_corpus_is_monolingual_not_parallel(small_world):
    world = World(seed=3)
    lines = (small_world / "corpus.txt").read_text(encoding="utf-8").splitlines()
    n_lang = len(world.codes)
    assert len(lines) == SMALL["corpus"] * n_lang
    en = lines[0::n_lang]
    lex = world.lexicons["c75"]  # English grammar: map its lines back word by word
    back = {v: k for k, v in lex.items()}
    i = world.codes.index("c75")
    lex_lines = [" ".join(back[w] for w in l[:-1].split()) + "." for l in lines[i::n_lang]]
    same_index = sum(a == b for a, b in zip(en, lex_lines))
    overlap = len(set(en) & set(lex_lines)) / len(set(lex_lines))
    assert same_index <= 2 and overlap < 0.1, (same_index, overlap)


# ---------------------------------------------------------------------------- MLM on the synthetic corpus
def test_quick_mlm_pretraining_on_the_corpus_lowers_the_loss(small_world, tmp_path):
    from xstilts.tiny import build

    report = build(tmp_path / "models", sizes=("tiny-2l-h64",), corpus=small_world / "corpus.txt", vocab_size=1000,
                   mlm_steps=80)
    warm = report["tiny-2l-h64"]["mlm_warmup"]
    assert warm["final_loss_mean_last_50"] < warm["first_loss"] - 0.5, warm
