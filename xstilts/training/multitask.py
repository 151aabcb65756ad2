"""Multi-task intermediate training (phase 2 with ``--tasks``): one shared encoder, one head per task.

    python run_intermediate.py --model xlmr-large --tasks mnli,squad_v1 --preset phang2020
    python run_intermediate.py --model xlmr-large --tasks all --preset phang2020 --mixture_cap 100000

The run starts like every run (``xstilts.run.start.begin_multitask``: arguments, the preset's multi-task block,
checks, output directory) and is driven by ``run_intermediate.py``; this module holds what it trains with. Built
only on the format interface (``xstilts.formats.base.Format``: load / featurize / model_class / model_kwargs /
collator / dev_metrics), so every format mixes with every other:

* **Model** (``MultiTaskModel``): the encoder is loaded once (``modeling.load_for_task`` with the first task
  whose format's head needs the encoder's pooler, else the first task), and every task gets its format's own
  head class (``fmt.model_class()``, e.g. ``XLMRobertaForSequenceClassification``), built from a layer-less
  copy of the config and given the shared encoder; every head is initialised afresh from its own seed
  ``(seed, task name)``. The wrapper registers the encoder once and the head modules of every task, so
  parameters and checkpoints hold the encoder exactly once.
  A batch carries ``task_id``; ``forward`` calls that task's model (head + shared encoder) unchanged, so the
  loss and outputs are exactly those of single-task training.
* **Sampling** (``mixture_rates``, ``MixtureBatchSampler``): every batch comes from one task, drawn with
  probability ``r_t ∝ min(n_t, K) ** (1 / T)``: examples-proportional mixing with the artificial limit K
  (T5, Raffel et al. 2020, section 3.5.2; jiant's ``train_examples_cap``) and temperature T (T=1: proportional,
  jiant's default; large T: towards uniform). One epoch = ``ceil(sum_t min(n_t, K) / batch)`` batches, so with
  T=1 a task below the cap sees each of its examples once per epoch on average. Within a task, examples are
  drawn without replacement (a fresh shuffle whenever a task is exhausted), grouped by length when the kit's
  ``train_sampling_strategy`` is ``group_by_length``.
* **Auxiliary objectives** (``Task.auxiliary``: the multilingual MLM, ``--tasks mnli,mlm``): a fixed share
  ``--mlm_proportion`` of the batches (``with_auxiliary``) on top of the other tasks' epoch, the pretrained LM
  head reused (``xstilts.training.mlm``), evaluated on held-out text but never part of the selection metric.
* **Selection** (the preset's ``selection``, ``xstilts.training.selection``): ``best_dev`` evaluates every task's
  English dev split (its format's ``dev_metrics``) at the cadence; the selection metric ``eval_average`` is the
  unweighted mean of the tasks' dev metrics (each task's ``metric``, a fraction in [0, 1]; auxiliary objectives
  are logged, not averaged), and early stopping (``--early_stopping_patience``) watches the same average.
  ``final`` (jiant's intermediate phase) keeps the last model and evaluates once after training.
* **Checkpoint**: one encoder-only checkpoint (``modeling.save_encoder_only``), consumed by ``run_target.py``
  and ``run_retrieval.py`` like a single-task one; the meta stores the mixture (sizes, cap, temperature,
  rates, batches drawn per task) and every task's dev metric.

Hyperparameters: one set for the whole mixture (one optimizer and schedule), from the preset's top-level
``"multitask"`` block (over its ``defaults``; ``by_model.<model>.multitask`` overrides; ``xstilts.run.presets``),
then the command line.
"""

from __future__ import annotations

import bisect
import logging
import math
import time

import numpy as np
import torch

from ..errors import UsageError
from . import selection as select
from .divergence import DivergenceWatch
from .mlm import masked_lm_on_encoder
from .modeling import load_for_task, reinit_module
from .selection import Selection
from .trainer import trainer_class, trainer_dir

logger = logging.getLogger(__name__)

SELECTION_METRIC = "average"  # the mean of the tasks' English dev metrics


# ============================================================================================ mixing
def mixture_rates(sizes: dict[str, int], cap: int | None = None, temperature: float = 1.0) -> dict[str, float]:
    """Sampling rate of each task: ``min(n, cap) ** (1 / temperature)``, normalised (T5 / jiant)."""
    if cap is not None and cap < 1:
        raise UsageError(f"--mixture_cap must be a positive number of examples, got {cap}")
    if not temperature > 0:
        raise UsageError(f"--mixture_temperature must be > 0, got {temperature}")
    empty = [t for t, n in sizes.items() if n < 1]
    if empty:
        raise UsageError(f"task(s) {', '.join(empty)} have no training examples; nothing to sample from")
    weights = {t: float(min(n, cap) if cap is not None else n) ** (1.0 / temperature) for t, n in sizes.items()}
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


def batches_per_epoch(sizes: dict[str, int], cap: int | None, batch_size: int) -> int:
    return max(1, math.ceil(sum(min(n, cap) if cap is not None else n for n in sizes.values()) / batch_size))


def with_auxiliary(rates: dict[str, float], per_epoch: int, auxiliary: list[str],
                   proportion: float) -> tuple[dict[str, float], int]:
    """Rates and epoch length once auxiliary objectives (mlm) join: they draw ``proportion`` of all batches
    (shared equally), the other tasks keep their relative rates in the rest, and an epoch grows to
    ``ceil(per_epoch / (1 - proportion))`` batches, so the other tasks still see their data once per epoch on
    average (the auxiliary batches come on top; the corpus size does not set the epoch)."""
    if not 0.0 < proportion < 1.0:
        raise UsageError(f"--mlm_proportion must be strictly between 0 and 1 (the share of batches drawn from "
                         f"{', '.join(auxiliary)}), got {proportion}")
    out = {t: r * (1.0 - proportion) for t, r in rates.items()}
    out.update({t: proportion / len(auxiliary) for t in auxiliary})
    return out, max(1, math.ceil(per_epoch / (1.0 - proportion)))


class MixtureBatchSampler:
    """Batches of global indices (task ``t``'s row ``i`` is ``offsets[t] + i``), each from one task.

    The task of each batch is drawn with ``rates``; a task's rows are drawn without replacement in a shuffled
    order that is renewed when the task runs out. With ``lengths`` (one list per task) rows are grouped by
    length within a task: shuffled, cut into mega-batches of 50 batches, sorted by length inside each, split
    into batches whose order is shuffled (as transformers' LengthGroupedSampler does). Deterministic for a given
    ``seed`` and epoch (``set_epoch``; the Trainer calls it through the data loader)."""

    def __init__(self, sizes: list[int], rates: list[float], batch_size: int, num_batches: int, seed: int = 0,
                 lengths: list[list[int]] | None = None):
        if len(sizes) != len(rates) or not sizes:
            raise ValueError("one size and one rate per task")
        self.sizes = [int(n) for n in sizes]
        self.rates = np.asarray(rates, dtype=np.float64) / float(np.sum(rates))
        self.batch_size = int(batch_size)
        self.num_batches = int(num_batches)
        self.seed = int(seed)
        self.lengths = lengths
        self.offsets = [0]
        for n in self.sizes[:-1]:
            self.offsets.append(self.offsets[-1] + n)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches

    def task_sequence(self) -> np.ndarray:
        """The task index of every batch of the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, 0])
        return rng.choice(len(self.sizes), size=self.num_batches, p=self.rates)

    def _batches(self, t: int, rng: np.random.Generator):
        """Endless stream of batches (lists of local indices) of task t."""
        n, bs = self.sizes[t], self.batch_size
        while True:
            perm = rng.permutation(n)
            if self.lengths is not None:
                lens = np.asarray(self.lengths[t])
                mega = bs * 50
                perm = np.concatenate([sorted(perm[i:i + mega], key=lambda j: -lens[j])
                                       for i in range(0, n, mega)]).astype(np.int64)
            batches = [perm[i:i + bs] for i in range(0, n, bs)]
            if self.lengths is not None:
                batches = [batches[i] for i in rng.permutation(len(batches))]
            yield from batches

    def __iter__(self):
        rngs = [np.random.default_rng([self.seed, self.epoch, 1 + t]) for t in range(len(self.sizes))]
        streams = [self._batches(t, rngs[t]) for t in range(len(self.sizes))]
        for t in self.task_sequence():
            yield [self.offsets[t] + int(i) for i in next(streams[t])]


class TaskRows(torch.utils.data.Dataset):
    """Rows of several tasks' model-ready datasets under one global index; each row gets its ``task_id``."""

    def __init__(self, datasets: list, task_ids: list[int] | None = None):
        self.datasets = datasets
        self.task_ids = task_ids if task_ids is not None else list(range(len(datasets)))
        self.offsets = [0]
        for d in datasets:
            self.offsets.append(self.offsets[-1] + len(d))

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, i: int) -> dict:
        k = bisect.bisect_right(self.offsets, i) - 1
        row = dict(self.datasets[k][i - self.offsets[k]])
        row["task_id"] = self.task_ids[k]
        return row


class MultiTaskCollator:
    """Pads a one-task batch with that task's own collator and adds ``task_id`` (one value per row)."""

    def __init__(self, collators: list):
        self.collators = collators

    def __call__(self, rows: list[dict]) -> dict:
        ids = {r["task_id"] for r in rows}
        if len(ids) != 1:
            raise RuntimeError(f"a batch mixes tasks {sorted(ids)}; the mixture sampler must yield one-task batches")
        t = ids.pop()
        batch = self.collators[t]([{k: v for k, v in r.items() if k != "task_id"} for r in rows])
        batch["task_id"] = torch.full((len(rows),), t, dtype=torch.long)
        return batch


# ============================================================================================ model
class MultiTaskModel(torch.nn.Module):
    """One shared encoder and one head per task; ``forward(task_id=..., **inputs)`` runs that task's model.

    ``task_models[t]`` is the task's own Hugging Face model class (its forward, loss and outputs unchanged)
    whose encoder attribute is the shared encoder. The wrapper registers the encoder once (``encoder``) and
    each task's head modules (``heads.<task>.<module>``), so ``parameters()`` and ``state_dict()`` hold every
    tensor once. ``base_model`` / ``base_model_prefix`` follow the transformers convention, so
    ``modeling.save_encoder_only`` saves the shared encoder and drops the heads."""

    base_model_prefix = "encoder"
    accepts_loss_kwargs = False  # the Trainer scales the loss for gradient accumulation itself

    def __init__(self, encoder, task_models: list, task_names: list[str]):
        super().__init__()
        self.encoder = encoder
        self.task_names = list(task_names)
        self.task_models = list(task_models)  # plain list: not registered (their modules are, below)
        self.heads = torch.nn.ModuleDict()
        for name, m in zip(self.task_names, self.task_models):
            if getattr(m, m.base_model_prefix) is not encoder:
                raise ValueError(f"task model {name} does not use the shared encoder")
            self.heads[name] = torch.nn.ModuleDict(
                {child: mod for child, mod in m.named_children() if child != m.base_model_prefix})
        self.batches_seen = [0] * len(self.task_names)

    @property
    def base_model(self):
        return self.encoder

    @property
    def config(self):
        return self.encoder.config

    def forward(self, task_id, **inputs):
        t = int(task_id.reshape(-1)[0])
        if self.training:
            self.batches_seen[t] += 1
        return self.task_models[t](**inputs)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.task_models:
            m.train(mode)
        return self

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        self.encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

    def floating_point_ops(self, inputs) -> int:
        return 0


def _head_donor(fmt, task, config_path: str):
    """(the task's model class built from a minimal copy of its config, the full config).

    The minimal copy keeps everything the head depends on (hidden size, labels, dropout) but has no
    transformer layers and a 4-token vocabulary, so building it costs next to nothing even for XLM-R XXL; its
    placeholder encoder is replaced by the shared one (``_with_shared_encoder``). Built on the default device
    (not the meta device) so that it works under DeepSpeed ZeRO-3 too, and under ``fork_rng`` so that building
    it draws nothing from the global random stream."""
    import copy

    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(config_path, **fmt.model_kwargs(task))
    small = copy.deepcopy(config)
    small.num_hidden_layers, small.vocab_size = 0, 4
    if getattr(small, "pad_token_id", None) is not None and small.pad_token_id >= small.vocab_size:
        small.pad_token_id = 0
    with torch.random.fork_rng():
        return fmt.model_class().from_config(small), config


def _with_shared_encoder(model, config, encoder):
    """The head donor with its placeholder encoder replaced by the shared encoder and its full config back."""
    setattr(model, model.base_model_prefix, encoder)
    model.config = config
    return model


def _needs_pooler(fmt, task, config_path: str) -> bool:
    model, _ = _head_donor(fmt, task, config_path)
    return getattr(model.base_model, "pooler", None) is not None


def head_seed(seed: int, task_name: str) -> int:
    import zlib

    return (int(seed) * 1_000_003 + zlib.crc32(task_name.encode("utf-8"))) % (2 ** 31)


def init_head(model, task_name: str, seed: int) -> None:
    """Fresh head of one task from its own generator, seeded by (seed, task name): normal(0,
    initializer_range) weights, zero biases, unit LayerNorms (``modeling.reinit_module``). A task's head is
    then the same whatever the other tasks, their order, or the way the model was built (plain or ZeRO-3), and
    the global random stream (dropout, sampling) is not touched."""
    heads = [m for n, m in model.named_children() if n != model.base_model_prefix]
    with gathered_parameters([p for h in heads for p in h.parameters()], modifier_rank=0):
        with torch.random.fork_rng():
            torch.manual_seed(head_seed(seed, task_name))
            for h in heads:
                reinit_module(h, getattr(model.config, "initializer_range", 0.02))


def build_model(tasks: list, fmts: list, init_path: str, seed: int = 0):
    """(MultiTaskModel, hand-off record of the encoder load, with the task the encoder was loaded with).

    A format whose head is the pretrained model's own (``Format.pretrained_head``: the masked-LM objective) gets
    that head on the shared encoder (``xstilts.training.mlm``), not a fresh one; the encoder is never loaded
    with it."""
    own = [bool(f.pretrained_head) for f in fmts]
    if all(own):
        raise UsageError("a multi-task run needs at least one task with a head of its own (not only mlm)")
    pooled = [i for i, (t, f) in enumerate(zip(tasks, fmts)) if not own[i] and _needs_pooler(f, t, init_path)]
    first = pooled[0] if pooled else own.index(False)
    primary, handoff = load_for_task(fmts[first].model_class(), init_path, **fmts[first].model_kwargs(tasks[first]))
    encoder = primary.base_model
    models, reused = [], {}
    for i, (t, f) in enumerate(zip(tasks, fmts)):
        if i == first:
            models.append(primary)
        elif own[i]:
            m, names = masked_lm_on_encoder(f, t, init_path, encoder)
            models.append(m)
            reused[t.name] = sorted(f"heads.{t.name}.{k}" for k in names)
        else:
            models.append(_with_shared_encoder(*_head_donor(f, t, init_path), encoder))
    for t, m, keep in zip(tasks, models, own):
        if not keep:
            init_head(m, t.name, seed)
    model = MultiTaskModel(encoder, models, [t.name for t in tasks])
    handoff = dict(handoff, encoder_loaded_with=tasks[first].name, head_init=f"per task, seed {seed} + task name",
                   fresh_head_tensors={t.name: sorted(f"heads.{t.name}.{k}" for k in model.heads[t.name].state_dict())
                                       for t, keep in zip(tasks, own) if not keep})
    if reused:
        handoff["pretrained_head_tensors"] = reused  # taken from the pretrained checkpoint, not initialised
    return model, handoff


# ============================================================================================ trainer
def _model_ready(ds, task_model):
    """Drop the columns the task model's forward does not take (what the Trainer does for one task)."""
    import inspect

    from transformers.utils import find_labels

    keep = set(inspect.signature(task_model.forward).parameters) | set(find_labels(type(task_model))) \
        | {"label", "label_ids"}
    return ds.remove_columns([c for c in ds.column_names if c not in keep])


def multitask_trainer_class():
    from transformers.trainer_utils import speed_metrics

    base = trainer_class()

    class MultiTaskTrainer(base):
        """Draws one-task batches from the mixture; evaluates every task's English dev split with its own
        metric and reports their mean as ``eval_average`` (checkpoint selection, early stopping)."""

        def setup_multitask(self, sampler, tasks: list[dict]):
            self.mixture_sampler = sampler
            self.mt_tasks = tasks  # [{name, metric, eval_ds, compute_metrics, label_names}]

        def checkpoint_extra_state(self) -> dict:
            return {"batches_seen": list(self.model.batches_seen)}  # the mixture record counts from the start

        def restore_extra_state(self, state: dict) -> None:
            if "batches_seen" in state:
                self.model.batches_seen = list(state["batches_seen"])

        def get_train_dataloader(self):
            from torch.utils.data import DataLoader

            loader = DataLoader(self.train_dataset, batch_sampler=self.mixture_sampler, collate_fn=self.data_collator,
                                num_workers=self.args.dataloader_num_workers,
                                pin_memory=self.args.dataloader_pin_memory,
                                persistent_workers=self.args.dataloader_persistent_workers)
            return self.accelerator.prepare(loader)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            if eval_dataset is not None:
                raise ValueError("MultiTaskTrainer.evaluate evaluates every task's dev split; it takes no dataset")
            self._memory_tracker.start()
            start, n_samples, metrics, values = time.time(), 0, {}, []
            saved = self.compute_metrics, self.label_names
            try:
                for spec in self.mt_tasks:
                    self.compute_metrics, self.label_names = spec["compute_metrics"], spec["label_names"]
                    loader = self._get_dataloader(dataset=spec["eval_ds"], description="Evaluation",
                                                  batch_size=self.args.eval_batch_size,
                                                  sampler_fn=self._get_eval_sampler)
                    prefix = f"{metric_key_prefix}_{spec['name']}"
                    out = self.evaluation_loop(loader, description=f"Evaluation ({spec['name']})",
                                               prediction_loss_only=None, ignore_keys=ignore_keys,
                                               metric_key_prefix=prefix)
                    key = f"{prefix}_{spec['metric']}"
                    if key not in out.metrics:
                        raise RuntimeError(f"{spec['name']}: dev evaluation returned no {spec['metric']!r} "
                                           f"(got {sorted(out.metrics)})")
                    metrics.update(out.metrics)
                    value = float(out.metrics[key])
                    if not spec.get("selected", True):
                        n_samples += out.num_samples
                        continue  # an auxiliary objective (mlm): recorded, never selected on
                    values.append(value)
                    if not 0.0 <= values[-1] <= 1.0:
                        raise RuntimeError(f"{spec['name']}: dev {spec['metric']} = {values[-1]} is not a fraction in "
                                           f"[0, 1]; the mean over tasks needs every format's metric on that scale")
                    n_samples += out.num_samples
            finally:
                self.compute_metrics, self.label_names = saved
            metrics[f"{metric_key_prefix}_{SELECTION_METRIC}"] = float(np.mean(values))
            metrics.update(speed_metrics(metric_key_prefix, start, num_samples=n_samples))
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            self._memory_tracker.stop_and_update_metrics(metrics)
            return metrics

    return MultiTaskTrainer


# ============================================================================================ the run
def gathered_parameters(params, modifier_rank=None):
    """Under DeepSpeed ZeRO-3, a context in which ``params`` (a module's or a list) hold their full tensors
    (they are partitioned otherwise, and whether the last forward left them gathered depends on the module
    order); elsewhere a no-op. Entered on every rank (a collective); ``modifier_rank``: the rank whose changes
    are kept."""
    import contextlib

    from transformers.integrations import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        return contextlib.nullcontext()
    import deepspeed

    params = list(params.parameters()) if isinstance(params, torch.nn.Module) else list(params)
    return deepspeed.zero.GatheredParameters(params, modifier_rank=modifier_rank)


# ============================================================================================ the trainer of a mix
def mixture_trainer(model, tokenizer, tasks, fmts, loaded, training_args, kit_args, *, output_dir, preemption,
                    mixture_cap: int | None, mixture_temperature: float, selection: Selection | None = None,
                    auxiliary_proportion: float | None = None):
    """The MultiTaskTrainer of ``model`` on the tasks' model-ready data (``loaded``: per task (train features,
    dev examples, dev features)), with the mixture sampler and the checkpoint rule ``selection`` (default: the
    best mean English-dev metric); returns (trainer, the mixture record)."""
    from transformers import EarlyStoppingCallback
    from transformers.utils import find_labels

    train_sets, lengths, specs = [], [], []
    for i, (task, fmt, (train_ds, dev_ex, dev_ds)) in enumerate(zip(tasks, fmts, loaded)):
        task_model = model.task_models[i]
        lengths.append(list(train_ds["length"]) if "length" in train_ds.column_names else None)
        train_sets.append(_model_ready(train_ds, task_model))
        specs.append({"name": task.name, "metric": task.metric,
                      "eval_ds": TaskRows([_model_ready(dev_ds, task_model)], [i]),
                      "compute_metrics": fmt.dev_metrics(task, dev_ex, dev_ds),
                      "label_names": find_labels(type(task_model)), "selected": not task.auxiliary})

    # mixture: rates over training features (what one batch row is), batches per epoch, sampler; auxiliary
    # objectives (mlm) take a fixed share of the batches on top (with_auxiliary)
    names = [t.name for t in tasks]
    sizes = {t.name: len(d) for t, d in zip(tasks, train_sets)}
    auxiliary = [t.name for t in tasks if t.auxiliary]
    main = {n: k for n, k in sizes.items() if n not in auxiliary}
    world = max(1, training_args.world_size)
    global_batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * world
    rates = mixture_rates(main, mixture_cap, mixture_temperature)
    per_epoch = batches_per_epoch(main, mixture_cap, training_args.per_device_train_batch_size * world)
    if auxiliary:
        rates, per_epoch = with_auxiliary(rates, per_epoch, auxiliary, auxiliary_proportion)
    rates = {n: rates[n] for n in names}
    group = str(getattr(training_args, "train_sampling_strategy", "")).endswith("group_by_length")
    sampler = MixtureBatchSampler(list(sizes.values()), list(rates.values()), training_args.per_device_train_batch_size,
                                  per_epoch * world, seed=training_args.seed,
                                  lengths=lengths if group and all(l is not None for l in lengths) else None)
    mixture = {"tasks": names, "examples": sizes, "cap": mixture_cap, "temperature": mixture_temperature,
               "rates": rates, "batches_per_epoch": per_epoch,
               "optimizer_steps_per_epoch": math.ceil(per_epoch / training_args.gradient_accumulation_steps),
               "global_batch_size": global_batch, "unit": "training features (rows after featurize)"}
    if auxiliary:
        mixture["auxiliary"] = {"tasks": auxiliary, "proportion": auxiliary_proportion,
                                "epoch": "the other tasks' batches per epoch / (1 - proportion): the auxiliary "
                                         "batches come on top; not part of the selection metric"}
    logger.info("mixture (cap %s, temperature %s): %s", mixture["cap"], mixture["temperature"],
                ", ".join(f"{n} {sizes[n]} ex -> {rates[n]:.3f}" for n in names))

    training_args.output_dir = str(trainer_dir(output_dir).resolve())  # absolute: checkpoint paths in its state
    selection = Selection(selection.rule, selection.step, SELECTION_METRIC) if selection else \
        Selection("best_dev", None, SELECTION_METRIC)
    select.configure(training_args, selection, has_dev=True)
    training_args.remove_unused_columns = False
    training_args.label_names = ["labels"]  # per task during evaluation (setup_multitask)
    if world > 1:
        training_args.ddp_find_unused_parameters = True  # a step trains one task's head only
    watch = DivergenceWatch()  # a non-finite loss stops training (xstilts.training.divergence)
    callbacks = [preemption.callback(), watch.callback(), *select.callbacks(selection)]
    if kit_args.early_stopping_patience and selection.uses_dev:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=kit_args.early_stopping_patience))
    trainer = multitask_trainer_class()(
        model=model, args=training_args, train_dataset=TaskRows(train_sets),
        eval_dataset=specs[0]["eval_ds"],  # unused: evaluate() runs every task's dev split
        processing_class=tokenizer, data_collator=MultiTaskCollator([f.collator(tokenizer) for f in fmts]),
        callbacks=callbacks)
    trainer.setup_multitask(sampler, specs)
    trainer.selection = selection
    trainer.divergence_watch = watch
    return trainer, mixture
