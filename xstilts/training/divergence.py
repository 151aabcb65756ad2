"""Diverged runs: caught while training, judged at selection, recorded with the evidence.

A run is **diverged** when

* its training loss becomes non-finite (NaN or inf) at any optimizer step: training stops at that step (the
  weights are lost, nothing more can be learnt) and the checkpoint selected before it, if any, is what the run
  keeps (``reason: non_finite_loss``); or
* its English dev metric at checkpoint selection (the best evaluation of the run) is at most the task's chance
  level plus ``MARGIN`` (``reason: chance_dev``).

Chance is the task's own metric, computed by the format's own scorer, of the best *constant* answer on the
English dev set the run selects on (:func:`chance_level`):

* classification and multiple choice (accuracy): always the dev set's most frequent label, i.e. the majority-class
  rate (>= 1 / number of labels; the two agree on a balanced dev set). It is what a run that collapsed to one
  class scores, which 1 / number of labels would miss on an unbalanced set (QQP, SST-2);
* tagging (F1): every token tagged with its most frequent dev tag (entity F1 of all-O: 0);
* span QA (F1): the empty answer to every question (0 on SQuAD 1.1 and the XTREME QA sets; the unanswerable
  share on SQuAD 2.0);
* dual encoder (mAP@20): the mean of ``RANDOM_RANKINGS`` uniformly random rankings of the dev pool (seed 0);
* a multi-task phase 2 (the mean of the tasks' metrics): the mean of the tasks' chance levels.

``MARGIN`` is absolute on the metric's [0, 1] scale. A run that collapsed scores chance exactly; a run that
learnt anything at all clears chance by more than two points on any dev set of realistic size. The rule, the
chance level, how it was computed, the margin and the dev curve are stored with every trained result and
phase-2 checkpoint (``divergence``), diverged or not, so a reader can apply another margin.

Replacement runs (``make grid DIVERGED_RETRIES=N``): ``python -m xstilts.training.divergence needs-replacement
RESULT`` exits 0 when RESULT is a diverged result (Make then runs the replacement, ``run_target.py --replaces
RESULT``), 1 otherwise; the seed and folder of a replacement are ``xstilts.run.layout.replacement_seed`` /
``replacement_dir``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

MARGIN = 0.02  # absolute, on the metric's [0, 1] scale
RANDOM_RANKINGS = 10  # random rankings averaged for a dual encoder's chance level
NON_FINITE_LOSS, CHANCE_DEV = "non_finite_loss", "chance_dev"


# ----------------------------------------------------------------------------- non-finite loss, while training
class DivergenceWatch:
    """Watches every micro-batch loss of one Trainer (``XTrainer.training_step`` reports it); at the first
    non-finite one, training stops after that optimizer step, with no evaluation or checkpoint of the broken
    weights (``callback``), so the selection keeps what was selected before."""

    def __init__(self):
        self.first_step: int | None = None  # the optimizer step (1-based) whose loss was non-finite
        self.loss: str | None = None  # "nan", "inf" or "-inf"

    @property
    def non_finite(self) -> bool:
        return self.first_step is not None

    def observe_non_finite(self, step: int, loss: float) -> None:
        if self.first_step is None:
            self.first_step, self.loss = int(step), str(loss)
            logger.warning("training loss is %s at optimizer step %d: the run diverged; training stops after this "
                           "step (the checkpoint selected before it, if any, is kept)", self.loss, step)

    def record(self) -> dict:
        return {"first_non_finite_step": self.first_step, "loss": self.loss}

    def callback(self):
        return divergence_callback_class()(self)


@lru_cache(maxsize=1)
def divergence_callback_class():
    from transformers import TrainerCallback

    class DivergenceCallback(TrainerCallback):
        """Stops training once the watch saw a non-finite loss; cancels the evaluation and checkpoint of that
        step and of the epoch's end (the weights are no longer finite: they must never be selected). Runs after
        the Trainer's own flow callback, which sets them."""

        def __init__(self, watch: DivergenceWatch):
            self.watch = watch

        def _stop(self, control):
            if self.watch.non_finite:
                control.should_training_stop = True
                control.should_evaluate = False
                control.should_save = False
            return control

        def on_step_end(self, args, state, control, **kwargs):
            return self._stop(control)

        def on_epoch_end(self, args, state, control, **kwargs):
            return self._stop(control)

    return DivergenceCallback


# ----------------------------------------------------------------------------- chance
def chance_level(task, fmt, examples) -> tuple[float | None, str]:
    """(the chance level of ``task.metric`` on the English dev ``examples``, how it was computed); see the module
    docstring. None for a format without a rule (then only a non-finite loss marks a run diverged)."""
    metric = task.metric
    golds = fmt.gold(task, examples)
    if not golds:
        return None, "no English dev examples"
    if task.format in ("pair_classification", "multiple_choice"):
        counts = Counter(int(g) for g in golds if int(g) >= 0)
        label, count = counts.most_common(1)[0]
        value = fmt.score(task, [label] * len(golds), golds)[metric]
        name = task.labels[label] if task.labels and label < len(task.labels) else label
        return float(value), (f"{metric} of always answering the majority class of the English dev set "
                              f"({name!r}: {count} of {sum(counts.values())})")
    if task.format == "token_tagging":
        counts = Counter(t for g in golds for t in g)
        tag, count = counts.most_common(1)[0]
        value = fmt.score(task, [[tag] * len(g) for g in golds], golds)[metric]
        return float(value), (f"{metric} of tagging every English dev token {tag!r} (the most frequent tag: "
                              f"{count} of {sum(counts.values())} tokens)")
    if task.format == "span_qa":
        value = fmt.score(task, [""] * len(golds), golds, task.dev_language)[metric]
        return float(value), f"{metric} of the empty answer to every English dev question ({len(golds)})"
    if task.format == "dual_encoder":
        return _random_ranking_map(examples), (f"{metric} of a uniformly random ranking of the English dev pool "
                                               f"(mean of {RANDOM_RANKINGS} rankings, numpy seed 0)")
    return None, f"no chance rule for format {task.format!r}"


def _random_ranking_map(examples) -> float:
    import numpy as np

    from ..formats.dual_encoder import TOP_K, average_precisions  # on demand: torch stays out of the CLI below

    roles, ids, relevant = examples["role"][:], examples["id"][:], examples["relevant"][:]
    candidates = np.array([i for i, r in zip(ids, roles) if r == "candidate"], dtype=object)
    queries = [rel for rel, r in zip(relevant, roles) if r == "query"]
    if not len(candidates) or not queries:
        return 0.0
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(RANDOM_RANKINGS):
        rankings = [list(candidates[rng.permutation(len(candidates))[:TOP_K]]) for _ in queries]
        maps.append(float(np.mean(average_precisions(rankings, queries))))
    return float(np.mean(maps))


def mean_chance(parts: list[tuple[str, float | None, str]]) -> tuple[float | None, str]:
    """A multi-task selection metric's chance level (the mean of the tasks' metrics): the mean of theirs."""
    if any(v is None for _, v, _ in parts):
        return None, "; ".join(f"{n}: {how}" for n, _, how in parts)
    value = sum(v for _, v, _ in parts) / len(parts)
    return value, "mean of the tasks' chance levels: " + "; ".join(f"{n} {v:.4f} ({how})" for n, v, how in parts)


# ----------------------------------------------------------------------------- the record
def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def rule_text(metric: str, chance: float | None, margin: float = MARGIN) -> str:
    if chance is None:
        return "a non-finite training loss (NaN/inf) at any optimizer step (no chance level for this task)"
    if margin < 0:
        return ("a non-finite training loss (NaN/inf) at any optimizer step (the chance rule turned off: "
                f"--divergence_margin {margin:g})")
    return (f"English dev {metric} at checkpoint selection <= chance {chance:.4f} + margin {margin:g}, or a "
            f"non-finite training loss (NaN/inf) at any optimizer step")


def assess(metric: str, selection: dict, watch: dict | None, chance: float | None, chance_how: str, *,
           n_dev: int | None = None, margin: float = MARGIN) -> dict:
    """The ``divergence`` record of a run (the contract's format): whether it diverged, why, and the evidence.
    ``selection``: the run's selection record (``training.trainer.train``); ``watch``: its non-finite record."""
    watch = watch or {}
    dev_key = f"eval_{metric}"
    curve = [{"step": e.get("step"), "value": e.get(dev_key) if _finite(e.get(dev_key)) else str(e.get(dev_key))}
             for e in selection.get("evaluations") or [] if dev_key in e]
    best = dev_at_selection(selection, metric)
    dev_value = float(best) if _finite(best) else None
    reason = None
    if watch.get("first_non_finite_step") is not None:
        reason = NON_FINITE_LOSS
    elif chance is not None and margin >= 0 and (dev_value is None or dev_value <= chance + margin):
        reason = CHANCE_DEV
    evidence = {"chance_how": chance_how, "n_dev": n_dev, "dev_curve": curve,
                "selected_checkpoint": selection.get("best_checkpoint"),
                "optimizer_steps": selection.get("global_step")}
    if watch.get("first_non_finite_step") is not None:
        evidence["non_finite_loss"] = watch.get("loss")
        evidence["checkpoint_selected_before_it"] = bool(selection.get("best_checkpoint"))
    if best is not None and dev_value is None:
        evidence["dev_value_not_finite"] = str(best)
    record = {"diverged": reason is not None, "reason": reason, "rule": rule_text(metric, chance, margin),
              "metric": metric, "dev_value": dev_value, "chance": chance, "margin": margin,
              "first_non_finite_step": watch.get("first_non_finite_step"), "evidence": evidence}
    if reason == CHANCE_DEV:
        logger.warning("the run diverged: English dev %s at selection %s <= chance %.4f + margin %g (%s)", metric,
                       dev_value, chance, margin, chance_how)
    return record


def dev_at_selection(selection: dict, metric: str):
    """The English dev value of the run's model: the best checkpoint's under ``best_dev``; under ``final`` /
    ``step:N`` (xstilts.training.selection) the value evaluated once after training (``final_dev``), if any."""
    if selection.get("rule", "best_dev") == "best_dev":
        return selection.get("best_metric")
    return (selection.get("final_dev") or {}).get(metric)


def has_model(selection: dict, non_finite: dict | None) -> bool:
    """Whether the run ended with a model worth evaluating. A non-finite loss stops training: under ``best_dev``
    the checkpoint selected before it (if any) is the model; under ``final`` / ``step:N`` the last model is the
    broken one, so there is none."""
    if (non_finite or {}).get("first_non_finite_step") is None:
        return True
    return selection.get("rule", "best_dev") == "best_dev" and bool(selection.get("best_checkpoint"))


def assess_run(task, fmt, dev_examples, train_metrics: dict, margin: float = MARGIN) -> dict:
    """``assess`` for one task's run (phase 2 or 3): chance from its English dev examples."""
    chance, how = chance_level(task, fmt, dev_examples)
    return assess(task.metric, train_metrics["selection"], train_metrics.get("non_finite"), chance, how,
                  n_dev=len(dev_examples), margin=margin)


def unscored(languages: list[str], metric: str) -> dict:
    """The per-language scores of a run whose loss became non-finite before any checkpoint was selected: there
    is no model to evaluate, so every value is null (never a number computed from broken weights)."""
    return {lang: {metric: None, "n": 0} for lang in languages}


def is_diverged(record: dict | None) -> bool:
    return bool(isinstance(record, dict) and (record.get("divergence") or {}).get("diverged"))


def needs_replacement(path: str | Path) -> bool:
    """Whether ``path`` is a result whose run diverged (a replacement is due); an absent file needs none (the
    attempt it would replace was itself not needed)."""
    try:
        return is_diverged(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "needs-replacement":
        print("usage: python -m xstilts.training.divergence needs-replacement RESULT   (exit 0: RESULT diverged)",
              file=sys.stderr)
        return 2
    if needs_replacement(argv[1]):
        print(f"{argv[1]} diverged: running its replacement")
        return 0
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
