"""Checkpoint selection: which model of a training run is the run's model (a preset's per-task ``selection``).

Three rules, one per reference protocol:

``best_dev``  the checkpoint with the best English-dev metric, evaluated at the preset's cadence and once more at
              the end, strictly better only (ties go to the earliest): XTREME's classification and tagging
              (``run_classify.py`` / ``run_tag.py`` with ``--save_only_best_checkpoint`` / ``--eval_all_checkpoints``)
              and jiant's target tasks (``metarunner.py``, best state dict loaded at the end).
``final``     the model after the last training step. There is no evaluation during training (nothing dev-based
              can influence the model); the scripts evaluate the final model once on English dev afterwards and
              record it (``final_dev``), never to choose. XTREME's QA (``train_qa.sh --save_steps -1``), XCOPA
              (``run_xcopa.py``: no evaluation strategy) and Mewsli-X; jiant's intermediate phase
              (``eval_every_steps 0``).
``step:N``    the model after optimizer step N of the full schedule: training stops there (the learning-rate
              schedule is still the whole run's, so the model equals that run's checkpoint-N). XTREME-R's LAReQA
              evaluated a hand-picked checkpoint-10000 (XLM-R); the kit offers the rule, the presets use ``final``.

Checkpoints are still saved at the preset's cadence under every rule: they are what an interrupted run resumes
from (``xstilts.training.trainer``), not candidates for selection under ``final`` / ``step:N``.

A selection metric may be derived from the format's dev metrics (``DERIVED_METRICS``): jiant selects QA on
``(EM + F1) / 2`` (``jiant/tasks/evaluate/core.py:762`` at daa5a25), the kit's ``em_f1_mean``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

RULES = ("best_dev", "final", "step:N")
_STEP_RE = re.compile(r"^step:(\d+)$")

# name -> (the format metrics it is computed from, how): selection metrics that no format computes itself
DERIVED_METRICS = {
    "em_f1_mean": (("exact_match", "f1"), "(exact match + F1) / 2, jiant's SQuAD-style major metric"),
}


@dataclass(frozen=True)
class Selection:
    """A run's checkpoint rule. ``metric``: what ``best_dev`` compares (the task's metric or a derived one)."""

    rule: str = "best_dev"  # best_dev | final | step
    step: int | None = None  # rule "step": the optimizer step whose model is the run's
    metric: str = ""

    @classmethod
    def parse(cls, text: str, metric: str) -> "Selection":
        """``best_dev`` | ``final`` | ``step:N`` (N >= 1); anything else is a UsageError naming the choices."""
        text = str(text).strip()
        if text in ("best_dev", "final"):
            return cls(text, None, metric)
        m = _STEP_RE.match(text)
        if m and int(m.group(1)) >= 1:
            return cls("step", int(m.group(1)), metric)
        raise UsageError(f"selection {text!r}: valid choices are {', '.join(RULES)} (N a whole number of optimizer "
                         f"steps >= 1)")

    @property
    def name(self) -> str:
        return f"step:{self.step}" if self.rule == "step" else self.rule

    @property
    def uses_dev(self) -> bool:
        """Whether English dev chooses the model (and so is evaluated during training)."""
        return self.rule == "best_dev"

    def describe(self, cadence: str | int | None = None) -> str:
        if self.rule == "best_dev":
            every = f"every {cadence} steps" if isinstance(cadence, int) else f"every {cadence or 'epoch'}"
            return (f"the checkpoint with the best English-dev {self.metric}, evaluated {every} and at the end "
                    f"(strictly better only: ties go to the earliest)")
        if self.rule == "final":
            return ("the model after the last training step; no evaluation during training; English dev evaluated "
                    "once after training (recorded as final_dev, not used to choose)")
        return (f"the model after optimizer step {self.step} of the full schedule (training stops there); English "
                f"dev evaluated once afterwards (recorded as final_dev, not used to choose)")


def configure(training_args, selection: Selection, has_dev: bool) -> None:
    """Set the Trainer's selection arguments: best_dev loads the best checkpoint at the end (and so needs the
    evaluation cadence); final and step:N never evaluate during training and keep the last model."""
    if selection.uses_dev and has_dev:
        training_args.load_best_model_at_end = True
        training_args.metric_for_best_model = selection.metric
        training_args.greater_is_better = True
    else:
        training_args.load_best_model_at_end = False
        training_args.metric_for_best_model = None
        training_args.eval_strategy = "no"


def with_derived_metric(compute_metrics, metric: str):
    """``compute_metrics`` that also returns ``metric`` when it is a derived one (``DERIVED_METRICS``)."""
    if metric not in DERIVED_METRICS or compute_metrics is None:
        return compute_metrics
    parts, _ = DERIVED_METRICS[metric]

    def wrapped(eval_pred):
        out = dict(compute_metrics(eval_pred))
        if all(p in out for p in parts):
            out[metric] = sum(float(out[p]) for p in parts) / len(parts)
        return out

    return wrapped


def callbacks(selection: Selection) -> list:
    """The Trainer callbacks a rule needs (step:N: stop after step N)."""
    return [stop_at_step_callback(selection.step)] if selection.rule == "step" else []


def stop_at_step_callback(step: int):
    from transformers import TrainerCallback

    class StopAtStep(TrainerCallback):
        """Stops training after optimizer step ``step``; the schedule stays the full run's."""

        def on_train_begin(self, args, state, control, **kwargs):
            if state.max_steps < step:
                raise UsageError(f"selection step:{step}: the run trains only {state.max_steps} optimizer steps; "
                                 f"choose a step <= {state.max_steps} or another rule (final, best_dev)")

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                control.should_training_stop = True
            return control

    return StopAtStep()


def record(trainer, selection: Selection, cadence=None) -> dict:
    """What the result stores under ``selection`` (before the scripts add the language, split and final_dev)."""
    state = trainer.state
    history = [{"step": h["step"], "epoch": h.get("epoch"), **{k: v for k, v in h.items() if k.startswith("eval_")}}
               for h in state.log_history if any(k.startswith("eval_") for k in h)]
    best = Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None
    return {
        "rule": selection.name,
        "description": selection.describe(cadence),
        "split": "English dev" if selection.uses_dev else None,
        "metric": trainer.args.metric_for_best_model if selection.uses_dev else None,
        "best_checkpoint": best if selection.uses_dev else None,
        "best_metric": state.best_metric if selection.uses_dev else None,
        "global_step": state.global_step,
        "evaluations": history,
    }


def final_dev(eval_metrics: dict) -> dict:
    """The ``final_dev`` record (``final`` / ``step:N``): a ``trainer.evaluate`` output without its timings."""
    return {k[len("eval_"):]: v for k, v in eval_metrics.items()
            if k.startswith("eval_") and "runtime" not in k and "per_second" not in k}
