"""Sentence(-pair) classification: MNLI, QQP, ANLI+, SST-2 (intermediate); XNLI, PAWS-X (target).

Single-sentence tasks (SST-2) have ``text_b`` None in every row and are encoded as one segment."""

from __future__ import annotations

import logging

import numpy as np

from ..data.sources import check_columns, combine_languages, label_mapper, language_groups, load_source
from ..scoring.metrics import accuracy
from ..scoring.predictions import write_lines
from ..scoring.xtreme import score_task
from ..tasks.types import Concat, source_parts
from .base import Format, predict_sorted

logger = logging.getLogger(__name__)

PAIR_FEATURES = {"text_a": "string", "text_b": "string", "label": "int64", "lang": "string"}


def proportional_shares(sizes: list[int], total: int) -> list[int]:
    """Split ``total`` over parts in proportion to ``sizes`` (largest remainder; ties go to the earlier part)."""
    n = sum(sizes)
    if total >= n:
        return list(sizes)
    exact = [total * s / n for s in sizes]
    out = [int(x) for x in exact]
    for i in sorted(range(len(sizes)), key=lambda i: (-(exact[i] - out[i]), i))[: total - sum(out)]:
        out[i] += 1
    return out


def load(task, source, data, languages=None, max_samples=None):
    """Rows -> canonical ``{text_a, text_b, label, lang}``; one dataset even for many languages.

    * A source without a ``text_b`` column mapping is single-sentence classification (SST-2): ``text_b`` is None.
    * Rows of a *training* source that have no gold label (-1: GLUE test splits, SNLI pairs without annotator
      consensus) are dropped, and the count is logged; evaluation splits keep every row.
    * A ``Concat`` (ANLI+) is loaded part by part into one dataset in the task's one label set; with
      ``max_samples`` every part keeps the same share (proportional, from the start of each part).
    """
    from datasets import Features, Value, concatenate_datasets

    if isinstance(source, Concat):
        dss = [load(task, part, data, languages) for part in source.parts]
        if max_samples is not None:
            dss = [d.select(range(k)) for d, k in zip(dss, proportional_shares([len(d) for d in dss], max_samples))]
        return concatenate_datasets(dss)

    training = source in source_parts(task.train)
    features = Features({k: Value(v) for k, v in PAIR_FEATURES.items()})
    parts = []
    for lang, code, source in language_groups(task, source, languages):
        where = f"{source.hub_id}/{source.config_for(code)}[{source.split}]"
        ds = load_source(source, data, code)
        check_columns(ds, source, code)
        to_int = label_mapper(ds, source.columns["label"], task.labels, where)
        lang_col = source.lang_column
        if lang_col and languages is not None:
            wanted = set(languages)
            ds = ds.filter(lambda v: v in wanted, input_columns=lang_col)
        cols = source.columns
        fixed_lang = lang or source.language or "en"  # a translated training set names its language

        def convert(batch):
            n = len(batch[cols["text_a"]])
            return {
                "text_a": batch[cols["text_a"]],
                "text_b": batch[cols["text_b"]] if "text_b" in cols else [None] * n,
                "label": [to_int(v) for v in batch[cols["label"]]],
                "lang": batch[lang_col] if lang_col else [fixed_lang] * n,
            }

        ds = ds.map(convert, batched=True, remove_columns=ds.column_names, features=features)
        if training:
            n = len(ds)
            ds = ds.filter(lambda v: v >= 0, input_columns="label")
            if len(ds) < n:
                logger.info("%s: dropped %d of %d training rows without a gold label (-1)", where, n - len(ds), n)
        parts.append(ds)
    return combine_languages(parts, task, f"{source.hub_id}/{source.config}[{source.split}]", languages, max_samples)


def model_class():
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification


def model_kwargs(task) -> dict:
    return {"num_labels": len(task.labels), "id2label": dict(enumerate(task.labels)),
            "label2id": {l: i for i, l in enumerate(task.labels)}}


def tokenize(ds, tokenizer, max_length: int, keep=("lang",)):
    """Canonical {text_a, text_b, label, lang} -> input_ids/attention_mask/labels/length (no padding:
    the collator pads each batch to its own longest sequence). ``text_b`` None: one segment."""

    def fn(batch):
        second = batch["text_b"]
        missing = sum(b is None for b in second)
        if missing and missing != len(second):
            raise ValueError("text_b is None in some rows only: a task is either single-sentence or sentence-pair")
        enc = tokenizer(batch["text_a"], None if missing else second, truncation=True, max_length=max_length)
        enc["labels"] = batch["label"]
        enc["length"] = [len(x) for x in enc["input_ids"]]
        return enc

    drop = [c for c in ds.column_names if c not in keep]
    return ds.map(fn, batched=True, remove_columns=drop, desc="tokenize")


def featurize(examples, tokenizer, max_length: int, task=None, *, train: bool = False):
    return tokenize(examples, tokenizer, max_length)


def compute_metrics(eval_pred):
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return {"accuracy": accuracy(np.argmax(logits, axis=-1), labels)}


def dev_metrics(task, examples, features):
    return compute_metrics


def predictions_from_logits(logits) -> np.ndarray:
    if isinstance(logits, tuple):
        logits = logits[0]
    return np.argmax(logits, axis=-1)


def predict(trainer, task, examples, features):
    preds, timing = predict_sorted(trainer, features, predictions_from_logits)
    return [int(p) for p in preds], timing


def gold(task, examples) -> list[int]:
    return [int(l) for l in examples["label"]]


def score(task, preds, labels, lang=None) -> dict:
    """Per-language accuracy. For XTREME tasks it is computed by the leaderboard scorer's own code
    (xstilts.scoring.xtreme) on the class names, so results.json and the scored folders cannot disagree."""
    labels = np.asarray(labels)
    preds = np.asarray(preds)
    keep = labels >= 0
    n = int(keep.sum())
    if task.xtreme_name:
        names = task.labels
        s = score_task(task.xtreme_name, [names[int(p)] for p in preds[keep]], [names[int(l)] for l in labels[keep]])
        return {"accuracy": s["accuracy"] / 100.0, "n": n}
    return {"accuracy": accuracy(preds, labels), "n": n}


def label_rows(task, ids) -> list[str]:
    return [task.labels[int(i)] for i in ids]


def write(root, task, lang, items, examples, split) -> None:
    """One class name per line (``<root>/<task>/test-<lang>.tsv``)."""
    write_lines(root, task, lang, label_rows(task, items), split)


class PairClassification(Format):
    """Sentence(-pair) classification: one label per example, accuracy."""

    name = "pair_classification"
    metrics = ("accuracy",)
    load = staticmethod(load)
    featurize = staticmethod(featurize)
    model_class = staticmethod(model_class)
    model_kwargs = staticmethod(model_kwargs)
    dev_metrics = staticmethod(dev_metrics)
    predict = staticmethod(predict)
    gold = staticmethod(gold)
    score = staticmethod(score)
    write = staticmethod(write)

    def settings(self, task) -> dict:
        return {"labels": list(task.labels), "labels_from": "the task declaration (checked against the Hub's names)",
                "encoding": "(text_a, text_b) as the tokenizer's sentence pair (<s> a </s></s> b </s> for XLM-R); "
                            "one segment when there is no text_b",
                "truncation": "longest_first (the tokenizer's truncation=True) to max_seq_length"}
