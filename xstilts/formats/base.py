"""The format interface: what the run scripts, training stages, evaluation and multi-task training call.

A format turns a task's canonical rows into model inputs and its predictions into metrics, once. Each format is
a subclass of :class:`Format`; a run creates ONE instance with its settings (``Format.from_args`` reads the
parsed arguments; e.g. span QA's ``doc_stride``), so nothing depends on module state or on an earlier run in
the same process. Methods take the task they work on (training stages and multi-task runs use one instance for
several tasks of the format).

The metric has one owner, the task declaration (``Task.metric``): ``score`` and ``dev_metrics`` return it among
their keys (fractions in [0, 1]); checkpoint selection, the result's ``average`` and the report use
``task.metric``.

Required::

    load(task, source, data, languages=None, max_samples=None)
        Hub rows -> a ``datasets.Dataset`` of canonical examples with a ``lang`` column. ``data``: where data is
        read from (:class:`xstilts.data.sources.DataSettings`, or a ``--data_root`` path, or None for the Hub)
    featurize(examples, tokenizer, max_length, task, *, train)
        examples -> model features with a ``length`` column (no padding; the collator pads each batch).
        Evaluation features may be several per example (long sentences, QA doc stride) and carry the
        bookkeeping to map them back
    model_class()                       the Auto class of a fresh head
    dev_metrics(task, examples, features)   -> ``compute_metrics`` for the Trainer's English-dev evaluation
    predict(trainer, task, examples, features)
        -> (one prediction per example, in the examples' order; timing dict)
    gold(task, examples)                -> one gold item per example (what ``score`` compares against)
    score(task, predictions, golds, lang)   -> ``{task.metric: value, ..., "n": count}`` for one language;
        XTREME tasks are scored by the leaderboard scorer's code (``xstilts.scoring.xtreme``)
    write(root, task, lang, items, examples, split)
        predictions (or golds) of one language in the XTREME leaderboard layout

Optional, with defaults here: ``model_kwargs(task)`` (config kwargs of the fresh head; none),
``collator(tokenizer)`` (dynamic padding), ``settings(task)`` (the task-dependent set-up stored with every
result as ``format_settings``; empty), ``describe_source(source)`` (what the format learnt from a source,
added to its description in the record, e.g. the label set read from a train split; nothing) and
``check_data(task, data)`` (what a multi-task run checks before any model loads; the task's train and dev
sources). ``pretrained_head``: the head is the pretrained model's own and is reused, not initialised afresh
(the masked-LM objective; xstilts/training/mlm.py builds it on the shared encoder).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..data.sources import check_task_data


class Format(ABC):
    """One task format; an instance per run, holding that run's format settings."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]  # the keys of ``score``: a task of the format selects one (Task.metric)
    pretrained_head: ClassVar[bool] = False  # True: the pretrained model's own head is reused (masked LM)

    @classmethod
    def from_args(cls, data_args=None) -> "Format":
        """The instance for a run: its settings from the parsed arguments (validated here, before any work)."""
        return cls()

    @abstractmethod
    def load(self, task, source, data, languages=None, max_samples=None): ...

    @abstractmethod
    def featurize(self, examples, tokenizer, max_length: int, task=None, *, train: bool = False): ...

    @abstractmethod
    def model_class(self): ...

    @abstractmethod
    def dev_metrics(self, task, examples, features): ...

    @abstractmethod
    def predict(self, trainer, task, examples, features): ...

    @abstractmethod
    def gold(self, task, examples) -> list: ...

    @abstractmethod
    def score(self, task, predictions, golds, lang=None) -> dict: ...

    @abstractmethod
    def write(self, root, task, lang, items, examples, split): ...

    @property
    def options(self) -> dict:
        """The settings this instance took from the run's arguments (recorded with the hyperparameters too)."""
        return {}

    def model_kwargs(self, task) -> dict:
        return {}

    def collator(self, tokenizer):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None)

    def settings(self, task) -> dict:
        return {}

    def describe_source(self, source) -> dict:
        return {}

    def check_data(self, task, data) -> None:
        check_task_data(task, [task.dev_language], data, train=True, dev=True, test=False)


def predict_sorted(trainer, ds, predictions_from_logits) -> tuple[np.ndarray, dict]:
    """Predict a (multi-language) tokenized dataset in length-sorted order; returns predictions in the
    dataset's original order and timing."""
    order = np.argsort(np.asarray(ds["length"]), kind="stable")
    sorted_ds = ds.select(order)
    t0 = time.time()
    out = trainer.predict(sorted_ds, metric_key_prefix="predict")
    elapsed = time.time() - t0
    preds_sorted = predictions_from_logits(out.predictions)
    if out.label_ids is not None and "labels" in ds.column_names:
        gold_sorted = np.asarray(sorted_ds["labels"])
        got = np.asarray(out.label_ids)
        if got.shape == gold_sorted.shape and not np.array_equal(got, gold_sorted):
            raise RuntimeError("prediction order does not match the dataset order (evaluation sampler reordered rows)")
    preds = np.empty_like(preds_sorted)
    preds[order] = preds_sorted
    return preds, {"predict_seconds": elapsed, "predict_samples_per_second": len(ds) / max(elapsed, 1e-9)}
