"""Offline reproduction of the official XTREME / XTREME-R leaderboard scorer.

    python -m xstilts.score --prediction_folder P --label_folder L --xtreme_version {xtreme,xtreme-r}

prints one JSON object ``{"overall": ..., "detailed": ...}`` whose content equals the ``overall_scores``
and ``detailed_scores`` returned by ``evaluate.py`` of google-research/xtreme (commit 838c13b,
Apache-2.0) for the same folders. This module reimplements that script (its task -> language and group
tables derived from the task declarations, same readers, same metric per task, same averaging and groups); it
does not copy its code.
QA metrics live in :mod:`xstilts.scoring.qa` (SQuAD v1.1 / MLQA, see there for their sources), the
tagging F1 is seqeval's, called exactly as evaluate.py calls it (list of sentences, default mode).

Where evaluate.py would crash or assert, this module raises :class:`xstilts.errors.UsageError` with a
message naming the file or value (exit code 2 on the command line): a missing language file, a count
mismatch between prediction and label files, an unknown task folder, an unknown version, an empty or
unreadable file. Where evaluate.py silently skips a task (its folder is missing on either side) the
task is skipped too, with a warning on stderr naming it. Known deviations, all documented:

* ``all_task``: evaluate.py sums the task scores in ``set`` order (varies with PYTHONHASHSEED), so its
  last bit can vary run to run; here the sum runs in table order.
* XTREME-R ``lareqa`` has an empty language list and no metric in evaluate.py: its entry is ``{}``,
  and when every XTREME-R task folder is present evaluate.py dies with ``KeyError('avg_metric')``
  computing ``all_task``; the official script never produces an XTREME-R ``all_task``. Here, when the
  ``lareqa`` folders hold no ``test-<lang>.json`` file, the entry stays ``{}`` and ``all_task`` is left
  out with a warning (what evaluate.py can report). **Extension:** when they do, LAReQA is scored on the
  11 XQuAD-R languages (``LAREQA_LANGS``) with mAP@20 as LAReQA's own evaluation computes it
  (google-research/xtreme ``third_party/utils_lareqa.py`` ``mean_avg_prec_at_k``, k=20; see
  :func:`lareqa_map20`), and ``all_task`` is evaluate.py's formula over all 10 XTREME-R tasks: the
  unweighted mean of the task scores (``avg_metric``; QA = (EM + F1) / 2). The groups are evaluate.py's
  ``XTREME_R_GROUP2TASK`` unchanged (its ``retrieval`` group is Tatoeba + Mewsli-X, without LAReQA).
  docs/xtreme_r.md has the details.
* An unanswered QA question scores 0 (as in the official script); the official one-line-per-question
  notice is replaced by one warning per file.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import warnings
from typing import Any, Mapping, Sequence

from ..errors import UsageError, choices_error, exits_on_usage_error
from ..tasks import benchmarks
from ..tasks.dual_encoder import LAREQA
from .qa import mlqa_scores, squad_scores

# ---------------------------------------------------------------------------------- tables (as data)
# evaluate.py's task -> language and group -> task tables, derived from the task declarations
# (xstilts.tasks.benchmarks; each task's languages in xstilts.tasks.languages)

XTREME_GROUP2TASK = benchmarks.group2task("xtreme")
XTREME_R_GROUP2TASK = benchmarks.group2task("xtreme-r")
XTREME_TASK2LANGS = benchmarks.task2langs("xtreme")
XTREME_R_TASK2LANGS = benchmarks.task2langs("xtreme-r")

# Not in evaluate.py (its ``lareqa`` list is empty): the XQuAD-R languages of the LAReQA release, each
# ``lareqa/test-<lang>.json`` holding that language's questions ranked against the pool of ALL languages.
LAREQA_LANGS = list(LAREQA.languages)

VERSIONS = {
    "xtreme": (XTREME_TASK2LANGS, XTREME_GROUP2TASK),
    "xtreme-r": (XTREME_R_TASK2LANGS, XTREME_R_GROUP2TASK),
}
ALL_TASKS = tuple(dict.fromkeys([*XTREME_TASK2LANGS, *XTREME_R_TASK2LANGS]))

# evaluate.py checks the example counts of every task except these (set-based or id-keyed scoring)
_NO_COUNT_CHECK = ("bucc2018", "lareqa", "mewslix", "mlqa", "tydiqa", "xquad")
MEWSLIX_TOP_K = 20
LAREQA_TOP_K = 20


def file_suffix(task: str, group2task: Mapping[str, Sequence[str]] = XTREME_R_GROUP2TASK) -> str:
    """evaluate.py ``get_suffix``: json for QA and Mewsli-X, jsonl for XCOPA, tsv for the rest (and json for
    LAReQA, whose files evaluate.py never reads)."""
    if task in group2task["qa"] or task in ("mewslix", "lareqa"):
        return "json"
    if task in group2task.get("multi_choice", ()):
        return "jsonl"
    return "tsv"


# --------------------------------------------------------------------------------------------- readers

def _open(path: str):
    """The file's text as a stream (newlines as ``open`` gives them); a file that is not UTF-8, as the XTREME
    files are, is a UsageError naming the first bad byte and its line."""
    import io

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UsageError(f"{path} is not UTF-8 text: byte 0x{e.object[e.start]:02x} at offset {e.start} (line "
                         f"{line}) cannot be decoded; prediction and label files are UTF-8 (convert it, e.g. "
                         f"iconv -f latin1 -t utf-8)") from None
    return io.StringIO(text.replace("\r\n", "\n").replace("\r", "\n"))  # open()'s universal newlines


def read_tag(path: str) -> list[list[str]]:
    """One tag per line, a blank line ends a sentence (consecutive blank lines give empty sentences)."""
    sentences, sentence = [], []
    with _open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                sentence.append(line)
            else:
                sentences.append(sentence)
                sentence = []
    if sentence:
        sentences.append(sentence)
    return sentences


def read_label(path: str) -> list[str]:
    with _open(path) as f:
        return [line.strip() for line in f]


def read_json(path: str):
    """QA / Mewsli-X files: the ``data`` list if the object has that key, else the whole object."""
    with _open(path) as f:
        try:
            obj = json.load(f)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path} is not valid JSON: {e}") from None
    if isinstance(obj, Mapping) and "data" in obj:
        return obj["data"]
    return obj


def read_xcopa(path: str) -> list:
    labels = []
    with _open(path) as f:
        for n, row in enumerate(f, 1):
            try:
                labels.append(json.loads(row)["label"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise UsageError(f"{path} line {n}: expected a JSON object with a 'label' field ({e!r})") from None
    return labels


READER_FUNCTION = {
    "pawsx": read_label, "xnli": read_label, "panx": read_tag, "udpos": read_tag,
    "bucc2018": read_label, "tatoeba": read_label, "xquad": read_json, "mewslix": read_json, "lareqa": read_json,
    "mlqa": read_json, "tydiqa": read_json, "xcopa": read_xcopa,
}


# --------------------------------------------------------------------------------------------- metrics

def accuracy(labels: Sequence, predictions: Sequence) -> dict:
    if not predictions:
        raise UsageError("cannot compute accuracy over zero predictions")
    correct = sum(int(p == l) for p, l in zip(predictions, labels))
    return {"accuracy": float(correct) / len(predictions) * 100}


def seqeval_f1(labels: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]) -> dict:
    """seqeval F1/precision/recall (default, non-strict mode) over the list of sentences, x100.

    Called like evaluate.py: on lists of sentences, which seqeval flattens with an ``O`` between sentences.
    Chunks come from the first character of each tag (B/I/E/S/O) and the rest as the type, so POS tags
    are treated as entities and runs of identical POS tags merge into one chunk.
    """
    from seqeval.metrics import f1_score, precision_score, recall_score

    labels = [list(s) for s in labels]
    predictions = [list(s) for s in predictions]
    if not labels:
        raise UsageError("cannot compute seqeval F1 over zero sentences")
    with warnings.catch_warnings():
        # POS tags are not IOB tags, and an empty prediction has undefined precision (seqeval then uses 0,
        # as evaluate.py reports): both are expected here, so seqeval's warnings are not repeated per file.
        warnings.filterwarnings("ignore", message=r".* seems not to be NE tag\.")
        warnings.filterwarnings("ignore", message=r"(Precision|Recall|F-score)( and F-score)? (is|are) ill-defined")
        f1 = f1_score(labels, predictions)
        precision = precision_score(labels, predictions)
        recall = recall_score(labels, predictions)
    return {"f1": float(f1) * 100, "precision": float(precision) * 100, "recall": float(recall) * 100}


def bucc_f1(labels: Sequence, predictions: Sequence) -> dict:
    """Set-based P/R/F1 over (source id, target id) pairs; lines are split on tabs."""
    def pairs(rows):
        return {tuple(r.split("\t")) if isinstance(r, str) else tuple(r) for r in rows}

    gold, pred = pairs(labels), pairs(predictions)
    ncorrect = len(gold & pred)
    if ncorrect > 0:
        precision = ncorrect / len(pred)
        recall = ncorrect / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
    else:
        precision = recall = f1 = 0
    return {"f1": f1 * 100, "precision": precision * 100, "recall": recall * 100}


def mewslix_map20(labels: Mapping[str, Sequence[str]], predictions: Mapping[str, Sequence[str]],
                  k: int = MEWSLIX_TOP_K) -> dict:
    """Mean reciprocal rank of the gold entity in the top-k predictions (reported as ``map@20``), x100.

    Gold: ``{example id: [entity id]}`` (first element, stripped); a missing prediction scores 0.
    """
    ranks = []
    for example_id, gold_list in labels.items():
        gold = gold_list[0].strip()
        rr = 0.0
        for rank, p in enumerate(list(predictions.get(example_id, []))[:k], start=1):
            if p == gold:
                rr = 1.0 / rank
                break
        ranks.append(rr)
    mrr = sum(ranks) / len(ranks) if ranks else 0.0
    return {"map@20": mrr * 100}


def average_precision_at_k(targets, ranked: Sequence[str], k: int = LAREQA_TOP_K) -> float:
    """AP@k of one ranking: precision at the rank of each relevant hit within the first k (a repeated
    candidate counts once), summed and divided by min(number of relevant candidates, k)."""
    targets = set(targets)
    if not targets:
        raise ValueError("no relevant candidate")
    top = list(ranked)[:k]
    hits, total, seen = 0, 0.0, set()
    for rank, cand in enumerate(top, start=1):
        if cand in targets and cand not in seen:
            hits += 1
            total += hits / rank
        seen.add(cand)
    return total / min(len(targets), k)


def lareqa_map20(labels: Mapping[str, Sequence[str]], predictions: Mapping[str, Sequence[str]],
                 k: int = LAREQA_TOP_K) -> dict:
    """Mean AP@20 over the labelled questions (``map@20``), x100, as LAReQA's evaluation computes it.

    Gold: ``{question id: [every relevant candidate id]}`` (in LAReQA: the answer sentence in each language);
    predictions: ``{question id: [candidate ids, best first]}``; a question without a prediction scores 0.
    """
    aps = []
    for qid, relevant in labels.items():
        try:
            aps.append(average_precision_at_k(relevant, predictions.get(qid, []), k))
        except ValueError:
            raise UsageError(f"lareqa: question {qid!r} has no relevant candidate in the labels") from None
    return {"map@20": 100 * sum(aps) / len(aps) if aps else 0.0}


def _qa(task: str, labels, predictions, lang: str | None, source: str = "") -> dict:
    if not isinstance(predictions, Mapping):
        raise UsageError(f"{source or 'QA predictions'}: expected a JSON object {{question id: answer}}")
    try:
        if task == "mlqa":
            return mlqa_scores(predictions, labels, lang, source=source)
        return squad_scores(predictions, labels, source=source)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except (KeyError, TypeError) as e:
        raise UsageError(f"{source or 'QA labels'}: not SQuAD-format data ({e!r})") from None


def score_task(task: str, predictions: Any, labels: Any, lang: str | None = None, *,
               prediction_name: str = "predictions", label_name: str = "labels") -> dict:
    """The metrics evaluate.py computes for one task and language, as a dict of percentages.

    Inputs are what the readers return: lists of labels (pawsx, xnli, tatoeba, xcopa), lists of tag
    sentences (udpos, panx), tab-separated id pairs or tuples (bucc2018), ``{id: answer}`` with
    SQuAD-format gold data or ``{id: [answers]}`` (xquad, mlqa, tydiqa; mlqa needs ``lang``),
    ``{id: [entity ids]}`` (mewslix), ``{question id: [candidate ids]}`` (lareqa, gold: every relevant id).
    """
    if task not in READER_FUNCTION:
        raise choices_error("task", task, READER_FUNCTION)
    if task not in _NO_COUNT_CHECK:
        if len(predictions) != len(labels):
            unit = "sentences" if task in ("udpos", "panx") else "lines"
            raise UsageError(f"number of {unit} differs in task {task}: {prediction_name} has "
                             f"{len(predictions)}, {label_name} has {len(labels)}")
        if not labels:
            raise UsageError(f"task {task}: {prediction_name} and {label_name} are empty; nothing to score")
    if task in ("pawsx", "xnli", "tatoeba", "xcopa"):
        return accuracy(labels, predictions)
    if task in ("udpos", "panx"):
        for i, (p, g) in enumerate(zip(predictions, labels)):
            if len(p) != len(g):
                raise UsageError(f"sentence {i + 1} of task {task} has {len(p)} tags in {prediction_name} "
                                 f"but {len(g)} in {label_name}")
        return seqeval_f1(labels, predictions)
    if task == "bucc2018":
        return bucc_f1(labels, predictions)
    if task == "mewslix":
        if not isinstance(labels, Mapping) or not isinstance(predictions, Mapping):
            raise UsageError(f"mewslix: {label_name} and {prediction_name} must be JSON objects keyed by example id")
        return mewslix_map20(labels, predictions)
    if task == "lareqa":
        if not isinstance(labels, Mapping) or not isinstance(predictions, Mapping):
            raise UsageError(f"lareqa: {label_name} and {prediction_name} must be JSON objects keyed by question id")
        if not labels:
            raise UsageError(f"lareqa: {label_name} has no question; nothing to score")
        return lareqa_map20(labels, predictions)
    if task == "mlqa" and lang is None:
        raise UsageError("mlqa needs the answer language (lang)")
    source = prediction_name if prediction_name != "predictions" else ""
    return _qa(task, labels, predictions, lang, source)


def task_metric(task: str, scores: Mapping[str, float]) -> float:
    """The single number evaluate.py reports for a task (its ``avg_metric`` rule) from one result dict:
    (EM + F1) / 2 for QA, else F1, accuracy or map@20."""
    if task in ("xquad", "mlqa", "tydiqa"):
        return (scores["exact_match"] + scores["f1"]) / 2
    for key in ("f1", "accuracy", "map@20"):
        if key in scores:
            return scores[key]
    raise KeyError(f"no reportable metric in {sorted(scores)} for task {task}")


def evaluate_one_task(prediction_file: str, label_file: str, task: str, language: str | None = None) -> dict:
    predictions = READER_FUNCTION[task](prediction_file)
    labels = READER_FUNCTION[task](label_file)
    return score_task(task, predictions, labels, language,
                      prediction_name=prediction_file, label_name=label_file)


# ---------------------------------------------------------------------------------------- folders

def _task_folders(folder: str, which: str) -> list[str]:
    """Task subfolders (hidden ``.*`` and ``__*`` folders are ignored); any other unknown name is an error."""
    if not os.path.isdir(folder):
        raise UsageError(f"{which} folder {folder!r} is not a directory")
    names = sorted(n for n in os.listdir(folder)
                   if os.path.isdir(os.path.join(folder, n)) and not n.startswith((".", "__")))
    for name in names:
        if name not in ALL_TASKS:
            raise UsageError(f"unknown task folder {name!r} in {which} folder {folder}; valid task folders: "
                             f"{', '.join(ALL_TASKS)}")
    return names


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def _has_language_files(prediction_folder: str, label_folder: str, task: str) -> bool:
    return any(n.startswith("test-") and n.endswith(".json")
               for folder in (prediction_folder, label_folder) for n in os.listdir(os.path.join(folder, task)))


def score_folders(prediction_folder: str, label_folder: str, xtreme_version: str = "xtreme",
                  verbose: bool = False, partial: bool = False) -> dict:
    """``{"overall": overall_scores, "detailed": detailed_scores}`` as evaluate.py computes them.

    ``partial=True`` (not the official behaviour) scores each task on the languages that have both files
    instead of refusing the folder; the result then carries ``"partial": {task: [missing languages]}`` and
    its averages are NOT comparable with published numbers. For partial mirrors (test fixtures, pilots)."""
    if xtreme_version not in VERSIONS:
        raise choices_error("xtreme_version", xtreme_version, VERSIONS)
    task2langs, group2task = VERSIONS[xtreme_version]
    prediction_tasks = _task_folders(prediction_folder, "prediction")
    label_tasks = _task_folders(label_folder, "label")

    other = [t for t in dict.fromkeys(prediction_tasks + label_tasks) if t not in task2langs]
    if other:
        _warn(f"ignoring task folder(s) not in {xtreme_version}: {', '.join(other)}")

    detailed: dict[str, dict] = {}
    missing = []
    partial_langs: dict[str, list[str]] = {}
    for task, langs in task2langs.items():
        if task == "lareqa" and not langs and task in prediction_tasks and task in label_tasks \
                and _has_language_files(prediction_folder, label_folder, task):
            langs = LAREQA_LANGS  # extension: evaluate.py lists LAReQA without languages (module docstring)
        if task not in prediction_tasks or task not in label_tasks:
            sides = [s for s, present in (("predictions", task in prediction_tasks),
                                          ("labels", task in label_tasks)) if not present]
            missing.append(f"{task} (no folder in {' and '.join(sides)})")
            continue
        suffix = file_suffix(task, group2task)
        files = [(lg, os.path.join(prediction_folder, task, f"test-{lg}.{suffix}"),
                  os.path.join(label_folder, task, f"test-{lg}.{suffix}")) for lg in langs]
        absent = [p for _, pf, lf in files for p in (pf, lf) if not os.path.isfile(p)]
        if absent and partial:
            skipped = [lg for lg, pf, lf in files if not (os.path.isfile(pf) and os.path.isfile(lf))]
            files = [(lg, pf, lf) for lg, pf, lf in files if lg not in skipped]
            partial_langs[task] = skipped
            if not files:
                missing.append(f"{task} (no language with both files)")
                continue
        elif absent:
            shown = ", ".join(absent[:10]) + (f", ... ({len(absent)} in all)" if len(absent) > 10 else "")
            raise UsageError(f"task {task} ({xtreme_version}) needs test-<lang>.{suffix} for every language "
                             f"({', '.join(langs)}); missing: {shown}")
        score: dict[str, Any] = collections.defaultdict(dict)
        for lg, pf, lf in files:
            for metric, value in evaluate_one_task(pf, lf, task, language=lg).items():
                score[metric][lg] = value
        averages = {f"avg_{m}": sum(v.values()) / len(v) for m, v in score.items()}
        score.update(averages)
        if task in group2task["qa"]:
            score["avg_metric"] = (score["avg_exact_match"] + score["avg_f1"]) / 2
        elif "avg_f1" in score:
            score["avg_metric"] = score["avg_f1"]
        elif "avg_accuracy" in score:
            score["avg_metric"] = score["avg_accuracy"]
        elif "avg_map@20" in score:
            score["avg_metric"] = score["avg_map@20"]
        detailed[task] = dict(score)
        if verbose:
            print(f"- Evaluate {task}:\t" + ", ".join(f"{k}={v:.1f}" for k, v in score.items()
                                                   if k.startswith("avg")), file=sys.stderr)
        if not langs:
            _warn(f"task {task} has no languages in the official {xtreme_version} table: it is listed with "
                  f"no scores, as evaluate.py does")
    if missing:
        _warn(f"not scored, task folder missing (as evaluate.py, the task is skipped): {'; '.join(missing)}")

    overall: dict[str, float] = {}
    available = set(detailed)
    if available == set(task2langs):
        unscored = [t for t in task2langs if "avg_metric" not in detailed[t]]
        if unscored:
            _warn(f"all_task not computed: task(s) {', '.join(unscored)} have no metric; the official "
                  f"evaluate.py raises KeyError('avg_metric') here")
        else:
            overall["all_task"] = sum(detailed[t]["avg_metric"] for t in task2langs) / len(task2langs)
    else:
        _warn(f"all_task not computed: it needs all {len(task2langs)} {xtreme_version} tasks")
    for group, tasks in group2task.items():
        if not set(tasks) - available:
            overall[group] = sum(detailed[t]["avg_metric"] for t in tasks) / len(tasks)
    if partial_langs:
        _warn("PARTIAL scores (languages missing, not comparable with published numbers): " +
              "; ".join(f"{t}: {len(v)} missing" for t, v in partial_langs.items() if v))
        return {"overall": overall, "detailed": detailed, "partial": partial_langs}
    return {"overall": overall, "detailed": detailed}


# -------------------------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m xstilts.score",
        description="Score XTREME / XTREME-R prediction folders offline, exactly like the official evaluate.py.")
    p.add_argument("--prediction_folder", required=True, help="folder with <task>/test-<lang>.<ext> predictions")
    p.add_argument("--label_folder", required=True, help="folder with <task>/test-<lang>.<ext> gold labels")
    p.add_argument("--xtreme_version", default="xtreme", help="xtreme (default) or xtreme-r")
    p.add_argument("--output_file", default=None,
                   help="also write the official evaluate.py report (group scores merged with detailed scores)")
    p.add_argument("--verbose", action="store_true", help="print per-task averages to stderr")
    p.add_argument("--partial", action="store_true",
                   help="NOT official: score the languages present instead of refusing a folder with missing "
                        "language files (results carry 'partial' and are not comparable with published numbers)")
    return p


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = score_folders(args.prediction_folder, args.label_folder, args.xtreme_version, args.verbose,
                           partial=args.partial)
    if args.output_file:
        merged = dict(result["overall"])
        merged.update(result["detailed"])
        with open(args.output_file, "w", encoding="utf-8") as f:
            json.dump(merged, f, indent=2)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
