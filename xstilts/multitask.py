"""Multi-task intermediate training (phase 2 with ``--tasks``): one shared encoder, one head per task.

    python run_intermediate.py --model xlmr-large --tasks mnli,squad_v1 --preset phang2020
    python run_intermediate.py --model xlmr-large --tasks all --preset phang2020 --mixture_cap 100000

Design, built only on the format interface (``xstilts.formats``: load / featurize / model_class /
model_kwargs / collator / dev_metrics / METRIC), so every format mixes with every other:

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
* **Selection**: evaluation on every task's English dev split (its format's ``dev_metrics``); the selection
  metric ``eval_average`` is the unweighted mean of the tasks' dev metrics (each format's ``METRIC``, a fraction
  in [0, 1]). Early stopping (``--early_stopping_patience``) watches the same average.
* **Checkpoint**: one encoder-only checkpoint (``modeling.save_encoder_only``), consumed by ``run_target.py``
  and ``run_retrieval.py`` like a single-task one; the meta stores the mixture (sizes, cap, temperature,
  rates, batches drawn per task) and every task's dev metric.

Hyperparameters: one set for the whole mixture (one optimizer and schedule), from the preset's top-level
``"multitask"`` block (over its ``defaults``; ``by_model.<model>.multitask`` overrides), then the command line.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import UsageError, choices_error

logger = logging.getLogger(__name__)

# The nine intermediate tasks of the study (Phang et al. 2020), in the paper's table order.
ALL_TASKS = ("anli_plus", "mnli", "qqp", "squad_v1", "squad_v2", "hellaswag", "ccg", "cosmosqa", "csqa")
SELECTION_METRIC = "average"


# ============================================================================================ arguments
@dataclass
class MultiTaskArguments:
    tasks: str | None = field(default=None, metadata={
        "help": "Train several intermediate tasks together: a comma list (e.g. mnli,qqp,squad_v1) or 'all' (the "
                f"study's nine: {','.join(ALL_TASKS)}). One shared encoder, one head per task, one checkpoint."})
    mixture_cap: int | None = field(default=None, metadata={
        "help": "Examples-proportional mixing limit K (T5; jiant's train_examples_cap): a task's size counts as "
                "min(size, K) in the sampling rates. Default: no limit."})
    mixture_temperature: float = field(default=1.0, metadata={
        "help": "Mixing temperature T: rates proportional to min(size, K) ** (1/T). 1 = examples-proportional."})
    task_max_train_samples: str | None = field(default=None, metadata={
        "help": "Per-task cap on the training examples loaded, e.g. 'mnli=20000,qqp=5000' (overrides "
                "--max_train_samples for those tasks)."})


def requested(argv: list[str]) -> bool:
    """Whether the command line asks for a multi-task run (``--tasks``)."""
    return any(a == "--tasks" or a.startswith("--tasks=") for a in argv)


def parse_task_list(spec: str) -> list[str]:
    """``all`` or a comma list -> intermediate task names (validated, no duplicates)."""
    from .registry import TASKS

    valid = [t.name for t in TASKS.values() if t.phase == "intermediate"]
    spec = (spec or "").strip()
    if spec == "all":
        missing = [t for t in ALL_TASKS if t not in valid]
        if missing:
            raise UsageError(f"--tasks all needs the nine intermediate tasks {', '.join(ALL_TASKS)}, but "
                             f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not registered in this "
                             f"kit; list the tasks you want instead (registered: {', '.join(valid)})")
        return list(ALL_TASKS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError(f"--tasks is empty; give a comma list of intermediate tasks or 'all' "
                         f"(= {', '.join(ALL_TASKS)})")
    for name in names:
        if name not in valid:
            other = TASKS.get(name)
            if other is not None:
                raise UsageError(f"task {name!r} in --tasks is a {other.phase} task, not an intermediate task; "
                                 f"intermediate tasks: {', '.join(valid)}")
            raise choices_error("intermediate task in --tasks", name, [*valid, "all"],
                                f"'all' = the study's nine: {', '.join(ALL_TASKS)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"--tasks lists {', '.join(dup)} more than once")
    return names


def mixture_name(tasks: list[str]) -> str:
    """The checkpoint's intermediate-task name: ``all`` for the study's nine, else ``a+b+c``."""
    return "all" if sorted(tasks) == sorted(ALL_TASKS) else "+".join(tasks)


def parse_task_caps(spec: str | None, tasks: list[str]) -> dict[str, int]:
    out = {}
    for item in [s.strip() for s in (spec or "").split(",") if s.strip()]:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise UsageError(f"--task_max_train_samples item {item!r}: expected TASK=N, e.g. mnli=20000")
        if name not in tasks:
            raise choices_error("task in --task_max_train_samples", name, tasks, "name a task of --tasks")
        try:
            n = int(value)
        except ValueError:
            raise UsageError(f"--task_max_train_samples {item!r}: {value!r} is not an integer") from None
        if n < 1:
            raise UsageError(f"--task_max_train_samples {item!r}: the cap must be at least 1")
        out[name] = n
    return out


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
    from .modeling import reinit_module

    heads = [m for n, m in model.named_children() if n != model.base_model_prefix]
    with gathered_parameters([p for h in heads for p in h.parameters()], modifier_rank=0):
        with torch.random.fork_rng():
            torch.manual_seed(head_seed(seed, task_name))
            for h in heads:
                reinit_module(h, getattr(model.config, "initializer_range", 0.02))


def build_model(tasks: list, fmts: list, init_path: str, seed: int = 0):
    """(MultiTaskModel, hand-off record of the encoder load, with the task the encoder was loaded with)."""
    from .modeling import load_for_task

    pooled = [i for i, (t, f) in enumerate(zip(tasks, fmts)) if _needs_pooler(f, t, init_path)]
    first = pooled[0] if pooled else 0
    primary, handoff = load_for_task(fmts[first].model_class(), init_path, **fmts[first].model_kwargs(tasks[first]))
    encoder = primary.base_model
    models = [primary if i == first else _with_shared_encoder(*_head_donor(f, t, init_path), encoder)
              for i, (t, f) in enumerate(zip(tasks, fmts))]
    for t, m in zip(tasks, models):
        init_head(m, t.name, seed)
    model = MultiTaskModel(encoder, models, [t.name for t in tasks])
    handoff = dict(handoff, encoder_loaded_with=tasks[first].name, head_init=f"per task, seed {seed} + task name",
                   fresh_head_tensors={t.name: sorted(f"heads.{t.name}.{k}" for k in model.heads[t.name].state_dict())
                                       for t in tasks})
    return model, handoff


# ============================================================================================ trainer
def _model_ready(ds, task_model):
    """Drop the columns the task model's forward does not take (what the Trainer does for one task)."""
    import inspect

    from transformers.utils import find_labels

    keep = set(inspect.signature(task_model.forward).parameters) | set(find_labels(type(task_model))) \
        | {"label", "label_ids"}
    return ds.remove_columns([c for c in ds.column_names if c not in keep])


def _multitask_trainer_class():
    from transformers.trainer_utils import speed_metrics

    from .training import _trainer_class

    base = _trainer_class()

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
                    values.append(float(out.metrics[key]))
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


def _preset_block(preset_name: str, model_name: str) -> dict:
    """defaults < "multitask" < by_model.<model>.multitask of the preset file."""
    import json

    from .cli import available_presets
    from .paths import PRESETS

    path = PRESETS / f"{preset_name}.json"
    if not path.exists():
        raise choices_error("preset", preset_name, available_presets())
    data = json.loads(path.read_text())
    if "multitask" not in data:
        raise UsageError(f"preset {preset_name!r} has no \"multitask\" block (the hyperparameters of a multi-task "
                         f"run); add one to {path} or use another preset")
    values = dict(data.get("defaults", {}))
    values.update(data["multitask"])
    values.update(data.get("by_model", {}).get(model_name, {}).get("multitask", {}))
    return values


def _apply_preset(values: dict, anchor_values: dict, given: set, objs) -> None:
    """Replace the anchor task's preset values by the multitask block's: a key set by the anchor's task entry
    but not by the block goes back to the argument's default; flags given on the command line win."""
    for key in sorted(set(values) | set(anchor_values)):
        name = "eval_steps_or_epoch" if key == "eval_steps" else key
        if key in given or name in given:
            continue
        owner = next((o for o in objs if hasattr(o, name)), None)
        if owner is None:
            raise UsageError(f"preset key {key!r} is not a known argument")
        if key in values:
            value = values[key]
            if name == "eval_steps_or_epoch" and value is not None:
                value = str(value)
        else:
            f = next(f for f in dataclasses.fields(owner) if f.name == name)
            value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if getattr(owner, name) != value:
            setattr(owner, name, value)


@dataclass
class MultiTaskRun:
    run: object
    tasks: list
    mt_args: MultiTaskArguments
    model_args: object
    data_args: object
    kit_args: object
    training_args: object
    preset: dict
    name: str


def begin(argv: list[str]) -> MultiTaskRun:
    """Parse and validate everything cheap (tasks, preset, model, data of every task, output directory)."""
    from . import data as data_lib
    from .cli import default_output_dir, finalize_training_args, hyperparameters, parse_args, setup_logging
    from .formats import get_format
    from .pipeline import claim_output_dir, prepare, settings_fingerprint
    from .registry import get_task

    if any(a == "--task" or a.startswith("--task=") for a in argv):
        raise UsageError("give either --task (one intermediate task) or --tasks (several, trained together), not both")
    spec = None
    for i, a in enumerate(argv):
        if a == "--tasks" and i + 1 < len(argv):
            spec = argv[i + 1]
        elif a.startswith("--tasks="):
            spec = a.split("=", 1)[1]
    if spec is None:
        raise UsageError("--tasks needs a value: a comma list of intermediate tasks or 'all'")
    names = parse_task_list(spec)
    model_args, data_args, kit_args, training_args, extras, preset, given = parse_args(
        [*argv, "--task", names[0]], extra=(MultiTaskArguments,))
    given = given - {"task"}
    mt_args = extras[0]
    mt_args.tasks = ",".join(names)
    setup_logging()
    from .models import registry as model_registry

    model_key = model_args.model if model_args.model in model_registry() else ""
    values = _preset_block(preset["name"], model_key)
    _apply_preset(values, preset.get("values", {}), given, (data_args, kit_args, training_args))
    preset = dict(preset, values=values, block="multitask", cli_overrides=sorted(given - {"output_dir"}))

    tasks = [get_task(n, phase="intermediate") for n in names]
    for fmt in {t.format: get_format(t.format) for t in tasks}.values():
        if hasattr(fmt, "configure"):
            fmt.configure(data_args)  # format settings (span QA: doc_stride, ...) with the mixture's values
    caps = parse_task_caps(mt_args.task_max_train_samples, names)
    mixture_rates({n: 1 for n in names}, mt_args.mixture_cap, mt_args.mixture_temperature)  # validate now
    name = mixture_name(names)

    out = training_args.output_dir if "output_dir" in given else None
    if out is None:
        from .models import resolve_model

        out = default_output_dir("intermediate", resolve_model(model_args.model).name, name, training_args.seed, None)
    run = prepare("intermediate", model_args, data_args, seed=training_args.seed, output_dir=out)
    for t in tasks[1:]:
        data_lib.check_task_data(t, ["en"], run.data_root, train=True, dev=True, test=False)
    finalize_training_args(training_args, kit_args, run.model, given)
    fingerprint = settings_fingerprint(
        run, preset=preset["name"], seed=training_args.seed, tasks=names, mixture_cap=mt_args.mixture_cap,
        mixture_temperature=mt_args.mixture_temperature, task_max_train_samples=caps,
        hyperparameters=hyperparameters(training_args, data_args, kit_args))
    with training_args.main_process_first(local=False, desc="claiming the output directory"):
        claim_output_dir(run, fingerprint, kit_args.overwrite, main_process=training_args.process_index == 0)
    return MultiTaskRun(run, tasks, mt_args, model_args, data_args, kit_args, training_args, preset, name)


def main(argv: list[str]) -> int:
    from transformers import EarlyStoppingCallback, set_seed

    from . import hub
    from .cli import hyperparameters
    from .formats import get_format
    from .modeling import META_FILE, load_tokenizer, save_encoder_only
    from .pipeline import write_phase2_meta
    from .results import check_selection, provenance
    from .training import _preemption_callback, cleanup, train, trainer_dir

    mt = begin(argv)
    push = hub.push_request(mt.training_args)  # --push_to_hub: refused now if it cannot succeed, done once saved
    if mt.run.skip:
        return hub.push_finished(push, mt.run.output_dir)
    run, data_args, kit_args, training_args = mt.run, mt.data_args, mt.kit_args, mt.training_args
    tasks, fmts = mt.tasks, [get_format(t.format) for t in mt.tasks]
    names = [t.name for t in tasks]
    caps = parse_task_caps(mt.mt_args.task_max_train_samples, names)
    logger.info("phase 2 (multi-task): %s on %s -> %s (preset %s)", run.model.name, ", ".join(names),
                run.output_dir, mt.preset["name"])
    t0 = time.time()
    set_seed(training_args.seed)

    tokenizer = load_tokenizer(run.init_path)
    loaded, records = [], {}
    for task, fmt in zip(tasks, fmts):  # data first: some heads take their label set from it (CCG)
        cap = caps.get(task.name, data_args.max_train_samples)
        train_ex = fmt.load(task, task.train, run.data_root, max_samples=cap)
        dev_ex = fmt.load(task, task.dev, run.data_root, max_samples=data_args.max_eval_samples)
        train_ds = fmt.featurize(train_ex, tokenizer, data_args.max_seq_length, task, train=True)
        dev_ds = fmt.featurize(dev_ex, tokenizer, data_args.max_seq_length, task, train=False)
        if len(train_ds) == 0:
            raise UsageError(f"task {task.name}: no training features (check the data and --max_train_samples)")
        loaded.append((train_ds, dev_ex, dev_ds))
        records[task.name] = {"format": task.format, "metric": task.metric, "train": task.train.describe(),
                              "dev": task.dev.describe(), "dev_split": task.dev.split, "n_train_examples": len(train_ex),
                              "n_train_features": len(train_ds), "n_dev_examples": len(dev_ex),
                              "max_train_samples": cap}

    model, handoff = build_model(tasks, fmts, run.init_path, seed=training_args.seed)
    train_sets, lengths, specs = [], [], []
    for i, (task, fmt, (train_ds, dev_ex, dev_ds)) in enumerate(zip(tasks, fmts, loaded)):
        task_model = model.task_models[i]
        lengths.append(list(train_ds["length"]) if "length" in train_ds.column_names else None)
        train_sets.append(_model_ready(train_ds, task_model))
        specs.append({"name": task.name, "metric": task.metric,
                      "eval_ds": TaskRows([_model_ready(dev_ds, task_model)], [i]),
                      "compute_metrics": fmt.dev_metrics(task, dev_ex, dev_ds),
                      "label_names": None})

    # mixture: rates over training features (what one batch row is), batches per epoch, sampler
    sizes = {t.name: len(d) for t, d in zip(tasks, train_sets)}
    rates = mixture_rates(sizes, mt.mt_args.mixture_cap, mt.mt_args.mixture_temperature)
    world = max(1, training_args.world_size)
    global_batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * world
    per_epoch = batches_per_epoch(sizes, mt.mt_args.mixture_cap, training_args.per_device_train_batch_size * world)
    group = str(getattr(training_args, "train_sampling_strategy", "")).endswith("group_by_length")
    sampler = MixtureBatchSampler(list(sizes.values()), list(rates.values()), training_args.per_device_train_batch_size,
                                  per_epoch * world, seed=training_args.seed,
                                  lengths=lengths if group and all(l is not None for l in lengths) else None)
    mixture = {"tasks": names, "examples": sizes, "cap": mt.mt_args.mixture_cap,
               "temperature": mt.mt_args.mixture_temperature, "rates": rates,
               "batches_per_epoch": per_epoch, "optimizer_steps_per_epoch": math.ceil(per_epoch / training_args.gradient_accumulation_steps),
               "global_batch_size": global_batch, "unit": "training features (rows after featurize)"}
    logger.info("mixture (cap %s, temperature %s): %s", mixture["cap"], mixture["temperature"],
                ", ".join(f"{n} {sizes[n]} ex -> {rates[n]:.3f}" for n in names))

    from transformers.utils import find_labels

    MultiTaskTrainer = _multitask_trainer_class()
    for spec, m in zip(specs, model.task_models):
        spec["label_names"] = find_labels(type(m))
    training_args.output_dir = str(trainer_dir(run.output_dir).resolve())  # absolute: checkpoint paths in its state
    training_args.load_best_model_at_end = True
    training_args.metric_for_best_model = SELECTION_METRIC
    training_args.greater_is_better = True
    training_args.remove_unused_columns = False
    training_args.label_names = ["labels"]  # per task during evaluation (setup_multitask)
    if world > 1:
        training_args.ddp_find_unused_parameters = True  # a step trains one task's head only
    callbacks = [_preemption_callback()]
    if kit_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=kit_args.early_stopping_patience))
    trainer = MultiTaskTrainer(model=model, args=training_args, train_dataset=TaskRows(train_sets),
                               eval_dataset=specs[0]["eval_ds"],  # unused: evaluate() runs every task's dev split
                               processing_class=tokenizer, data_collator=MultiTaskCollator([f.collator(tokenizer) for f in fmts]),
                               callbacks=callbacks)
    trainer.setup_multitask(sampler, specs)
    train_metrics = train(trainer, run.output_dir)
    mixture["batches_drawn"] = dict(zip(names, model.batches_seen))  # by this process (restored on resume)
    dev = trainer.evaluate()  # the selected (best) model on every task's English dev split

    per_task = {n: {s["metric"]: dev[f"eval_{n}_{s['metric']}"], "split": records[n]["dev_split"],
                    "n": records[n]["n_dev_examples"]} for n, s in zip(names, specs)}
    format_settings = {}
    for fmt in {t.format: f for t, f in zip(tasks, fmts)}.values():
        if hasattr(fmt, "settings"):
            format_settings.update(fmt.settings())
    meta = {
        "finished": True,
        "task": mt.name,
        "tasks": names,
        "multitask": mixture,
        "model": {"name": run.model.name, "path_or_id": run.model.path_or_id},
        "seed": training_args.seed,
        "dev_metric": {SELECTION_METRIC: dev[f"eval_{SELECTION_METRIC}"], "per_task": per_task,
                       "split": "English dev of every task (mean of the tasks' metrics)"},
        "global_step": trainer.state.global_step,
        "selection": train_metrics["selection"],
        "data_order": "MixtureBatchSampler: the task of each batch and the rows within a task from numpy generators "
                      "seeded with (seed, epoch, 0) and (seed, epoch, 1 + task index); rows grouped by length within "
                      "a task with train_sampling_strategy group_by_length",
        "resume": train_metrics["resume"],
        "run_settings": run.fingerprint,  # = xstilts_run.json: what makes this the checkpoint of this run
        "preset": mt.preset,
        "hyperparameters": dict(hyperparameters(training_args, data_args, kit_args), **format_settings,
                                task_max_train_samples=caps),
        "handoff_in": handoff,
        "data": records,
        "data_root": str(run.data_root) if run.data_root else None,  # None: the Hub
        "timing": {"wall_seconds": time.time() - t0, "train_runtime": train_metrics.get("train_runtime"),
                   "train_samples_per_second": train_metrics.get("train_samples_per_second")},
        "provenance": provenance(),
    }
    check_selection(meta["selection"], str(Path(run.output_dir) / META_FILE))  # before any weights are written
    with gathered_parameters(model.encoder):  # ZeRO-3: full tensors on every rank while rank 0 writes them
        if trainer.is_world_process_zero():
            meta = save_encoder_only(model, tokenizer, run.output_dir, meta)
            write_phase2_meta(Path(run.output_dir) / META_FILE, meta)  # written last: marks the run finished
    trainer.accelerator.wait_for_everyone()
    if not kit_args.keep_checkpoints and trainer.is_world_process_zero():
        cleanup(run.output_dir)
    logger.info("phase 2 (multi-task) done: English dev average = %.4f (%s); encoder saved to %s",
                meta["dev_metric"][SELECTION_METRIC],
                ", ".join(f"{n} {v[specs[i]['metric']]:.4f}" for i, (n, v) in enumerate(per_task.items())),
                run.output_dir)
    return hub.push_finished(push, run.output_dir)  # the main process only (the others hold no request)
