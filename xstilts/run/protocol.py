"""The training protocol of a run: resolved once from the preset and the command line (``resolve``), and the
``protocol`` block every result and phase-2 checkpoint stores (``record``), so that two results can be compared
by reading them.

The protocol is what a preset says beyond learning rates and batch sizes: the checkpoint rule (``selection``:
``best_dev`` | ``final`` | ``step:N``, on which dev split, on which rows, by which metric;
``xstilts.training.selection``), the order of training batches (``train_sampling_strategy``: ``random`` = the
references, ``group_by_length`` = the kit's speed choice), the precision (``precision``: ``fp32`` = the
references, ``bf16_where_supported`` = the kit's speed choice), the seed policy, and every named deviation from
the preset's source.

Deviations are computed, not written by hand, so a switch that restores the source removes its deviation:

* a protocol dimension (``DIMENSIONS``) whose value in force differs from what the preset's ``reference`` says
  the source did (``configs/presets/<name>.json``: file-level ``reference``, overridden per task);
* a preset value the command line changed;
* a pooler initialised afresh after a phase-2 hand-off, for a head that sits on the pooler (multiple choice);
* every named note of the preset (``notes``: differences that no switch removes), with its expected effect.

The seed policy: the grid's seeds (``make grid SEEDS=...``, ``--seed``) are replicates of the kit's own training
loop. The source's seed (``reference.seed``: XTREME 42, or 1 for UD-POS and PAN-X; jiant random) is recorded
next to it; the presets do not impose it, because the same number in another training loop draws another random
stream (it would reproduce nothing), and the results path and the grid's replicates depend on ``--seed``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from ..errors import UsageError, choices_error
from .args import eval_cadence
from ..tasks import TASKS, Task
from ..training.selection import DERIVED_METRICS, Selection

logger = logging.getLogger(__name__)

PRECISIONS = ("bf16_where_supported", "fp32")
DEFAULT_PRECISION = "bf16_where_supported"  # the kit's speed choice (the references train in fp32)
DEFAULT_SELECTION = "best_dev"

SEED_POLICY = ("the run's --seed (the grid's SEEDS: replicates of the kit's training loop); the source's seed is "
               "recorded as seed.source and not imposed, since the same number in another training loop draws "
               "another random stream")

# protocol dimension -> its expected effect when it differs from the source (docs/protocols.md lists the same)
EFFECTS = {
    "seed": "none systematic: one draw of the same random process (the kit's loop differs from the source's, so "
            "the source's seed would not reproduce its random stream either)",
    "precision": "small, unmeasured: bf16 mixed precision rounds activations and gradients to 8 significant bits "
                 "(weights and optimizer state stay fp32); expected within seed noise [unknown]",
    "train_sampling_strategy": "group_by_length puts rows of similar length in a batch (less padding, faster): small "
                               "for classification, tagging and QA [unknown]; it can collapse a task whose label "
                               "correlates with length to one class (batches nearly of one class: seen on the "
                               "synthetic NLI task); for in-batch-negative training it changes which negatives a "
                               "query sees (the objective)",
    "selection": "best_dev picks the best checkpoint on English dev, final takes the last model: usually a small "
                 "difference [unknown]; best_dev on a dev split that overlaps the test data (XQuAD-en, TyDiQA-en) "
                 "selects on test data",
    "selection_dev": "another dev split chooses the checkpoint: which checkpoint is taken changes [unknown size]",
    "selection_metric": "another dev metric chooses the checkpoint: usually the same or a neighbouring one [unknown]",
    "max_eval_samples": "selection on a subset of the dev rows: noisier choice [unknown]",
    "sep_token_extra": "one </s> more or less at the end of each input, and one sub-word more or less per piece "
                       "before a long sentence is split: negligible [unknown]",
    "pooler_init": "the pooler (dense + tanh over <s>) that the head sits on starts random instead of from the "
                   "pretrained checkpoint [unknown]",
}

# protocol dimension -> the switch that changes it
SWITCHES = {
    "seed": "--seed N (make grid SEEDS=...)",
    "precision": "--precision fp32 | bf16_where_supported (or --bf16)",
    "train_sampling_strategy": "--train_sampling_strategy random | group_by_length",
    "selection": "--selection best_dev | final | step:N",
    "selection_dev": "--selection_dev TASK",
    "selection_metric": "--selection_metric METRIC",
    "max_eval_samples": "--max_eval_samples N",
    "sep_token_extra": "--sep_token_extra true | false",
}
DIMENSIONS = tuple(SWITCHES)

# the command-line flags that set a preset key or protocol dimension (by default: the key's own name)
_FLAGS_OF_KEY = {"eval_steps": ("eval_steps_or_epoch",), "precision": ("precision", "bf16", "fp16")}


@dataclass
class Protocol:
    """A run's protocol, resolved (``resolve``)."""

    selection: Selection
    selection_dev: Task | None  # the task whose English dev split chooses the checkpoint; None: the run's own
    precision: str  # the setting (PRECISIONS); what is in force: ``effective_precision(training_args)``
    preset: dict  # the preset record (xstilts.run.start.parse_training_args): header, values, info, overrides

    def selection_task(self, task: Task) -> Task:
        """``task`` with the dev split that selects its checkpoint (another task's, e.g. jiant's MNLI for XNLI)."""
        if self.selection_dev is None:
            return task
        return replace(task, dev=self.selection_dev.dev, dev_language=self.selection_dev.dev_language)

    def stage_selection(self, stage: Task) -> Selection:
        """The rule for an English training stage (XCOPA's Social IQa): the run's rule on the stage's metric."""
        return replace(self.selection, metric=stage.metric)


def precision_setting(value: str | None) -> str:
    """The precision setting (command line > preset > kit default), checked."""
    value = value or DEFAULT_PRECISION
    if value not in PRECISIONS:
        raise choices_error("precision", value, PRECISIONS)
    return value


def effective_precision(training_args) -> str:
    if getattr(training_args, "bf16", False):
        return "bf16"
    if getattr(training_args, "fp16", False):
        return "fp16"
    return "fp32"


def _selection_dev_task(name: str | None, task: Task | None) -> Task | None:
    if not name or (task is not None and name == task.name):
        return None
    other = TASKS.get(name)
    if other is None:
        raise choices_error("--selection_dev task", name, list(TASKS))
    if other.dev is None:
        raise UsageError(f"--selection_dev {name}: task {name!r} has no dev split")
    if task is not None and (other.format != task.format or tuple(other.labels) != tuple(task.labels)):
        raise UsageError(f"--selection_dev {name}: task {name!r} ({other.format}, labels {list(other.labels)}) cannot "
                         f"select a checkpoint of {task.name!r} ({task.format}, labels {list(task.labels)}): they need "
                         f"the same format and labels")
    return other


def _selection_metric(name: str | None, task: Task | None, fmt) -> str:
    """The dev metric best_dev compares: the task's (default), another metric of its format, or a derived one."""
    if task is None:  # a mixture: the mean of the tasks' metrics (xstilts.training.multitask)
        if name:
            raise UsageError(f"--selection_metric {name}: a multi-task run selects on the mean of the tasks' own dev "
                             f"metrics; leave the flag out")
        return ""
    if not name:
        return task.metric
    known = tuple(getattr(fmt, "metrics", ()) or (task.metric,))
    derived = [m for m, (parts, _) in DERIVED_METRICS.items() if all(p in known for p in parts)]
    if name not in (*known, *derived):
        raise choices_error(f"--selection_metric for task {task.name}", name, [*known, *derived])
    return name


def resolve(task: Task | None, kit_args, data_args, training_args, preset: dict, given: set[str], fmt=None) -> Protocol:
    """The run's protocol from the arguments in force (preset < command line); ``task`` None: a multi-task run.
    Every bad value is a UsageError naming it. Fills the resolved names back into ``kit_args`` (they are recorded
    with the hyperparameters, and so are part of the run's settings)."""
    metric = _selection_metric(kit_args.selection_metric, task, fmt)
    selection = Selection.parse(kit_args.selection or DEFAULT_SELECTION, metric)
    dev_task = _selection_dev_task(kit_args.selection_dev, task)
    if task is None and kit_args.selection_dev:
        raise UsageError("--selection_dev: a multi-task run selects on every task's own dev split; leave it out")
    if not selection.uses_dev and kit_args.early_stopping_patience:
        if "early_stopping_patience" in given:
            raise UsageError(f"--early_stopping_patience {kit_args.early_stopping_patience} needs --selection "
                             f"best_dev (selection {selection.name} does not evaluate during training)")
        logger.info("selection %s: the preset's early_stopping_patience %s does not apply (no evaluation during "
                    "training)", selection.name, kit_args.early_stopping_patience)
        kit_args.early_stopping_patience = None
    kit_args.selection = selection.name
    kit_args.selection_metric = selection.metric or None
    kit_args.selection_dev = dev_task.name if dev_task else None
    kit_args.precision = precision_setting(kit_args.precision)
    return Protocol(selection, dev_task, kit_args.precision, preset)


# ----------------------------------------------------------------------------- the record
def _in_force(name: str, training_args, data_args, kit_args):
    for obj in (kit_args, data_args, training_args):
        if obj is not None and hasattr(obj, name):
            return getattr(obj, name)
    return None


def pooler_init(model, handoff: dict | None) -> str | None:
    """Where the weights of the model's pooler came from (None: the model has no pooler)."""
    if model is None:
        return None
    keys = [k for k in model.state_dict() if ".pooler." in f".{k}"]
    if not keys:
        return None
    fresh = [k for k in (handoff or {}).get("encoder_tensors_not_in_checkpoint", []) if ".pooler." in f".{k}"]
    return "fresh (not in the checkpoint: random init)" if fresh else "checkpoint"


def _same(a, b) -> bool:
    """Equal as values: 100 and "100" (a cadence read back as text), 2e-05 and 0.00002."""
    if a == b:
        return True
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return False
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def deviations(values: dict, preset: dict, pooler: str | None) -> list[dict]:
    """Every deviation from the preset's source that applies to a run whose protocol values are ``values``."""
    info = preset.get("info") or {}
    reference = info.get("reference") or {}
    out = []
    notes = info.get("notes") or {}
    for dim in DIMENSIONS:
        if dim in reference and not _same(values.get(dim), reference[dim]):
            entry = {"name": dim, "kind": "switch", "kit": values.get(dim), "source": reference[dim],
                     "switch": SWITCHES[dim], "effect": EFFECTS[dim]}
            if dim in notes:  # the preset's reason for this difference
                entry["text"] = notes[dim]
            out.append(entry)
    given = set(preset.get("cli_overrides") or [])
    preset_values = preset.get("values") or {}
    for key in sorted(set(preset_values) | set(DIMENSIONS)):
        if key in reference or key == "seed" or not given & set(_FLAGS_OF_KEY.get(key, (key,))):
            continue  # the source's value is known (above); seeds are replicates; not changed by hand
        now, before = values.get(f"{key}_setting", values.get(key)), preset_values.get(key)
        if not _same(now, before):
            out.append({"name": key, "kind": "command line", "kit": now, "preset": before,
                        "effect": EFFECTS.get(key, "the command line changed the preset's value [unknown effect]")})
    if pooler and pooler.startswith("fresh"):
        out.append({"name": "pooler_init", "kind": "hand-off", "kit": pooler,
                    "source": "the pretrained checkpoint's pooler (the references have no phase 2)",
                    "effect": EFFECTS["pooler_init"]})
    for name, text in sorted(notes.items()):
        if name not in DIMENSIONS:  # a dimension's note goes with its deviation, only while it applies
            out.append({"name": name, "kind": "recorded", "text": text})
    return out


def record(protocol: Protocol, task: Task | None, training_args, data_args, kit_args, *, model=None,
           handoff: dict | None = None) -> dict:
    """The ``protocol`` block of a result or phase-2 meta (``task`` None: a multi-task run)."""
    preset = protocol.preset
    info = preset.get("info") or {}
    reference = info.get("reference") or {}
    sel = protocol.selection
    cadence = eval_cadence(_in_force("eval_steps_or_epoch", training_args, data_args, kit_args) or "epoch")
    values = {dim: _in_force(dim, training_args, data_args, kit_args) for dim in DIMENSIONS}
    values.update(seed=training_args.seed, precision=effective_precision(training_args),
                  precision_setting=protocol.precision, selection=sel.name,
                  selection_metric=sel.metric or None,
                  selection_dev=protocol.selection_dev.name if protocol.selection_dev else None)
    for key in preset.get("values") or {}:
        if key not in values:
            values[key] = cadence if key == "eval_steps" else _in_force(key, training_args, data_args, kit_args)
    pooler = pooler_init(model, handoff)
    dev = protocol.selection_task(task).dev if task is not None else None
    selection = {
        "rule": sel.name,
        "description": sel.describe(cadence if sel.uses_dev else None),
        "dev": dev.describe() if dev is not None else ("every task's own English dev split" if task is None
                                                       else None),
        "dev_of_task": (protocol.selection_dev.name if protocol.selection_dev else (task.name if task else None)),
        "rows": (f"the first {data_args.max_eval_samples}" if data_args.max_eval_samples else "all"),
        "metric": (sel.metric or "average") if sel.uses_dev else None,
        "cadence": cadence if sel.uses_dev else None,
        "early_stopping_patience": kit_args.early_stopping_patience if sel.uses_dev else None,
    }
    return {
        "preset": preset.get("name"),
        "source": preset.get("source"),
        "commit": preset.get("commit"),
        "cite": info.get("cite") or [],
        "selection": selection,
        "train_sampling": training_args.train_sampling_strategy,
        "precision": {"setting": protocol.precision, "in_force": effective_precision(training_args)},
        "seed": {"run": training_args.seed, "source": reference.get("seed"), "policy": SEED_POLICY},
        "pooler_init": pooler,
        "deviations": deviations(values, preset, pooler),
    }
