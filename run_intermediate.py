#!/usr/bin/env python
"""Phase 2: fine-tune a pretrained multilingual encoder on an English intermediate task.

Saves the ENCODER ONLY (no task head) + tokenizer + xstilts_meta.json, so that phase 3 and
retrieval start from this encoder with fresh heads.

    python run_intermediate.py --model xlmr-large --task mnli --preset phang2020
    python run_intermediate.py --model tiny-2l-h64 --task mnli --preset tiny --data_root tests/fixtures/hub

An encoder recipe of the preset (``encoder_recipes.<name>``: its task and hyperparameters) fine-tunes the encoder
of one grid cell, the pretrained model or a phase-2 checkpoint, into the encoder a retrieval task embeds with
(``tatoeba_squad``: XTREME-R's SQuAD v1.1 model for Tatoeba); ``make grid`` runs it for that task's cells:

    python run_intermediate.py --model xlmr-large --encoder_recipe tatoeba_squad --preset xtreme \
        [--intermediate_checkpoint checkpoints/xlmr-large/mnli]      # -> checkpoints/xlmr-large/mnli.tatoeba_squad

Multi-task (one shared encoder, one head per task, one encoder-only checkpoint; see xstilts/training/multitask.py):

    python run_intermediate.py --model xlmr-large --tasks mnli,qqp,squad_v1 --preset phang2020
    python run_intermediate.py --model xlmr-large --tasks all --preset phang2020 --mixture_cap 100000
"""

import logging
from collections import Counter
import sys
import time

from transformers import set_seed

from xstilts.errors import Diverged, UsageError
from xstilts.files import atomic_write_json
from xstilts.provenance import provenance
from xstilts.run import layout
from xstilts.run.hub import push_finished
from xstilts.run.args import requested as multitask_requested
from xstilts.run.protocol import record as protocol_record
from xstilts.run.record import describe, hyperparameters, intermediate_of, meta_summary, write_phase2_meta
from xstilts.run.results import check_selection
from xstilts.run.start import begin, begin_multitask, script_main
from xstilts.training.divergence import assess, assess_run, chance_level, has_model, mean_chance
from xstilts.training.modeling import load_for_task, load_tokenizer, save_encoder_only
from xstilts.training.multitask import SELECTION_METRIC, build_model, gathered_parameters, mixture_trainer
from xstilts.training.selection import final_dev
from xstilts.training.trainer import build_trainer, cleanup, train

logger = logging.getLogger("run_intermediate")


@script_main
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if multitask_requested(argv):
        return train_mixture(argv)
    tr = begin("intermediate", argv)
    if tr.run.skip:
        return push_finished(tr.push, tr.run.output_dir)
    run, data_args, kit_args, training_args, preset = tr.run, tr.data_args, tr.kit_args, tr.training_args, tr.preset
    task, fmt, metric = run.task, run.format, run.task.metric
    logger.info("phase 2: %s on %s -> %s (preset %s)", run.model.name, task.name, run.output_dir, preset["name"])
    t0 = time.time()
    set_seed(training_args.seed)

    # data (English train + English dev for checkpoint selection)
    tokenizer = load_tokenizer(run.init_path)
    train_ex = fmt.load(task, task.train, run.data, max_samples=data_args.max_train_samples)
    dev_ex = fmt.load(task, task.dev, run.data, max_samples=data_args.max_eval_samples)
    train_ds = fmt.featurize(train_ex, tokenizer, data_args.max_seq_length, task, train=True)
    dev_ds = fmt.featurize(dev_ex, tokenizer, data_args.max_seq_length, task, train=False)

    model, handoff = load_for_task(fmt.model_class(), run.init_path, **fmt.model_kwargs(task))
    trainer = build_trainer(model, tokenizer, train_ds, dev_ds, training_args, kit_args,
                            compute_metrics=fmt.dev_metrics(task, dev_ex, dev_ds), metric=metric,
                            collator=fmt.collator(tokenizer), output_dir=run.output_dir, preemption=run.preemption,
                            selection=tr.protocol.selection)
    train_metrics = train(trainer, run.output_dir, run.preemption)
    if not has_model(train_metrics["selection"], train_metrics.get("non_finite")):
        no_encoder(trainer, run, task.name, assess_run(task, fmt, dev_ex, train_metrics, kit_args.divergence_margin),
                   train_metrics, preset)
    dev = trainer.evaluate(dev_ds)  # the selected (best_dev) or final model on English dev
    if not tr.protocol.selection.uses_dev:  # recorded, never used to choose
        train_metrics["selection"]["final_dev"] = final_dev(dev)
    # recorded with every checkpoint, diverged or not
    divergence = assess_run(task, fmt, dev_ex, train_metrics, kit_args.divergence_margin)

    meta = {
        "finished": True,
        "task": task.name,
        "tasks": [task.name],
        "model": {"name": run.model.name, "path_or_id": run.model.path_or_id},
        "seed": training_args.seed,
        "dev_metric": {metric: dev[f"eval_{metric}"], "split": task.dev.split, "n": len(dev_ex)},
        "global_step": trainer.state.global_step,
        "selection": train_metrics["selection"],
        "divergence": divergence,
        "protocol": protocol_record(tr.protocol, task, training_args, data_args, kit_args, model=model,
                                    handoff=handoff),
        "data_order": train_metrics["data_order"],
        "resume": train_metrics["resume"],
        "run_settings": run.fingerprint,  # = xstilts_run.json: what makes this the checkpoint of this run
        "preset": preset,
        "hyperparameters": hyperparameters(training_args, data_args, kit_args, fmt),
        "format_settings": fmt.settings(task),
        "handoff_in": handoff,
        "data": {"train": describe(run.data, fmt, task.train), "dev": describe(run.data, fmt, task.dev),
                 "n_train": len(train_ex), **train_rows_per_language(task, train_ex)},
        "data_root": str(run.data_root) if run.data_root else None,  # None: the Hub
        "timing": {"wall_seconds": time.time() - t0, "train_runtime": train_metrics.get("train_runtime"),
                   "train_samples_per_second": train_metrics.get("train_samples_per_second")},
        "provenance": provenance(),
    }
    if kit_args.encoder_recipe:  # the encoder of a retrieval task, fine-tuned from the cell's encoder
        recipe = preset["recipe"]
        meta["encoder_recipe"] = {
            "name": recipe["name"], "encoder": recipe.get("encoder"), "task": task.name, "preset": preset["name"],
            "recipe": recipe,
            "base": {"intermediate": intermediate_of(run.intermediate_meta),
                     "checkpoint": run.init_path if run.intermediate_meta else None,
                     "model": run.model.path_or_id, "meta": meta_summary(run.intermediate_meta)},
        }
    save(trainer, trainer.model, tokenizer, run.output_dir, meta, kit_args.keep_checkpoints)
    logger.info("phase 2 done: English dev %s = %.4f; encoder saved to %s", metric, meta["dev_metric"][metric],
                run.output_dir)
    return push_finished(tr.push, run.output_dir)  # the main process only (the others hold no request)


def train_rows_per_language(task, train_ex) -> dict:
    """A translated intermediate task (``Task.variant_of``: mnli_tt, squad_v1_tta, ...): the training rows of each
    language it read (English and every translation), as the record states them."""
    if not task.variant_of:
        return {}
    rows = Counter(train_ex.with_format("arrow")["lang"].to_pylist())
    return {"train_rows_per_language": dict(rows)}


def train_mixture(argv: list[str]) -> int:
    """Multi-task phase 2 (``--tasks``): one shared encoder, one head per task, batches drawn from the mixture
    (xstilts.training.multitask)."""
    mt = begin_multitask(argv)
    if mt.run.skip:
        return push_finished(mt.push, mt.run.output_dir)
    run, data_args, kit_args, training_args = mt.run, mt.data_args, mt.kit_args, mt.training_args
    tasks, fmts = mt.tasks, mt.formats
    names = [t.name for t in tasks]
    logger.info("phase 2 (multi-task): %s on %s -> %s (preset %s)", run.model.name, ", ".join(names),
                run.output_dir, mt.preset["name"])
    t0 = time.time()
    set_seed(training_args.seed)

    tokenizer = load_tokenizer(run.init_path)
    loaded, records = [], {}
    for task, fmt in zip(tasks, fmts):  # data first: some heads take their label set from it (CCG)
        cap = mt.caps.get(task.name, data_args.max_train_samples)
        train_ex = fmt.load(task, task.train, run.data, max_samples=cap)
        dev_ex = fmt.load(task, task.dev, run.data, max_samples=data_args.max_eval_samples)
        train_ds = fmt.featurize(train_ex, tokenizer, data_args.max_seq_length, task, train=True)
        dev_ds = fmt.featurize(dev_ex, tokenizer, data_args.max_seq_length, task, train=False)
        if len(train_ds) == 0:
            raise UsageError(f"task {task.name}: no training features (check the data and --max_train_samples)")
        loaded.append((train_ds, dev_ex, dev_ds))
        records[task.name] = {"format": task.format, "metric": task.metric,
                              "train": describe(run.data, fmt, task.train), "dev": describe(run.data, fmt, task.dev),
                              "dev_split": task.dev.split, "n_train_examples": len(train_ex),
                              "n_train_features": len(train_ds), "n_dev_examples": len(dev_ex),
                              "max_train_samples": cap, "format_settings": fmt.settings(task)}

    model, handoff = build_model(tasks, fmts, run.init_path, seed=training_args.seed)
    trainer, mixture = mixture_trainer(model, tokenizer, tasks, fmts, loaded, training_args, kit_args,
                                       output_dir=run.output_dir, preemption=run.preemption,
                                       mixture_cap=mt.mt_args.mixture_cap,
                                       mixture_temperature=mt.mt_args.mixture_temperature,
                                       selection=mt.protocol.selection,
                                       auxiliary_proportion=mt.mt_args.mlm_proportion)
    train_metrics = train(trainer, run.output_dir, run.preemption)
    mixture["batches_drawn"] = dict(zip(names, model.batches_seen))  # by this process (restored on resume)
    # the selection average's chance level: of the tasks it averages (auxiliary objectives are not averaged)
    averaged = [(t, f, dev_ex) for t, f, (_, dev_ex, _) in zip(tasks, fmts, loaded) if not t.auxiliary]
    chance, how = mean_chance([(t.name, *chance_level(t, f, dev_ex)) for t, f, dev_ex in averaged])
    n_dev = sum(len(dev_ex) for _, _, dev_ex in averaged)
    if not has_model(train_metrics["selection"], train_metrics["non_finite"]):
        no_encoder(trainer, run, mt.name, assess(SELECTION_METRIC, train_metrics["selection"],
                                                 train_metrics["non_finite"], chance, how, n_dev=n_dev,
                                                 margin=kit_args.divergence_margin),
                   train_metrics, mt.preset)
    dev = trainer.evaluate()  # the selected (best_dev) or final model on every task's English dev split
    if not mt.protocol.selection.uses_dev:  # recorded, never used to choose
        train_metrics["selection"]["final_dev"] = final_dev(dev)
    divergence = assess(SELECTION_METRIC, train_metrics["selection"], train_metrics["non_finite"], chance, how,
                        n_dev=n_dev, margin=kit_args.divergence_margin)

    per_task = {t.name: {t.metric: dev[f"eval_{t.name}_{t.metric}"], "split": records[t.name]["dev_split"],
                         "n": records[t.name]["n_dev_examples"], "selected_on": not t.auxiliary} for t in tasks}
    options = {}  # the settings the formats took from the arguments (span QA), as the hyperparameters record them
    for fmt in dict.fromkeys(fmts):
        options.update(fmt.options)
    meta = {
        "finished": True,
        "task": mt.name,
        "tasks": names,
        "multitask": mixture,
        "model": {"name": run.model.name, "path_or_id": run.model.path_or_id},
        "seed": training_args.seed,
        "dev_metric": {SELECTION_METRIC: dev[f"eval_{SELECTION_METRIC}"], "per_task": per_task,
                       "split": "English dev of every task (mean of the tasks' metrics; auxiliary objectives such "
                                "as mlm are recorded, not averaged)"},
        "global_step": trainer.state.global_step,
        "selection": train_metrics["selection"],
        "divergence": divergence,
        "protocol": protocol_record(mt.protocol, None, training_args, data_args, kit_args, model=model.base_model,
                                    handoff=handoff),
        "data_order": "MixtureBatchSampler: the task of each batch and the rows within a task from numpy generators "
                      "seeded with (seed, epoch, 0) and (seed, epoch, 1 + task index); rows grouped by length within "
                      "a task with train_sampling_strategy group_by_length",
        "resume": train_metrics["resume"],
        "run_settings": run.fingerprint,  # = xstilts_run.json: what makes this the checkpoint of this run
        "preset": mt.preset,
        "hyperparameters": dict(hyperparameters(training_args, data_args, kit_args, run.format), **options,
                                task_max_train_samples=mt.caps,
                                **({"mlm_proportion": mt.mt_args.mlm_proportion}
                                   if mt.mt_args.mlm_proportion is not None else {})),
        "handoff_in": handoff,
        "data": records,
        "data_root": str(run.data_root) if run.data_root else None,  # None: the Hub
        "timing": {"wall_seconds": time.time() - t0, "train_runtime": train_metrics.get("train_runtime"),
                   "train_samples_per_second": train_metrics.get("train_samples_per_second")},
        "provenance": provenance(),
    }
    save(trainer, model, tokenizer, run.output_dir, meta, kit_args.keep_checkpoints)
    logger.info("phase 2 (multi-task) done: English dev average = %.4f (%s); encoder saved to %s",
                meta["dev_metric"][SELECTION_METRIC],
                ", ".join(f"{t.name} {per_task[t.name][t.metric]:.4f}" for t in tasks), run.output_dir)
    return push_finished(mt.push, run.output_dir)  # the main process only (the others hold no request)


def no_encoder(trainer, run, name: str, divergence: dict, train_metrics: dict, preset: dict) -> None:
    """The training loss became non-finite with no model from before it to keep (no checkpoint selected yet under
    best_dev; under final / step:N the last model is the broken one): there is no encoder to save. The
    record of the divergence is written as an unfinished xstilts_meta.json (never taken for a checkpoint: the
    cells refuse it, a re-run moves it to superseded/) and the run ends with an error naming it."""
    path = run.output_dir / layout.META_FILE
    if trainer.is_world_process_zero():
        atomic_write_json(path, {
            "finished": False, "task": name, "model": {"name": run.model.name, "path_or_id": run.model.path_or_id},
            "seed": trainer.args.seed, "selection": train_metrics["selection"], "divergence": divergence,
            "run_settings": run.fingerprint, "preset": preset, "provenance": provenance()})
    trainer.accelerator.wait_for_everyone()
    raise Diverged(f"phase 2: the training loss became {divergence['evidence'].get('non_finite_loss')} at "
                     f"step {divergence['first_non_finite_step']} and no model from before it is kept (selection "
                     f"{train_metrics['selection'].get('rule', 'best_dev')}), so there is no "
                     f"encoder to save; the record is {path}. Lower the learning rate (make calibrate) or change the "
                     f"seed")


def save(trainer, model, tokenizer, output_dir, meta: dict, keep_checkpoints: bool) -> None:
    """The encoder only (no head) with its tokenizer, then xstilts_meta.json (written last: it marks the checkpoint
    finished); the Trainer checkpoints are removed unless kept."""
    check_selection(meta["selection"], str(output_dir / layout.META_FILE))  # before any weights are written
    # every rank enters the ZeRO-3 gather (a collective); only the main process writes
    with gathered_parameters(model.base_model):
        if trainer.is_world_process_zero():
            meta = save_encoder_only(model, tokenizer, output_dir, meta)
            write_phase2_meta(output_dir / layout.META_FILE, meta)
    trainer.accelerator.wait_for_everyone()
    if not keep_checkpoints and trainer.is_world_process_zero():
        cleanup(output_dir)


if __name__ == "__main__":
    raise SystemExit(main())
