"""Extractive span QA: SQuAD 1.1 / 2.0 (intermediate); XQuAD, MLQA, TyDiQA-GoldP (target).

Follows the Hugging Face example ``run_qa.py`` + ``utils_qa.py`` (question first, context truncated
``only_second`` in windows of ``max_seq_length`` tokens overlapping by ``doc_stride``; fast-tokenizer offset
mapping; n-best post-processing), with these choices:

* Answers are cut from the ORIGINAL context with the character offsets of the chosen start and end tokens.
  There is no slow-tokenizer ``get_final_text`` step (it re-tokenises the answer and breaks Chinese: XTREME
  issue #38), so an answer is always a substring of the context, in any script.
* Questions longer than ``max_query_length`` tokens are cut to that length (XTREME's ``run_squad.py`` does
  the same, 64 by default), so every window keeps room for ``doc_stride`` context tokens.
* Candidate spans: the ``n_best_size`` highest start and end logits of each window (positions past the window's
  own length excluded: transformers pads logits across batches with -100), both inside the context, end >=
  start, at most ``max_answer_length`` tokens; score = start + end logit; the best over the windows of the
  example wins.
* SQuAD 2.0 (``version_2_with_negative`` tasks, ``xstilts.tasks.qa.VERSION_2_WITH_NEGATIVE``): the null score
  is the smallest ``start[0] + end[0]`` (the ``<s>`` token) over the windows; the prediction is "" when
  ``null - best span > null_score_diff_threshold``, as in utils_qa. Its metric is the SQuAD v2.0 one: an
  unanswerable question (no gold answer) counts as correct only for the prediction "", reported overall and
  split into ``HasAns_*`` / ``NoAns_*``.
* Training windows that do not contain the answer (and unanswerable questions) point at ``<s>`` (position 0
  for start and end), as in run_qa.py.
* Answer offsets are checked at load for the train and dev sources (:func:`check_offsets`): the google/xtreme
  QA configs strip ``context`` and answer ``text`` but keep ``answer_start`` (HF ``xtreme.py@8803c182e6^:637-643``),
  so a context with leading whitespace shifts every span (``XQuAD.ar``: off by one). Each gold answer with
  ``context[answer_start:answer_start + len(text)] != text`` is repaired to the nearest occurrence of its text
  within ``REPAIR_WINDOW`` characters, or else removed; an example left with no answer (it had some) is dropped.
  The counts are logged and stored with the source in the result (``answer_offsets``). Test data is not changed
  (it is scored by answer text).
* Evaluation windows also carry start/end positions, so the Trainer's English-dev evaluation gets label ids
  and calls ``compute_metrics`` (it only does when labels exist); predictions on other languages switch
  ``compute_metrics`` off, as the example's ``QuestionAnsweringTrainer`` does.

Settings (``DataArguments`` fields, also in the presets): ``doc_stride``, ``max_query_length``,
``max_answer_length``, ``n_best_size``, ``null_score_diff_threshold``. A run's :class:`SpanQA` instance holds
them (``SpanQA.from_args(data_args)``, validated at the start of the run); the module's functions take them as
arguments, defaulting to ``OPTIONS``.

Metrics are the leaderboard scorer's (``xstilts.scoring.xtreme.score_task``: SQuAD v1.1 for XQuAD/TyDiQA, MLQA's
language-aware normalisation for MLQA), on the same ``{id: answer}`` predictions and SQuAD-format gold data
that ``write`` puts in ``<root>/<task>/test-<lang>.json``, so ``results.json`` and ``python -m xstilts.score``
agree to the last digit.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..data.sources import check_columns, combine_languages, language_groups, load_source
from ..errors import UsageError
from ..files import atomic_write_text
from ..scoring.qa import normalize_answer, squad_scores
from ..scoring.xtreme import score_task
from ..tasks.qa import LANG_FROM_ID_PREFIX, VERSION_2_WITH_NEGATIVE
from ..tasks.types import Concat
from .base import Format, predict_sorted
from .pair_classification import proportional_shares

logger = logging.getLogger(__name__)

# name -> default (HF run_qa.py / XTREME run_squad.py defaults)
OPTIONS = {"doc_stride": 128, "max_query_length": 64, "max_answer_length": 30, "n_best_size": 20,
           "null_score_diff_threshold": 0.0}

CANONICAL = ("id", "title", "context", "question", "answer_text", "answer_start", "lang")


def configure(data_args=None, **values) -> dict:
    """The QA settings from ``data_args`` (its fields named in OPTIONS; None = the default) and keyword values,
    validated (together with ``data_args.max_seq_length``). Unset settings take their defaults."""
    new = dict(OPTIONS)
    for name in OPTIONS:
        v = getattr(data_args, name, None) if data_args is not None else None
        if v is not None:
            new[name] = v
    new.update({k: v for k, v in values.items() if v is not None})
    unknown = sorted(set(new) - set(OPTIONS))
    if unknown:
        raise UsageError(f"unknown span QA setting(s) {', '.join(unknown)}; valid: {', '.join(OPTIONS)}")
    for name in ("doc_stride", "max_query_length", "max_answer_length", "n_best_size"):
        if int(new[name]) != new[name] or new[name] < 1:
            raise UsageError(f"--{name} must be a positive integer, got {new[name]!r}")
        new[name] = int(new[name])
    max_len = getattr(data_args, "max_seq_length", None) if data_args is not None else None
    if max_len is not None:
        check_window(max_len, new["doc_stride"], new["max_query_length"])
    return new


def check_window(max_length: int, doc_stride: int, max_query_length: int, n_special: int = 4) -> None:
    """Every window must hold more than ``doc_stride`` context tokens next to the longest question."""
    room = max_length - max_query_length - n_special
    if doc_stride >= room:
        raise UsageError(
            f"--doc_stride {doc_stride} is too large for --max_seq_length {max_length} with --max_query_length "
            f"{max_query_length}: a window holds at most {room} context tokens ({max_length} - {max_query_length} - "
            f"{n_special} special), and consecutive windows must overlap by fewer tokens than that; lower "
            f"--doc_stride or --max_query_length, or raise --max_seq_length")


def version_2_with_negative(task) -> bool:
    return task is not None and task.name in VERSION_2_WITH_NEGATIVE


# --------------------------------------------------------------------------------------------- loading

def _qa_features():
    from datasets import Features, List, Value

    s = Value("string")
    return Features({"id": s, "title": s, "context": s, "question": s, "answer_text": List(s),
                     "answer_start": List(Value("int64")), "lang": s})


def _prefix_language(task, lang_column: str):
    """f(row value) -> kit language code, for sources whose language is encoded in a column."""
    if lang_column == LANG_FROM_ID_PREFIX:
        by_prefix = {task.code(lang): lang for lang in task.all_languages}
        return lambda v: by_prefix.get(str(v).split("-", 1)[0])
    return lambda v: v


def load(task, source, data, languages=None, max_samples=None):
    """Hub rows -> canonical ``{id, title, context, question, answer_text, answer_start, lang}``.

    A source that mixes languages in one config (``lang_column``; TyDiQA: the id prefix) is filtered to
    ``languages``, or to the task's English (``dev_language``) when none are given: training data is English.
    Every requested language must have rows (else a UsageError naming the source). A ``Concat`` (translated
    training data: SQuAD and its translations) is loaded part by part into one dataset; with ``max_samples``
    every part keeps the same share (proportional, from the start of each part)."""
    if isinstance(source, Concat):
        from datasets import concatenate_datasets

        dss = [load(task, part, data, languages) for part in source.parts]
        if max_samples is not None:
            dss = [d.select(range(k)) for d, k in zip(dss, proportional_shares([len(d) for d in dss], max_samples))]
        return concatenate_datasets(dss)
    features = _qa_features()
    parts = []
    for lang, code, src in language_groups(task, source, languages):
        where = f"{src.hub_id}/{src.config_for(code)}[{src.split}]"
        ds = load_source(src, data, code)
        check_columns(ds, src, code)
        cols = src.columns
        lang_of = _prefix_language(task, src.lang_column) if src.lang_column else None
        fixed_lang = lang or src.language or task.dev_language  # a translated training set names its language

        def convert(batch, cols=cols, lang_of=lang_of, fixed_lang=fixed_lang, lang_col=src.lang_column):
            n = len(batch[cols["id"]])
            answers = batch[cols["answers"]]
            return {
                "id": [str(x) for x in batch[cols["id"]]],
                "title": batch[cols["title"]] if "title" in cols else [""] * n,
                "context": batch[cols["context"]],
                # leading whitespace in a question only wastes window room (run_qa.py strips it too)
                "question": [q.lstrip() for q in batch[cols["question"]]],
                "answer_text": [list(a["text"]) for a in answers],
                "answer_start": [[int(s) for s in a["answer_start"]] for a in answers],
                "lang": [lang_of(v) for v in batch[lang_col]] if lang_of else [fixed_lang] * n,
            }

        ds = ds.map(convert, batched=True, remove_columns=ds.column_names, features=features)
        if src.lang_column:
            wanted = set(languages) if languages is not None else {task.dev_language}
            n = len(ds)
            ds = ds.filter(lambda v: v in wanted, input_columns="lang")
            logger.info("%s: kept %d of %d rows (languages %s, from %s)", where, len(ds), n,
                        ",".join(sorted(wanted)), "the id prefix" if lang_of else src.lang_column)
        parts.append(ds)
    return combine_languages(parts, task, f"{source.hub_id}/{source.config}[{source.split}]", languages, max_samples)


# ------------------------------------------------------------------------------------------ offsets
def _where(source) -> str:
    """A source for the log: ``hub_id/config[split]``, or its parts joined (a Concat: SQuAD translate-train-all)."""
    return " + ".join(f"{p.hub_id}/{p.config}[{p.split}]" for p in getattr(source, "parts", (source,)))



REPAIR_WINDOW = 64  # characters: how far from its answer_start an answer's text may be found and still repaired


def check_offsets(examples, where: str):
    """Check every gold answer of ``examples`` (canonical rows): (the examples with repaired offsets, answers whose
    text is not within ``REPAIR_WINDOW`` characters of ``answer_start`` removed, and examples left without any
    answer dropped; the counts). Unanswerable examples (no answer at all) are kept as they are."""
    counts = {"answers_checked": 0, "offset_ok": 0, "repaired": 0, "repair_shifts": {}, "not_found": 0,
              "examples_dropped": 0, "repair_window_chars": REPAIR_WINDOW}
    shifts, keep = Counter(), []
    starts_out, texts_out = [], []
    for context, texts, starts in zip(_column(examples, "context"), _column(examples, "answer_text"),
                                      _column(examples, "answer_start")):
        new_texts, new_starts = [], []
        for text, start in zip(texts, starts):
            counts["answers_checked"] += 1
            span = align_answer(context, text, start)
            if span is not None and span[0] == start:
                counts["offset_ok"] += 1
            elif span is not None and abs(span[0] - start) <= REPAIR_WINDOW:
                counts["repaired"] += 1
                shifts[span[0] - start] += 1
                start = span[0]
            else:
                counts["not_found"] += 1
                continue
            new_texts.append(text)
            new_starts.append(start)
        keep.append(bool(new_texts) or not texts)
        texts_out.append(new_texts)
        starts_out.append(new_starts)
    counts["repair_shifts"] = {str(k): v for k, v in sorted(shifts.items())}
    counts["examples_dropped"] = keep.count(False)
    if counts["repaired"] or counts["not_found"]:
        examples = examples.remove_columns(["answer_text", "answer_start"])
        examples = examples.add_column("answer_text", texts_out).add_column("answer_start", starts_out)
        examples = examples.cast(_qa_features())
        if counts["examples_dropped"]:
            examples = examples.select([i for i, k in enumerate(keep) if k])
        logger.warning("%s: answer offsets: %d of %d answers repaired (shift in characters: count %s), %d not "
                       "found within %d characters and removed; %d example(s) left without an answer dropped",
                       where, counts["repaired"], counts["answers_checked"], counts["repair_shifts"],
                       counts["not_found"], REPAIR_WINDOW, counts["examples_dropped"])
    else:
        logger.info("%s: answer offsets: all %d answers point at their text", where, counts["answers_checked"])
    return examples, counts


# ------------------------------------------------------------------------------------------ features

def align_answer(context: str, text: str, start: int) -> tuple[int, int] | None:
    """Character span of a gold answer: ``start`` when it points at ``text``, else the occurrence of ``text``
    nearest to ``start`` (None when the text is not in the context)."""
    if not text:
        return None
    if context[start:start + len(text)] == text:
        return start, start + len(text)
    hits, i = [], context.find(text)
    while i >= 0:
        hits.append(i)
        i = context.find(text, i + 1)
    if not hits:
        return None
    best = min(hits, key=lambda h: (abs(h - start), h))
    return best, best + len(text)


def _truncate_questions(tokenizer, questions: list[str], max_query_length: int) -> list[str]:
    """Cut questions after their ``max_query_length``-th token (at the token's end offset)."""
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for q, offsets in zip(questions, enc["offset_mapping"]):
        out.append(q if len(offsets) <= max_query_length else q[: offsets[max_query_length - 1][1]])
    return out


def _token_span(offsets, seq_ids, start_char: int, end_char: int) -> tuple[int, int] | None:
    """Token positions of a character span inside one window (None when the window does not contain it)."""
    ctx = [k for k, s in enumerate(seq_ids) if s == 1]
    if not ctx:
        return None
    first, last = ctx[0], ctx[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None
    s = first
    while s <= last and offsets[s][0] <= start_char:
        s += 1
    e = last
    while e >= first and offsets[e][1] >= end_char:
        e -= 1
    return s - 1, e + 1


def featurize(examples, tokenizer, max_length: int, task=None, *, train: bool = False,
              doc_stride: int = OPTIONS["doc_stride"], max_query_length: int = OPTIONS["max_query_length"]):
    """Examples -> windows: input_ids, attention_mask, start/end_positions, length, lang, and (evaluation)
    ``example_idx`` (row of ``examples``) + ``offset_start``/``offset_end`` (character offsets of context
    tokens, -1 for question and special tokens)."""
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError(f"span QA needs a fast tokenizer (offset mapping); {type(tokenizer).__name__} is not one")
    check_window(max_length, doc_stride, max_query_length, tokenizer.num_special_tokens_to_add(pair=True))
    cls_id = tokenizer.cls_token_id

    def fn(batch, indices):
        questions = _truncate_questions(tokenizer, batch["question"], max_query_length)
        enc = tokenizer(questions, batch["context"], truncation="only_second", max_length=max_length,
                        stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
        sample_map = enc.pop("overflow_to_sample_mapping")
        offset_mapping = enc.pop("offset_mapping")
        out = {"start_positions": [], "end_positions": [], "length": [], "lang": []}
        if not train:
            out.update({"example_idx": [], "offset_start": [], "offset_end": []})
        for i, offsets in enumerate(offset_mapping):
            j = sample_map[i]
            ids = enc["input_ids"][i]
            seq_ids = enc.sequence_ids(i)
            cls = ids.index(cls_id) if cls_id in ids else 0
            start_pos = end_pos = cls
            texts, starts = batch["answer_text"][j], batch["answer_start"][j]
            if texts:
                span = align_answer(batch["context"][j], texts[0], starts[0])
                if span is not None:
                    tok = _token_span(offsets, seq_ids, *span)
                    if tok is not None:
                        start_pos, end_pos = tok
            out["start_positions"].append(start_pos)
            out["end_positions"].append(end_pos)
            out["length"].append(len(ids))
            out["lang"].append(batch["lang"][j])
            if not train:
                out["example_idx"].append(indices[j])
                out["offset_start"].append([o[0] if s == 1 else -1 for o, s in zip(offsets, seq_ids)])
                out["offset_end"].append([o[1] if s == 1 else -1 for o, s in zip(offsets, seq_ids)])
        out["input_ids"] = enc["input_ids"]
        out["attention_mask"] = enc["attention_mask"]
        return out

    return examples.map(fn, batched=True, with_indices=True, remove_columns=examples.column_names,
                        desc="QA windows")


def model_class():
    from transformers import AutoModelForQuestionAnswering

    return AutoModelForQuestionAnswering


# ---------------------------------------------------------------------------------- post-processing

def _column(ds, name: str) -> list:
    """A column as a Python list, read through Arrow (``ds[name]`` is a lazy column in datasets 4+, and indexing
    it row by row is slow)."""
    return ds.with_format("arrow")[name].to_pylist()


def _top_k(x: np.ndarray, k: int) -> np.ndarray:
    """Per row, the indices of the ``k`` largest values, largest first (utils_qa: the ``n_best_size`` best)."""
    if k < x.shape[1]:
        idx = np.argpartition(-x, k - 1, axis=1)[:, :k]
    else:
        idx = np.broadcast_to(np.arange(x.shape[1]), x.shape).copy()
    order = np.argsort(-np.take_along_axis(x, idx, 1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1)


def _ragged(features, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (flat values, row starts with a final end), read through Arrow (no Python lists)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = features.with_format("arrow")[column]
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)
    values = arr.flatten().to_numpy(zero_copy_only=False)
    return values, np.concatenate([[0], np.cumsum(lengths)])


def postprocess(examples, features, start_logits, end_logits, *, n_best_size: int = OPTIONS["n_best_size"],
                max_answer_length: int = OPTIONS["max_answer_length"], version_2_with_negative: bool = False,
                null_score_diff_threshold: float = OPTIONS["null_score_diff_threshold"]) -> list[str]:
    """Window logits -> one answer string per example (in example order), cut from the original context.

    ``start_logits``/``end_logits``: (n_windows, width) in the windows' order; positions at or past a window's
    own length are ignored (they hold padding, e.g. the -100 transformers pads logits with across batches)."""
    n_best = int(n_best_size)
    max_answer = int(max_answer_length)
    threshold = float(null_score_diff_threshold)
    start_logits = np.asarray(start_logits, dtype=np.float32)
    end_logits = np.asarray(end_logits, dtype=np.float32)
    n_feat = len(features)
    if start_logits.shape[0] != n_feat or end_logits.shape[0] != n_feat:
        raise RuntimeError(f"got logits for {start_logits.shape[0]} windows but there are {n_feat} windows: "
                           f"predictions are not aligned with the features")
    ostart, rows = _ragged(features, "offset_start")
    oend, _ = _ragged(features, "offset_end")
    lengths = np.diff(rows)
    width = start_logits.shape[1]
    if n_feat and lengths.max() > width:
        raise RuntimeError(f"logits are {width} positions wide but a window has {lengths.max()} tokens")
    pos = np.arange(width)
    inside = pos[None, :] < lengths[:, None]
    s_log = np.where(inside, start_logits, -np.inf)
    e_log = np.where(inside, end_logits, -np.inf)
    # context tokens: character offsets present
    is_ctx = np.zeros((n_feat, width), dtype=bool)
    flat_rows = np.repeat(np.arange(n_feat), lengths)
    flat_pos = np.arange(len(ostart)) - np.repeat(rows[:-1], lengths)
    is_ctx[flat_rows, flat_pos] = ostart >= 0
    k = min(n_best, width)
    top_s, top_e = _top_k(s_log, k), _top_k(e_log, k)
    rr = np.arange(n_feat)[:, None]
    ss = np.take_along_axis(s_log, top_s, 1)
    es = np.take_along_axis(e_log, top_e, 1)
    score = ss[:, :, None] + es[:, None, :]
    si, ei = top_s[:, :, None], top_e[:, None, :]
    valid = (is_ctx[rr, top_s][:, :, None] & is_ctx[rr, top_e][:, None, :] & (ei >= si)
             & (ei - si + 1 <= max_answer) & np.isfinite(score))
    score = np.where(valid, score, -np.inf).reshape(n_feat, -1)
    best_flat = np.argmax(score, axis=1) if n_feat else np.zeros(0, dtype=np.int64)
    best_score = score[np.arange(n_feat), best_flat] if n_feat else np.zeros(0)
    best_s = top_s[np.arange(n_feat), best_flat // k] if n_feat else best_flat
    best_e = top_e[np.arange(n_feat), best_flat % k] if n_feat else best_flat
    null = start_logits[:, 0] + end_logits[:, 0] if n_feat else np.zeros(0)

    ex_idx = np.asarray(_column(features, "example_idx"), dtype=np.int64)
    n_ex = len(examples)
    contexts = _column(examples, "context")
    best_of = np.full(n_ex, -1, dtype=np.int64)  # window holding the example's best span
    best_val = np.full(n_ex, -np.inf)
    min_null = np.full(n_ex, np.inf)
    for f in range(n_feat):  # windows are few per example; scalar bookkeeping only
        e = ex_idx[f]
        if best_score[f] > best_val[e]:
            best_val[e], best_of[e] = best_score[f], f
        if null[f] < min_null[e]:
            min_null[e] = null[f]
    answers = []
    for e in range(n_ex):
        f = best_of[e]
        if f < 0 or not np.isfinite(best_val[e]):
            answers.append("")  # no valid span in any window (utils_qa would answer "empty")
            continue
        if version_2_with_negative and min_null[e] - best_val[e] > threshold:
            answers.append("")
            continue
        a = int(ostart[rows[f] + best_s[f]])
        b = int(oend[rows[f] + best_e[f]])
        answers.append(contexts[e][a:b])
    return answers


def _logits_pair(predictions):
    if isinstance(predictions, (tuple, list)):
        start, end = predictions[0], predictions[1]
    else:  # stacked (n, 2, width)
        start, end = predictions[:, 0], predictions[:, 1]
    return np.asarray(start), np.asarray(end)


def dev_metrics(task, examples, features, **post):
    """compute_metrics for the Trainer's English-dev evaluation (windows in ``features`` order); ``post``: the
    post-processing settings (n_best_size, max_answer_length, null_score_diff_threshold)."""
    golds = gold(task, examples)

    def compute_metrics(eval_pred):
        start, end = _logits_pair(eval_pred.predictions)
        preds = postprocess(examples, features, start, end, version_2_with_negative=version_2_with_negative(task),
                            **post)
        m = score(task, preds, golds, task.dev_language)
        return {k: v for k, v in m.items() if k != "n"}

    return compute_metrics


def predict(trainer, task, examples, features, **post):
    """One answer string per example (examples' order), from one length-sorted pass over all windows."""
    saved, trainer.compute_metrics = trainer.compute_metrics, None  # the dev metric does not apply here
    try:
        stacked, timing = predict_sorted(trainer, features, lambda p: np.stack(_logits_pair(p), axis=1))
    finally:
        trainer.compute_metrics = saved
    t0 = time.time()
    preds = postprocess(examples, features, stacked[:, 0], stacked[:, 1],
                        version_2_with_negative=version_2_with_negative(task), **post)
    timing = dict(timing, postprocess_seconds=time.time() - t0, n_windows=len(features))
    return preds, timing


# --------------------------------------------------------------------------------------------- gold

def gold(task, examples) -> list[dict]:
    """Per example: ``{"id", "answers": [{"text", "answer_start"}, ...]}`` (SQuAD-format qa entry)."""
    return [{"id": i, "answers": [{"text": t, "answer_start": int(s)} for t, s in zip(texts, starts)]}
            for i, texts, starts in zip(_column(examples, "id"), _column(examples, "answer_text"),
                                        _column(examples, "answer_start"))]


def squad_data(golds, examples=None) -> list[dict]:
    """SQuAD-format ``data`` (articles > paragraphs > qas) of gold items; with ``examples`` the real titles,
    contexts and questions, consecutive questions on the same context sharing one paragraph."""
    if examples is None:
        return [{"title": "", "paragraphs": [{"context": "", "qas": [dict(g) for g in golds]}]}]
    data: list[dict] = []
    for g, title, context, question in zip(golds, _column(examples, "title"), _column(examples, "context"),
                                           _column(examples, "question")):
        if not data or data[-1]["title"] != title:
            data.append({"title": title, "paragraphs": []})
        paras = data[-1]["paragraphs"]
        if not paras or paras[-1]["context"] != context:
            paras.append({"context": context, "qas": []})
        paras[-1]["qas"].append({"id": g["id"], "question": question, "answers": g["answers"]})
    return data


def prediction_map(preds, golds) -> dict[str, str]:
    return {g["id"]: p for p, g in zip(preds, golds)}


def squad_v2_scores(preds, golds) -> dict:
    """SQuAD v2.0 exact match / F1 in [0, 1] (official evaluate-v2.0.py semantics): gold answers that
    normalise to "" are dropped, a question left without gold answers is unanswerable and scores 1 only for
    a prediction that normalises to ""; F1 with an empty side is 1 if both are empty, else 0."""
    def f1(pred, gold):
        p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
        if not p or not g:
            return float(p == g)
        common = Counter(p) & Counter(g)
        same = sum(common.values())
        if same == 0:
            return 0.0
        prec, rec = same / len(p), same / len(g)
        return 2 * prec * rec / (prec + rec)

    rows = {"HasAns": [], "NoAns": []}
    for pred, g in zip(preds, golds):
        texts = [a["text"] for a in g["answers"] if normalize_answer(a["text"])]
        kind = "HasAns" if texts else "NoAns"
        texts = texts or [""]
        em = max(float(normalize_answer(pred) == normalize_answer(t)) for t in texts)
        rows[kind].append((em, max(f1(pred, t) for t in texts)))
    allrows = rows["HasAns"] + rows["NoAns"]
    if not allrows:
        raise UsageError("no questions to score")
    out = {"exact_match": sum(r[0] for r in allrows) / len(allrows), "f1": sum(r[1] for r in allrows) / len(allrows)}
    for kind, rs in rows.items():
        out[f"{kind}_total"] = len(rs)
        if rs:
            out[f"{kind}_exact_match"] = sum(r[0] for r in rs) / len(rs)
            out[f"{kind}_f1"] = sum(r[1] for r in rs) / len(rs)
    return out


def score(task, preds, golds, lang=None) -> dict:
    """Per-language EM/F1 in [0, 1]. XTREME tasks: ``xstilts.scoring.xtreme.score_task`` (the leaderboard scorer's code)
    on exactly what ``write`` puts in the prediction and label files; SQuAD 2.0: the v2.0 metric with the
    HasAns/NoAns split; SQuAD 1.1: the v1.1 metric."""
    n = len(golds)
    if version_2_with_negative(task):
        return dict(squad_v2_scores(preds, golds), n=n)
    if task.xtreme_name:
        s = score_task(task.xtreme_name, prediction_map(preds, golds), squad_data(golds), lang)
    else:
        s = squad_scores(prediction_map(preds, golds), squad_data(golds))
    return {"f1": s["f1"] / 100.0, "exact_match": s["exact_match"] / 100.0, "n": n}


# -------------------------------------------------------------------------------------------- write

def leaderboard_file(root, task, lang: str, split: str = "test") -> Path:
    prefix = "test" if split == "test" else "dev"
    return Path(root) / task.xtreme_name / f"{prefix}-{lang}.json"


def write(root, task, lang, items, examples, split) -> Path:
    """Predictions (answer strings): ``{id: answer}``; golds: SQuAD-format ``{"version", "data"}`` (what the
    scorer's label reader takes). Path: ``<root>/<task>/test-<lang>.json``."""
    items = list(items)
    if items and isinstance(items[0], dict):
        obj = {"version": f"xstilts {task.name} {lang} {split}", "data": squad_data(items, examples)}
    else:
        obj = {i: p for i, p in zip(_column(examples, "id"), items)}
    path = leaderboard_file(root, task, lang, split)
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False) + "\n")
    return path


class SpanQA(Format):
    """Extractive span QA; an instance holds its run's window and post-processing settings (``OPTIONS``)."""

    name = "span_qa"
    metrics = ("f1", "exact_match")
    model_class = staticmethod(model_class)
    gold = staticmethod(gold)
    score = staticmethod(score)
    write = staticmethod(write)

    def __init__(self, **settings):
        unknown = sorted(set(settings) - set(OPTIONS))
        if unknown:
            raise UsageError(f"unknown span QA setting(s) {', '.join(unknown)}; valid: {', '.join(OPTIONS)}")
        self._options = dict(OPTIONS, **settings)
        self._offsets: dict = {}  # id(source) -> check_offsets counts (train and dev sources; Source is unhashable)

    def load(self, task, source, data, languages=None, max_samples=None):
        """:func:`load`, then for the task's train and dev sources :func:`check_offsets` (counts kept for the
        record: ``describe_source``)."""
        examples = load(task, source, data, languages, max_samples)
        if source is not None and any(source is s for s in (task.train, task.dev)):
            examples, counts = check_offsets(examples, f"{task.name} {_where(source)}")
            self._offsets[id(source)] = counts
        return examples

    def describe_source(self, source) -> dict:
        counts = self._offsets.get(id(source))
        return {} if counts is None else {"answer_offsets": counts}

    @classmethod
    def from_args(cls, data_args=None) -> "SpanQA":
        return cls(**configure(data_args))

    @property
    def options(self) -> dict:
        return dict(self._options)

    def _post(self) -> dict:
        return {k: self._options[k] for k in ("n_best_size", "max_answer_length", "null_score_diff_threshold")}

    def featurize(self, examples, tokenizer, max_length: int, task=None, *, train: bool = False):
        return featurize(examples, tokenizer, max_length, task, train=train, doc_stride=self._options["doc_stride"],
                         max_query_length=self._options["max_query_length"])

    def dev_metrics(self, task, examples, features):
        return dev_metrics(task, examples, features, **self._post())

    def predict(self, trainer, task, examples, features):
        return predict(trainer, task, examples, features, **self._post())

    def settings(self, task) -> dict:
        return dict(self._options)
