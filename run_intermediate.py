#!/usr/bin/env python
"""Phase 2: fine-tune a pretrained multilingual encoder on an English intermediate task.

Saves the ENCODER ONLY (no task head) + tokenizer + xstilts_meta.json, so that phase 3 and
retrieval start from this encoder with fresh heads.

    python run_intermediate.py --model xlmr-large --task mnli --preset phang2020
    python run_intermediate.py --model tiny-2l-h64 --task mnli --preset tiny --data_root tests/fixtures/hub

Multi-task (one shared encoder, one head per task, one encoder-only checkpoint; see xstilts/multitask.py):

    python run_intermediate.py --model xlmr-large --tasks mnli,qqp,squad_v1 --preset phang2020
    python run_intermediate.py --model xlmr-large --tasks all --preset phang2020 --mixture_cap 100000
"""

import logging
import sys
import time

from transformers import set_seed

from xstilts import hub, multitask
from xstilts.cli import hyperparameters
from xstilts.errors import exits_on_usage_error
from xstilts.formats import get_format
from xstilts.modeling import META_FILE, load_for_task, load_tokenizer, save_encoder_only
from xstilts.multitask import gathered_parameters
from xstilts.pipeline import begin_training_run, write_phase2_meta
from xstilts.results import check_selection, provenance
from xstilts.training import build_trainer, cleanup, train

logger = logging.getLogger("run_intermediate")


@exits_on_usage_error
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if multitask.requested(argv):
        return multitask.main(argv)
    tr = begin_training_run("intermediate", argv)
    push = hub.push_request(tr.training_args)  # --push_to_hub: refused now if it cannot succeed, done once saved
    if tr.run.skip:
        return hub.push_finished(push, tr.run.output_dir)
    run, data_args, kit_args, training_args, preset = tr.run, tr.data_args, tr.kit_args, tr.training_args, tr.preset
    task, fmt = run.task, get_format(run.task.format)
    logger.info("phase 2: %s on %s -> %s (preset %s)", run.model.name, task.name, run.output_dir, preset["name"])
    t0 = time.time()
    set_seed(training_args.seed)

    # data (English train + English dev for checkpoint selection)
    tokenizer = load_tokenizer(run.init_path)
    train_ex = fmt.load(task, task.train, run.data_root, max_samples=data_args.max_train_samples)
    dev_ex = fmt.load(task, task.dev, run.data_root, max_samples=data_args.max_eval_samples)
    train_ds = fmt.featurize(train_ex, tokenizer, data_args.max_seq_length, task, train=True)
    dev_ds = fmt.featurize(dev_ex, tokenizer, data_args.max_seq_length, task, train=False)

    model, handoff = load_for_task(fmt.model_class(), run.init_path, **fmt.model_kwargs(task))
    trainer = build_trainer(model, tokenizer, train_ds, dev_ds, training_args, kit_args,
                            compute_metrics=fmt.dev_metrics(task, dev_ex, dev_ds), metric=task.metric,
                            collator=fmt.collator(tokenizer), output_dir=run.output_dir)
    train_metrics = train(trainer, run.output_dir)
    dev = trainer.evaluate(dev_ds)  # the selected (best) model on English dev

    meta = {
        "finished": True,
        "task": task.name,
        "tasks": [task.name],
        "model": {"name": run.model.name, "path_or_id": run.model.path_or_id},
        "seed": training_args.seed,
        "dev_metric": {task.metric: dev[f"eval_{task.metric}"], "split": task.dev.split, "n": len(dev_ex)},
        "global_step": trainer.state.global_step,
        "selection": train_metrics["selection"],
        "data_order": train_metrics["data_order"],
        "resume": train_metrics["resume"],
        "run_settings": run.fingerprint,  # = xstilts_run.json: what makes this the checkpoint of this run
        "preset": preset,
        "hyperparameters": hyperparameters(training_args, data_args, kit_args),
        "handoff_in": handoff,
        "data": {"train": task.train.describe(), "dev": task.dev.describe(), "n_train": len(train_ex)},
        "data_root": str(run.data_root) if run.data_root else None,  # None: the Hub
        "timing": {"wall_seconds": time.time() - t0, "train_runtime": train_metrics.get("train_runtime"),
                   "train_samples_per_second": train_metrics.get("train_samples_per_second")},
        "provenance": provenance(),
    }
    check_selection(meta["selection"], str(run.output_dir / META_FILE))  # before any weights are written
    # every rank enters the ZeRO-3 gather (a collective); only the main process writes
    with gathered_parameters(trainer.model.base_model):
        if trainer.is_world_process_zero():
            meta = save_encoder_only(trainer.model, tokenizer, run.output_dir, meta)
            write_phase2_meta(run.output_dir / META_FILE, meta)  # written last: its presence marks the run finished
    if not kit_args.keep_checkpoints and trainer.is_world_process_zero():
        cleanup(run.output_dir)
    logger.info("phase 2 done: English dev %s = %.4f; encoder saved to %s", task.metric,
                meta["dev_metric"][task.metric], run.output_dir)
    return hub.push_finished(push, run.output_dir)  # the main process only (the others hold no request)


if __name__ == "__main__":
    raise SystemExit(main())
