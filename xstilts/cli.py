"""Command-line arguments shared by the three phase scripts (HfArgumentParser dataclasses).

Precedence, lowest first: TrainingArguments defaults < kit defaults < preset file
(``configs/presets/<name>.json``: defaults, then the task, then the model's overrides) < flags given
on the command line. Every resolved value and the flags given by hand are stored with each result.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError, choices_error
from .paths import PRESETS

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model: str = field(default="tiny-2l-h64", metadata={
        "help": "Model registry name (configs/models.json), a local model directory, or a Hub id org/name."})
    intermediate_checkpoint: str | None = field(default=None, metadata={
        "help": "Phase-2 encoder checkpoint (run_intermediate.py output) to start from instead of the pretrained model."})


@dataclass
class DataArguments:
    task: str = field(default=None, metadata={"help": "Task name from the registry (xstilts/registry.py)."})
    # --help lists the valid task, model and preset names: add_choices_to_help, from the registries
    languages: str = field(default="all", metadata={"help": "Evaluation languages: a comma list, 'xtreme' (XTREME's list), 'xtreme-r' (XTREME-R's), 'all' (both), or 'available' (those with data under --data_root: partial mirrors)."})
    data_root: str | None = field(default=None, metadata={
        "help": "Local directory mirroring the Hub layout (<root>/<org>/<dataset>/...). Also $XSTILTS_DATA_ROOT."})
    max_seq_length: int = field(default=128, metadata={"help": "Maximum tokens per input (truncation)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Cap on training examples (debugging)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Cap on dev examples used for selection."})
    eval_split: str = field(default="test", metadata={"help": "Split evaluated zero-shot: test or validation."})
    # span QA (xstilts/formats/span_qa.py); None = the format's default, shown in the help
    doc_stride: int | None = field(default=None, metadata={
        "help": "QA: overlap in tokens between consecutive context windows (default 128)."})
    max_query_length: int | None = field(default=None, metadata={
        "help": "QA: questions are cut to this many tokens (default 64)."})
    max_answer_length: int | None = field(default=None, metadata={
        "help": "QA: longest predicted answer in tokens (default 30)."})
    n_best_size: int | None = field(default=None, metadata={
        "help": "QA: start and end candidates per window in post-processing (default 20)."})
    null_score_diff_threshold: float | None = field(default=None, metadata={
        "help": "QA with unanswerable questions (squad_v2): predict no answer when null score - best span "
                "score > this (default 0.0)."})
    # licensed data that is not on the Hub (xstilts/local_data.py)
    ccg_dir: str | None = field(default=None, metadata={
        "help": "CCG (task ccg): directory with train.txt/dev.txt, one sentence per line of word|supertag tokens; "
                "convert CCGbank (LDC2005T13) AUTO files with `python -m xstilts.ccg convert` (docs/tagging.md)."})


@dataclass
class KitArguments:
    preset: str = field(default="xtreme", metadata={"help": "Hyperparameter preset: configs/presets/<name>.json."})
    effective_train_batch_size: int | None = field(default=None, metadata={
        "help": "Effective batch (per-device x accumulation x devices). Gradient accumulation is derived from it."})
    eval_steps_or_epoch: str | None = field(default=None, metadata={
        "help": "Evaluate/save on English dev every N steps, or 'epoch' (set by the preset)."})
    early_stopping_patience: int | None = field(default=None, metadata={
        "help": "Stop after this many dev evaluations without improvement (None: never)."})
    overwrite: bool = field(default=False, metadata={
        "help": "Replace an existing finished result/checkpoint. Without it a finished run is skipped."})
    keep_checkpoints: bool = field(default=False, metadata={
        "help": "Keep the intermediate Trainer checkpoints after a successful run (default: delete them)."})
    write_predictions: str | None = field(default=None, metadata={
        "help": "Also write predictions in the XTREME leaderboard layout under DIR/<task>/test-<lang>.tsv."})
    write_labels: str | None = field(default=None, metadata={
        "help": "Write the gold labels of the evaluated split in the same layout (score with python -m xstilts.score)."})


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.json"))


def load_preset(name: str, task: str, model_name: str) -> tuple[dict, dict]:
    """Resolve a preset for (task, model). Returns (values, the preset's descriptive header)."""
    path = PRESETS / f"{name}.json"
    if not path.exists():
        raise choices_error("preset", name, available_presets())
    data = json.loads(path.read_text())
    values = dict(data.get("defaults", {}))
    if task not in data.get("tasks", {}):
        raise UsageError(f"preset {name!r} has no settings for task {task!r}; it covers: "
                         f"{', '.join(sorted(data.get('tasks', {})))}")
    values.update(data["tasks"][task])
    values.update(data.get("by_model", {}).get(model_name, {}).get(task, {}))
    header = {k: data.get(k) for k in ("name", "description", "source")}
    return values, header


def add_choices_to_help(parser, phase: str | None = None) -> None:
    """Append the valid values to the help of --task (the tasks of ``phase``; every task by phase when None),
    --model (configs/models.json) and --preset (configs/presets/), read from the registries each time."""
    from .run.models import registry as model_registry
    from .registry import TASKS

    phases = [phase] if phase else sorted({t.phase for t in TASKS.values()})
    tasks = "; ".join((f"{ph}: " if not phase else "") + ", ".join(t.name for t in TASKS.values() if t.phase == ph)
                      for ph in phases)
    extra = {"task": f"Valid {phase + ' ' if phase else ''}tasks: {tasks}.",
             "model": f"Registry names: {', '.join(model_registry())}.",
             "preset": f"Valid presets: {', '.join(available_presets())}."}
    for action in parser._actions:  # argparse keeps no public handle on an added argument's help
        if action.dest in extra:
            action.help = f"{action.help} {extra[action.dest]}".replace("%", "%%")


def unknown_arguments_error(parser, rest: list[str]) -> UsageError:
    """A UsageError for command-line words no field takes, suggesting the closest flag (a misspelling)."""
    import difflib

    flags = sorted({o for a in parser._actions for o in a.option_strings if o.startswith("--")})
    unknown = [w.split("=", 1)[0] for w in rest if w.startswith("-")]
    if not unknown:
        return UsageError(f"unexpected argument(s) {' '.join(rest)!r}: every value follows its --flag "
                          f"(e.g. --languages en,de); --help lists the flags")
    parts = []
    for flag in unknown:
        close = difflib.get_close_matches(flag, flags, n=1, cutoff=0.6)
        parts.append(f"{flag!r}" + (f" (did you mean {close[0]}?)" if close else ""))
    return UsageError(f"unknown argument{'s' if len(parts) > 1 else ''} {', '.join(parts)}; --help lists the flags")


def parse_dataclasses(parser, argv: list[str]) -> list:
    """``parser.parse_args_into_dataclasses`` with the kit's exits: a misspelt or unknown flag is a UsageError
    naming the closest valid flag (HfArgumentParser raises a bare ValueError); argparse's own errors exit 2."""
    try:
        *parsed, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except SystemExit as e:
        if e.code not in (0, None):
            raise SystemExit(2) from None
        raise
    if rest:
        raise unknown_arguments_error(parser, rest)
    return parsed


def eval_cadence(value) -> str | int:
    """``--eval_steps_or_epoch``: 'epoch' or a whole number of steps >= 1 (else a UsageError naming it)."""
    text = str(value).strip()
    if text == "epoch":
        return "epoch"
    try:
        n = float(text)
    except ValueError:
        n = None
    if n is None or not n.is_integer() or n < 1:
        raise UsageError(f"--eval_steps_or_epoch {text!r}: expected 'epoch' or a whole number of steps >= 1")
    return int(n)


def check_values(data_args, kit_args, training_args, given: set[str], preset: str) -> None:
    """Numbers that would crash later, be silently replaced, or train nothing: refused before any work, naming
    the flag and its value (and the preset when the value came from it)."""

    def refuse(name: str, value, expected: str):
        origin = "" if name in given else f" (from preset {preset!r})"
        raise UsageError(f"--{name} {value!r}{origin}: {expected}")

    for obj, name in ((data_args, "max_train_samples"), (data_args, "max_eval_samples")):
        v = getattr(obj, name)
        if v is not None and v < 1:
            refuse(name, v, "expected a number of examples >= 1 (leave the flag out to use every example)")
    for obj, name in ((data_args, "max_seq_length"), (training_args, "per_device_train_batch_size"),
                      (training_args, "per_device_eval_batch_size"), (training_args, "gradient_accumulation_steps"),
                      (kit_args, "effective_train_batch_size")):
        v = getattr(obj, name)
        if v is not None and v < 1:
            refuse(name, v, "expected a whole number >= 1")
    if kit_args.eval_steps_or_epoch is not None:
        try:
            eval_cadence(kit_args.eval_steps_or_epoch)
        except UsageError:
            refuse("eval_steps_or_epoch", kit_args.eval_steps_or_epoch,
                   "expected 'epoch' or a whole number of steps >= 1")
    if training_args.learning_rate < 0:
        refuse("learning_rate", training_args.learning_rate, "expected a learning rate > 0")
    if training_args.learning_rate == 0:  # kept for diagnostics (tests compare runs that hold the same model)
        logger.warning("--learning_rate 0: the weights never change; the result is that of the initial model "
                       "with a fresh head (stored with learning_rate 0)")
    if training_args.max_steps == 0 or training_args.max_steps < -1:
        refuse("max_steps", training_args.max_steps,
               "expected a number of optimizer steps >= 1, or -1 (the default) to train --num_train_epochs epochs")
    if training_args.max_steps < 0 and training_args.num_train_epochs <= 0:
        refuse("num_train_epochs", training_args.num_train_epochs,
               "the run would train zero steps; expected a number of epochs > 0 (or --max_steps N >= 1)")


def flags_given(argv: list[str]) -> set[str]:
    out = set()
    for a in argv:
        if a.startswith("--"):
            out.add(a[2:].split("=", 1)[0])
    return out


def _prescan(argv: list[str], name: str, default=None):
    for i, a in enumerate(argv):
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return default


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


EVAL_BATCH_SIZE = 128  # kit default --per_device_eval_batch_size (bench/bench_eval.py measures it)


def _bf16_available() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


# ----------------------------------------------------------------------------- DeepSpeed selection
# Precedence: the model registry's "deepspeed" entry (configs/models.json) < --deepspeed PATH on the command
# line; --deepspeed none switches it off. The choice and where it came from are logged and stored with the
# result (preset.deepspeed and hyperparameters.deepspeed / deepspeed_zero_stage).
DEEPSPEED_OFF = ("none", "null", "off", "false", "no", "")
_SINGLE_PROCESS_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


def _drop_flag(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == f"--{name}":
            skip = i + 1 < len(argv)
            continue
        if a.startswith(f"--{name}="):
            continue
        out.append(a)
    return out


def _replace_flag(argv: list[str], name: str, value: str) -> list[str]:
    return _drop_flag(argv, name) + [f"--{name}", value]


def kit_relative(path: str | Path) -> str:
    """``path`` relative to the kit root when it lies inside it (stable across checkouts), else absolute."""
    from .paths import KIT_ROOT

    p = Path(path).resolve()
    try:
        return str(p.relative_to(KIT_ROOT))
    except ValueError:
        return str(p)


def resolve_deepspeed_path(spec: str) -> Path:
    """A DeepSpeed config path, relative to the working directory or else to the kit root."""
    from .paths import KIT_ROOT

    for p in (Path(spec), KIT_ROOT / spec):
        if p.is_file():
            return p.resolve()
    shipped = sorted(kit_relative(p) for p in (KIT_ROOT / "ds_configs").glob("*.json"))
    raise choices_error("DeepSpeed config", spec, shipped + ["none"],
                        "Give an existing JSON file, or 'none' to train without DeepSpeed")


def read_deepspeed_config(path: str | Path) -> dict:
    try:
        cfg = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise UsageError(f"DeepSpeed config {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise UsageError(f"DeepSpeed config {str(path)!r} is not a JSON object")
    for block in ("scheduler", "optimizer"):
        if block in cfg:
            logger.warning("DeepSpeed config %s has a %r block: it replaces the Trainer's %s (and the preset's "
                           "settings for it). The kit's configs in ds_configs/ have none on purpose.", path, block,
                           "linear-decay schedule" if block == "scheduler" else "AdamW")
    return cfg


def select_deepspeed(argv: list[str], model_name: str, training: bool) -> tuple[list[str], Path | None, str]:
    """Decide the DeepSpeed config before TrainingArguments exist. Returns (argv, path or None, source)."""
    from .run.models import registry

    given = _prescan(argv, "deepspeed")
    if given is not None:
        if given.strip().lower() in DEEPSPEED_OFF:
            return _drop_flag(argv, "deepspeed"), None, "off (--deepspeed none on the command line)"
        path = resolve_deepspeed_path(given)
        return _replace_flag(argv, "deepspeed", str(path)), path, "command line (--deepspeed)"
    entry = registry().get(model_name)
    if entry is None:
        return argv, None, "off (model not in the registry, no --deepspeed)"
    if not training or not entry.get("deepspeed"):
        return argv, None, f"off (model registry: no DeepSpeed config for {model_name})"
    try:
        path = resolve_deepspeed_path(entry["deepspeed"])
    except UsageError as e:
        raise UsageError(f"configs/models.json entry {model_name!r}: {e}") from None
    return argv, path, f"model registry ({model_name}; --deepspeed none to switch off)"


def ensure_distributed_env() -> dict[str, str]:
    """DeepSpeed needs a process group even for one process. Under a launcher (torchrun, deepspeed,
    accelerate launch, srun with the variables set) RANK/LOCAL_RANK/WORLD_SIZE exist and nothing changes;
    a plain ``python run_*.py`` gets the single-process values (and a free MASTER_PORT), logged."""
    if any(k in os.environ for k in _SINGLE_PROCESS_ENV):
        return {}
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": os.environ.get("MASTER_ADDR", "127.0.0.1"),
           "MASTER_PORT": os.environ.get("MASTER_PORT", str(port))}
    os.environ.update(env)
    return env


def refresh_deepspeed_config(training_args) -> dict | None:
    """Re-fill the DeepSpeed config's "auto" values after the kit changed batch / accumulation.

    TrainingArguments fills them in ``__post_init__``, i.e. before ``finalize_training_args`` derives the
    per-device batch and accumulation from the preset's effective batch; without this the DeepSpeed config
    would carry the parser's defaults. Returns a summary that is logged and stored with the result."""
    if not training_args.deepspeed:
        return None
    from accelerate.utils import DeepSpeedPlugin
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    training_args.hf_deepspeed_config = HfTrainerDeepSpeedConfig(training_args.deepspeed)
    training_args.hf_deepspeed_config.trainer_config_process(training_args)
    training_args.deepspeed_plugin = DeepSpeedPlugin(hf_ds_config=training_args.hf_deepspeed_config)
    cfg = training_args.hf_deepspeed_config.config
    zero = cfg.get("zero_optimization", {}) or {}
    summary = {
        "config": kit_relative(training_args.deepspeed),
        "zero_stage": zero.get("stage", 0),
        "offload_optimizer": (zero.get("offload_optimizer") or {}).get("device"),
        "offload_param": (zero.get("offload_param") or {}).get("device"),
        "train_micro_batch_size_per_gpu": cfg.get("train_micro_batch_size_per_gpu"),
        "gradient_accumulation_steps": cfg.get("gradient_accumulation_steps"),
        "train_batch_size": cfg.get("train_batch_size"),
        "dtype": str(training_args.hf_deepspeed_config.dtype()).replace("torch.", ""),
        "gather_16bit_weights_on_model_save": zero.get("stage3_gather_16bit_weights_on_model_save"),
    }
    logger.info("DeepSpeed: %s, ZeRO stage %s, %s; batch %s per device x %s accumulation x %s processes = %s",
                summary["config"], summary["zero_stage"], summary["dtype"], summary["train_micro_batch_size_per_gpu"],
                summary["gradient_accumulation_steps"], training_args.world_size, summary["train_batch_size"])
    return summary


def parse_args(argv: list[str] | None = None, *, extra: tuple = (), phase: str | None = None):
    """Parse (ModelArguments, DataArguments, KitArguments, TrainingArguments, *extra) with the preset applied.
    ``phase`` (intermediate / target): whose tasks --help lists.

    Returns (model_args, data_args, kit_args, training_args, extras, preset_info, flags_given).
    """
    from transformers import HfArgumentParser, TrainingArguments

    argv = list(sys.argv[1:] if argv is None else argv)
    given = flags_given(argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, KitArguments, TrainingArguments, *extra))
    add_choices_to_help(parser, phase)

    preset_name = _prescan(argv, "preset", "xtreme")
    task = _prescan(argv, "task")
    model = _prescan(argv, "model", ModelArguments.model)
    preset_values, header = ({}, {"name": preset_name})
    training = False
    if task is not None:
        from .registry import get_task

        t = get_task(task)  # unknown task -> UsageError listing valid ones
        training = t.phase != "retrieval"
        if training:
            from .run.models import registry

            model_key = model if model in registry() else ""
            preset_values, header = load_preset(preset_name, task, model_key)

    defaults = {
        # kit defaults (fast and explicit): dynamic padding happens in the collator
        "report_to": "none",
        "train_sampling_strategy": "group_by_length",
        "logging_steps": 10,
        "save_total_limit": 2,
        "seed": 1,
        "disable_tqdm": False,
        "dataloader_pin_memory": _cuda_available(),
        # evaluation runs every language in one length-sorted pass: large batches cost little padding there
        # (bench/bench_eval.py); the HF default is 8
        "per_device_eval_batch_size": EVAL_BATCH_SIZE,
        # one fused AdamW kernel for all parameters (transformers 5's default, pinned here so it is explicit)
        "optim": "adamw_torch_fused",
        # bf16 mixed precision wherever the GPU supports it (Ampere and later); fp32 on CPU. --bf16 false to disable
        "bf16": _bf16_available(),
    }
    for k, v in preset_values.items():
        if k == "eval_steps":
            defaults["eval_steps_or_epoch"] = str(v)
        else:
            defaults[k] = v
    argv, ds_path, ds_source = select_deepspeed(argv, model, training)
    ds_env = {}
    if ds_path is not None:
        read_deepspeed_config(ds_path)
        defaults["deepspeed"] = str(ds_path)
        ds_env = ensure_distributed_env()  # before TrainingArguments.__post_init__ initialises the process group
    parser.set_defaults(**defaults)
    model_args, data_args, kit_args, training_args, *extras = parse_dataclasses(parser, argv)
    if data_args.task is None:
        raise UsageError("--task is required")
    check_values(data_args, kit_args, training_args, given, preset_name)
    from .local_data import set_option_dirs

    set_option_dirs(ccg_dir=data_args.ccg_dir)  # this run's local data directories (nothing carries over)
    preset_info = dict(header, values=preset_values, cli_overrides=sorted(given - {"output_dir"}),
                       deepspeed={"config": kit_relative(ds_path) if ds_path else None, "source": ds_source})
    kit_args.deepspeed_source, kit_args.deepspeed_env = ds_source, ds_env  # logged by finalize_training_args
    fmt = task_format(data_args.task)
    if fmt is not None and hasattr(fmt, "configure"):
        fmt.configure(data_args)  # format-specific DataArguments fields (span QA: doc_stride, ...), validated now
    return model_args, data_args, kit_args, training_args, extras, preset_info, given


def finalize_training_args(training_args, kit_args, model_entry, given: set[str], *, world_size: int | None = None):
    """Derive per-device batch / accumulation from the effective batch; set evaluation cadence."""
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size is None and env_world > 1 and not training_args.deepspeed and training_args.world_size == 1:
        # every process would train alone on the whole data and write the same files
        raise UsageError(f"WORLD_SIZE={env_world}: a launcher started {env_world} processes, but the Trainer found no "
                         f"distributed backend and runs each one alone (no GPU visible: on CPUs pass --use_cpu true, "
                         f"which uses gloo; or run one process without the launcher)")
    world = world_size or env_world
    eff = kit_args.effective_train_batch_size
    if eff is not None:
        if "per_device_train_batch_size" in given:
            per_dev = training_args.per_device_train_batch_size
        else:
            per_dev = min(model_entry.per_device_train_batch_size or 8, eff)
        per_dev = max(1, min(per_dev, max(1, eff // world)))
        while eff % (per_dev * world):
            per_dev -= 1
            if per_dev == 0:
                raise UsageError(f"effective_train_batch_size {eff} is not divisible by the world size {world}")
        training_args.per_device_train_batch_size = per_dev
        if "gradient_accumulation_steps" not in given:
            training_args.gradient_accumulation_steps = eff // (per_dev * world)
    cadence = eval_cadence(kit_args.eval_steps_or_epoch or "epoch")
    if cadence == "epoch":
        training_args.eval_strategy = "epoch"
        training_args.save_strategy = "epoch"
    else:
        n = cadence
        training_args.eval_strategy = "steps"
        training_args.save_strategy = "steps"
        training_args.eval_steps = n
        training_args.save_steps = n
    source = getattr(kit_args, "deepspeed_source", None)
    if training_args.deepspeed:
        logger.info("DeepSpeed config from %s", source)
        if getattr(kit_args, "deepspeed_env", None):
            logger.info("DeepSpeed without a launcher: running as a single process (%s)",
                        " ".join(f"{k}={v}" for k, v in kit_args.deepspeed_env.items()))
        refresh_deepspeed_config(training_args)
    elif source:
        logger.info("DeepSpeed: %s", source)
    return training_args


def task_format(task_name: str | None):
    """The format module of a registered task (None for unknown tasks and non-trainable formats)."""
    from .formats import FORMATS, get_format
    from .registry import TASKS

    task = TASKS.get(task_name) if task_name else None
    return get_format(task.format) if task is not None and task.format in FORMATS else None


def hyperparameters(training_args, data_args, kit_args) -> dict:
    keys = ["learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
            "gradient_accumulation_steps", "warmup_steps", "weight_decay", "max_grad_norm",
            "adam_epsilon", "adam_beta1", "adam_beta2", "lr_scheduler_type", "seed", "bf16", "fp16",
            "eval_strategy", "eval_steps", "train_sampling_strategy", "per_device_eval_batch_size", "optim",
            "deepspeed"]
    out = {}
    for k in keys:
        v = getattr(training_args, k, None)
        out[k] = v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
    if training_args.deepspeed:
        out["deepspeed"] = kit_relative(training_args.deepspeed) if isinstance(training_args.deepspeed, str) \
            else out["deepspeed"]
        ds = getattr(training_args, "hf_deepspeed_config", None)
        out["deepspeed_zero_stage"] = ((ds.config.get("zero_optimization") or {}).get("stage", 0)) if ds else None
    out.update({"max_seq_length": data_args.max_seq_length, "max_train_samples": data_args.max_train_samples,
                "effective_train_batch_size": kit_args.effective_train_batch_size,
                "early_stopping_patience": kit_args.early_stopping_patience,
                "world_size": int(os.environ.get("WORLD_SIZE", "1"))})
    fmt = task_format(data_args.task)
    if fmt is not None and hasattr(fmt, "settings"):
        out.update(fmt.settings())  # span QA: doc_stride, max_query_length, ... as in force
    return out


def setup_logging(training_args=None) -> None:
    level = logging.INFO
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=level, stream=sys.stdout)
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_warning()
    datasets.utils.logging.set_verbosity_warning()
    datasets.disable_progress_bars()  # Trainer and embedding progress bars stay on
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # CPU-feature probing noise


def default_output_dir(kind: str, model_name: str, task: str, seed: int, intermediate: str | None) -> str:
    if kind == "intermediate":
        return str(Path("checkpoints") / model_name / task)
    return str(Path("results") / model_name / (intermediate or "none") / task / f"seed{seed}")
