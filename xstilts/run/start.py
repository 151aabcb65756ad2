"""The start of every run: ``begin`` (run_intermediate.py, run_target.py), ``begin_multitask`` (run_intermediate.py
--tasks) and ``begin_retrieval`` (run_retrieval.py).

Each parses the command line (preset < flags), validates everything cheap (task, languages, model, data, phase-2
checkpoint, format settings, batch sizes), locks and claims the output directory and decides whether the run is
already finished (``run.skip``). Nothing expensive (a model or dataset load) has happened when it returns.
``script_main`` is how the three scripts end: one line, no traceback, the output directory's lock released.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..data import hub
from ..data.sources import DataSettings, check_source, check_task_data, local_root
from ..errors import INTERRUPTED_EXIT_CODE, Preempted, UsageError, choices_error, exits_on_usage_error
from ..files import atomic_write_json
from ..formats import FORMATS, get_format
from ..formats.base import Format
from ..paths import kit_relative
from ..prepare import bucc as bucc_data
from ..retrieval import bucc, embed
from ..retrieval import search as search_lib
from ..tasks import Task
from ..training.multitask import mixture_rates, with_auxiliary
from ..training.trainer import Preemption, last_checkpoint
from . import args as A
from . import layout, models, rundir
from .hub import PushRequest, intermediate_checkpoint, push_request
from .deepspeed import ensure_distributed_env, read_deepspeed_config, refresh_deepspeed_config, select_deepspeed
from .models import ModelEntry, resolve_model
from . import protocol
from .overlay import PHASE2, TARGET, resolve_learning_rate
from .presets import resolve_preset, resolve_recipe, retrieval_settings
from .protocol import Protocol
from .record import hyperparameters, intermediate_of
from .results import ResultsSchemaError, check_selection, read_results

logger = logging.getLogger(__name__)


def setup_logging() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO, stream=sys.stdout)
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_warning()
    datasets.utils.logging.set_verbosity_warning()
    datasets.disable_progress_bars()  # Trainer and embedding progress bars stay on
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # CPU-feature probing noise


# ============================================================================ a run
@dataclass
class Run:
    kind: str  # intermediate | target | retrieval
    task: Task
    languages: list[str]
    model: ModelEntry
    data: DataSettings  # where data is read from (--data_root, option directories such as --ccg_dir)
    output_dir: Path
    init_path: str  # what the weights are loaded from (pretrained model or phase-2 checkpoint)
    intermediate_meta: dict | None
    format: Format | None = None  # the run's instance of the task's format (None: retrieval)
    preemption: Preemption = field(default_factory=Preemption)  # SIGTERM during training: checkpoint and stop
    skip: bool = False
    fingerprint: dict | None = None  # the settings (claim_output_dir); stored with the result as run_settings
    replaces: dict | None = None  # the diverged run this one replaces (--replaces; make grid DIVERGED_RETRIES)
    # translate-train (run_target.py --train_languages): the training languages and the folder label (tt, tta,
    # de-fr); None: the zero-shot run, trained on the task's English data only
    train_languages: list[str] | None = None
    train_label: str | None = None
    source_variant: str | None = None  # --source_variant (Task.source_variants) other than the declared sources

    @property
    def data_root(self) -> Path | None:
        return self.data.root


def data_languages(task: Task, data_root: Path | None) -> Task:
    """A task whose languages are those of its data (``Task.languages_file``: a generated world) with the
    languages the data root's file lists; the declaration unchanged otherwise."""
    if not task.languages_file or data_root is None or not (data_root / task.languages_file).is_file():
        return task
    path = data_root / task.languages_file
    try:
        codes = [entry["code"] for entry in json.loads(path.read_text(encoding="utf-8"))["languages"]]
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path}: expected {{\"languages\": [{{\"code\": ...}}, ...]}} ({e!r})") from None
    if task.dev_language not in task.languages:  # the task evaluates the languages other than its English
        codes = [c for c in codes if c != task.dev_language]
    return replace(task, languages=tuple(codes))


def available_languages(task: Task, data: DataSettings) -> list[str]:
    """``--languages available``: the task's languages (XTREME and XTREME-R) whose evaluation data exists under
    a local data root. For partial mirrors (the test fixtures, a pilot); the list is stored with the result."""
    if data.root is None:
        raise UsageError("--languages available needs --data_root (a local mirror); against the Hub pass "
                         "xtreme, xtreme-r, all or a comma list")
    found, missing = [], []
    for lang in task.all_languages:
        try:
            if task.test is not None:
                check_source(task.eval_source(lang), data, task.code(lang))
            found.append(lang)
        except UsageError:
            missing.append(lang)
    if not found:
        raise UsageError(f"--languages available: no language of task {task.name} has data under {data.root}")
    if missing:
        logger.warning("--languages available: %s has no data under %s for %d of %d languages (skipped): %s",
                       task.name, data.root, len(missing), len(task.all_languages), ", ".join(missing))
    return found


def default_output_dir(kind: str, model_name: str, task: str, seed: int, intermediate: str | None,
                       recipe: str | None = None) -> str:
    """Where a run writes unless --output_dir says otherwise: the kit's path scheme (xstilts.run.layout)."""
    if recipe:  # an encoder recipe's fine-tuning of the cell's encoder (none: the pretrained model)
        return layout.recipe_checkpoint_dir(model_name, intermediate or layout.BASELINE, recipe)
    if kind == "intermediate":
        return layout.checkpoint_dir(model_name, task)
    return layout.cell_dir(model_name, intermediate or layout.BASELINE, task, seed)


def prepare(kind: str, model_args, data_args, *, seed: int, output_dir: str | None = None,
            need_train: bool = True, fmt: Format | None = None, recipe: str | None = None) -> Run:
    """Resolve and check the task, languages, model, data and phase-2 checkpoint (all cheap). ``output_dir``:
    given explicitly by the user, else the kit's layout (results/<model>/<inter>/<task>/seed<k>)."""
    try:
        task = A.get_task(data_args.task, phase=kind)
    except UsageError:
        other = A.get_task(data_args.task)  # exists but in another phase?
        script = {"intermediate": "run_intermediate.py", "target": "run_target.py",
                  "retrieval": "run_retrieval.py"}[other.phase]
        raise UsageError(f"task {other.name!r} is a{'n' if other.phase[0] in 'ai' else ''} {other.phase} task: "
                         f"use {script}") from None
    variant = getattr(data_args, "source_variant", None)
    task = A.select_source_variant(task, variant)
    variant = None if variant in (None, "hub") else variant
    entry = resolve_model(model_args.model)
    train_label = train_languages = None
    if getattr(data_args, "train_languages", None) is not None:
        if kind != "target":
            raise UsageError(f"--train_languages is for run_target.py (translate-train target tasks), not "
                             f"{'phase 2' if kind == 'intermediate' else 'retrieval'}: the translated intermediate "
                             f"tasks have names of their own (mnli_tt, mnli_tta, squad_v1_tt, squad_v1_tta)")
        train_label, train_languages = A.parse_train_languages(task, data_args.train_languages)
        task = replace(task, train=A.translate_train_source(task, train_languages))
    data = DataSettings(hub.resolve_data_root(data_args.data_root), {"ccg_dir": getattr(data_args, "ccg_dir", None)})
    task = data_languages(task, data.root)
    if (data_args.languages or "").strip() == "available":
        languages = available_languages(task, data)
    else:
        languages = A.parse_languages(task, data_args.languages)
    if getattr(data_args, "eval_split", "test") not in ("test", "validation"):
        raise UsageError(f"unknown eval_split {data_args.eval_split!r}; valid choices: test, validation")
    eval_source_is_dev = getattr(data_args, "eval_split", "test") == "validation"
    check_task_data(task, languages, data, train=need_train, dev=need_train and kind != "retrieval",
                    test=kind != "intermediate" and not eval_source_is_dev)
    if eval_source_is_dev and task.dev is not None:
        for lang in languages:
            check_source(task.dev, data, task.code(lang))

    meta = None
    init_path = entry.path_or_id
    ckpt = getattr(model_args, "intermediate_checkpoint", None)
    if ckpt:
        if kind == "intermediate" and not recipe:
            raise UsageError("--intermediate_checkpoint is for run_target.py / run_retrieval.py (and an encoder "
                             "recipe's fine-tuning, --encoder_recipe), not phase 2")
        init_path, meta = intermediate_checkpoint(ckpt, entry)  # a folder or a Hub id (xstilts.run.hub)
        if recipe and meta.get("encoder_recipe"):
            raise UsageError(f"--intermediate_checkpoint {ckpt!r} is already an encoder recipe's checkpoint "
                             f"({meta['encoder_recipe'].get('name')}); --encoder_recipe starts from a pretrained "
                             f"model or a phase-2 checkpoint")

    if output_dir:
        out = Path(output_dir)
    else:
        folder = layout.translate_train_name(task.name, train_label) if train_label else task.name
        out = Path(default_output_dir(kind, entry.name, folder, seed, intermediate_of(meta), recipe))
    return Run(kind, task, languages, entry, data, out, init_path, meta, format=fmt,
               train_languages=train_languages, train_label=train_label, source_variant=variant)


# ============================================================================ the output directory
def settings_fingerprint(run: Run, **settings) -> dict:
    """What makes two runs the same run: a resumed run must match, else it needs its own directory."""
    hp = settings.get("hyperparameters")
    if isinstance(hp, dict) and "learning_rate_source" in hp:  # provenance of the rate, not part of the run
        settings["hyperparameters"] = {k: v for k, v in hp.items() if k != "learning_rate_source"}
    fp = {
        "kind": run.kind, "task": run.task.name, "model": run.model.path_or_id, "init_path": run.init_path,
        "languages": run.languages, "data_root": str(run.data_root) if run.data_root else None, **settings,
    }
    if run.train_languages is not None:  # translate-train: another run than the zero-shot one
        fp["train_languages"] = run.train_languages
    if run.source_variant:  # other data, so another run (absent for the declared sources: older results match)
        fp["source_variant"] = run.source_variant
    return json.loads(json.dumps(fp, default=str))  # as stored: a fingerprint read back compares equal


def _done_file(run: Run) -> Path:
    return run.output_dir / (layout.META_FILE if run.kind == "intermediate" else layout.RESULTS_FILE)


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
    out = run.output_dir
    run.fingerprint = fingerprint
    if main_process:
        rundir.ensure_writable(out)
        rundir.acquire(out)
    recorded, why = _recorded(run)
    if not overwrite:
        old = rundir.read_settings(out / layout.RUN_FILE) or recorded
        diff = rundir.settings_diff(old, fingerprint) if old is not None else []
        if diff:
            shown = "; ".join(diff[:8]) + (f"; ... ({len(diff)} in all)" if len(diff) > 8 else "")
            raise UsageError(f"output_dir {str(out)!r} holds a run with different settings ({shown}); use another "
                             f"--output_dir, or --overwrite to start afresh (its results are moved to "
                             f"{layout.SUPERSEDED_DIR}/, not deleted)")
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
    atomic_write_json(out / layout.RUN_FILE, fingerprint)


# ============================================================================ training runs
def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _bf16_available() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def parse_training_args(argv: list[str], *, phase: str, mixture: list[str] | None = None, extra: tuple = ()):
    """Parse (ModelArguments, DataArguments, KitArguments, TrainingArguments, *extra) over the kit's defaults and
    the preset (resolved once: the task's entry, or the multi-task block for ``mixture``). ``phase``: whose tasks
    --help lists. Returns (model_args, data_args, kit_args, training_args, extras, preset record, flags given)."""
    from transformers import HfArgumentParser, TrainingArguments

    given = A.flags_given(argv)
    parser = HfArgumentParser((A.ModelArguments, A.DataArguments, A.KitArguments, TrainingArguments, *extra))
    A.add_choices_to_help(parser, phase)

    preset_name = A.prescan(argv, "preset", "xtreme")
    task = A.prescan(argv, "task")
    model = A.prescan(argv, "model", A.ModelArguments.model)
    model_key = model if model in models.registry() else ""
    preset_values, header, block, training, preset_details = {}, {"name": preset_name}, None, False, {}
    recipe = A.prescan(argv, "encoder_recipe")
    if recipe is not None:
        if phase != "intermediate" or mixture is not None:
            raise UsageError("--encoder_recipe is for run_intermediate.py with one task (the recipe names it)")
        preset = resolve_recipe(preset_name, recipe, model_key)
        recipe_task = preset.header["recipe"].get("task")
        if task is not None and task != recipe_task:
            raise UsageError(f"--task {task!r}: encoder recipe {recipe!r} of preset {preset_name!r} trains task "
                             f"{recipe_task!r}; leave --task out")
        A.get_task(recipe_task, phase="intermediate")  # a recipe naming no intermediate task: the error lists them
        if task is None:
            argv = [*argv, "--task", recipe_task]
        task = recipe_task
        preset_values, header, block, training = preset.values, preset.header, preset.block, True
        preset_details = preset.info
    elif mixture is not None:
        entry = A.mixture_preset_entry(mixture)  # the names were checked by parse_task_list
        preset = resolve_preset(preset_name, entry, model_key)
        preset_values, header, block, training = preset.values, preset.header, preset.block, True
        preset_details = preset.info
        if entry is not None:
            header = dict(header, task_entry=entry)
    elif task is not None:
        A.check_not_auxiliary(task, phase)
        training = A.get_task(task).phase != "retrieval"  # unknown task -> UsageError listing valid ones
        if training:
            entry = A.preset_entry(task)
            preset = resolve_preset(preset_name, entry, model_key)
            preset_values, header, preset_details = preset.values, preset.header, preset.info
            if entry != task:
                header = dict(header, task_entry=entry)

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
        "per_device_eval_batch_size": A.EVAL_BATCH_SIZE,
        # one fused AdamW kernel for all parameters (transformers 5's default, pinned here so it is explicit)
        "optim": "adamw_torch_fused",
        # the preset's precision (xstilts.run.protocol): bf16_where_supported = bf16 mixed precision wherever the
        # GPU supports it (Ampere and later), fp32 elsewhere; fp32 = the references. An explicit --bf16 wins
        "bf16": protocol.precision_setting(A.prescan(argv, "precision") or preset_values.get("precision"))
                == "bf16_where_supported" and _bf16_available(),
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
    model_args, data_args, kit_args, training_args, *extras = A.parse_dataclasses(parser, argv)
    if data_args.task is None:
        raise UsageError("--task is required")
    A.check_values(data_args, kit_args, training_args, given, preset_name)
    if mixture is not None:
        given = given - {"task"}
    preset_info = dict(header, values=preset_values, info=preset_details, cli_overrides=sorted(given - {"output_dir"}),
                       deepspeed={"config": kit_relative(ds_path) if ds_path else None, "source": ds_source})
    if block is not None:
        preset_info["block"] = block
    kit_args.deepspeed_source, kit_args.deepspeed_env = ds_source, ds_env  # logged by finalize_training_args
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
    cadence = A.eval_cadence(kit_args.eval_steps_or_epoch or "epoch")
    if cadence == "epoch":
        training_args.eval_strategy = "epoch"
        training_args.save_strategy = "epoch"
    else:
        training_args.eval_strategy = "steps"
        training_args.save_strategy = "steps"
        training_args.eval_steps = cadence
        training_args.save_steps = cadence
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


def _claim(run: Run, fingerprint: dict, training_args, overwrite: bool) -> None:
    """claim_output_dir by every process of the run, the main one first."""
    with training_args.main_process_first(local=False, desc="claiming the output directory"):
        claim_output_dir(run, fingerprint, overwrite, main_process=training_args.process_index == 0)


def replaced_run(path: str, kind: str, run: Run, training_args, given: set[str]) -> dict:
    """``--replaces RESULT``: the diverged result this run replaces (same model, intermediate, task), checked
    before any work; sets the run's seed to the replacement seed (``layout.replacement_seed``). Returns the
    ``replaces`` record of the contract: the replaced seed, path and divergence reason."""
    if kind != "target":
        raise UsageError("--replaces is for run_target.py (a diverged cell's replacement), not phase 2")
    if "output_dir" not in given:
        raise UsageError("--replaces needs --output_dir: a replacement has its own folder (make grid "
                         "DIVERGED_RETRIES uses xstilts.run.layout.replacement_dir)")
    try:
        old = read_results(path)
    except FileNotFoundError:
        raise UsageError(f"--replaces {path!r}: no such result") from None
    except (OSError, ValueError, ResultsSchemaError) as e:
        raise UsageError(f"--replaces {path!r}: not a valid result ({e})") from None
    div = old.get("divergence") or {}
    if not div.get("diverged"):
        raise UsageError(f"--replaces {path!r}: that run did not diverge (its divergence record: "
                         f"{div.get('rule', 'none')}); only a diverged run is replaced")
    want = (run.model.name, (run.intermediate_meta or {}).get("task"), run.task.name)
    got = (old["model"]["name"], old.get("intermediate_task"), old.get("target_task"))
    if got != want:
        raise UsageError(f"--replaces {path!r}: it is a run of (model, intermediate, task) {got}, this run is {want}")
    seed = layout.replacement_seed(old["seed"])
    if "seed" in given and training_args.seed != seed:
        raise UsageError(f"--replaces {path!r} (seed {old['seed']}): a replacement trains with seed {seed} "
                         f"(xstilts.run.layout.replacement_seed), not --seed {training_args.seed}")
    training_args.seed = seed
    return {"seed": old["seed"], "path": str(path), "reason": div.get("reason")}


@dataclass
class TrainingRun:
    """Everything a training phase script needs, resolved and validated (see ``begin``)."""

    run: Run
    model_args: object
    data_args: object
    kit_args: object
    training_args: object
    preset: dict
    protocol: Protocol
    push: PushRequest | None = None  # phase 2 with --push_to_hub: where the encoder goes once saved


def begin(kind: str, argv=None) -> TrainingRun:
    """The start of run_intermediate.py (one task) and run_target.py: parse (preset < command line), validate
    everything cheap, create the run's format, derive batch/accumulation, claim the output directory, and decide
    whether the run is already finished (``.run.skip``). Nothing expensive has happened when this returns."""
    argv = list(sys.argv[1:] if argv is None else argv)
    model_args, data_args, kit_args, training_args, _, preset, given = parse_training_args(argv, phase=kind)
    task = A.get_task(data_args.task)
    fmt = get_format(task.format, data_args) if task.format in FORMATS else None  # its settings, validated now
    setup_logging()
    recipe = kit_args.encoder_recipe if kind == "intermediate" else None
    run = prepare(kind, model_args, data_args, seed=training_args.seed,
                  output_dir=training_args.output_dir if "output_dir" in given else None, fmt=fmt, recipe=recipe)
    proto = protocol.resolve(run.task, kit_args, data_args, training_args, preset, given, fmt)
    if proto.selection_dev is not None:  # select on another task's dev split (jiant: MNLI for XNLI)
        run.task = proto.selection_task(run.task)
        check_task_data(run.task, [run.task.dev_language], run.data, train=False, dev=True, test=False)
    finalize_training_args(training_args, kit_args, run.model, given)
    arm = intermediate_of(run.intermediate_meta) or layout.BASELINE
    kit_args.learning_rate_source = resolve_learning_rate(
        training_args, kit_args, given, preset, phase=PHASE2 if kind == "intermediate" else TARGET,
        model_name=run.model.name, path_or_id=run.model.path_or_id, task=task.name, arm=arm)
    extra = {"encoder_recipe": preset["recipe"]} if recipe else {}
    if kit_args.replaces:
        run.replaces = replaced_run(kit_args.replaces, kind, run, training_args, given)
        extra["replaces"] = run.replaces["path"]
    fingerprint = settings_fingerprint(run, preset=preset["name"], seed=training_args.seed,
                                       hyperparameters=hyperparameters(training_args, data_args, kit_args, fmt),
                                       **extra)
    _claim(run, fingerprint, training_args, kit_args.overwrite)
    # --push_to_hub: refused now if it cannot succeed, done once the encoder is saved
    push = push_request(training_args) if kind == "intermediate" else None
    return TrainingRun(run, model_args, data_args, kit_args, training_args, preset, proto, push)


@dataclass
class MultiTaskRun:
    run: Run
    tasks: list[Task]
    formats: list[Format]  # one per task (tasks of one format share its instance)
    mt_args: A.MultiTaskArguments
    model_args: object
    data_args: object
    kit_args: object
    training_args: object
    preset: dict
    name: str  # the checkpoint's intermediate-task name (layout.mixture_name)
    caps: dict[str, int]  # --task_max_train_samples
    protocol: Protocol
    push: PushRequest | None = None  # --push_to_hub: where the encoder goes once saved


def begin_multitask(argv: list[str]) -> MultiTaskRun:
    """The start of a multi-task phase-2 run (``run_intermediate.py --tasks``): as ``begin``, with the preset's
    multi-task block and the data of every task checked."""
    if any(a == "--task" or a.startswith("--task=") for a in argv):
        raise UsageError("give either --task (one intermediate task) or --tasks (several, trained together), not both")
    spec = A.prescan(argv, "tasks")
    if spec is None:
        raise UsageError("--tasks needs a value: a comma list of intermediate tasks or 'all'")
    names = A.parse_task_list(spec)
    model_args, data_args, kit_args, training_args, extras, preset, given = parse_training_args(
        [*argv, "--task", names[0]], phase="intermediate", mixture=names, extra=(A.MultiTaskArguments,))
    mt_args = extras[0]
    mt_args.tasks = ",".join(names)
    setup_logging()
    tasks = [A.get_task(n, phase="intermediate") for n in names]
    instances = {t.format: get_format(t.format, data_args) for t in tasks}  # settings with the mixture's values
    caps = A.parse_task_caps(mt_args.task_max_train_samples, names)
    mixture_rates({n: 1 for n in names}, mt_args.mixture_cap, mt_args.mixture_temperature)  # validate now
    auxiliary = [t.name for t in tasks if t.auxiliary]
    if auxiliary:
        mt_args.mlm_proportion = A.MLM_PROPORTION if mt_args.mlm_proportion is None else mt_args.mlm_proportion
        with_auxiliary({}, 1, auxiliary, mt_args.mlm_proportion)  # validate now
    elif mt_args.mlm_proportion is not None:
        raise UsageError(f"--mlm_proportion {mt_args.mlm_proportion} is the share of MLM batches, but --tasks "
                         f"{','.join(names)} has no mlm (e.g. --tasks {names[0]},mlm)")
    for t in tasks:
        if t.auxiliary:
            instances[t.format].languages(t)  # --mlm_languages: valid choices, before any data is read
    name = layout.mixture_name(names)

    out = training_args.output_dir if "output_dir" in given else None
    if out is None:
        out = default_output_dir("intermediate", resolve_model(model_args.model).name, name, training_args.seed, None)
    run = prepare("intermediate", model_args, data_args, seed=training_args.seed, output_dir=out,
                  fmt=instances[tasks[0].format])
    for t in tasks[1:]:
        instances[t.format].check_data(t, run.data)  # the task's sources (mlm: every corpus language)
    proto = protocol.resolve(None, kit_args, data_args, training_args, preset, given)
    finalize_training_args(training_args, kit_args, run.model, given)
    if kit_args.replaces:
        raise UsageError("--replaces is for run_target.py (a diverged cell's replacement), not phase 2")
    kit_args.learning_rate_source = resolve_learning_rate(
        training_args, kit_args, given, preset, phase=PHASE2, model_name=run.model.name,
        path_or_id=run.model.path_or_id, task=name)
    extra = {}
    if auxiliary:
        extra = {"mlm_proportion": mt_args.mlm_proportion, "mlm": instances["masked_lm"].options}
    fingerprint = settings_fingerprint(
        run, preset=preset["name"], seed=training_args.seed, tasks=names, mixture_cap=mt_args.mixture_cap,
        mixture_temperature=mt_args.mixture_temperature, task_max_train_samples=caps,
        hyperparameters=hyperparameters(training_args, data_args, kit_args, run.format), **extra)
    _claim(run, fingerprint, training_args, kit_args.overwrite)
    return MultiTaskRun(run, tasks, [instances[t.format] for t in tasks], mt_args, model_args, data_args, kit_args,
                        training_args, preset, name, caps, proto, push_request(training_args))


# ============================================================================ retrieval runs
@dataclass
class RetrievalRun:
    """A retrieval run, resolved (see ``begin_retrieval``)."""

    run: Run
    data_args: object
    args: A.RetrievalArguments
    num_layers: int
    layer: int  # the configured (headline) layer
    layer_source: str
    layers: list[int]  # every layer evaluated in the one forward pass
    pooling: str
    special: bool  # mean pooling over the special tokens too
    pooling_source: str
    search: search_lib.Search
    preset: dict  # the preset's header and its retrieval.<task> values (with where each setting came from)
    duplicates: str | None = None  # BUCC: drop | expand (None: not a bitext task)
    encoder: dict = field(default_factory=dict)  # what the embeddings come from (_retrieval_encoder)


def _check_retrieval_choices(args, data_args) -> None:
    if args.pooling is not None and args.pooling not in embed.POOLINGS:
        raise UsageError(f"unknown pooling {args.pooling!r}; valid choices: {', '.join(embed.POOLINGS)}")
    if args.duplicates is not None and args.duplicates not in bucc.DUPLICATES:
        raise choices_error("--duplicates", args.duplicates, bucc.DUPLICATES)
    for name, valid in (("margin", bucc.MARGINS), ("strategy", bucc.STRATEGIES), ("index", bucc.INDEXES)):
        if getattr(args, name) not in valid:
            raise choices_error(f"--{name}", getattr(args, name), valid)
    search_lib.check_choices(args.search_backend, args.search_dtype)
    for name in ("k", "batch_size", "knn_db_chunk", "knn_query_batch"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if data_args.max_seq_length < 1:
        raise UsageError(f"--max_seq_length must be >= 1, got {data_args.max_seq_length}")
    if args.embedding_memory_gb <= 0:
        raise UsageError(f"--embedding_memory_gb must be > 0, got {args.embedding_memory_gb}")


def _check_retrieval_data(task: Task, data_args) -> None:
    """Retrieval data that is not on the Hub: a clear error naming the make target, before anything loads."""
    if getattr(data_args, "eval_split", "test") != "test":
        raise UsageError(f"--eval_split {data_args.eval_split!r}: retrieval tasks have one evaluation split "
                         "(Tatoeba: the test sets; BUCC: the training release, with the threshold from the sample "
                         "release); valid choices: test")
    # BUCC has no Hub source at all; the XTREME-R Tatoeba languages are PreparedSources, checked by prepare()
    if task.format == "bitext_mining":
        data_root = hub.resolve_data_root(data_args.data_root)
        langs = A.parse_languages(task, data_args.languages)
        bucc_data.check_available(local_root(data_root), langs, "" if data_root is not None else
                                  f"; or pass --data_root DIR holding {bucc_data.KIT_DIR}/")
        _check_bucc_not_empty(bucc_data.kit_dir(local_root(data_root)), langs)


def _check_bucc_not_empty(directory: Path, langs: list[str]) -> None:
    """An empty BUCC sentence or gold file (an interrupted conversion) would be mined as "no pairs" and reported
    as F1 0: refused here, naming the file. Reads up to the first non-blank line of each file."""
    for lang in langs:
        for split in bucc_data.RELEASE_OF_SPLIT:
            for ext in bucc_data.EXTS:
                path = bucc_data.split_file(directory, lang, split, ext)
                with open(path, encoding="utf-8", errors="replace") as f:
                    if not any(line.strip() for line in f):
                        raise UsageError(f"BUCC 2018 {lang}-en {split}: {path} is empty. Convert the release archives "
                                         f"again (`make data-bucc`, or `python -m xstilts.prepare.bucc`)")


def _pooling(args, model_name: str) -> tuple[str, bool, str]:
    """(pooling, special tokens included, where each came from): the command line > the model registry > the
    kit's default (mean over every token, <s> and </s> included: XTREME's)."""
    entry = models.registry().get(model_name, {})
    pooling, special, source = args.pooling, args.include_special_tokens, []
    if pooling is None:
        pooling = entry.get("retrieval_pooling", "mean")
        source.append("pooling: " + ("model registry" if "retrieval_pooling" in entry else "kit default (mean)"))
    else:
        source.append("pooling: command line")
    if special is None:
        special = bool(entry.get("retrieval_include_special_tokens", True))
        source.append("special tokens: " + ("model registry" if "retrieval_include_special_tokens" in entry
                                            else "kit default (included, as XTREME)"))
    else:
        source.append("special tokens: command line")
    if pooling not in embed.POOLINGS:
        raise UsageError(f"configs/models.json {model_name}: unknown retrieval_pooling {pooling!r}; valid choices: "
                         f"{', '.join(embed.POOLINGS)}")
    return pooling, special, "; ".join(source)


def _retrieval_preset(args, task: Task) -> tuple[dict, str | None]:
    """(the preset record of a retrieval run, BUCC's duplicates rule): the command line > the preset's
    ``retrieval.<task>`` entry > the kit's default (expand), each recorded with its origin."""
    task_name = task.name
    values, header = retrieval_settings(args.preset, task_name)  # unknown preset -> UsageError listing them
    record = dict(header, values=values, cli_overrides=[])
    duplicates = None
    if task.format == "bitext_mining":
        if args.duplicates is not None:
            duplicates, origin = args.duplicates, "command line"
            record["cli_overrides"].append("duplicates")
        elif "duplicates" in values:
            duplicates, origin = values["duplicates"], f"preset {args.preset} (retrieval.{task_name}.duplicates)"
        else:
            duplicates, origin = "expand", "kit default (the preset has no retrieval.bucc2018.duplicates)"
        if duplicates not in bucc.DUPLICATES:
            raise UsageError(f"preset {args.preset!r}: retrieval.{task_name}.duplicates {duplicates!r}; valid "
                             f"choices: {', '.join(bucc.DUPLICATES)}")
        record["duplicates_source"] = origin
    return record, duplicates


RAW_ENCODER = "raw"  # the pretrained or phase-2 encoder as it is


def _retrieval_encoder(run: Run, preset_name: str) -> dict:
    """The encoder a retrieval task embeds with, checked: a task that names an encoder recipe
    (``Task.encoder_recipe``: tatoeba_squad) takes only that recipe's checkpoint, fine-tuned by the recipe the
    run's preset holds now; every other task takes the pretrained or phase-2 encoder, never a recipe's."""
    task, meta = run.task, run.intermediate_meta or {}
    made = meta.get("encoder_recipe")
    if task.encoder_recipe:
        recipe = task.encoder_recipe
        if not made or made.get("name") != recipe:
            got = (f"the encoder of recipe {made.get('name')!r}" if made else
                   f"{'the phase-2 checkpoint' if meta else 'the pretrained model'} {run.init_path}")
            raise UsageError(
                f"task {task.name} embeds with the encoder fine-tuned by the preset's encoder recipe {recipe!r}, got "
                f"{got}. Make it with `run_intermediate.py --model {run.model.name} --encoder_recipe {recipe} "
                f"--preset {preset_name} [--intermediate_checkpoint <phase-2 checkpoint>]` (make grid does: "
                f"{layout.recipe_checkpoint_dir(run.model.name, '<intermediate|none>', recipe)}) and pass it as "
                f"--intermediate_checkpoint")
        current = resolve_recipe(preset_name, recipe, "").header["recipe"]
        if made.get("recipe") != current:
            raise UsageError(
                f"--intermediate_checkpoint {run.init_path} was fine-tuned by encoder recipe {recipe!r} of preset "
                f"{made.get('preset')!r}, which is not the recipe of preset {preset_name!r} now ({made.get('recipe')} "
                f"vs {current}): pass --preset {made.get('preset')}, or fine-tune it again (move the checkpoint "
                f"aside; make then rebuilds it)")
        return {"kind": made.get("encoder") or recipe, "recipe": made, "checkpoint": run.init_path}
    if made:
        base = (made.get("base") or {}).get("checkpoint") or "none (the pretrained model)"
        raise UsageError(f"--intermediate_checkpoint {run.init_path} is the encoder of recipe {made.get('name')!r} "
                         f"(fine-tuned on {made.get('task')}); task {task.name} embeds the pretrained or phase-2 "
                         f"encoder as it is: pass {base} instead")
    return {"kind": RAW_ENCODER, "checkpoint": run.init_path if meta else None}


def begin_retrieval(argv=None) -> RetrievalRun:
    """The start of run_retrieval.py: parse, check every choice and the data, resolve the model, the layers
    (from the model's config), the pooling and the search backend, claim the output directory."""
    from transformers import AutoConfig, HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((A.ModelArguments, A.DataArguments, A.RetrievalArguments))
    parser.set_defaults(max_seq_length=512)
    A.add_choices_to_help(parser, "retrieval")
    model_args, data_args, args = A.parse_dataclasses(parser, argv)
    if data_args.task is None:
        raise UsageError("--task is required")
    _check_retrieval_choices(args, data_args)
    setup_logging()
    task = A.TASKS.get(data_args.task)
    if task is not None and task.phase == "retrieval":  # prepare() reports unknown tasks and other phases
        _check_retrieval_data(task, data_args)
    run = prepare("retrieval", model_args, data_args, seed=args.seed, output_dir=args.output_dir, need_train=False)
    preset, duplicates = _retrieval_preset(args, run.task)
    encoder = _retrieval_encoder(run, args.preset)

    num_layers = AutoConfig.from_pretrained(run.init_path).num_hidden_layers
    layer, layer_source = embed.resolve_layer(args.layer, num_layers, run.model.retrieval_layer)
    embed.check_layer(layer, num_layers)
    layers = embed.parse_layers(args.layers, num_layers, layer)
    pooling, special, pooling_source = _pooling(args, run.model.name)
    bitext = run.task.format == "bitext_mining"
    settings = dict(seed=args.seed, layer=layer, layers=layers, pooling=pooling, include_special_tokens=special,
                    max_seq_length=data_args.max_seq_length)
    if bitext:
        settings.update(k=args.k, margin=args.margin, strategy=args.strategy, index=args.index, duplicates=duplicates)
    if args.search_dtype != "float32":  # bf16 inputs can change the numbers; the backend alone does not (exact)
        settings.update(search_dtype=args.search_dtype)
    search = search_lib.resolve(args.search_backend, dtype=args.search_dtype, index=args.index if bitext else "flat")
    claim_output_dir(run, settings_fingerprint(run, **settings), args.overwrite)
    return RetrievalRun(run, data_args, args, num_layers, layer, layer_source, layers, pooling, special,
                        pooling_source, search, preset, duplicates if bitext else None, encoder)


# ============================================================================ how a run ends
def checkpoint_note() -> str:
    """Where the run that was stopped can resume from (the latest complete checkpoint of its output directory)."""
    ckpts = [c for c in (last_checkpoint(d) for d in rundir.held_dirs()) if c]
    if ckpts:
        return f"latest complete checkpoint: {', '.join(ckpts)}; re-run the same command to resume from it"
    dirs = ", ".join(str(d) for d in rundir.held_dirs())
    return f"no checkpoint saved yet in {dirs}; re-running starts the run over" if dirs else "stopped"


def script_main(main):
    """The phase scripts' entry point: ``errors.exits_on_usage_error`` (bad input: exit 2; SIGTERM: 143), and for
    what a run holds: Ctrl-C -> one line with the checkpoint to resume from, exit 130; a full disk -> one line
    naming the directory, exit 2. No traceback for any of them. The output directory's lock is released however
    main ends."""

    @exits_on_usage_error
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt:
            print(f"interrupted (Ctrl-C): {checkpoint_note()}", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT_CODE)
        except Exception as e:
            if isinstance(e, (UsageError, Preempted)) or not rundir.is_disk_full(e, rundir.held_dirs()):
                raise
            where = getattr(e, "filename", None) or ", ".join(str(d) for d in rundir.held_dirs()) \
                or "the output directory"
            detail = " ".join(str(e).split())
            print(f"error: no space left on the device while writing {where} ({detail}): what was being written is "
                  f"incomplete (a checkpoint without its completion marker is skipped on resume). Free space and "
                  f"re-run the same command; {checkpoint_note()}", file=sys.stderr)
            sys.exit(2)
        finally:
            rundir.release_all()

    return wrapper
