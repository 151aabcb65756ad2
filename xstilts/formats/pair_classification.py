"""Sentence(-pair) classification: MNLI, QQP, ANLI+, SST-2 (intermediate); XNLI, PAWS-X (target).

Single-sentence tasks (SST-2) have ``text_b`` None in every row and are encoded as one segment."""

from __future__ import annotations

import numpy as np

from ..scoring.metrics import accuracy

METRIC = "accuracy"


def load(task, source, data_root, languages=None, max_samples=None):
    from ..data import load_pair_classification

    return load_pair_classification(task, source, data_root, languages, max_samples=max_samples)


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


def collator(tokenizer):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None)


def compute_metrics(eval_pred):
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return {METRIC: accuracy(np.argmax(logits, axis=-1), labels)}


def dev_metrics(task, examples, features):
    return compute_metrics


def predictions_from_logits(logits) -> np.ndarray:
    if isinstance(logits, tuple):
        logits = logits[0]
    return np.argmax(logits, axis=-1)


def predict(trainer, task, examples, features):
    from ..training import predict_sorted

    preds, timing = predict_sorted(trainer, features, predictions_from_logits)
    return [int(p) for p in preds], timing


def gold(task, examples) -> list[int]:
    return [int(l) for l in examples["label"]]


def score(task, preds, labels, lang=None) -> dict:
    """Per-language metric. For XTREME tasks it is computed by the leaderboard scorer's own code
    (xstilts.score) on the class names, so results.json and the scored folders cannot disagree."""
    labels = np.asarray(labels)
    preds = np.asarray(preds)
    keep = labels >= 0
    n = int(keep.sum())
    if task.xtreme_name:
        from ..scoring.xtreme import score_task

        names = task.labels
        s = score_task(task.xtreme_name, [names[int(p)] for p in preds[keep]], [names[int(l)] for l in labels[keep]])
        return {METRIC: s[METRIC] / 100.0, "n": n}
    return {METRIC: accuracy(preds, labels), "n": n}


def label_rows(task, ids) -> list[str]:
    return [task.labels[int(i)] for i in ids]


def write(root, task, lang, items, examples, split) -> None:
    """One class name per line (``<root>/<task>/test-<lang>.tsv``)."""
    from ..scoring.predictions import write_lines

    write_lines(root, task, lang, label_rows(task, items), split)
