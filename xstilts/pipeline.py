"""Steps shared by the three phase scripts: validate everything first, then do the expensive work.

``prepare`` resolves and checks the task, languages, model, data root and phase-2 checkpoint (all cheap);
``claim_output_dir`` then locks the output directory, checks its settings and decides whether the run is already
finished, before any model or dataset loads (see xstilts/rundir.py for the lock and the superseding).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from . import data as data_lib
from .cli import default_output_dir, hyperparameters
from .errors import UsageError
from .hub import intermediate_checkpoint
from .models import ModelEntry, resolve_model
from .modeling import META_FILE, count_parameters
from .registry import Task, get_task, parse_languages
from .results import (RESULTS_FILE, RUN_FILE, SCHEMA_VERSION, ResultsSchemaError, atomic_write_json, check_selection,
                      provenance, read_results)

logger = logging.getLogger(__name__)


@dataclass
class Run:
    kind: str  # intermediate | target | retrieval
    task: Task
    languages: list[str]
    model: ModelEntry
    data_root: Path | None
    output_dir: Path
    init_path: str  # what the weights are loaded from (pretrained model or phase-2 checkpoint)
    intermediate_meta: dict | None
    skip: bool = False
    fingerprint: dict | None = None  # the settings (claim_output_dir); stored with the result as run_settings


def available_languages(task, data_root) -> list[str]:
    """``--languages available``: the task's languages (XTREME and XTREME-R) whose evaluation data exists under
    a local data root. For partial mirrors (the test fixtures, a pilot); the list is stored with the result."""
    if data_root is None:
        raise UsageError("--languages available needs --data_root (a local mirror); against the Hub pass "
                         "xtreme, xtreme-r, all or a comma list")
    found, missing = [], []
    for lang in task.all_languages:
        try:
            if task.test is not None:
                data_lib.check_source(task.eval_source(lang), data_root, task.code(lang))
            found.append(lang)
        except UsageError:
            missing.append(lang)
    if not found:
        raise UsageError(f"--languages available: no language of task {task.name} has data under {data_root}")
    if missing:
        logger.warning("--languages available: %s has no data under %s for %d of %d languages (skipped): %s",
                       task.name, data_root, len(missing), len(task.all_languages), ", ".join(missing))
    return found


def prepare(kind: str, model_args, data_args, *, seed: int, output_dir: str | None = None,
            need_train: bool = True) -> Run:
    """``output_dir``: given explicitly by the user, else the kit's layout (results/<model>/<inter>/<task>/seed<k>)."""
    phase = {"intermediate": "intermediate", "target": "target", "retrieval": "retrieval"}[kind]
    try:
        task = get_task(data_args.task, phase=phase)
    except UsageError:
        other = get_task(data_args.task)  # exists but in another phase?
        script = {"intermediate": "run_intermediate.py", "target": "run_target.py",
                  "retrieval": "run_retrieval.py"}[other.phase]
        raise UsageError(f"task {other.name!r} is a{'n' if other.phase[0] in 'ai' else ''} {other.phase} task: "
                         f"use {script}") from None
    entry = resolve_model(model_args.model)
    data_root = data_lib.resolve_data_root(data_args.data_root)
    if (data_args.languages or "").strip() == "available":
        languages = available_languages(task, data_root)
    else:
        languages = parse_languages(task, data_args.languages)
    if getattr(data_args, "eval_split", "test") not in ("test", "validation"):
        raise UsageError(f"unknown eval_split {data_args.eval_split!r}; valid choices: test, validation")
    eval_source_is_dev = getattr(data_args, "eval_split", "test") == "validation"
    data_lib.check_task_data(task, languages, data_root, train=need_train, dev=need_train and kind != "retrieval",
                             test=kind != "intermediate" and not eval_source_is_dev)
    if eval_source_is_dev and task.dev is not None:
        for lang in languages:
            data_lib.check_source(task.dev, data_root, task.code(lang))

    meta = None
    init_path = entry.path_or_id
    ckpt = getattr(model_args, "intermediate_checkpoint", None)
    if ckpt:
        if kind == "intermediate":
            raise UsageError("--intermediate_checkpoint is for run_target.py / run_retrieval.py, not phase 2")
        init_path, meta = intermediate_checkpoint(ckpt, entry)  # a folder or a Hub id (xstilts/hub.py)

    if output_dir:
        out = Path(output_dir)
    else:
        out = Path(default_output_dir(kind, entry.name, task.name, seed, meta and meta.get("task")))
    return Run(kind, task, languages, entry, data_root, out, init_path, meta)


def model_record(run: Run, model) -> dict:
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


def base_result(run: Run, model, *, seed: int, preset: dict | None, training_args=None, data_args=None,
                kit_args=None) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": run.kind,
        "model": model_record(run, model),
        "intermediate_task": (run.intermediate_meta or {}).get("task") if run.kind != "intermediate" else None,
        "intermediate_checkpoint": run.init_path if run.intermediate_meta else None,
        "intermediate_meta": _meta_summary(run.intermediate_meta),
        "target_task": run.task.name if run.kind != "intermediate" else None,
        "task": run.task.name,
        "format": run.task.format,
        "metric": run.task.metric,
        "seed": seed,
        "languages": run.languages,
        "preset": preset,
        "hyperparameters": hyperparameters(training_args, data_args, kit_args) if training_args is not None else {},
        "data": {"data_root": str(run.data_root) if run.data_root else None, "sources": _sources(run)},
        "run_settings": run.fingerprint,  # = xstilts_run.json: what makes this the result of this run
        "provenance": provenance(),
    }


def _meta_summary(meta: dict | None) -> dict | None:
    if not meta:
        return None
    keys = ("task", "tasks", "seed", "dev_metric", "global_step", "preset", "model", "hyperparameters",
            "provenance", "selection", "hub")
    return {k: meta[k] for k in keys if k in meta}


def _sources(run: Run) -> list[dict]:
    t = run.task
    out = []
    if run.kind != "retrieval":
        if t.train:
            out.append(dict(t.train.describe(), role="train"))
        if t.dev:
            out.append(dict(t.dev.describe(t.code(t.dev_language)), role="dev (checkpoint selection)"))
    if run.kind != "intermediate" and t.test:
        own = [l for l in run.languages if l in t.lang_sources]
        main = [l for l in run.languages if l not in t.lang_sources]
        if main:
            if "{code}" in t.test.config:
                out.append(dict(t.test.describe("{code}"), role="evaluation",
                                codes={l: t.code(l) for l in main}))
            else:
                out.append(dict(t.test.describe(), role="evaluation", languages=main))
        for lang in own:  # languages read from another dataset (XTREME-R additions)
            src = t.lang_sources[lang]
            out.append(dict(src.describe(t.code(lang)), role="evaluation", languages=[lang]))
    return out


def average(per_language: dict, metric: str) -> float:
    vals = [m[metric] for m in per_language.values()]
    return float(sum(vals) / len(vals)) if vals else float("nan")


def settings_fingerprint(run: Run, **settings) -> dict:
    """What makes two runs the same run: a resumed run must match, else it needs its own directory."""
    fp = {
        "kind": run.kind, "task": run.task.name, "model": run.model.path_or_id, "init_path": run.init_path,
        "languages": run.languages, "data_root": str(run.data_root) if run.data_root else None, **settings,
    }
    return json.loads(json.dumps(fp, default=str))  # as stored: a fingerprint read back compares equal


def _done_file(run: Run) -> Path:
    return run.output_dir / (META_FILE if run.kind == "intermediate" else RESULTS_FILE)


def _recorded(run: Run) -> tuple[dict | None, str]:
    """(the run settings the directory's result or phase-2 checkpoint records, or None; why it is not finished
    when it is not). A phase-2 checkpoint counts only with ``finished``; a result only if valid."""
    path = _done_file(run)
    if not path.exists():
        return None, "absent"
    try:
        if run.kind == "intermediate":
            d = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(d, dict) or not d.get("finished"):
                return None, "not marked finished"
            check_selection(d.get("selection"), str(path))
        else:
            d = read_results(path)
    except (OSError, ValueError, ResultsSchemaError) as e:
        return None, f"not a valid result ({e})"
    settings = d.get("run_settings")
    return settings, "" if settings else "records no run settings (written by an older version of the kit)"


def claim_output_dir(run: Run, fingerprint: dict, overwrite: bool, *, main_process: bool = True) -> None:
    """Lock the run's output directory for this run (the main process, until the script ends), check that it
    holds nothing of other settings, and decide: finished (``run.skip``), or start/resume. Then, from the moment
    the run proceeds, nothing an earlier run left can be taken for this run's output: a result or phase-2
    checkpoint that is not this run's (with --overwrite: everything the directory's earlier run wrote) is moved
    into ``superseded/<time>/``, and the settings file (xstilts_run.json) is written. Every refusal is a
    UsageError raised before any expensive work. Other processes of a multi-process run call this after the main
    one (``TrainingArguments.main_process_first``) with ``main_process=False``: they only decide."""
    from . import rundir

    out = run.output_dir
    run.fingerprint = fingerprint
    if main_process:
        rundir.ensure_writable(out)
        rundir.acquire(out)
    recorded, why = _recorded(run)
    if not overwrite:
        old = rundir.read_settings(out / RUN_FILE) or recorded
        diff = rundir.settings_diff(old, fingerprint) if old is not None else []
        if diff:
            shown = "; ".join(diff[:8]) + (f"; ... ({len(diff)} in all)" if len(diff) > 8 else "")
            raise UsageError(f"output_dir {str(out)!r} holds a run with different settings ({shown}); use another "
                             f"--output_dir, or --overwrite to start afresh (its results are moved to "
                             f"{rundir.SUPERSEDED_DIR}/, not deleted)")
        if recorded == fingerprint:
            logger.info("%s already holds the finished run of these settings (%s); skipping. Pass --overwrite to "
                        "redo it.", out, _done_file(run).name)
            run.skip = True
            return
    if not main_process:
        return
    if overwrite:
        rundir.supersede(out, "--overwrite")
        rundir.discard_scratch(out)
    elif why != "absent":
        why = why or "records the settings of another run"
        logger.warning("%s %s: it cannot be shown to belong to this run", _done_file(run), why)
        rundir.supersede(out, f"{_done_file(run).name} {why.split(' (')[0]}")
    atomic_write_json(out / RUN_FILE, fingerprint)


def write_phase2_meta(path: Path, meta: dict) -> None:
    """Write a phase-2 checkpoint's xstilts_meta.json (last: it marks the checkpoint finished), refusing one whose
    selection is empty (see ``results.check_selection``). The weights get the mode the user's umask gives
    (safetensors writes them 0600), so a group can share the checkpoint."""
    import os

    from .results import file_mode

    check_selection(meta.get("selection"), str(path))
    if not meta.get("run_settings"):
        raise ValueError(f"{path}: a phase-2 meta must record its run_settings")
    for weights in path.parent.glob("*.safetensors"):
        os.chmod(weights, file_mode())
    atomic_write_json(path, meta)


@dataclass
class TrainingRun:
    """Everything a training phase script needs, resolved and validated (see ``begin_training_run``)."""

    run: Run
    model_args: object
    data_args: object
    kit_args: object
    training_args: object
    preset: dict


def begin_training_run(kind: str, argv=None) -> TrainingRun:
    """The common start of run_intermediate.py and run_target.py: parse (preset < command line), validate
    everything cheap, derive batch/accumulation, claim the output directory, and decide whether the run is
    already finished (``.run.skip``). Nothing expensive has happened when this returns."""
    from .cli import finalize_training_args, parse_args, setup_logging

    model_args, data_args, kit_args, training_args, _, preset, given = parse_args(argv, phase=kind)
    setup_logging()
    run = prepare(kind, model_args, data_args, seed=training_args.seed,
                  output_dir=training_args.output_dir if "output_dir" in given else None)
    finalize_training_args(training_args, kit_args, run.model, given)
    fingerprint = settings_fingerprint(run, preset=preset["name"], seed=training_args.seed,
                                       hyperparameters=hyperparameters(training_args, data_args, kit_args))
    with training_args.main_process_first(local=False, desc="claiming the output directory"):
        claim_output_dir(run, fingerprint, kit_args.overwrite, main_process=training_args.process_index == 0)
    return TrainingRun(run, model_args, data_args, kit_args, training_args, preset)
