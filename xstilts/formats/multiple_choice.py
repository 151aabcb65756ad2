"""Multiple choice: HellaSwag, Cosmos QA, CommonsenseQA (intermediate); Social IQa + COPA -> XCOPA (target).

Model: ``AutoModelForMultipleChoice`` (one score per choice from the pooled encoding, softmax over the
choices; the head has one output, so it does not depend on the number of choices). Metric: accuracy.

Canonical example (what ``load`` returns): ``{context, question, choices: list[str], label, lang}``;
``question`` may be empty, ``label`` is the index of the right choice (-1: no gold label). Every choice is
encoded as one (first segment, second segment) pair, by the task's template (``Task.format_options
["template"]``):

* ``continuation``: (context, question + choice). HellaSwag: (``ctx_a``, ``ctx_b`` + ending), as jiant's
  ``hellaswag.py`` and HF ``run_swag.py`` (sent1, sent2 + ending) do.
* ``prompt``: (context + question, choice). Cosmos QA: (context + question, answer); CommonsenseQA:
  (question, choice), no context; Social IQa: (context + question, answer), as jiant and XTREME-R's
  ``run_xcopa.py`` do.
* ``copa``: ("{premise} What was the {question}?", choice) with ``question`` ``cause`` or ``effect``: COPA
  and XCOPA, exactly XTREME-R's ``run_xcopa.py`` (jiant's COPA words it "What was the cause of this?" /
  "What happened as a result?"; the kit follows XTREME-R, whose recipe it reproduces).

Parts are joined with one space, empty parts are left out. Pairs are truncated longest-first to the
maximum length (as the tokenizer's ``truncation=True``); features are ``[choices][tokens]`` per example,
unpadded; the collator pads a batch to ``[batch, choices, longest]``.

Rows are read through ``Source.columns``: ``context``, ``question`` (optional), ``choices`` (one list column,
``column.field`` inside a struct of lists such as CommonsenseQA's ``choices.text``, or a comma list of
columns such as ``answer0,answer1,answer2,answer3``), ``label``, and optionally ``choice_keys`` (a per-row
list of choice names that must equal ``Task.labels``, CommonsenseQA's ``choices.label``).

Labels: ``Task.labels`` lists the raw label values in choice order (``"0".."3"`` HellaSwag (a string column)
and Cosmos QA (int32), ``"A".."E"`` CommonsenseQA ``answerKey``, ``"1".."3"`` Social IQa (strings),
``"0","1"`` XCOPA (int32)); a raw value is compared as a string. A ``ClassLabel`` column (COPA:
``choice1, choice2``) is taken as the choice index when its names equal ``Task.labels`` or the choice
columns. Empty, ``None`` and ``-1`` mean no gold label (test splits): such rows are dropped from training
splits and keep label -1 elsewhere (ignored by the loss and the metric). Any other value is an error
naming the value, the field and the valid values.

Leaderboard files: ``<dir>/xcopa/test-<lang>.jsonl``, one ``{"label": <choice index>}`` per line (what
XTREME-R's ``run_xcopa.py`` writes and ``evaluate.py`` reads).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.sources import combine_languages, language_groups, load_source
from ..errors import UsageError, choices_error
from ..files import atomic_write_text
from ..scoring.metrics import accuracy
from ..scoring.xtreme import score_task
from ..tasks.types import source_parts
from .base import Format
# one gold label per example and the argmax over the choices' logits: as for pair classification
from .pair_classification import gold, predict, predictions_from_logits

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label of rows without gold: CrossEntropyLoss ignores it, the metric masks it
COPA_QUESTIONS = ("cause", "effect")
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# ------------------------------------------------------------------------------------------ templates

def _join(*parts: str | None) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def _continuation(context: str, question: str, choice: str) -> tuple[str, str]:
    return _join(context), _join(question, choice)


def _prompt(context: str, question: str, choice: str) -> tuple[str, str]:
    return _join(context, question), _join(choice)


def _copa(context: str, question: str, choice: str) -> tuple[str, str]:
    if question not in COPA_QUESTIONS:
        raise UsageError(f"COPA template: question {question!r} is not one of {list(COPA_QUESTIONS)}")
    return f"{_join(context)} What was the {question}?", _join(choice)


TEMPLATES = {"continuation": _continuation, "prompt": _prompt, "copa": _copa}
TEMPLATE_TEXT = {  # recorded with every result (format_settings)
    "continuation": "(context, question + ' ' + choice)",
    "prompt": "(context + ' ' + question, choice)",
    "copa": "(premise + ' What was the ' + question + '?', choice)  [XTREME-R run_xcopa.py:303-306,311-313]",
}


def template_name(task) -> str:
    name = (task.format_options or {}).get("template")
    if name not in TEMPLATES:
        raise choices_error(f"multiple-choice template of task {task.name}", name, TEMPLATES,
                            "Set Task.format_options['template']")
    return name


def encode_pairs(task, context: str, question: str, choices: list[str]) -> list[tuple[str, str]]:
    """The (first, second) segment pair of every choice, by the task's template."""
    fn = TEMPLATES[template_name(task)]
    return [fn(context or "", question or "", c) for c in choices]


def num_choices(task) -> int:
    return len(task.labels)


# ----------------------------------------------------------------------------------------------- data

def choice_columns(source) -> list[str]:
    spec = source.columns["choices"]
    return [c.strip() for c in spec.split(",")] if "," in spec else [spec]


def _column(batch, col: str) -> list:
    """Values of ``col`` in a batch; ``top.field`` reads a field of a struct-of-lists column."""
    top, _, fld = col.partition(".")
    values = batch[top]
    return [v[fld] for v in values] if fld else values


def _check_columns(ds, source, code, where: str) -> None:
    cols = source.columns
    for key in ("choices", "label"):
        if key not in cols:
            raise UsageError(f"{where}: the registry's column mapping lacks {key!r} (a multiple-choice source "
                             f"maps context, question, choices, label)")
    needed = [c for key in ("context", "question", "label", "choice_keys") if key in cols for c in [cols[key]]]
    needed += choice_columns(source)
    needed += [source.lang_column] if source.lang_column else []
    missing = sorted({c.split(".", 1)[0] for c in needed} - set(ds.column_names))
    if missing:
        raise UsageError(f"dataset {source.hub_id}/{source.config_for(code)} [{source.split}] lacks field(s) "
                         f"{', '.join(missing)} that the registry expects; its fields are: {', '.join(ds.column_names)}")


def label_mapper(ds, source, task, where: str):
    """raw label value -> choice index (-1: no gold label), see the module docstring."""
    from datasets import ClassLabel

    column = source.columns["label"]
    feat = ds.features[column]
    if isinstance(feat, ClassLabel):
        names = list(feat.names)
        if names not in (list(task.labels), choice_columns(source)):
            raise UsageError(f"{where}: label names of field {column!r} are {names}, but the registry expects "
                             f"{list(task.labels)} (or the choice columns {choice_columns(source)})")
        return lambda v: -1 if v is None else int(v)
    index = {name: i for i, name in enumerate(task.labels)}

    def to_int(v):
        if v is None or v == "" or (not isinstance(v, str) and v == -1) or v == "-1":
            return -1
        key = str(v)
        if key in index:
            return index[key]
        raise UsageError(f"{where}: label value {v!r} in field {column!r} is not one of {list(task.labels)}")

    return to_int


def _load_one(task, source, data, lang, code, languages, training: bool):
    from datasets import Features, List, Value

    where = f"{source.hub_id}/{source.config_for(code)}[{source.split}]"
    ds = load_source(source, data, code)
    _check_columns(ds, source, code, where)
    to_int = label_mapper(ds, source, task, where)
    cols = source.columns
    choice_cols = choice_columns(source)
    n_choices = num_choices(task)
    template = template_name(task)
    lang_col = source.lang_column
    if lang_col and languages is not None:
        wanted = set(languages)
        ds = ds.filter(lambda v: v in wanted, input_columns=lang_col)
    fixed_lang = lang or "en"

    def convert(batch, idx):
        n = len(batch[cols["label"]])
        context = _column(batch, cols["context"]) if "context" in cols else [""] * n
        question = _column(batch, cols["question"]) if "question" in cols else [""] * n
        if len(choice_cols) == 1:
            choices = [list(c) for c in _column(batch, choice_cols[0])]
        else:
            per_col = [_column(batch, c) for c in choice_cols]
            choices = [list(row) for row in zip(*per_col)]
        keys = _column(batch, cols["choice_keys"]) if "choice_keys" in cols else None
        for j in range(n):
            if len(choices[j]) != n_choices:
                raise UsageError(f"{where} row {idx[j]}: {len(choices[j])} choices, but task {task.name} has "
                                 f"{n_choices} ({list(task.labels)})")
            if keys is not None and list(keys[j]) != list(task.labels):
                raise UsageError(f"{where} row {idx[j]}: choice names {list(keys[j])} differ from the registry's "
                                 f"{list(task.labels)}")
            if template == "copa" and question[j] not in COPA_QUESTIONS:
                raise UsageError(f"{where} row {idx[j]}: question {question[j]!r} is not one of {list(COPA_QUESTIONS)}")
        return {
            "context": [c or "" for c in context],
            "question": [q or "" for q in question],
            "choices": [[c or "" for c in ch] for ch in choices],
            "label": [to_int(v) for v in batch[cols["label"]]],
            "lang": batch[lang_col] if lang_col else [fixed_lang] * n,
        }

    features = Features({"context": Value("string"), "question": Value("string"), "choices": List(Value("string")),
                         "label": Value("int64"), "lang": Value("string")})
    ds = ds.map(convert, batched=True, with_indices=True, remove_columns=ds.column_names, features=features)
    if training:
        n = len(ds)
        ds = ds.filter(lambda v: v >= 0, input_columns="label")
        if len(ds) < n:
            logger.info("%s: dropped %d of %d training rows without a gold label", where, n - len(ds), n)
    return ds


def load(task, source, data, languages=None, max_samples=None):
    """Hub rows -> canonical ``{context, question, choices, label, lang}``; one dataset for many languages."""
    parts = []
    for part in source_parts(source):
        training = part in source_parts(task.train)
        for lang, code, src in language_groups(task, part, languages):
            parts.append(_load_one(task, src, data, lang, code, languages, training))
    return combine_languages(parts, task, str(source.describe()), languages, max_samples)


# ------------------------------------------------------------------------------------------- features

def featurize(examples, tokenizer, max_length: int, task=None, *, train: bool = False):
    """Canonical examples -> ``input_ids``/``attention_mask`` of shape [choices][tokens] per example (no
    padding), ``labels`` (-100 where there is no gold label) and ``length`` (the longest choice)."""
    if task is None:
        raise ValueError("multiple_choice.featurize needs the task (its template)")
    template_name(task)

    def fn(batch):
        firsts, seconds, counts = [], [], []
        for context, question, choices in zip(batch["context"], batch["question"], batch["choices"]):
            pairs = encode_pairs(task, context, question, choices)
            firsts += [a for a, _ in pairs]
            seconds += [b for _, b in pairs]
            counts.append(len(pairs))
        enc = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
        out = {}
        for key in MODEL_INPUTS:
            if key in enc:
                flat, nested, i = enc[key], [], 0
                for c in counts:
                    nested.append(flat[i:i + c])
                    i += c
                out[key] = nested
        out["labels"] = [int(l) if l >= 0 else IGNORE_INDEX for l in batch["label"]]
        out["length"] = [max(len(x) for x in ids) for ids in out["input_ids"]]
        return out

    return examples.map(fn, batched=True, remove_columns=examples.column_names, desc="tokenize")


def model_class():
    from transformers import AutoModelForMultipleChoice

    return AutoModelForMultipleChoice


@dataclass
class MultipleChoiceCollator:
    """Pads every choice of every example to the batch's longest sequence: ``[batch, choices, longest]``.

    All examples of a batch must have the same number of choices (every task has a fixed number)."""

    tokenizer: object
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]):
        import torch
        from transformers.data.data_collator import pad_without_fast_tokenizer_warning

        counts = sorted({len(f["input_ids"]) for f in features})
        if len(counts) != 1:
            raise ValueError(f"a multiple-choice batch mixes examples with {counts} choices; batch examples of one "
                             f"task (a fixed number of choices) together")
        n = counts[0]
        keys = [k for k in MODEL_INPUTS if k in features[0]]
        flat = [{k: f[k][i] for k in keys} for f in features for i in range(n)]
        batch = pad_without_fast_tokenizer_warning(self.tokenizer, flat, padding=True,
                                                   pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt")
        batch = {k: v.view(len(features), n, -1) for k, v in batch.items()}
        label_key = "labels" if "labels" in features[0] else "label" if "label" in features[0] else None
        if label_key:
            batch["labels"] = torch.tensor([int(f[label_key]) for f in features], dtype=torch.long)
        return batch


def collator(tokenizer):
    return MultipleChoiceCollator(tokenizer)


# -------------------------------------------------------------------------------------------- metrics

def compute_metrics(eval_pred):
    return {"accuracy": accuracy(predictions_from_logits(eval_pred.predictions), eval_pred.label_ids)}


def dev_metrics(task, examples, features):
    return compute_metrics


def score(task, preds, labels, lang=None) -> dict:
    """Accuracy over examples with a gold label; XCOPA's by the leaderboard scorer's code
    (xstilts.scoring.xtreme)."""
    labels = np.asarray(labels)
    preds = np.asarray(preds)
    keep = labels >= 0
    n = int(keep.sum())
    if task.xtreme_name:
        s = score_task(task.xtreme_name, [int(p) for p in preds[keep]], [int(l) for l in labels[keep]])
        return {"accuracy": s["accuracy"] / 100.0, "n": n}
    return {"accuracy": accuracy(preds, labels), "n": n}


def leaderboard_file(root, task, lang: str, split: str = "test") -> Path:
    """``<root>/<xtreme name>/test-<lang>.jsonl`` (XTREME-R's suffix for its multi_choice group)."""
    prefix = "test" if split == "test" else "dev"
    return Path(root) / (task.xtreme_name or task.name) / f"{prefix}-{lang}.jsonl"


def write(root, task, lang, items, examples, split) -> None:
    """One JSON object ``{"label": <choice index>}`` per line (``<root>/xcopa/test-<lang>.jsonl``)."""
    atomic_write_text(leaderboard_file(root, task, lang, split),
                      "".join(json.dumps({"label": int(x)}) + "\n" for x in items))


class MultipleChoice(Format):
    """Multiple choice: one score per choice, accuracy; each task's template (``Task.format_options``)."""

    name = "multiple_choice"
    metrics = ("accuracy",)
    load = staticmethod(load)
    featurize = staticmethod(featurize)
    model_class = staticmethod(model_class)
    collator = staticmethod(collator)
    dev_metrics = staticmethod(dev_metrics)
    predict = staticmethod(predict)
    gold = staticmethod(gold)
    score = staticmethod(score)
    write = staticmethod(write)

    def settings(self, task) -> dict:
        """The multiple-choice protocol stored with every result (the pooler's origin: the result's
        ``protocol.pooler_init``, which depends on the checkpoint the run starts from)."""
        name = template_name(task)
        return {"template": name, "template_text": TEMPLATE_TEXT[name], "num_choices": num_choices(task),
                "labels": list(task.labels), "encoding": "one (first, second) segment pair per choice",
                "truncation": "longest_first (the tokenizer's truncation=True) to max_seq_length",
                "padding": "dynamic: a batch is padded to [batch, choices, longest]",
                "head": "AutoModelForMultipleChoice: one score per choice from the pooler (dense + tanh over <s>)"}
