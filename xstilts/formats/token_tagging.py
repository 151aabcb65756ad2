"""Token tagging: UD-POS and PAN-X (target tasks, XTREME's seqeval F1) and CCG supertagging (intermediate).

Canonical examples: ``{tokens: list[str], tags: list[str], lang}``. Tags are kept as names, so a tag the
model has no label for (a CCG supertag unseen in training) still counts as an error in the metrics.

Labels: the task's ``labels`` (UD-POS, PAN-X: the Hub's ClassLabel names, checked on load), or, for a
task declared without labels (CCG, ~1,363 supertags), every tag of the train split as loaded, most
frequent first (ties by name). That list is the model's id -> tag order; the format instance of the run keeps
it (nothing is shared between runs) and it is recorded with the train source's description in the run's meta /
results (``TokenTagging.describe_source``).

Features: the label sits on the first sub-word of each word, -100 on the others (XTREME's ``run_tag.py``).
A sentence longer than ``max_length`` sub-words is split on word boundaries into pieces of at most
``max_length - <special tokens>`` sub-words (the split budget), as XTREME's preprocessing does; each piece is one feature
carrying ``example_id`` and ``word_index`` (for each position: the word whose first sub-word it is, or
-1), so predictions are stitched back to exactly one tag per gold token. Training uses every piece too,
so no label is cut off. A word the tokenizer turns into nothing (zero-width characters) is replaced by
the unknown token, as ``run_tag.py`` does, so it too gets a prediction. Word boundaries come from the
fast tokenizer's ``word_ids`` (``is_split_into_words=True``).

``sep_token_extra`` (``--sep_token_extra``, the ``xtreme`` preset's UD-POS and PAN-X): every input ends with two
``</s>`` and the split budget is one sub-word smaller (128 - 3 = 125), as XTREME's ``run_tag.py:353`` /
``utils_tag.py:171-176`` and ``utils_preprocess.py:135`` (google-research/xtreme 838c13b) do for XLM-R; without it
one ``</s>`` and ``max_length - 2`` (the tokenizer's own special tokens). Recorded in ``format_settings``.

Metrics: F1 / precision / recall computed by ``xstilts.scoring.xtreme`` (the leaderboard scorer's seqeval call,
with its POS quirk: the first letter of a POS tag is read as the chunk prefix) plus token accuracy. The task's
metric (UD-POS, PAN-X: F1; CCG: token accuracy) selects the checkpoint on English dev.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..data.sources import check_columns, language_groups, load_source
from ..errors import UsageError
from ..files import atomic_write_text
from ..scoring.predictions import leaderboard_file
from ..scoring.xtreme import score_task, seqeval_f1
from .base import Format, predict_sorted

IGNORE = -100


def labels_from_tags(tag_lists) -> tuple[str, ...]:
    counts = Counter(t for tags in tag_lists for t in tags)
    return tuple(sorted(counts, key=lambda t: (-counts[t], t)))


# ----------------------------------------------------------------------------------------------- loading

def _tag_names(ds, column: str, task, where: str):
    """-> f(list of values) -> list of tag names; checks ClassLabel names / string values against the task."""
    from datasets import ClassLabel

    feat = ds.features[column]
    inner = getattr(feat, "feature", None)
    if isinstance(inner, ClassLabel):
        names = tuple(inner.names)
        if task.labels and names != tuple(task.labels):
            raise UsageError(f"{where}: tag names of field {column!r} are {list(names)}, but the registry "
                             f"expects {list(task.labels)}")
        return lambda values: [names[int(v)] for v in values]
    if task.labels:
        valid = set(task.labels)

        def checked(values):
            for v in values:
                if v not in valid:
                    raise UsageError(f"{where}: tag {v!r} in field {column!r} is not one of {list(task.labels)}")
            return list(values)

        return checked
    return lambda values: [str(v) for v in values]


def load(task, source, data, languages=None, max_samples=None):
    """Rows -> ``{tokens, tags, lang}`` (one dataset for all languages, grouped by language in order)."""
    from datasets import Features, List, Value, concatenate_datasets

    features = Features({"tokens": List(Value("string")), "tags": List(Value("string")), "lang": Value("string")})
    if languages is None and "{code}" in source.config:
        languages = [task.dev_language]
    parts = []
    for lang, code, src in language_groups(task, source, languages):
        where = f"{src.hub_id}/{src.config_for(code)}[{src.split}]"
        ds = load_source(src, data, code)
        check_columns(ds, src, code)
        tok_col, tag_col = src.columns["tokens"], src.columns["tags"]
        to_names = _tag_names(ds, tag_col, task, where)
        fixed_lang = lang or task.dev_language

        def convert(batch, tok_col=tok_col, tag_col=tag_col, to_names=to_names, fixed_lang=fixed_lang,
                    where=where):
            tokens = [list(t) for t in batch[tok_col]]
            tags = [to_names(t) for t in batch[tag_col]]
            for w, t in zip(tokens, tags):
                if len(w) != len(t):
                    raise UsageError(f"{where}: a row has {len(w)} tokens but {len(t)} tags")
            return {"tokens": tokens, "tags": tags, "lang": [fixed_lang] * len(tokens)}

        ds = ds.map(convert, batched=True, remove_columns=ds.column_names, features=features, desc="canonical rows")
        parts.append(ds)
    ds = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    if max_samples is not None and max_samples < len(ds):
        ds = ds.select(range(max_samples))
    return ds


# ------------------------------------------------------------------------------------------- featurizing

def split_pieces(counts: list[int], budget: int) -> list[tuple[int, int]]:
    """Greedy word ranges [start, end) whose sub-word counts sum to at most ``budget`` (a single longer word
    is a piece of its own and gets truncated, keeping its first sub-word)."""
    pieces, start, total = [], 0, 0
    for i, c in enumerate(counts):
        if i > start and total + c > budget:
            pieces.append((start, i))
            start, total = i, 0
        total += c
    if counts:
        pieces.append((start, len(counts)))
    return pieces


def split_budget(tokenizer, max_length: int, sep_token_extra: bool = False) -> int:
    """Sub-words of one piece: ``max_length`` less the special tokens (and the extra ``</s>``)."""
    return max_length - tokenizer.num_special_tokens_to_add() - int(bool(sep_token_extra))


def featurize(examples, tokenizer, max_length: int, names, sep_token_extra: bool = False) -> object:
    """Examples -> one feature per piece: input_ids, attention_mask, labels (first sub-word only; ``names`` in id
    order), length, example_id, word_index, lang. No padding (the collator pads each batch). ``sep_token_extra``:
    one more ``</s>`` at the end of every input (XTREME's XLM-R input), the budget one smaller."""
    label_ids = {name: i for i, name in enumerate(names)}
    budget = split_budget(tokenizer, max_length, sep_token_extra)
    if budget < 1:
        raise UsageError(f"max_seq_length {max_length} leaves no room for a word next to the special tokens")
    if sep_token_extra and tokenizer.sep_token_id is None:
        raise UsageError("--sep_token_extra: the tokenizer has no separator token to repeat")
    extra = [tokenizer.sep_token_id] if sep_token_extra else []
    unk = tokenizer.unk_token

    def fn(batch, indices):
        sentences = [list(t) for t in batch["tokens"]]
        first = tokenizer([s if s else [""] for s in sentences], is_split_into_words=True, add_special_tokens=False)
        piece_words, meta = [], []
        for b, words in enumerate(sentences):
            if not words:
                continue
            counts = [0] * len(words)
            for w in first.word_ids(b):
                if w is not None:
                    counts[w] += 1
            words = [unk if c == 0 else w for w, c in zip(words, counts)]
            counts = [max(c, 1) for c in counts]
            for start, end in split_pieces(counts, budget):
                piece_words.append(words[start:end])
                meta.append((b, start, end))
        out = {"input_ids": [], "attention_mask": [], "labels": [], "length": [], "example_id": [],
               "word_index": [], "lang": []}
        if not piece_words:
            return out
        enc = tokenizer(piece_words, is_split_into_words=True, truncation=True, max_length=max_length - len(extra))
        for k, (b, start, end) in enumerate(meta):
            tags = batch["tags"][b]
            labs, widx, prev = [], [], None
            for w in enc.word_ids(k):
                if w is None or w == prev:
                    labs.append(IGNORE)
                    widx.append(-1)
                else:
                    labs.append(label_ids.get(tags[start + w], IGNORE))
                    widx.append(start + w)
                prev = w
            if [w for w in widx if w >= 0] != list(range(start, end)):
                raise RuntimeError(f"sentence {indices[b]}: words {start}..{end - 1} did not all keep their first "
                                   f"sub-word in a piece of max_length {max_length} (tokenizer not word-separable?)")
            ids = enc["input_ids"][k] + extra
            out["input_ids"].append(ids)
            out["attention_mask"].append(enc["attention_mask"][k] + [1] * len(extra))
            out["labels"].append(labs + [IGNORE] * len(extra))
            out["length"].append(len(ids))
            out["example_id"].append(indices[b])
            out["word_index"].append(widx + [-1] * len(extra))
            out["lang"].append(batch["lang"][b])
        return out

    return examples.map(fn, batched=True, with_indices=True, remove_columns=examples.column_names,
                        desc="tokenize + split long sentences")


def model_class():
    from transformers import AutoModelForTokenClassification

    return AutoModelForTokenClassification


def collator(tokenizer):
    from transformers import DataCollatorForTokenClassification

    return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE)


# ------------------------------------------------------------------------------------ predictions, metrics

def stitch(pred_ids, example_ids, word_index, lengths, names) -> list[list[str]]:
    """Per-piece predicted ids -> one tag per word of every example; a word left without one is an error."""
    out: list[list] = [[None] * n for n in lengths]
    for row, ex, widx in zip(pred_ids, example_ids, word_index):
        widx = np.asarray(widx)
        pos = np.nonzero(widx >= 0)[0]
        target = out[ex]
        for p, w in zip(pos.tolist(), widx[pos].tolist()):
            target[w] = names[int(row[p])]
    for ex, tags in enumerate(out):
        if any(t is None for t in tags):
            raise RuntimeError(f"example {ex}: {sum(t is None for t in tags)} of {len(tags)} tokens got no prediction")
    return out


def _argmax(logits, labels=None):
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def dev_metrics(task, examples, features, names):
    """compute_metrics for the Trainer's English-dev evaluation: the sentences are stitched back together
    and scored like every language (F1 as the leaderboard scorer computes it, plus accuracy)."""
    golds = gold(task, examples)
    lengths = [len(g) for g in golds]
    example_ids = list(features["example_id"])
    word_index = list(features["word_index"])

    def compute_metrics(eval_pred):
        logits = eval_pred.predictions
        if isinstance(logits, tuple):
            logits = logits[0]
        logits = np.asarray(logits)
        pred_ids = logits.argmax(axis=-1) if logits.ndim == 3 else logits
        preds = stitch(pred_ids, example_ids, word_index, lengths, names)
        s = score(task, preds, golds)
        return {k: s[k] for k in ("f1", "precision", "recall", "accuracy")}

    return compute_metrics


def predict(trainer, task, examples, features, names):
    """One tag list per example (examples' order); one length-sorted pass over every piece of every language.
    Logits are reduced to arg-max ids per batch, so memory does not grow with the label set."""
    feats = features.remove_columns(["labels"]) if "labels" in features.column_names else features
    previous = trainer.preprocess_logits_for_metrics
    trainer.preprocess_logits_for_metrics = _argmax
    try:
        pred_ids, timing = predict_sorted(trainer, feats, np.asarray)
    finally:
        trainer.preprocess_logits_for_metrics = previous
    preds = stitch(pred_ids, list(features["example_id"]), list(features["word_index"]),
                   [len(t) for t in examples["tokens"]], names)
    return preds, timing


def gold(task, examples) -> list[list[str]]:
    return [list(t) for t in list(examples["tags"])]


def token_accuracy(preds, golds) -> tuple[float, int]:
    n = correct = 0
    for p, g in zip(preds, golds):
        if len(p) != len(g):
            raise UsageError(f"a sentence has {len(p)} predicted tags but {len(g)} gold tags")
        n += len(g)
        correct += sum(int(a == b) for a, b in zip(p, g))
    return (correct / n if n else 0.0), n


def score(task, preds, golds, lang=None) -> dict:
    """F1 / precision / recall (the leaderboard scorer's code: ``xstilts.scoring.xtreme.score_task`` for
    udpos/panx, its seqeval call for other tagging tasks) and token accuracy, as fractions; ``n`` sentences."""
    preds = [list(p) for p in preds]
    golds = [list(g) for g in golds]
    if task.xtreme_name:
        s = score_task(task.xtreme_name, preds, golds)
    else:
        if len(preds) != len(golds):
            raise UsageError(f"{len(preds)} predicted sentences but {len(golds)} gold sentences")
        s = seqeval_f1(golds, preds)
    acc, n_tokens = token_accuracy(preds, golds)
    return {"f1": s["f1"] / 100.0, "precision": s["precision"] / 100.0, "recall": s["recall"] / 100.0,
            "accuracy": acc, "n": len(golds), "n_tokens": n_tokens}


def leaderboard_text(items) -> str:
    """One tag per line, a blank line after every sentence (what ``xstilts.scoring.xtreme.read_tag`` reads back)."""
    parts = []
    for sent in items:
        for t in sent:
            t = str(t)
            if not t or t != t.strip() or "\n" in t:
                raise ValueError(f"tag {t!r} cannot be written one per line")
        parts.append("".join(f"{t}\n" for t in sent) + "\n")
    return "".join(parts)


def write(root, task, lang, items, examples, split) -> None:
    """``<root>/<task>/test-<lang>.tsv``: one tag per line, a blank line between sentences."""
    atomic_write_text(leaderboard_file(root, task, lang, split), leaderboard_text(items))


class TokenTagging(Format):
    """Token tagging; the label set of a task declared without one is read from its train split when that is
    loaded, and kept by this instance (the run's)."""

    name = "token_tagging"
    metrics = ("f1", "precision", "recall", "accuracy")
    model_class = staticmethod(model_class)
    collator = staticmethod(collator)
    gold = staticmethod(gold)
    score = staticmethod(score)
    write = staticmethod(write)

    def __init__(self, sep_token_extra: bool = False):
        self._read: dict[tuple[str, str, str], tuple[str, ...]] = {}  # (hub_id, config, split) -> tag names
        self.sep_token_extra = bool(sep_token_extra)
        self._budget: int | None = None  # the split budget, known once a tokenizer featurized

    @classmethod
    def from_args(cls, data_args=None) -> "TokenTagging":
        return cls(sep_token_extra=bool(getattr(data_args, "sep_token_extra", None) or False))

    @property
    def options(self) -> dict:
        return {"sep_token_extra": self.sep_token_extra}

    @staticmethod
    def _key(source) -> tuple[str, str, str]:
        return (source.hub_id, source.config, source.split)

    def labels_read_from(self, source) -> tuple[str, ...] | None:
        """The label list read from ``source`` (a train split) by this instance, or None."""
        return self._read.get(self._key(source))

    def labels(self, task) -> tuple[str, ...]:
        """The task's tag names in model-id order (declared, or read from its train split)."""
        if task.labels:
            return tuple(task.labels)
        got = self.labels_read_from(task.train) if task.train is not None else None
        if got is None:
            raise RuntimeError(f"task {task.name} reads its labels from its train split: load it first "
                               f"(load(task, task.train, ...))")
        return got

    def load(self, task, source, data, languages=None, max_samples=None):
        ds = load(task, source, data, languages, max_samples)
        if source is task.train and not task.labels:
            self._read[self._key(source)] = labels_from_tags(list(ds["tags"]))
        return ds

    def featurize(self, examples, tokenizer, max_length: int, task=None, *, train: bool = False):
        self._budget = split_budget(tokenizer, max_length, self.sep_token_extra)
        return featurize(examples, tokenizer, max_length, self.labels(task), self.sep_token_extra)

    def model_kwargs(self, task) -> dict:
        names = self.labels(task)
        return {"num_labels": len(names), "id2label": dict(enumerate(names)),
                "label2id": {l: i for i, l in enumerate(names)}}

    def dev_metrics(self, task, examples, features):
        return dev_metrics(task, examples, features, self.labels(task))

    def predict(self, trainer, task, examples, features):
        return predict(trainer, task, examples, features, self.labels(task))

    def settings(self, task) -> dict:
        """The tagging protocol (stored with every result): labels and their order, alignment, split budget,
        separators, the unknown token for words without sub-words."""
        declared = bool(task.labels)
        labels = self.labels(task) if declared or (task.train is not None and self.labels_read_from(task.train)) \
            else None
        return {
            "labels": list(labels) if labels is not None else None,
            "labels_from": ("the task declaration (the Hub dataset's ClassLabel names, checked on load)" if declared
                            else "the train split as loaded (most frequent first, ties by name)"),
            "labels_sorted": labels is not None and list(labels) == sorted(labels),  # XTREME's labels.txt order
            "label_alignment": "first sub-word of each word (-100 on the others)",
            "long_sentences": "split on word boundaries into pieces of at most split_budget sub-words (a single longer "
                              "word is a piece of its own, truncated: its first sub-word keeps the label)",
            "split_budget": self._budget,
            "split_budget_rule": "max_seq_length - special tokens" + (" - 1 (the extra </s>)" if self.sep_token_extra
                                                                      else ""),
            "sep_tokens": "<s> ... </s> </s>" if self.sep_token_extra else "<s> ... </s>",
            "sep_token_extra": self.sep_token_extra,
            "unk_for_empty": "a word the tokenizer turns into no sub-word is replaced by the unknown token",
        }

    def describe_source(self, source) -> dict:
        labels = self.labels_read_from(source)
        if labels is None:
            return {}
        return {"num_labels": len(labels), "labels": list(labels)}  # the model's id -> tag order
