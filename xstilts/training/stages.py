"""English training stages run before a task's own training, inside the same run_target.py run (``Task.stages``:
XTREME-R trains XCOPA on Social IQa, then COPA)."""

from __future__ import annotations

import gc
import json
import logging
import os
import time

from ..data.sources import describe_source
from ..files import atomic_write_json
from ..run.deepspeed import refresh_deepspeed_config
from .modeling import safe_from_pretrained
from .trainer import build_trainer, cleanup, train, trainer_dir

logger = logging.getLogger(__name__)

STAGES_SUBDIR = "stages"  # under the run's Trainer folder: removed with it (cleanup, --overwrite)
STAGE_FILE = "xstilts_stage.json"


def train_stages(fmt, task, model, tokenizer, *, data, data_args, training_args, kit_args, output_dir, preemption,
                 protocol=None):
    """Train ``task.stages`` in order, before the task's own training; returns (model, stage records).

    XTREME-R trains XCOPA in two English stages, Social IQa then COPA (``train_xcopa.sh``): each stage here
    fine-tunes the whole model it receives (encoder and head; the first stage gets the run's model with its
    fresh head) with the run's hyperparameters and a fresh optimizer and schedule, takes the model the run's
    checkpoint rule names (``protocol.stage_selection``: XTREME-R's final model, or the best on the stage's
    English dev split), and saves it in ``<output_dir>/trainer/stages/<i>-<name>``.
    The next stage, and finally the task's own training, start from that model, head included (as
    ``run_xcopa.py`` continues on COPA from the SIQA model). A finished stage is not trained again when an
    interrupted run is resumed. A task without stages gets its model back unchanged and no records."""
    if not task.stages:
        return model, []
    root = trainer_dir(output_dir) / STAGES_SUBDIR
    records = []
    for i, stage in enumerate(task.stages, 1):
        if stage.format != task.format:
            raise ValueError(f"stage {stage.name} of task {task.name} has format {stage.format}, not {task.format}")
        stage_dir = root / f"{i}-{stage.name}"
        done = stage_dir / STAGE_FILE
        record = json.loads(done.read_text()) if done.exists() else None
        if record and record.get("finished"):
            logger.info("stage %d/%d (%s) already finished in %s: not trained again", i, len(task.stages), stage.name,
                     stage_dir)
        else:
            selection = protocol.stage_selection(stage) if protocol is not None else None
            logger.info("stage %d/%d of %s: %s (%s), selection %s", i, len(task.stages), task.name, stage.name,
                        stage.description, selection.name if selection else "best_dev")
            t0 = time.time()
            train_ex = fmt.load(stage, stage.train, data, max_samples=data_args.max_train_samples)
            dev_ex = fmt.load(stage, stage.dev, data, [stage.dev_language], max_samples=data_args.max_eval_samples)
            train_ds = fmt.featurize(train_ex, tokenizer, data_args.max_seq_length, stage, train=True)
            dev_ds = fmt.featurize(dev_ex, tokenizer, data_args.max_seq_length, stage, train=False)
            if training_args.deepspeed:
                refresh_deepspeed_config(training_args)
            trainer = build_trainer(model, tokenizer, train_ds, dev_ds, training_args, kit_args,
                                    compute_metrics=fmt.dev_metrics(stage, dev_ex, dev_ds), metric=stage.metric,
                                    collator=fmt.collator(tokenizer), output_dir=stage_dir, preemption=preemption,
                                    selection=selection)
            metrics = train(trainer, stage_dir, preemption)
            dev = trainer.evaluate(dev_ds)  # the selected (or final) model on the stage's English dev split
            trainer.save_model(str(stage_dir))  # the whole model (ZeRO-3: gathered), with the tokenizer
            trainer.accelerator.wait_for_everyone()
            record = {
                "finished": True, "index": i, "task": stage.name, "description": stage.description,
                "data": {"train": describe_source(stage.train, data), "dev": describe_source(stage.dev, data),
                         "n_train": len(train_ex), "n_dev": len(dev_ex)},
                "dev_metric": {stage.metric: dev[f"eval_{stage.metric}"], "split": stage.dev.split},
                "selection": dict(metrics["selection"], language=stage.dev_language),
                "timing": {"wall_seconds": time.time() - t0, "train_runtime": metrics.get("train_runtime"),
                           "train_samples_per_second": metrics.get("train_samples_per_second"),
                           "resumed_from": metrics.get("resumed_from")},
                "model_passed_to": "the whole model (encoder and head) goes on to "
                            + (task.stages[i].name if i < len(task.stages) else f"{task.name} training"),
            }
            if trainer.is_world_process_zero():
                (stage_dir / "training_args.bin").unlink(missing_ok=True)  # pickled; never read back
                atomic_write_json(done, record)  # written last: marks the stage finished
                if not kit_args.keep_checkpoints:
                    cleanup(stage_dir)
            trainer.accelerator.wait_for_everyone()
            del trainer, model
            gc.collect()
            logger.info("stage %s done: English dev %s = %.4f", stage.name, stage.metric,
                        record["dev_metric"][stage.metric])
        model = safe_from_pretrained(fmt.model_class(), str(stage_dir))
        records.append(dict(record, model_dir=os.path.relpath(stage_dir, output_dir)))
    if training_args.deepspeed:
        refresh_deepspeed_config(training_args)
    return model, records
