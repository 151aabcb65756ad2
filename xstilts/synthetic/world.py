"""A small synthetic multilingual world: one meaning space, an English grammar, derived languages.

Meaning
    Every sentence is one :class:`Clause` whose meaning is a frozenset of canonical *literals*
    (:func:`meaning`). Entities are individuals: people (``Maria``) and animals (``dog`` = "the dog";
    one dog in the world). Literal kinds::

        ("prop", dim, ent, pol)        ent is at the positive pole of a binary dimension (pol=True:
                                       "big") or at the negative pole (pol=False: "small" = "not big")
        ("colour", ent, colour, pol)   ent is (pol=True) / is not (pol=False) of that colour
        ("rel", verb, agent, patient, pol)   agent sees / does not see patient
        ("more", dim, e1, e2)          e1 is further toward the positive pole than e2 ("bigger than")
        ("has", ent, object, n)        ent has exactly n objects

    Surface choices (active / passive voice, "small" vs "not big", "bigger than" vs its converse
    "smaller than" with swapped arguments, synonyms "big"/"large") change the words, never the meaning.
    Attributive adjectives ("the big dog sees Maria") add literals about their noun.

Labels follow from meanings only (:func:`nli_label`, :func:`paraphrase_label`):
    * NLI: entailment if every hypothesis literal is a premise literal; contradiction if a hypothesis
      literal conflicts with a premise literal (opposite polarity, another colour, another number,
      reversed comparative); neutral otherwise.
    * Paraphrase: the two meanings are equal.

Languages
    English is realised by :func:`realise` with the English setting. A derived language is a
    :class:`Language` setting: a bijective lexicon (every English surface word -> its own word,
    pseudo-words from a per-language syllable inventory, optionally written in Cyrillic, Greek or
    Georgian letters transliterated from the romanisation), word-order parameters (clause order,
    adjective / article / numeral position, pre- or postpositions, negation position), whether names
    and numbers stay shared anchors, and how many words are cognates (kept from English: a share of
    the content words, and the function words or not). Sentences are realised from the same clause by
    reordering constituents and mapping words, so translations are parallel by construction.

Text
    :class:`Knowledge` (Zipfian frequencies, typical properties and colours, selectional preferences)
    and :class:`Scene` (a small situation; every clause drawn from it is true in it) make monolingual
    text carry meaning: a corpus line is 1-3 clauses true in one scene. Task examples are edits of a
    clause drawn from a fresh scene (:func:`nli_triplet`, :func:`pair_example`).

Everything is deterministic from the world seed (``random.Random`` with integer seeds from crc32; no
iteration over unordered sets).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import asdict, dataclass, field, fields, replace

from ..tasks.classification import NLI_LABELS
from ..tasks.languages import SYNTHETIC
from ..tasks.tagging import UPOS

# ============================================================================ English vocabulary
NAMES = ("Maria", "John", "Aisha", "Kenji", "Olga", "Pedro", "Omar", "Lena")
NOUNS = ("dog", "cat", "bird", "horse", "cow", "fox", "bear", "mouse")
ENTITIES = NAMES + NOUNS
# binary dimensions: name -> (positive pole, negative pole, comparative of +, comparative of -)
DIMS = {
    "size": ("big", "small", "bigger", "smaller"),
    "age": ("old", "young", "older", "younger"),
    "speed": ("fast", "slow", "faster", "slower"),
    "mood": ("happy", "sad", "happier", "sadder"),
}
DIM_NAMES = tuple(DIMS)
SYNONYMS = {"big": "large", "happy": "glad"}  # adjective -> synonym
COLOURS = ("red", "brown", "black", "white")
# (base, 3rd person singular, past participle)
VERBS = (("see", "sees", "seen"), ("like", "likes", "liked"), ("follow", "follows", "followed"),
         ("help", "helps", "helped"), ("feed", "feeds", "fed"), ("chase", "chases", "chased"))
VERB_NAMES = tuple(v[0] for v in VERBS)
VERB_FORMS = {v[0]: v for v in VERBS}
OBJECTS = ("apples", "books", "coins", "eggs", "hats")
NUMBERS = tuple(str(n) for n in range(2, 8))
FUNCTION_WORDS = ("the", "is", "not", "does", "by", "than", "has", "and")
PUNCT = "."  # shared by every language (like real punctuation)


def english_vocabulary() -> tuple[str, ...]:
    """Every English surface word the grammar can produce, in a fixed order (the lexicon's domain)."""
    words = list(FUNCTION_WORDS) + list(NAMES) + list(NOUNS)
    for pos, neg, cpos, cneg in DIMS.values():
        words += [pos, neg, cpos, cneg]
    words += [SYNONYMS[w] for w in SYNONYMS]
    words += list(COLOURS)
    for forms in VERBS:
        words += list(forms)
    words += list(OBJECTS) + list(NUMBERS)
    assert len(words) == len(set(words)), "duplicate English surface word"
    return tuple(words)


ENGLISH_VOCAB = english_vocabulary()
SHORT_WORDS = frozenset(FUNCTION_WORDS)  # one syllable in derived languages

# ============================================================================ scripts
ROMAN_CONSONANTS = "ptkbdgmnlrsvzfh"
ROMAN_VOWELS = "aeiou"
_LETTERS = "ptkbdgmnlrsvzfhaeioucjqwxy"  # the pseudo-words' letters, then the rest of English spelling
SCRIPTS = {
    "latin": {c: c for c in _LETTERS},
    "cyrillic": dict(zip(_LETTERS, "пткбдгмнлрсвзфхаеиоуцжщшчы")),
    "greek": dict(zip(_LETTERS, "πτκβδγμνλρσθζφχαειουψϡϟωξη")),
    "georgian": dict(zip(_LETTERS, "პტკბდგმნლრსვზფჰაეიოუცჯყწხღ")),
}
for _s, _t in SCRIPTS.items():
    assert len(set(_t.values())) == len(_t), f"script {_s}: transliteration is not bijective"


def transliterate(roman: str, script: str) -> str:
    table = SCRIPTS[script]
    return "".join(table[c] for c in roman)


# ============================================================================ language settings
ORDERS = ("SVO", "SOV", "VSO", "VOS", "OSV", "OVS")


@dataclass(frozen=True)
class Language:
    """One language of the world: what differs from English, each difference a setting."""

    code: str
    description: str = ""
    relex: bool = True  # own vocabulary (bijective lexicon); False keeps the English words
    script: str = "latin"  # latin | cyrillic | greek | georgian (pseudo-words transliterated)
    order: str = "SVO"  # clause order of subject, verb group, object / predicate
    adj: str = "before"  # attributive adjective before / after its noun
    det: str = "before"  # article before / after its noun, or none
    adp: str = "pre"  # "by" (passive agent) and "than" (comparative): prepositions or postpositions
    neg: str = "pre"  # "not" inside the verb group (English) or clause-final
    num: str = "before"  # numeral before / after the counted noun
    shared_names: bool = True  # names are written as in English (anchor tokens)
    shared_numbers: bool = True  # digits are written as in English (anchor tokens)
    cognates: float = 0.0  # fraction of content-word groups (a noun, a verb's 3 forms, an adjective
    # dimension's 4-5 words, a colour, an object) that keep the English spelling (in this script); the
    # groups are ranked once per world, so 50% cognates are a subset of 75% in every language
    shared_function_words: bool = False  # the, is, not, does, by, than, has, and keep the English spelling

    def __post_init__(self):
        checks = {"script": (self.script, tuple(SCRIPTS)), "order": (self.order, ORDERS),
                  "adj": (self.adj, ("before", "after")), "det": (self.det, ("before", "after", "none")),
                  "adp": (self.adp, ("pre", "post")), "neg": (self.neg, ("pre", "final")),
                  "num": (self.num, ("before", "after"))}
        for key, (value, valid) in checks.items():
            if value not in valid:
                raise ValueError(f"language {self.code!r}: {key}={value!r}; valid: {', '.join(valid)}")
        if not self.code or not self.code.replace("_", "").isalnum():
            raise ValueError(f"language code {self.code!r}: use letters, digits and _ only")
        if not self.relex and self.script != "latin":
            raise ValueError(f"language {self.code!r}: a non-Latin script needs relex=True")
        if not 0.0 <= float(self.cognates) <= 1.0:
            raise ValueError(f"language {self.code!r}: cognates={self.cognates!r} must be in [0, 1]")
        object.__setattr__(self, "cognates", float(self.cognates))

    def differences(self) -> list[str]:
        """What differs from English, in words (for world.json and reports)."""
        out = []
        if self.relex:
            out.append("own vocabulary")
        if self.script != "latin":
            out.append(f"{self.script} script")
        en = ENGLISH
        for f in ("order", "adj", "det", "adp", "neg", "num"):
            if getattr(self, f) != getattr(en, f):
                out.append(f"{f}={getattr(self, f)}")
        if self.relex and not self.shared_names:
            out.append("own names")
        if self.relex and not self.shared_numbers:
            out.append("own numerals")
        if self.relex and self.cognates:
            out.append(f"{self.cognates:.0%} content cognates")
        if self.relex and self.shared_function_words:
            out.append("shared function words")
        return out


ENGLISH = Language("en", "English", relex=False)
_HEAD_FINAL = dict(order="SOV", adj="after", det="after", adp="post", neg="final", num="after")

# The catalogue: one or two differences from English at a time, from "English words in another order"
# to "nothing shared". Cognate groups are ranked once per world, so the c75* languages share the same
# three quarters of the content words with English, and c50's cognates are a subset of them.
_C75 = dict(cognates=0.75, shared_function_words=True)
CATALOGUE: dict[str, Language] = {l.code: l for l in (
    ENGLISH,
    Language("ord", "English words, head-final word order (SOV; adjective, article and numeral after the noun; "
                    "postpositions; clause-final negation): word order only", relex=False, **_HEAD_FINAL),
    Language("c75", "3/4 of the content words and all function words are cognates (English spelling), 1/4 of "
                    "the content words new; English grammar; shared names and digits", **_C75),
    Language("c75hf", "c75 with head-final word order", **_C75, **_HEAD_FINAL),
    Language("c75cy", "c75 in Cyrillic letters: its cognates are transliterated, so no token is shared with "
                      "English except names and digits", **_C75, script="cyrillic"),
    Language("c75nf", "c75 with new function words (the, is, not, does, by, than, has, and)", cognates=0.75),
    Language("c50", "half of the content words and all function words are cognates; English grammar; shared "
                    "names and digits", cognates=0.5, shared_function_words=True),
    Language("lex", "all words new (pseudo-words); English grammar, Latin script; shared names and digits"),
    Language("geo", "all words new, Georgian letters, head-final word order, own names and numerals: nothing "
                    "shared", script="georgian", shared_names=False, shared_numbers=False, **_HEAD_FINAL),
)}
# The default world (xstilts.tasks.languages.SYNTHETIC): the languages of the measured table (docs/synthetic.md);
# lex and geo transfer no better than c75cy (nothing shared) and would only dilute the MLM corpus.
DEFAULT_LANGUAGES = SYNTHETIC


def parse_language(spec: str) -> Language:
    """``code`` (from the catalogue) or ``code:key=value,key=value`` (a new or modified setting).

    e.g. ``grk:script=greek,order=VSO,shared_names=false``; a catalogue code with ``:...`` starts
    from the catalogue setting.
    """
    code, _, rest = spec.partition(":")
    code = code.strip()
    base = CATALOGUE.get(code, Language(code, "custom"))
    if not rest:
        if code not in CATALOGUE:
            raise ValueError(f"unknown synthetic language {code!r}; catalogue: {', '.join(CATALOGUE)} "
                             f"(or give a setting, e.g. {code}:script=greek,order=VSO)")
        return base
    valid = {f.name: f.type for f in fields(Language) if f.name != "code"}
    changes = {}
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in valid:
            raise ValueError(f"language setting {item!r}: expected key=value with key one of {', '.join(valid)}")
        if valid[key] in (bool, "bool"):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"language setting {key}={value!r}: expected true or false")
            changes[key] = value.lower() in ("true", "1", "yes")
        else:
            changes[key] = value
    return replace(base, **changes)


# ============================================================================ seeds
def seed_of(*parts) -> int:
    """A stable integer seed from names (independent of PYTHONHASHSEED)."""
    return zlib.crc32("/".join(str(p) for p in parts).encode("utf-8"))


# ============================================================================ lexicons
def _inventory(rng: random.Random) -> tuple[str, str, float]:
    """A language's phonology: consonants, vowels, probability of a closed (CVC) syllable."""
    cons = "".join(sorted(rng.sample(ROMAN_CONSONANTS, rng.randint(9, 13)), key=ROMAN_CONSONANTS.index))
    vows = "".join(sorted(rng.sample(ROMAN_VOWELS, rng.randint(3, 5)), key=ROMAN_VOWELS.index))
    return cons, vows, rng.choice((0.0, 0.15, 0.3))


def _pseudo_word(rng: random.Random, cons: str, vows: str, closed: float, syllables: int) -> str:
    out = []
    for _ in range(syllables):
        out.append(rng.choice(cons) + rng.choice(vows))
        if rng.random() < closed:
            out.append(rng.choice("mnlrs" if set("mnlrs") & set(cons) else cons))
    return "".join(out)


def cognate_groups() -> list[tuple[str, ...]]:
    """Content words that are cognates (or not) together (function words, names, numbers: set apart)."""
    groups = [(n,) for n in NOUNS]
    for pos, neg, cpos, cneg in DIMS.values():
        groups.append(tuple([pos, neg, cpos, cneg] + [SYNONYMS[w] for w in (pos, neg) if w in SYNONYMS]))
    groups += [(c,) for c in COLOURS] + [tuple(v) for v in VERBS] + [(o,) for o in OBJECTS]
    return groups


def cognate_words(lang: Language, seed: int) -> frozenset:
    """The English words that ``lang`` keeps (spelt in its script): the first round(cognates x groups)
    groups of one ranking per world (the same for every language)."""
    groups = cognate_groups()
    k = round(lang.cognates * len(groups))
    ranked = sorted(groups, key=lambda g: (seed_of(seed, "cognate", g[0]), g[0]))
    words = [w for g in ranked[:k] for w in g]
    if lang.shared_function_words:
        words += FUNCTION_WORDS
    return frozenset(words)


def build_lexicon(lang: Language, seed: int, taken: set[str]) -> dict[str, str]:
    """English surface word -> this language's word; bijective; new words avoid ``taken`` (and add to it)."""
    if not lang.relex:
        return {w: w for w in ENGLISH_VOCAB}
    rng = random.Random(seed_of(seed, "lexicon", lang.code))
    cons, vows, closed = _inventory(rng)
    cognates = cognate_words(lang, seed)
    lex: dict[str, str] = {}
    used = set()
    for w in ENGLISH_VOCAB:  # cognates and anchors first: new words must not collide with them
        if (w in NAMES and lang.shared_names) or (w in NUMBERS and lang.shared_numbers):
            lex[w] = w
        elif w in cognates:
            lex[w] = transliterate(w, lang.script)
        used |= {lex[w]} if w in lex else set()
    for w in ENGLISH_VOCAB:
        if w in lex:
            continue
        n_syl = 1 if w in SHORT_WORDS or w in NUMBERS else rng.choice((2, 2, 3))
        for attempt in range(1000):
            roman = _pseudo_word(rng, cons, vows, closed, n_syl + attempt // 200)
            word = transliterate(roman, lang.script)
            if word not in used and word not in taken and word not in ENGLISH_VOCAB:
                break
        else:  # pragma: no cover - the inventory always has room
            raise RuntimeError(f"could not find a free word for {w!r} in {lang.code}")
        lex[w] = word
        used.add(word)
    lex = {w: lex[w] for w in ENGLISH_VOCAB}
    taken |= {v for k, v in lex.items() if v != k and k not in cognates}
    return lex


# ============================================================================ clauses and meanings
@dataclass(frozen=True)
class Mod:
    """An attributive adjective on a noun: a binary-dimension pole or a colour."""

    kind: str  # "prop" | "colour"
    value: str  # dimension name or colour
    pole: bool = True  # prop: positive-pole word ("big") or negative-pole word ("small")
    syn: bool = False  # prop: use the synonym ("large") where there is one


@dataclass(frozen=True)
class Clause:
    """One sentence. ``kind``-specific fields; voice / pole / syn / converse are surface choices."""

    kind: str  # prop | colour | rel | more | has
    subj: str  # entity (rel: the agent; more: the first argument of the canonical "more" literal)
    pred: str  # dimension (prop, more) | colour | verb base | object noun (has)
    obj: str | None = None  # rel: patient; more: second argument
    neg: bool = False  # prop / colour / rel
    pole: bool = True  # prop: word of the positive pole?; more: surface uses the positive comparative?
    syn: bool = False  # prop: adjective synonym
    voice: str = "active"  # rel: active | passive
    n: int = 0  # has: the number
    subj_mod: Mod | None = None
    obj_mod: Mod | None = None


def _mod_literal(ent: str, mod: Mod):
    if mod.kind == "prop":
        return ("prop", mod.value, ent, mod.pole)
    return ("colour", ent, mod.value, True)


def meaning(c: Clause) -> frozenset:
    """The clause's meaning: a frozenset of canonical literals."""
    lits = set()
    if c.kind == "prop":
        lits.add(("prop", c.pred, c.subj, c.pole != c.neg))
    elif c.kind == "colour":
        lits.add(("colour", c.subj, c.pred, not c.neg))
    elif c.kind == "rel":
        lits.add(("rel", c.pred, c.subj, c.obj, not c.neg))
    elif c.kind == "more":
        lits.add(("more", c.pred, c.subj, c.obj))
    elif c.kind == "has":
        lits.add(("has", c.subj, c.pred, c.n))
    else:
        raise ValueError(c.kind)
    if c.subj_mod is not None:
        lits.add(_mod_literal(c.subj, c.subj_mod))
    if c.obj_mod is not None and c.obj is not None:
        lits.add(_mod_literal(c.obj, c.obj_mod))
    return frozenset(lits)


def conflicts(a: tuple, b: tuple) -> bool:
    """Two literals cannot both be true."""
    if a[0] != b[0]:
        return False
    k = a[0]
    if k == "prop":
        return a[1:3] == b[1:3] and a[3] != b[3]
    if k == "colour":
        if a[1] != b[1]:
            return False
        if a[2] == b[2]:
            return a[3] != b[3]
        return a[3] and b[3]  # one colour per entity
    if k == "rel":
        return a[1:4] == b[1:4] and a[4] != b[4]
    if k == "more":
        return a[1] == b[1] and a[2] == b[3] and a[3] == b[2]  # asymmetric
    if k == "has":
        return a[1:3] == b[1:3] and a[3] != b[3]  # exactly n
    raise ValueError(k)




def nli_label(premise: frozenset, hypothesis: frozenset) -> str:
    if any(conflicts(h, p) for h in sorted(hypothesis) for p in sorted(premise)):
        return "contradiction"
    if hypothesis <= premise:
        return "entailment"
    return "neutral"


def paraphrase_label(a: frozenset, b: frozenset) -> str:
    return "paraphrase" if a == b else "not_paraphrase"


# ============================================================================ realisation
def _np(ent: str, mod: Mod | None, lang: Language) -> list[str]:
    if ent in NAMES:
        return [ent]
    words = [ent]
    if mod is not None:
        adj = _mod_word(mod)
        words = [adj, ent] if lang.adj == "before" else [ent, adj]
    if lang.det == "before":
        words = ["the"] + words
    elif lang.det == "after":
        words = words + ["the"]
    return words


def _mod_word(mod: Mod) -> str:
    if mod.kind == "colour":
        return mod.value
    pos, neg, _, _ = DIMS[mod.value]
    w = pos if mod.pole else neg
    return SYNONYMS.get(w, w) if mod.syn else w


def _pp(adp: str, np: list[str], lang: Language) -> list[str]:
    return [adp] + np if lang.adp == "pre" else np + [adp]


def constituents(c: Clause, lang: Language) -> tuple[list[str], list[str], list[str]]:
    """(subject, verb group, object/predicate) in English words, inner orders per ``lang``."""
    subj_np = _np(c.subj, c.subj_mod, lang)
    obj_np = _np(c.obj, c.obj_mod, lang) if c.obj is not None else None
    neg = ["not"] if c.neg else []
    if c.kind in ("prop", "colour"):
        if c.kind == "prop":
            pos, negw, _, _ = DIMS[c.pred]
            w = pos if c.pole else negw
            pred = [SYNONYMS.get(w, w) if c.syn else w]
        else:
            pred = [c.pred]
        return subj_np, ["is"] + neg, pred
    if c.kind == "rel":
        base, third, part = VERB_FORMS[c.pred]
        if c.voice == "active":
            verb = ["does", "not", base] if c.neg else [third]
            return subj_np, verb, obj_np
        return obj_np, ["is"] + neg + [part], _pp("by", subj_np, lang)
    if c.kind == "more":
        _, _, cpos, cneg = DIMS[c.pred]
        if c.pole:  # "e1 is bigger than e2"
            return subj_np, ["is", cpos], _pp("than", obj_np, lang)
        return obj_np, ["is", cneg], _pp("than", subj_np, lang)  # "e2 is smaller than e1"
    if c.kind == "has":
        num = str(c.n)
        obj = [num, c.pred] if lang.num == "before" else [c.pred, num]
        return subj_np, ["has"], obj
    raise ValueError(c.kind)


def english_order_tokens(c: Clause, lang: Language) -> list[str]:
    """The clause as English words arranged in ``lang``'s word order (before lexical mapping)."""
    s, v, o = constituents(c, lang)
    final_neg = lang.neg == "final" and "not" in v
    if final_neg:
        v = [w for w in v if w != "not"]
    parts = {"S": s, "V": v, "O": o}
    words = [w for key in lang.order for w in parts[key]]
    if final_neg:
        words.append("not")
    return words


def _english_words(c: Clause | list[Clause], lang: Language) -> list[str]:
    """The English words of a clause, or of several joined by "and", in ``lang``'s word order."""
    clauses = [c] if isinstance(c, Clause) else list(c)
    words: list[str] = []
    for i, cl in enumerate(clauses):
        if i:
            words.append("and")
        words += english_order_tokens(cl, lang)
    return words


def realise(c: Clause | list[Clause], lang: Language, lexicon: dict[str, str]) -> str:
    """A clause, or several joined by "and", as a sentence of ``lang``."""
    return " ".join(lexicon[w] for w in _english_words(c, lang)) + PUNCT


# ============================================================================ part-of-speech tags
# Universal POS tags (UPOS, xstilts.tasks.tagging): the order of google/xtreme udpos ``pos_tags`` (alphabetical).


def english_pos() -> dict[str, str]:
    """English surface word -> its UPOS tag (UD English conventions: copula and passive "is" and "does"
    are AUX, "not" PART, "than" and "by" ADP, "has" VERB). Every word of the grammar has exactly one
    category, so a word's tag is the same in every clause and in every language's translation of it."""
    pos = {"the": "DET", "is": "AUX", "does": "AUX", "not": "PART", "by": "ADP", "than": "ADP", "has": "VERB",
           "and": "CCONJ", PUNCT: "PUNCT"}
    pos.update({w: "PROPN" for w in NAMES})
    pos.update({w: "NOUN" for w in NOUNS + OBJECTS})
    pos.update({w: "ADJ" for forms in DIMS.values() for w in forms})
    pos.update({w: "ADJ" for w in SYNONYMS.values()})
    pos.update({w: "ADJ" for w in COLOURS})
    pos.update({w: "VERB" for forms in VERBS for w in forms})
    pos.update({w: "NUM" for w in NUMBERS})
    missing = [w for w in ENGLISH_VOCAB if w not in pos]
    assert not missing and set(pos.values()) <= set(UPOS), missing
    return pos


POS_OF = english_pos()


def tagged(c: Clause | list[Clause], lang: Language, lexicon: dict[str, str]) -> tuple[list[str], list[str]]:
    """The sentence :func:`realise` writes, as (tokens, UPOS tags): its words and the final "." as
    separate tokens, each tagged by the category of the English word it translates."""
    words = _english_words(c, lang)
    return [lexicon[w] for w in words] + [PUNCT], [POS_OF[w] for w in words] + [POS_OF[PUNCT]]


# ============================================================================ world knowledge and scenes
# Who does what to whom (selectional preferences): verb -> (agent kind, patient kind).
VERB_ARGS = {"see": ("any", "any"), "like": ("any", "any"), "follow": ("any", "any"), "help": ("person", "any"),
             "feed": ("person", "animal"), "chase": ("animal", "any")}
KIND_WEIGHTS = (("prop", 3), ("colour", 1), ("rel", 4), ("more", 2), ("has", 2))


def _zipf(items, rng: random.Random, exponent: float) -> dict:
    order = list(items)
    rng.shuffle(order)
    return {x: 1.0 / (i + 1) ** exponent for i, x in enumerate(order)}


def _kind_of(ent: str) -> str:
    return "person" if ent in NAMES else "animal"


class Knowledge:
    """What the world is like, so that monolingual text carries meaning (and words can be told apart
    by their distribution): Zipfian frequencies, typical properties and colours of each entity,
    selectional preferences of verbs. Deterministic from the seed; the same in every language."""

    def __init__(self, seed: int):
        rng = random.Random(seed_of(seed, "knowledge"))
        self.entity_w = _zipf(ENTITIES, rng, 0.9)
        self.dim_w = _zipf(DIM_NAMES, rng, 0.7)
        self.verb_w = _zipf(VERB_NAMES, rng, 0.7)
        self.colour_w = _zipf(COLOURS, rng, 0.7)
        self.object_w = _zipf(OBJECTS, rng, 0.7)
        self.number_w = {n: 1.0 / (i + 1) ** 0.8 for i, n in enumerate(NUMBERS)}
        self.prior = {}  # (entity, dim) -> P(positive pole)
        for e in ENTITIES:
            strong = 0.7 if e in NOUNS else 0.3
            for d in DIM_NAMES:
                self.prior[(e, d)] = rng.choice((0.1, 0.9)) if rng.random() < strong else 0.5
        self.colours = {n: tuple(rng.sample(COLOURS, 2)) for n in NOUNS}  # typical colours of each animal

    @staticmethod
    def pick(rng: random.Random, weights: dict, exclude=()):
        items = [x for x in weights if x not in exclude]
        return rng.choices(items, [weights[x] for x in items])[0]

    def describe(self) -> dict:
        return {"entity_weight": self.entity_w, "dim_weight": self.dim_w, "verb_weight": self.verb_w,
                "colour_weight": self.colour_w, "object_weight": self.object_w,
                "prior_positive_pole": {f"{e}/{d}": p for (e, d), p in self.prior.items() if p != 0.5},
                "typical_colours": self.colours, "verb_arguments": VERB_ARGS}


class Scene:
    """A small situation: 2-3 entities whose properties, colours, relations and possessions are fixed
    (lazily sampled from the knowledge). Every clause drawn from a scene is true in it."""

    def __init__(self, kb: Knowledge, rng: random.Random, n_entities: int = 2):
        self.kb, self.rng = kb, rng
        self.entities: list[str] = []
        while len(self.entities) < n_entities:
            self.entities.append(kb.pick(rng, kb.entity_w, self.entities))
        self._x, self._colour, self._rel, self._has = {}, {}, {}, {}

    def x(self, e: str, d: str) -> float:
        if (e, d) not in self._x:
            pos = self.rng.random() < self.kb.prior[(e, d)]
            self._x[(e, d)] = (0.5 + 0.5 * self.rng.random()) if pos else 0.5 * self.rng.random()
        return self._x[(e, d)]

    def pol(self, e: str, d: str) -> bool:
        return self.x(e, d) > 0.5

    def colour(self, e: str) -> str:
        if e not in self._colour:
            typical = self.kb.colours[e]
            self._colour[e] = self.rng.choice(typical) if self.rng.random() < 0.85 else self.kb.pick(self.rng, self.kb.colour_w)
        return self._colour[e]

    def rel(self, v: str, a: str, b: str) -> bool:
        if (v, a, b) not in self._rel:
            self._rel[(v, a, b)] = self.rng.random() < 0.6
        return self._rel[(v, a, b)]

    def has(self, e: str, obj: str) -> int:
        if (e, obj) not in self._has:
            self._has[(e, obj)] = int(self.kb.pick(self.rng, self.kb.number_w))
        return self._has[(e, obj)]

    def true_mod(self, e: str) -> Mod:
        rng = self.rng
        if rng.random() < 0.7:
            d = self.kb.pick(rng, self.kb.dim_w)
            pole = self.pol(e, d)
            w = DIMS[d][0] if pole else DIMS[d][1]
            return Mod("prop", d, pole, w in SYNONYMS and rng.random() < 0.4)
        return Mod("colour", self.colour(e))

    def clause(self, mod_p: float = 0.35) -> Clause:
        """A random clause that is true in this scene (random surface choices)."""
        rng, kb = self.rng, self.kb
        kinds = [k for k, w in KIND_WEIGHTS for _ in range(w)]
        ents = self.entities
        while True:
            kind = rng.choice(kinds)
            if kind == "colour" and not any(e in NOUNS for e in ents):
                continue
            if kind == "has" and not any(e in NAMES for e in ents):
                continue
            break

        def mod(e, p=mod_p):
            return self.true_mod(e) if e in NOUNS and rng.random() < p else None

        if kind == "prop":
            e = rng.choice(ents)
            d = kb.pick(rng, kb.dim_w)
            pole = rng.random() < 0.5
            w = DIMS[d][0] if pole else DIMS[d][1]
            return Clause("prop", e, d, neg=pole != self.pol(e, d), pole=pole,
                          syn=w in SYNONYMS and rng.random() < 0.4, subj_mod=mod(e, mod_p * 0.5))
        if kind == "colour":
            e = rng.choice([e for e in ents if e in NOUNS])
            true = self.colour(e)
            if rng.random() < 0.7:
                return Clause("colour", e, true, subj_mod=mod(e, mod_p * 0.3))
            return Clause("colour", e, kb.pick(rng, kb.colour_w, (true,)), neg=True)
        if kind == "has":
            e = rng.choice([e for e in ents if e in NAMES])
            obj = kb.pick(rng, kb.object_w)
            return Clause("has", e, obj, n=self.has(e, obj))
        a, b = rng.sample(ents, 2) if len(ents) > 1 else (ents[0], kb.pick(rng, kb.entity_w, ents))
        if kind == "rel":
            fits = [v for v in VERB_NAMES
                    if VERB_ARGS[v][0] in ("any", _kind_of(a)) and VERB_ARGS[v][1] in ("any", _kind_of(b))]
            weights = {v: kb.verb_w[v] for v in fits} if fits and rng.random() < 0.9 else kb.verb_w
            v = kb.pick(rng, weights)
            return Clause("rel", a, v, b, neg=not self.rel(v, a, b),
                          voice="passive" if rng.random() < 0.35 else "active", subj_mod=mod(a), obj_mod=mod(b))
        d = kb.pick(rng, kb.dim_w)
        if self.x(a, d) < self.x(b, d):
            a, b = b, a
        return Clause("more", a, d, b, pole=rng.random() < 0.5, subj_mod=mod(a, mod_p * 0.5),
                      obj_mod=mod(b, mod_p * 0.5))

    def text(self, n_clauses: int, mod_p: float = 0.35) -> list[Clause]:
        out: list[Clause] = []
        for _ in range(20 * n_clauses):
            c = self.clause(mod_p)
            if c not in out:
                out.append(c)
            if len(out) == n_clauses:
                break
        return out


def random_clause(rng: random.Random, kb: Knowledge, mod_p: float = 0.35) -> Clause:
    """One true clause of a fresh scene."""
    return Scene(kb, rng, 2 if rng.random() < 0.7 else 3).clause(mod_p)


def _rand_mod(rng: random.Random) -> Mod:
    if rng.random() < 0.7:
        dim = rng.choice(DIM_NAMES)
        pole = rng.random() < 0.5
        w = DIMS[dim][0] if pole else DIMS[dim][1]
        return Mod("prop", dim, pole, w in SYNONYMS and rng.random() < 0.4)
    return Mod("colour", rng.choice(COLOURS))


def resurface(c: Clause, rng: random.Random) -> Clause:
    """The same meaning with random surface choices (voice, pole + negation, synonym, converse)."""
    if c.kind == "prop":
        pol = c.pole != c.neg
        pole = rng.random() < 0.5
        w = DIMS[c.pred][0] if pole else DIMS[c.pred][1]
        c = replace(c, pole=pole, neg=pole != pol, syn=w in SYNONYMS and rng.random() < 0.5)
    elif c.kind == "rel":
        c = replace(c, voice=rng.choice(("active", "passive")))
    elif c.kind == "more":
        c = replace(c, pole=rng.random() < 0.5)
    return replace(c, subj_mod=_resurface_mod(c.subj_mod, rng), obj_mod=_resurface_mod(c.obj_mod, rng))


def _resurface_mod(m: Mod | None, rng: random.Random) -> Mod | None:
    if m is None or m.kind != "prop":
        return m
    w = DIMS[m.value][0] if m.pole else DIMS[m.value][1]
    return replace(m, syn=w in SYNONYMS and rng.random() < 0.5)


def _other(rng: random.Random, pool, *exclude):
    return rng.choice([x for x in pool if x not in exclude])


def _flip_mod(m: Mod, rng: random.Random) -> Mod:
    if m.kind == "prop":
        return replace(m, pole=not m.pole, syn=False)
    return replace(m, value=_other(rng, COLOURS, m.value))


def perturb(c: Clause, rng: random.Random, op: str) -> Clause | None:
    """A meaning-changing edit of ``c`` (None if ``op`` does not apply to this clause)."""
    mods = [(c.subj, "subj_mod", c.subj_mod)] + ([(c.obj, "obj_mod", c.obj_mod)] if c.obj else [])
    have_mods = [(e, f, m) for e, f, m in mods if m is not None]
    nouns_without = [(e, f) for e, f, m in mods if m is None and e in NOUNS]
    if op == "negate":
        return replace(c, neg=not c.neg) if c.kind in ("prop", "colour", "rel") else None
    if op == "antonym":
        return replace(c, pole=not c.pole, syn=False) if c.kind == "prop" else None
    if op == "swap":  # exchange the two arguments, keep the words (PAWS-style)
        if c.kind not in ("rel", "more"):
            return None
        return replace(c, subj=c.obj, obj=c.subj, subj_mod=c.obj_mod, obj_mod=c.subj_mod)
    if op == "other_value":
        if c.kind == "prop":
            return replace(c, pred=_other(rng, DIM_NAMES, c.pred), syn=False)
        if c.kind == "colour":
            return replace(c, pred=_other(rng, COLOURS, c.pred))
        if c.kind == "rel":
            return replace(c, pred=_other(rng, VERB_NAMES, c.pred))
        if c.kind == "more":
            return replace(c, pred=_other(rng, DIM_NAMES, c.pred))
        if c.kind == "has":
            return replace(c, n=int(_other(rng, NUMBERS, str(c.n))))
    if op == "other_object":
        return replace(c, pred=_other(rng, OBJECTS, c.pred)) if c.kind == "has" else None
    if op == "other_entity":
        role = rng.choice(["subj", "obj"] if c.obj else ["subj"])
        new = _other(rng, ENTITIES, c.subj, c.obj)
        mod = getattr(c, role + "_mod")
        return replace(c, **{role: new, role + "_mod": mod if new in NOUNS else None})
    if op == "drop_mod":
        if not have_mods:
            return None
        _, f, _ = rng.choice(have_mods)
        return replace(c, **{f: None})
    if op == "add_mod":
        if not nouns_without:
            return None
        _, f = rng.choice(nouns_without)
        return replace(c, **{f: _rand_mod(rng)})
    if op == "flip_mod":
        if not have_mods:
            return None
        _, f, m = rng.choice(have_mods)
        return replace(c, **{f: _flip_mod(m, rng)})
    raise ValueError(op)


# ============================================================================ the world
@dataclass
class World:
    seed: int = 1
    languages: tuple[Language, ...] = field(default_factory=lambda: tuple(CATALOGUE[c] for c in DEFAULT_LANGUAGES))
    lexicons: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self):
        codes = [l.code for l in self.languages]
        if not codes or codes[0] != "en":
            raise ValueError(f"the first language must be English ('en'); got {codes}")
        if len(set(codes)) != len(codes):
            raise ValueError(f"duplicate language code in {codes}")
        if self.languages[0] != ENGLISH:
            raise ValueError("'en' is the English setting and cannot be modified")
        taken: set[str] = set()
        self.lexicons = {l.code: build_lexicon(l, self.seed, taken) for l in self.languages}
        self.kb = Knowledge(self.seed)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(l.code for l in self.languages)

    @property
    def derived(self) -> tuple[Language, ...]:
        return self.languages[1:]

    def language(self, code: str) -> Language:
        for l in self.languages:
            if l.code == code:
                return l
        raise KeyError(code)

    def realise(self, c: Clause | list[Clause], code: str) -> str:
        return realise(c, self.language(code), self.lexicons[code])

    def tagged(self, c: Clause | list[Clause], code: str) -> tuple[list[str], list[str]]:
        return tagged(c, self.language(code), self.lexicons[code])

    def describe(self) -> dict:
        return {
            "seed": self.seed,
            "languages": [dict(asdict(l), differences=l.differences()) for l in self.languages],
            "english_vocabulary_size": len(ENGLISH_VOCAB),
            "lexicons": self.lexicons,
            "knowledge": self.kb.describe(),
        }


# ---------------------------------------------------------------------------- task generators
# NLI (the intermediate task): minimal triplets of bare clauses (docs/synthetic.md, "synth_nli").
NLI_KINDS = ("prop", "rel")  # premise kinds: the ones whose meaning can be restated in another form
NLI_EDITS = {
    # the edit that makes each label's hypothesis (the label written is always recomputed from the meanings)
    "entailment": ("restate",),  # the same meaning in another form: voice, "not slow" = "fast", synonym
    "contradiction": ("negate", "antonym"),  # the opposite polarity: negation added / removed, antonym
    "neutral": ("other_entity", "other_predicate", "swap_args"),  # a statement the premise leaves open
}
NLI_RESURFACE = 0.5  # share of contradiction / neutral hypotheses also given new surface choices


def _nli_edit(p: Clause, rng: random.Random, kb: Knowledge, edit: str) -> Clause | None:
    """The hypothesis clause of one edit of a bare premise (None where the edit does not apply). New words
    are drawn with the world's frequencies (as premises are), so no word is more frequent in one label's
    hypotheses than in another's."""
    if edit == "restate":
        return resurface(p, rng)
    if edit in ("negate", "antonym"):
        return perturb(p, rng, edit)
    if edit == "other_entity":
        role = rng.choice(("subj", "obj") if p.obj else ("subj",))
        return replace(p, **{role: kb.pick(rng, kb.entity_w, (p.subj, p.obj))})
    if edit == "other_predicate":  # another verb, or another property of the same entity
        weights = kb.verb_w if p.kind == "rel" else kb.dim_w
        return replace(p, pred=kb.pick(rng, weights, (p.pred,)), syn=False)
    if edit == "swap_args":  # the same words, the roles exchanged
        return replace(p, subj=p.obj, obj=p.subj) if p.kind == "rel" else None
    raise ValueError(edit)


def nli_triplet(rng: random.Random, kb: Knowledge, max_tries: int = 50) -> tuple[Clause, list[tuple[Clause, str, str]]]:
    """A premise (a bare clause of a fresh scene: a property or a relation, no attributive adjective) and one
    hypothesis per label, each [(clause, label, edit), ...] in ``NLI_LABELS`` order.

    Every premise comes with all three labels, so the premise says nothing about the label; the edit is drawn
    uniformly among those that apply to the premise's kind; contradiction and neutral hypotheses get new
    surface choices as often as not, entailed ones always (a restatement in the same words would be the
    premise itself). The label is the one computed from the two meanings (:func:`nli_label`).
    """
    for _ in range(max_tries):
        p = random_clause(rng, kb, mod_p=0.0)
        if p.kind not in NLI_KINDS:
            continue
        out = []
        for label in NLI_LABELS:
            edits = [e for e in NLI_EDITS[label] if e != "antonym" or p.kind == "prop"]
            edits = [e for e in edits if e != "swap_args" or p.kind == "rel"]
            for _ in range(max_tries):
                edit = rng.choice(edits)
                h = _nli_edit(p, rng, kb, edit)
                if h is None:
                    continue
                if edit != "restate" and rng.random() < NLI_RESURFACE:
                    h = resurface(h, rng)
                if english_order_tokens(h, ENGLISH) == english_order_tokens(p, ENGLISH):
                    continue
                if nli_label(meaning(p), meaning(h)) == label:
                    out.append((h, label, edit))
                    break
            else:
                break
        if len(out) == len(NLI_LABELS):
            return p, out
    raise RuntimeError(f"no NLI triplet in {max_tries} tries")


PAIR_NEG_OPS = ("swap", "swap", "negate", "negate", "antonym", "drop_mod", "add_mod", "flip_mod", "other_value",
                "other_entity", "other_object")


def pair_example(rng: random.Random, kb: Knowledge, target: str, max_tries: int = 200) -> tuple[Clause, Clause, str]:
    """(clause 1, clause 2, label): paraphrase = same meaning with other words/structure; otherwise a
    small meaning-changing edit (high word overlap, as in PAWS)."""
    for _ in range(max_tries):
        a = random_clause(rng, kb, mod_p=0.3)
        if target == "paraphrase":
            b = resurface(a, rng)
        else:
            b = perturb(a, rng, rng.choice(PAIR_NEG_OPS))
            if b is None:
                continue
            b = resurface(b, rng) if rng.random() < 0.5 else b
        if b == a or english_order_tokens(a, ENGLISH) == english_order_tokens(b, ENGLISH):
            continue
        label = paraphrase_label(meaning(a), meaning(b))
        if label == target:
            return a, b, label
    raise RuntimeError(f"no {target} pair in {max_tries} tries")
