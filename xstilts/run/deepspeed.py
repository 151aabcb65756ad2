"""DeepSpeed: which config a run uses (``select_deepspeed``), and the kit's derived batch sizes put into it
(``refresh_deepspeed_config``)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import UsageError, choices_error
from ..paths import KIT_ROOT, kit_relative
from . import models
from .args import drop_flag, prescan, replace_flag

logger = logging.getLogger(__name__)

# Precedence: the model registry's "deepspeed" entry (configs/models.json) < --deepspeed PATH on the command
# line; --deepspeed none switches it off. The choice and where it came from are logged and stored with the
# result (preset.deepspeed and hyperparameters.deepspeed / deepspeed_zero_stage).
DEEPSPEED_OFF = ("none", "null", "off", "false", "no", "")
_SINGLE_PROCESS_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


def resolve_deepspeed_path(spec: str) -> Path:
    """A DeepSpeed config path, relative to the working directory or else to the kit root."""
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
    given = prescan(argv, "deepspeed")
    if given is not None:
        if given.strip().lower() in DEEPSPEED_OFF:
            return drop_flag(argv, "deepspeed"), None, "off (--deepspeed none on the command line)"
        path = resolve_deepspeed_path(given)
        return replace_flag(argv, "deepspeed", str(path)), path, "command line (--deepspeed)"
    entry = models.registry().get(model_name)
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
