"""Extractive-QA metrics: SQuAD v1.1 and MLQA exact match / F1, as plain offline functions.

Reimplements the semantics of the scorers that the XTREME leaderboard script uses:

* ``third_party/evaluate_squad.py`` of google-research/xtreme (Apache-2.0; it is the SQuAD v1.1
  ``evaluate-v1.1.py`` script via allenai/bi-att-flow), used for XQuAD and TyDiQA-GoldP;
* ``third_party/evaluate_mlqa.py`` of google-research/xtreme, a copy of facebookresearch/MLQA
  ``mlqa_evaluation_v1.py`` (Copyright Facebook, "licensed under the license found in the LICENSE file"
  of that repository), used for MLQA.

No code is copied; the behaviour is reproduced, including the quirks: scores are percentages (x100),
an unanswered question scores 0 and still counts in the denominator, the best score over the gold
answers is taken per question, the Arabic rule removes every ``ال`` (not only a word-initial one), and
XQuAD/TyDiQA use the English-only SQuAD normalisation for every language (whitespace tokens, so a
Chinese answer is a single token).
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Callable, Iterable, Mapping, Sequence

# ------------------------------------------------------------------------------------------ SQuAD v1.1

_ASCII_PUNCT = frozenset(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """SQuAD v1.1: lowercase, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace."""
    text = s.lower()
    text = "".join(ch for ch in text if ch not in _ASCII_PUNCT)
    text = _EN_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _token_f1(prediction_tokens: Sequence[str], ground_truth_tokens: Sequence[str]) -> float:
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_f1(prediction: str, ground_truth: str) -> float:
    """Token-overlap F1 in [0, 1] after SQuAD normalisation."""
    return _token_f1(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


def squad_exact_match(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


# ------------------------------------------------------------------------------------------------ MLQA

MLQA_WHITESPACE_LANGS = ("en", "es", "hi", "vi", "de", "ar")
MLQA_MIXED_SEGMENTATION_LANGS = ("zh",)
MLQA_LANGS = MLQA_WHITESPACE_LANGS + MLQA_MIXED_SEGMENTATION_LANGS

_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    # The official pattern. Its first alternative can never match (``^`` after consumed characters),
    # so in effect every occurrence of "ال" is replaced by a space, also inside a word.
    "ar": re.compile(r"\sال^|ال"),
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


@lru_cache(maxsize=None)
def is_mlqa_punct(ch: str) -> bool:
    """MLQA's PUNCT set: every Unicode category-P character (this Python's Unicode tables) + ASCII punctuation."""
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def check_mlqa_lang(lang: str) -> None:
    if lang not in MLQA_LANGS:
        raise ValueError(f"unknown MLQA language {lang!r}; valid choices: {', '.join(MLQA_LANGS)}")


def mixed_segmentation(text: str) -> list[str]:
    """MLQA zh tokenisation: each CJK character (U+4E00..U+9FA5) and punctuation mark is a token; runs of
    other characters are split on whitespace."""
    segs: list[str] = []
    buf = ""
    for ch in text:
        if _CJK.search(ch) or is_mlqa_punct(ch):
            if buf:
                segs.extend(buf.split())
                buf = ""
            segs.append(ch)
        else:
            buf += ch
    if buf:
        segs.extend(buf.split())
    return segs


def mlqa_normalize_answer(s: str, lang: str) -> str:
    """MLQA: lowercase, drop punctuation, drop the language's articles, re-tokenise and join with spaces."""
    check_mlqa_lang(lang)
    text = "".join(ch for ch in s.lower() if not is_mlqa_punct(ch))
    pattern = _MLQA_ARTICLES.get(lang)  # hi and zh have no article rule
    if pattern is not None:
        text = pattern.sub(" ", text)
    tokens = text.split() if lang in MLQA_WHITESPACE_LANGS else mixed_segmentation(text)
    return " ".join(t for t in tokens if t.strip() != "")


def mlqa_f1(prediction: str, ground_truth: str, lang: str) -> float:
    return _token_f1(mlqa_normalize_answer(prediction, lang).split(),
                     mlqa_normalize_answer(ground_truth, lang).split())


def mlqa_exact_match(prediction: str, ground_truth: str, lang: str) -> bool:
    return mlqa_normalize_answer(prediction, lang) == mlqa_normalize_answer(ground_truth, lang)


# ------------------------------------------------------------------------------------------- scoring

def iter_squad_questions(dataset) -> Iterable[tuple[str, list[str]]]:
    """(question id, gold answer texts) in file order from SQuAD-format data (the ``data`` list, or the
    whole JSON object with a ``data`` key). Duplicate ids are kept, as the official loop counts them."""
    if isinstance(dataset, Mapping) and "data" in dataset:
        dataset = dataset["data"]
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield qa["id"], [a["text"] for a in qa["answers"]]


def _score(questions: Iterable[tuple[str, list[str]]], predictions: Mapping[str, str],
           exact_fn: Callable[[str, str], bool], f1_fn: Callable[[str, str], float],
           source: str = "") -> dict:
    where = f" in {source}" if source else ""
    exact = f1 = total = 0
    unanswered: list[str] = []
    for qid, golds in questions:
        total += 1
        if qid not in predictions:
            unanswered.append(qid)
            continue
        pred = predictions[qid]
        if not isinstance(pred, str):
            raise ValueError(f"prediction for question {qid!r}{where} is {type(pred).__name__}, not a string")
        if not golds:
            raise ValueError(f"question {qid!r}{where} has no gold answers")
        exact += max(exact_fn(pred, g) for g in golds)
        f1 += max(f1_fn(pred, g) for g in golds)
    if total == 0:
        raise ValueError(f"no questions{where}: cannot score an empty gold set")
    if unanswered:
        shown = ", ".join(unanswered[:5]) + (", ..." if len(unanswered) > 5 else "")
        print(f"warning: {len(unanswered)} of {total} unanswered question(s){where} receive score 0: {shown}",
              file=sys.stderr)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def _questions(golds) -> Iterable[tuple[str, list[str]]]:
    if isinstance(golds, Mapping) and "data" not in golds:
        return ((qid, list(answers)) for qid, answers in golds.items())
    return iter_squad_questions(golds)


def squad_scores(predictions: Mapping[str, str], golds, *, source: str = "") -> dict:
    """SQuAD v1.1 {"exact_match", "f1"} in percent, averaged over all gold questions.

    ``golds`` is ``{question id: [gold answer, ...]}`` or SQuAD-format data (as read from a label file).
    """
    return _score(_questions(golds), predictions, squad_exact_match, squad_f1, source)


def mlqa_scores(predictions: Mapping[str, str], golds, lang: str, *, source: str = "") -> dict:
    """MLQA {"exact_match", "f1"} in percent with the answer language's normalisation (en es de ar hi vi zh)."""
    check_mlqa_lang(lang)
    return _score(_questions(golds), predictions,
                  lambda p, g: mlqa_exact_match(p, g, lang), lambda p, g: mlqa_f1(p, g, lang), source)
