"""The Trainer harness shared by phase 2, phase 3 and multi-task training.

* checkpoint selection by the run's rule (``xstilts.training.selection``: best English dev, the final model, or a
  given step), logged and recorded;
* resume from the last *complete* Trainer checkpoint in ``<output_dir>/trainer`` when a run was interrupted,
  exactly: the continued run trains on the same batches with the same random numbers and selects the same
  checkpoint as an uninterrupted one (see ``train``);
* evaluation of every language in one pass: one length-sorted dataset, one model load;
* cleanup of intermediate Trainer checkpoints once the run's outputs are written.

Why resuming is exact here (transformers 5 alone is exact only from a checkpoint at an epoch boundary):

* Data order. The Trainer's ``LengthGroupedSampler`` draws each epoch's shuffle from the global torch random
  state at the moment the epoch starts. Resuming in the middle of epoch k, the Trainer skips the batches already
  trained but restores the random state only afterwards, so epoch k was shuffled from the fresh process's state
  (which equals epoch 0's: mid-epoch resumes in epoch 0 happened to be exact, later ones trained on other
  batches). Here every epoch's order comes from its own generator seeded with (seed, epoch), for both kit
  sampling strategies (``train_sampling_strategy``): ``group_by_length`` (``EpochSeededLengthGroupedSampler``)
  and ``random`` (``EpochSeededRandomSampler``: a uniform permutation, the references' ``RandomSampler``), and
  the epoch of the resumed loader is set explicitly (accelerate does not pass ``set_epoch`` through its
  batch-skipping wrapper under several processes).
* Dropout and other random draws: the Trainer restores the Python, NumPy and torch (CPU and CUDA) random
  states saved with the checkpoint after skipping the trained batches.
* Selection: the best checkpoint so far is taken from the checkpoint's state; if the run directory moved, its
  recorded path is re-pointed; if it is gone, resuming is refused (selection could not be reproduced).
* Incomplete checkpoints (killed or disk full while saving) are recognisable: a checkpoint is complete only
  once ``xstilts_checkpoint.json`` (written last, with the size of every file) is there, and older checkpoints
  are rotated away only after that. Incomplete ones are skipped and removed.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import Preempted, UsageError
from ..files import atomic_write_json
from ..provenance import git_state, library_versions
from ..run.layout import TRAINER_DIR
from . import selection as select
from .divergence import DivergenceWatch
from .selection import Selection

logger = logging.getLogger(__name__)

CHECKPOINT_MARKER = "xstilts_checkpoint.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def trainer_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / TRAINER_DIR


# ----------------------------------------------------------------------------- checkpoints
def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """The Trainer checkpoint folders in ``folder``, by step."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return sorted(found)


def _file_sizes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != CHECKPOINT_MARKER}


def mark_complete(folder: Path, step: int, extra: dict | None = None) -> None:
    """Write the completion marker of a checkpoint, after every other file of it: its step, the size of each
    file (a later truncation shows), the writing versions (a resume with other versions is recorded) and the
    kit's own state to restore (``XTrainer.checkpoint_extra_state``)."""
    atomic_write_json(folder / CHECKPOINT_MARKER, {
        "global_step": step, "files": _file_sizes(folder), "versions": library_versions(),
        "git_commit": git_state()["commit"], "extra": extra or {}})


def read_marker(folder: Path) -> dict | None:
    """The completion marker of a complete checkpoint; None if the checkpoint is incomplete."""
    try:
        marker = json.loads((folder / CHECKPOINT_MARKER).read_text(encoding="utf-8"))
        m = _CHECKPOINT_RE.match(folder.name)
        if not m or marker.get("global_step") != int(m.group(1)):
            return None
        for name, size in marker["files"].items():
            if (folder / name).stat().st_size != size:
                return None
        return marker
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def checkpoint_is_complete(folder: str | Path) -> bool:
    return read_marker(Path(folder)) is not None


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The latest complete Trainer checkpoint of a run (None if there is none)."""
    done = [p for _, p in _checkpoints(trainer_dir(output_dir)) if checkpoint_is_complete(p)]
    return str(done[-1]) if done else None


def incomplete_checkpoints(output_dir: str | Path) -> list[Path]:
    return [p for _, p in _checkpoints(trainer_dir(output_dir)) if not checkpoint_is_complete(p)]


# ----------------------------------------------------------------------------- preemption
class Preemption:
    """SIGTERM (what SLURM and most schedulers send before a kill) during training: finish the current step, save
    a Trainer checkpoint and stop; ``train`` then raises Preempted (the script exits with code 143, no results).

    A run owns one (``xstilts.run.start``); the trainers it builds get its callback, and ``train`` installs its
    SIGTERM handler when training starts. Nothing is shared between runs."""

    def __init__(self):
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handler)

    def _handler(self, signum, frame) -> None:
        self.requested = True
        logger.warning("SIGTERM received: saving a checkpoint after this step, then exiting (re-run to resume)")

    def callback(self):
        """A TrainerCallback that saves and stops after the step in which SIGTERM arrived."""
        return preemption_callback_class()(self)


@lru_cache(maxsize=1)
def preemption_callback_class():
    from transformers import TrainerCallback

    class PreemptionCallback(TrainerCallback):
        def __init__(self, preemption: Preemption):
            self.preemption = preemption

        def on_step_end(self, args, state, control, **kwargs):
            if self.preemption.requested:
                control.should_save = True
                control.should_training_stop = True
            return control

    return PreemptionCallback


# ----------------------------------------------------------------------------- data order
def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffle: a function of (seed, epoch) only, independent across both."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


def _length_grouped_sampler_class():
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
        """transformers' length-grouped shuffle (mega-batches sorted by length), drawn from a generator seeded
        with (seed, epoch) at the start of each epoch instead of the global random state, so that the order of
        an epoch does not depend on what ran before it (an interrupted and resumed run sees the same batches)."""

        def __init__(self, batch_size: int, lengths: list[int], seed: int):
            import torch

            super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
            self.seed, self.epoch = int(seed), 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __iter__(self):
            self.generator.manual_seed(epoch_seed(self.seed, self.epoch))
            return super().__iter__()

    return EpochSeededLengthGroupedSampler


def _random_sampler_class():
    import torch

    class EpochSeededRandomSampler(torch.utils.data.Sampler):
        """A uniformly random permutation of the training rows each epoch (what the references' ``RandomSampler``
        draws), from a torch.Generator seeded with (seed, epoch): the order of an epoch does not depend on what
        ran before it, so a resumed run sees the same batches. Not a ``RandomSampler`` subclass, so accelerate
        keeps it instead of substituting its own."""

        def __init__(self, n: int, seed: int):
            self.n, self.seed, self.epoch = int(n), int(seed), 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __len__(self) -> int:
            return self.n

        def __iter__(self):
            generator = torch.Generator()
            generator.manual_seed(epoch_seed(self.seed, self.epoch))
            return iter(torch.randperm(self.n, generator=generator).tolist())

    return EpochSeededRandomSampler


def _set_epoch_everywhere(loader, epoch: int) -> None:
    """Call ``set_epoch`` on every sampler and batch sampler below a (wrapped) data loader."""
    seen, todo = set(), [loader]
    while todo:
        obj = todo.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        if obj is not loader and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
        todo += [getattr(obj, a, None) for a in ("batch_sampler", "sampler", "base_dataloader", "_loader")]


def data_order(training_args) -> str:
    """How training batches are ordered (stored with each result)."""
    strategy = training_args.train_sampling_strategy
    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    if strategy == "group_by_length":
        return (f"group_by_length: each epoch a permutation from torch.Generator seeded with "
                f"xstilts.training.trainer.epoch_seed({seed}, epoch), cut into mega-batches sorted by length "
                f"(transformers' get_length_grouped_indices)")
    if strategy == "random":
        return (f"random: each epoch a uniform permutation (torch.randperm) from torch.Generator seeded with "
                f"xstilts.training.trainer.epoch_seed({seed}, epoch)")
    return f"{strategy} (the transformers / accelerate sampler)"


# ----------------------------------------------------------------------------- the Trainer
def trainer_class():
    import torch
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from transformers.trainer_utils import rotate_checkpoints

    EpochSeeded = _length_grouped_sampler_class()
    EpochSeededRandom = _random_sampler_class()

    class XTrainer(Trainer):
        """Trainer whose evaluation order is the dataset's order, whose training order is a function of
        (seed, epoch), and whose checkpoints carry a completion marker.

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

        def _get_train_sampler(self, train_dataset=None):
            sampler = super()._get_train_sampler(train_dataset)
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            if type(sampler) is LengthGroupedSampler:
                return EpochSeeded(sampler.batch_size, sampler.lengths, seed)
            if type(sampler) is torch.utils.data.RandomSampler:
                return EpochSeededRandom(len(sampler.data_source), seed)
            return sampler

        def get_resumed_dataloader(self, dataloader, num_batches: int):
            # the epoch being resumed, as the Trainer computes it (set_epoch does not reach every sampler
            # through accelerate's batch-skipping wrapper)
            ga = self.args.gradient_accumulation_steps
            per_epoch = max(len(dataloader) // ga + int(len(dataloader) % ga > 0), 1)
            resumed = super().get_resumed_dataloader(dataloader, num_batches)
            _set_epoch_everywhere(resumed, self.state.global_step // per_epoch)
            return resumed

        def _save_checkpoint(self, model, trial):
            # older checkpoints are rotated away only once the new one is complete (marker written)
            limit = self.args.save_total_limit
            self.args.save_total_limit = None
            try:
                super()._save_checkpoint(model, trial)
            finally:
                self.args.save_total_limit = limit
            run_dir = self._get_output_dir(trial=trial)
            self.accelerator.wait_for_everyone()  # every process has written its files (its RNG state)
            if self.args.should_save:
                mark_complete(Path(run_dir) / f"checkpoint-{self.state.global_step}", self.state.global_step,
                              self.checkpoint_extra_state())
                rotate_checkpoints(output_dir=run_dir, save_total_limit=limit,
                                   best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)

        def training_step(self, model, inputs, num_items_in_batch=None):
            # every micro-batch loss goes to the run's divergence watch (the Trainer's own logs filter NaN/inf
            # out: logging_nan_inf_filter); all processes agree, so all of them stop at the same step
            loss = super().training_step(model, inputs, num_items_in_batch)
            watch = getattr(self, "divergence_watch", None)
            if watch is not None and not watch.non_finite:
                bad = (~torch.isfinite(loss.detach())).any().float()
                if self.args.world_size > 1:
                    bad = self.accelerator.reduce(bad, reduction="sum")
                if bool(bad > 0):
                    watch.observe_non_finite(self.state.global_step + 1, float(loss.detach().float().sum()))
            return loss

        def checkpoint_extra_state(self) -> dict:
            """Kit state saved with each checkpoint (in its marker) and restored on resume."""
            return {}

        def restore_extra_state(self, state: dict) -> None:
            pass

    return XTrainer


def build_trainer(model, tokenizer, train_ds, dev_ds, training_args, kit_args, *, compute_metrics, metric: str,
                  collator, output_dir: str | Path, preemption: Preemption, selection: Selection | None = None):
    """The kit's Trainer for one task: checkpoint selection by ``selection`` (default: best English dev on the
    task's ``metric``; ``selection.metric`` may name a derived metric, added to ``compute_metrics``), early
    stopping when asked (best_dev only), the run's pre-emption callback, and a divergence watch
    (``trainer.divergence_watch``: a non-finite loss stops training, xstilts.training.divergence)."""
    from transformers import EarlyStoppingCallback

    Trainer = trainer_class()
    selection = selection or Selection("best_dev", None, metric)
    training_args.output_dir = str(trainer_dir(output_dir).resolve())  # absolute: checkpoint paths in its state
    select.configure(training_args, selection, has_dev=dev_ds is not None)
    watch = DivergenceWatch()
    callbacks = [preemption.callback(), watch.callback(), *select.callbacks(selection)]
    if kit_args.early_stopping_patience and dev_ds is not None and selection.uses_dev:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=kit_args.early_stopping_patience))
    trainer = Trainer(model=model, args=training_args, train_dataset=train_ds, eval_dataset=dev_ds,
                      processing_class=tokenizer, data_collator=collator,
                      compute_metrics=select.with_derived_metric(compute_metrics, selection.metric),
                      callbacks=callbacks)
    trainer.selection = selection
    trainer.divergence_watch = watch
    return trainer


def _resume_point(trainer, output_dir: str | Path) -> tuple[str | None, dict]:
    """The checkpoint to resume from (the latest complete one) and the record of the resume: incomplete
    checkpoints skipped (removed by the main process), the best checkpoint re-pointed if the directory moved,
    warnings. Every process of a multi-process run calls it and resumes from the same checkpoint."""
    record = {"resumed_from": None, "incomplete_checkpoints_removed": [], "warnings": []}
    if trainer.is_world_process_zero():
        for p in incomplete_checkpoints(output_dir):
            logger.warning("%s is incomplete (no completion marker %s, or a file of it has another size: the run "
                           "was killed or the disk filled while saving it); skipped and removed", p, CHECKPOINT_MARKER)
            record["incomplete_checkpoints_removed"].append(p.name)
            shutil.rmtree(p, ignore_errors=True)
        ckpt = last_checkpoint(output_dir)
        if ckpt is not None:
            _repoint_best(Path(ckpt).resolve())
    trainer.accelerator.wait_for_everyone()
    ckpt = last_checkpoint(output_dir)
    if ckpt is None:
        return None, record
    ckpt = Path(ckpt).resolve()
    marker = read_marker(ckpt)
    state = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    if state.get("best_global_step") and not checkpoint_is_complete(state.get("best_model_checkpoint") or ""):
        raise UsageError(f"cannot resume from {ckpt}: the best checkpoint so far (checkpoint-"
                         f"{state['best_global_step']}, English dev {trainer.args.metric_for_best_model} = "
                         f"{state.get('best_metric')}) is missing or incomplete, so checkpoint selection would differ "
                         f"from an uninterrupted run. Re-run with --overwrite to start afresh")
    now = library_versions()
    for pkg, version in sorted((marker.get("versions") or {}).items()):
        if now.get(pkg) != version:
            record["warnings"].append(f"{ckpt.name} was written with {pkg} {version}, this run has {now.get(pkg)}: "
                                      f"the resumed run may differ from an uninterrupted one")
    commit = git_state()["commit"]
    if marker.get("git_commit") and commit and marker["git_commit"] != commit:
        record["warnings"].append(f"{ckpt.name} was written by kit commit {marker['git_commit'][:12]}, this run is "
                                  f"{commit[:12]}: the resumed run may differ from an uninterrupted one")
    for w in record["warnings"]:
        logger.warning(w)
    trainer.restore_extra_state(marker.get("extra") or {})
    record["resumed_from"] = str(ckpt)
    logger.info("resuming from %s (step %d)%s", ckpt, marker["global_step"],
                f"; skipped incomplete {', '.join(record['incomplete_checkpoints_removed'])}"
                if record["incomplete_checkpoints_removed"] else "")
    return str(ckpt), record


def _repoint_best(ckpt: Path) -> None:
    """If the run directory moved since ``ckpt`` was saved, point its state's best checkpoint (an absolute path)
    to where that checkpoint is now; the Trainer would otherwise drop it and select among later ones only."""
    state_file = ckpt / "trainer_state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    best_step = state.get("best_global_step")
    best = str(ckpt.parent / f"checkpoint-{best_step}")
    if best_step and state.get("best_model_checkpoint") != best and checkpoint_is_complete(best):
        logger.info("%s: the best checkpoint recorded as %s is now %s (the directory moved)", ckpt,
                    state.get("best_model_checkpoint"), best)
        state["best_model_checkpoint"] = best
        marker = read_marker(ckpt)
        atomic_write_json(state_file, state)
        atomic_write_json(ckpt / CHECKPOINT_MARKER, dict(marker, files=_file_sizes(ckpt)))  # the writer's versions kept


def train(trainer, output_dir: str | Path, preemption: Preemption, *, resume: bool = True) -> dict:
    """Train (resuming exactly from the latest complete checkpoint if there is one), with ``preemption``'s SIGTERM
    handler installed; returns train metrics, the selection record and the resume record."""
    ckpt, record = _resume_point(trainer, output_dir) if resume else (None, {"resumed_from": None})
    preemption.install()
    t0 = time.time()
    out = trainer.train(resume_from_checkpoint=ckpt)
    if preemption.requested:
        raise Preempted(f"stopped at step {trainer.state.global_step}; latest complete checkpoint: "
                        f"{last_checkpoint(output_dir)}; re-run the same command to resume")
    metrics = dict(out.metrics)
    metrics["wall_seconds"] = time.time() - t0
    metrics["resumed_from"] = ckpt
    metrics["resume"] = record
    metrics["data_order"] = data_order(trainer.args)
    watch = getattr(trainer, "divergence_watch", None)
    metrics["non_finite"] = watch.record() if watch is not None else None
    selection = getattr(trainer, "selection", None) or Selection("best_dev", None, trainer.args.metric_for_best_model)
    cadence = trainer.args.eval_steps if trainer.args.save_strategy == "steps" else "epoch"
    metrics["selection"] = select.record(trainer, selection, cadence)
    if selection.uses_dev:
        logger.info("selected %s (English dev %s = %s)", metrics["selection"]["best_checkpoint"],
                    trainer.args.metric_for_best_model, trainer.state.best_metric)
    else:
        logger.info("selection %s: the model after step %d", selection.name, trainer.state.global_step)
    return metrics


def cleanup(output_dir: str | Path) -> None:
    d = trainer_dir(output_dir)
    if d.is_dir():
        shutil.rmtree(d)
        logger.info("removed intermediate Trainer checkpoints in %s", d)
