#!/usr/bin/env python
"""Phase 3: fine-tune on a target task's English training data, select the checkpoint on English
dev, and evaluate zero-shot on every language of the task in one pass.

    python run_target.py --model xlmr-large --task xnli --preset xtreme
    python run_target.py --model xlmr-large --intermediate_checkpoint checkpoints/xlmr-large/mnli --task xnli
    python run_target.py --model tiny-2l-h64 --task xnli --preset tiny --data_root tests/fixtures/hub
"""

import logging
import time

import numpy as np
from transformers import set_seed

from xstilts import data as data_lib
from xstilts.errors import exits_on_usage_error
from xstilts.formats import get_format
from xstilts.modeling import load_for_task, load_tokenizer
from xstilts.pipeline import average, base_result, begin_training_run
from xstilts.predictions import write_all
from xstilts.results import RESULTS_FILE, write_results
from xstilts.training import build_trainer, cleanup, predict_sorted, train

logger = logging.getLogger("run_target")


@exits_on_usage_error
def main(argv=None):
    tr = begin_training_run("target", argv)
    if tr.run.skip:
        return 0
    run, data_args, kit_args, training_args, preset = tr.run, tr.data_args, tr.kit_args, tr.training_args, tr.preset
    task, fmt = run.task, get_format(run.task.format)
    logger.info("phase 3: %s (from %s) on %s, %d languages -> %s", run.model.name, run.init_path, task.name,
                len(run.languages), run.output_dir)
    t0 = time.time()
    set_seed(training_args.seed)

    tokenizer = load_tokenizer(run.init_path)
    eval_source = task.test if data_args.eval_split == "test" else task.dev
    train_ds = data_lib.load_pair_classification(task, task.train, run.data_root, max_samples=data_args.max_train_samples)
    dev_ds = data_lib.load_pair_classification(task, task.dev, run.data_root, [task.dev_language],
                                               max_samples=data_args.max_eval_samples)
    eval_ds = data_lib.load_pair_classification(task, eval_source, run.data_root, run.languages)
    train_ds, dev_ds, eval_ds = (fmt.tokenize(d, tokenizer, data_args.max_seq_length) for d in (train_ds, dev_ds, eval_ds))

    model, handoff = load_for_task(fmt.model_class(), run.init_path, **fmt.model_kwargs(task))
    trainer = build_trainer(model, tokenizer, train_ds, dev_ds, training_args, kit_args,
                            compute_metrics=fmt.compute_metrics, metric=fmt.METRIC, collator=fmt.collator(tokenizer),
                            output_dir=run.output_dir)
    train_metrics = train(trainer, run.output_dir)

    # zero-shot evaluation: every language in one length-sorted pass with the selected model
    preds, pred_timing = predict_sorted(trainer, eval_ds, fmt.predictions_from_logits)
    langs = np.asarray(eval_ds["lang"])
    labels = np.asarray(eval_ds["labels"])
    per_language = {lang: fmt.score(task, preds[langs == lang], labels[langs == lang]) for lang in run.languages}
    pred_dir = run.output_dir / "predictions"
    write_all([pred_dir, kit_args.write_predictions], task,
              {lang: fmt.label_rows(task, preds[langs == lang]) for lang in run.languages}, data_args.eval_split)
    write_all([kit_args.write_labels], task,
              {lang: fmt.label_rows(task, labels[langs == lang]) for lang in run.languages}, data_args.eval_split)

    result = base_result(run, trainer.model, seed=training_args.seed, preset=preset, training_args=training_args,
                         data_args=data_args, kit_args=kit_args)
    result.update({
        "eval_split": data_args.eval_split,
        "per_language": per_language,
        "average": {fmt.METRIC: average(per_language, fmt.METRIC)},
        "selection": dict(train_metrics["selection"], language=task.dev_language, split_name=task.dev.split),
        "handoff": handoff,
        "predictions_dir": str(pred_dir),
        "timing": {"wall_seconds": time.time() - t0, "train_runtime": train_metrics.get("train_runtime"),
                   "train_samples_per_second": train_metrics.get("train_samples_per_second"),
                   "resumed_from": train_metrics.get("resumed_from"), **pred_timing},
    })
    write_results(run.output_dir / RESULTS_FILE, result)
    if not kit_args.keep_checkpoints:
        cleanup(run.output_dir)
    table = "  ".join(f"{l}={m[fmt.METRIC]:.3f}" for l, m in per_language.items())
    logger.info("%s %s: avg %s = %.4f | %s", run.model.name, task.name, fmt.METRIC,
                result["average"][fmt.METRIC], table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
