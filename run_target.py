#!/usr/bin/env python
"""Phase 3: fine-tune on a target task's English training data, take the model the preset's checkpoint rule
names (best English dev, the final model, or a given step), and evaluate zero-shot on every language of the task
in one pass.

    python run_target.py --model xlmr-large --task xnli --preset xtreme
    python run_target.py --model xlmr-large --intermediate_checkpoint checkpoints/xlmr-large/mnli --task xnli
    python run_target.py --model tiny-2l-h64 --task xnli --preset tiny --data_root tests/fixtures/hub

Translate-train (NOT zero-shot: the result says ``zero_shot: false`` and lists ``train_languages``; the report
keeps it out of every zero-shot table; xstilts/tasks/translated.py):

    python run_target.py --model xlmr-large --task xnli --train_languages tta    # English + every translation
"""

import logging
import time
from collections import Counter

from transformers import set_seed

from xstilts.run import layout
from xstilts.run.protocol import record as protocol_record
from xstilts.run.record import average, base_result
from xstilts.run.results import write_results
from xstilts.run.start import begin, script_main
from xstilts.training.divergence import assess_run, has_model, unscored
from xstilts.training.evaluation import evaluate_languages
from xstilts.training.modeling import load_for_task, load_tokenizer
from xstilts.training.selection import final_dev
from xstilts.training.stages import train_stages
from xstilts.training.trainer import build_trainer, cleanup, train

logger = logging.getLogger("run_target")


@script_main
def main(argv=None):
    tr = begin("target", argv)
    if tr.run.skip:
        return 0
    run, data_args, kit_args, training_args, preset = tr.run, tr.data_args, tr.kit_args, tr.training_args, tr.preset
    task, fmt, metric = run.task, run.format, run.task.metric
    logger.info("phase 3: %s (from %s) on %s, %d languages -> %s", run.model.name, run.init_path, task.name,
                len(run.languages), run.output_dir)
    if run.train_languages is not None:
        logger.info("translate-train (NOT zero-shot): training on %s", ", ".join(run.train_languages))
    t0 = time.time()
    set_seed(training_args.seed)

    tokenizer = load_tokenizer(run.init_path)
    eval_source = task.test if data_args.eval_split == "test" else task.dev
    train_ex = fmt.load(task, task.train, run.data, max_samples=data_args.max_train_samples)
    dev_ex = fmt.load(task, task.dev, run.data, [task.dev_language], max_samples=data_args.max_eval_samples)
    eval_ex = fmt.load(task, eval_source, run.data, run.languages)
    max_len = data_args.max_seq_length
    train_ds = fmt.featurize(train_ex, tokenizer, max_len, task, train=True)
    dev_ds = fmt.featurize(dev_ex, tokenizer, max_len, task, train=False)
    eval_ds = fmt.featurize(eval_ex, tokenizer, max_len, task, train=False)

    model, handoff = load_for_task(fmt.model_class(), run.init_path, **fmt.model_kwargs(task))
    # English training stages before the task's own (XCOPA: Social IQa, then COPA); none for most tasks
    model, stages = train_stages(fmt, task, model, tokenizer, data=run.data, data_args=data_args,
                                 training_args=training_args, kit_args=kit_args, output_dir=run.output_dir,
                                 preemption=run.preemption, protocol=tr.protocol)
    selection = tr.protocol.selection
    trainer = build_trainer(model, tokenizer, train_ds, dev_ds, training_args, kit_args,
                            compute_metrics=fmt.dev_metrics(task, dev_ex, dev_ds), metric=metric,
                            collator=fmt.collator(tokenizer), output_dir=run.output_dir, preemption=run.preemption,
                            selection=selection)
    train_metrics = train(trainer, run.output_dir, run.preemption)
    selected = dict(train_metrics["selection"], language=task.dev_language, split_name=task.dev.split)
    model_kept = has_model(selected, train_metrics.get("non_finite"))
    if model_kept and not selection.uses_dev:  # the final (step-N) model on English dev, once: never used to choose
        selected["final_dev"] = final_dev(trainer.evaluate(dev_ds))
    # recorded with every result, diverged or not
    divergence = assess_run(task, fmt, dev_ex, dict(train_metrics, selection=selected), kit_args.divergence_margin)

    # zero-shot evaluation: every language in one length-sorted pass with the selected model
    pred_dir = run.output_dir / layout.PREDICTIONS_DIR
    if model_kept:
        per_language, pred_timing = evaluate_languages(
            fmt, trainer, task, eval_ex, eval_ds, run.languages, split=data_args.eval_split,
            prediction_dirs=[pred_dir, kit_args.write_predictions], label_dirs=[kit_args.write_labels],
            write=trainer.is_world_process_zero())
    else:  # the loss became non-finite with no model to keep (none selected before it, or rule final/step:N)
        logger.warning("the training loss became non-finite and no model from before it is kept (selection %s): "
                       "the result records the divergence with null scores", selection.name)
        per_language, pred_timing = unscored(run.languages, metric), {}

    result = base_result(run, trainer.model, seed=training_args.seed, preset=preset, training_args=training_args,
                         data_args=data_args, kit_args=kit_args)
    result.update({
        "eval_split": data_args.eval_split,
        "per_language": per_language,
        "average": {metric: average(per_language, metric)},
        "selection": selected,
        "divergence": divergence,
        "protocol": protocol_record(tr.protocol, task, training_args, data_args, kit_args, model=trainer.model,
                                    handoff=handoff),
        "handoff": handoff,
        "stages": stages,
        "predictions_dir": str(pred_dir),
        "data_order": train_metrics["data_order"],
        "resume": train_metrics["resume"],
        "timing": {"wall_seconds": time.time() - t0, "train_runtime": train_metrics.get("train_runtime"),
                   "train_samples_per_second": train_metrics.get("train_samples_per_second"),
                   "resumed_from": train_metrics.get("resumed_from"), **pred_timing},
    })
    if run.train_languages is not None:  # rows per training language (the English data and each translation)
        rows = Counter(train_ex.with_format("arrow")["lang"].to_pylist())
        result["translate_train"]["train_rows"] = {lang: rows.get(lang, 0) for lang in run.train_languages}
    if not trainer.is_world_process_zero():  # multi-GPU: only the main process writes
        return 0
    write_results(run.output_dir / layout.RESULTS_FILE, result)
    if not kit_args.keep_checkpoints:
        cleanup(run.output_dir)
    if result["average"][metric] is None:
        logger.warning("%s %s: diverged (%s), no scores; result written as evidence", run.model.name, task.name,
                       divergence["reason"])
        return 0
    table = "  ".join(f"{l}={m[metric]:.3f}" for l, m in per_language.items())
    logger.info("%s %s: avg %s = %.4f | %s%s", run.model.name, task.name, metric, result["average"][metric], table,
                f" | DIVERGED ({divergence['reason']})" if divergence["diverged"] else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
