"""The Trainer harness shared by phase 2 and phase 3.

* checkpoint selection on the English dev split only (``load_best_model_at_end``), logged;
* resume from the last Trainer checkpoint in ``<output_dir>/trainer`` when a run was interrupted;
* evaluation of every language in one pass: one length-sorted dataset, one model load;
* cleanup of intermediate Trainer checkpoints once the run's outputs are written.
"""

from __future__ import annotations

import logging
import shutil
import signal
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

TRAINER_SUBDIR = "trainer"


def trainer_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / TRAINER_SUBDIR


def last_checkpoint(output_dir: str | Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    d = trainer_dir(output_dir)
    return get_last_checkpoint(str(d)) if d.is_dir() else None


_PREEMPTION = {"requested": False}


def install_preemption_handler() -> None:
    """On SIGTERM (what SLURM and most schedulers send before a kill), finish the current step,
    save a Trainer checkpoint and stop; the script then exits with code 143 without results."""

    def handler(signum, frame):
        _PREEMPTION["requested"] = True
        logger.warning("SIGTERM received: saving a checkpoint after this step, then exiting (re-run to resume)")

    signal.signal(signal.SIGTERM, handler)


def _preemption_callback():
    from transformers import TrainerCallback

    class PreemptionCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if _PREEMPTION["requested"]:
                control.should_save = True
                control.should_training_stop = True
            return control

    return PreemptionCallback()


def _trainer_class():
    import torch
    from transformers import Trainer

    class XTrainer(Trainer):
        """Trainer whose evaluation order is the dataset's order.

        transformers 5 applies ``train_sampling_strategy="group_by_length"`` to evaluation too (a
        shuffled LengthGroupedSampler), which breaks the row alignment of ``predict`` outputs (and of the
        dev metrics of formats that map predictions back to features: span QA, tagging). We sort
        evaluation sets by length ourselves, so evaluation is always sequential here, with several
        processes too: accelerate then hands out consecutive batches round-robin and
        ``gather_for_metrics`` puts them back in dataset order (dropping the padding of the last round).
        """

        def _get_eval_sampler(self, eval_dataset):
            if eval_dataset is None:
                return super()._get_eval_sampler(eval_dataset)
            return torch.utils.data.SequentialSampler(eval_dataset)

    return XTrainer


def build_trainer(model, tokenizer, train_ds, dev_ds, training_args, kit_args, *, compute_metrics, metric: str,
                  collator, output_dir: str | Path):
    from transformers import EarlyStoppingCallback

    Trainer = _trainer_class()

    training_args.output_dir = str(trainer_dir(output_dir))
    training_args.load_best_model_at_end = dev_ds is not None
    training_args.metric_for_best_model = metric
    training_args.greater_is_better = True
    if dev_ds is None:
        training_args.eval_strategy = "no"
    callbacks = [_preemption_callback()]
    if kit_args.early_stopping_patience and dev_ds is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=kit_args.early_stopping_patience))
    return Trainer(model=model, args=training_args, train_dataset=train_ds, eval_dataset=dev_ds,
                   processing_class=tokenizer, data_collator=collator, compute_metrics=compute_metrics,
                   callbacks=callbacks)


def train(trainer, output_dir: str | Path, *, resume: bool = True) -> dict:
    """Train (resuming if a checkpoint exists); returns train metrics plus the selection record."""
    from .errors import Preempted

    ckpt = last_checkpoint(output_dir) if resume else None
    if ckpt:
        logger.info("resuming from %s", ckpt)
    install_preemption_handler()
    t0 = time.time()
    out = trainer.train(resume_from_checkpoint=ckpt)
    if _PREEMPTION["requested"]:
        raise Preempted(f"stopped at step {trainer.state.global_step}; checkpoint saved in {trainer_dir(output_dir)}")
    metrics = dict(out.metrics)
    metrics["wall_seconds"] = time.time() - t0
    metrics["resumed_from"] = ckpt
    state = trainer.state
    history = [{"step": h["step"], "epoch": h.get("epoch"), **{k: v for k, v in h.items() if k.startswith("eval_")}}
               for h in state.log_history if any(k.startswith("eval_") for k in h)]
    metrics["selection"] = {
        "split": "English dev",
        "metric": trainer.args.metric_for_best_model,
        "best_checkpoint": Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None,
        "best_metric": state.best_metric,
        "global_step": state.global_step,
        "evaluations": history,
    }
    logger.info("selected %s (English dev %s = %s)", metrics["selection"]["best_checkpoint"],
                trainer.args.metric_for_best_model, state.best_metric)
    return metrics


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


def cleanup(output_dir: str | Path) -> None:
    d = trainer_dir(output_dir)
    if d.is_dir():
        shutil.rmtree(d)
        logger.info("removed intermediate Trainer checkpoints in %s", d)
