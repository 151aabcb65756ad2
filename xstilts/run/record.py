"""The record of a run: what every result (results.json) and phase-2 checkpoint (xstilts_meta.json) says about
how it was made: the model, the task and its metric, the preset and hyperparameters, the data sources, the run's
settings and the provenance."""

from __future__ import annotations

import os
from pathlib import Path

from ..data.sources import describe_source
from ..files import atomic_write_json, file_mode
from ..paths import kit_relative
from ..provenance import provenance
from ..tasks.translated import TRANSLATE_TRAIN
from ..training.modeling import count_parameters
from .results import SCHEMA_VERSION, check_selection


def hyperparameters(training_args, data_args, kit_args, fmt=None) -> dict:
    """The training hyperparameters in force (after the preset, the command line and the kit's derivations), with
    the settings the run's format took from the arguments (``fmt.options``: span QA's window settings)."""
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
                "max_eval_samples": data_args.max_eval_samples,
                "effective_train_batch_size": kit_args.effective_train_batch_size,
                "early_stopping_patience": kit_args.early_stopping_patience,
                "world_size": int(os.environ.get("WORLD_SIZE", "1"))})
    # the protocol's settings as resolved (xstilts.run.protocol): part of what makes two runs the same run
    out.update({k: getattr(kit_args, k, None) for k in ("selection", "selection_dev", "selection_metric", "precision")})
    if fmt is not None:
        out.update(fmt.options)  # span QA: doc_stride, max_query_length, ... as in force
    source = getattr(kit_args, "learning_rate_source", None)  # xstilts.run.overlay; not part of a run's identity
    if source is not None:
        out["learning_rate_source"] = source
    return out


def model_record(run, model) -> dict:
    cfg = model.config
    encoder = model.base_model if hasattr(model, "base_model") else model
    return {
        "name": run.model.name,
        "path_or_id": run.model.path_or_id,
        "registered": run.model.registered,
        "tiny": run.model.tiny,
        "n_params": count_parameters(encoder),
        "n_params_with_head": count_parameters(model),
        "num_layers": getattr(cfg, "num_hidden_layers", None),
        "hidden_size": getattr(cfg, "hidden_size", None),
        "vocab_size": getattr(cfg, "vocab_size", None),
        "model_type": getattr(cfg, "model_type", None),
        "attn_implementation": getattr(cfg, "_attn_implementation", None),
    }


def translate_train_record(run) -> dict:
    """How a result relates to zero-shot transfer: ``zero_shot`` false for a translate-train run (trained on
    machine-translated target-task data too), with its training languages and the translation used."""
    if getattr(run, "train_languages", None) is None:
        return {"zero_shot": True}
    return {"zero_shot": False, "train_languages": list(run.train_languages),
            "translate_train": {"label": run.train_label, "translation": TRANSLATE_TRAIN[run.task.name].about}}


def base_result(run, model, *, seed: int, preset: dict | None, training_args=None, data_args=None,
                kit_args=None) -> dict:
    return {
        **translate_train_record(run),
        "schema_version": SCHEMA_VERSION,
        "kind": run.kind,
        "model": model_record(run, model),
        "intermediate_task": intermediate_of(run.intermediate_meta) if run.kind != "intermediate" else None,
        "intermediate_checkpoint": run.init_path if run.intermediate_meta else None,
        "intermediate_meta": meta_summary(run.intermediate_meta),
        "target_task": run.task.name if run.kind != "intermediate" else None,
        "task": run.task.name,
        "format": run.task.format,
        "metric": run.task.metric,
        "seed": seed,
        "languages": run.languages,
        "preset": preset,
        "hyperparameters": hyperparameters(training_args, data_args, kit_args, run.format)
                           if training_args is not None else {},
        # the format's set-up of this task (its settings and the task-dependent choices it made)
        "format_settings": run.format.settings(run.task) if run.format is not None else None,
        "data": {"data_root": str(run.data_root) if run.data_root else None, "sources": sources(run)},
        "run_settings": run.fingerprint,  # = xstilts_run.json: what makes this the result of this run
        "provenance": provenance(),
        **({"replaces": run.replaces} if getattr(run, "replaces", None) else {}),  # a diverged run's replacement
    }


def intermediate_of(meta: dict | None) -> str | None:
    """The intermediate task of the cell a checkpoint belongs to: the phase-2 task, or for an encoder recipe's
    checkpoint the cell's own intermediate (None: fine-tuned from the pretrained model), not the recipe's task."""
    if not meta:
        return None
    recipe = meta.get("encoder_recipe")
    if recipe:
        return (recipe.get("base") or {}).get("intermediate")
    return meta.get("task")


def meta_summary(meta: dict | None) -> dict | None:
    if not meta:
        return None
    keys = ("task", "tasks", "seed", "dev_metric", "global_step", "preset", "model", "hyperparameters",
            "provenance", "selection", "protocol", "hub", "divergence", "encoder_recipe")
    return {k: meta[k] for k in keys if k in meta}


def describe(data, fmt, source, code: str | None = None) -> dict:
    """A source as the record shows it: its declaration, where the run read it (``data``: option directories) and
    what the run's format ``fmt`` learnt from it (the label set read from a train split)."""
    out = describe_source(source, data, code)
    if fmt is not None:
        out.update(fmt.describe_source(source))
    return out


def sources(run) -> list[dict]:
    """Every source the run read, with its role."""
    t = run.task
    out = []

    def desc(source, code=None):
        return describe(run.data, run.format, source, code)

    if run.kind != "retrieval":
        if t.train:
            out.append(dict(desc(t.train), role="train"))
        if t.dev:
            out.append(dict(desc(t.dev, t.code(t.dev_language)), role="dev (checkpoint selection)"))
    if run.kind != "intermediate" and t.test:
        own = [l for l in run.languages if l in t.lang_sources]
        main = [l for l in run.languages if l not in t.lang_sources]
        if main:
            if "{code}" in t.test.config:
                out.append(dict(desc(t.test, "{code}"), role="evaluation",
                                codes={l: t.code(l) for l in main}))
            else:
                out.append(dict(desc(t.test), role="evaluation", languages=main))
        for lang in own:  # languages read from another dataset (XTREME-R additions)
            src = t.lang_sources[lang]
            out.append(dict(desc(src, t.code(lang)), role="evaluation", languages=[lang]))
    return out


def average(per_language: dict, metric: str) -> float | None:
    """The mean over languages; None when a score is null (a diverged run with no selected model)."""
    vals = [m[metric] for m in per_language.values()]
    if any(v is None for v in vals):
        return None
    return float(sum(vals) / len(vals)) if vals else float("nan")


def write_phase2_meta(path: Path, meta: dict) -> None:
    """Write a phase-2 checkpoint's xstilts_meta.json (last: it marks the checkpoint finished), refusing one whose
    selection is empty (see ``results.check_selection``). The weights get the mode the user's umask gives
    (safetensors writes them 0600), so a group can share the checkpoint."""
    check_selection(meta.get("selection"), str(path))
    if not meta.get("run_settings"):
        raise ValueError(f"{path}: a phase-2 meta must record its run_settings")
    for weights in path.parent.glob("*.safetensors"):
        os.chmod(weights, file_mode())
    atomic_write_json(path, meta)
