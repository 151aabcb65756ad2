"""The command-line arguments of the three phase scripts and multi-task training (HfArgumentParser
dataclasses), and their checks: every bad value is a UsageError naming it and the valid choices, raised before
any expensive work.

Precedence, lowest first: TrainingArguments defaults < kit defaults < preset file (``xstilts.run.presets``)
< flags given on the command line. Every resolved value and the flags given by hand are stored with each result.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

from ..errors import UsageError, choices_error
from ..retrieval import bucc
from ..retrieval import search as search_lib
from .. import tasks
from ..tasks import TASKS
from ..tasks.benchmarks import MULTITASK_ALL as ALL_TASKS
from ..tasks.translated import MODES, TRANSLATE_TRAIN, TT, TTA
from ..tasks.types import Concat, Task
from ..training.divergence import MARGIN as DIVERGENCE_MARGIN
from . import models
from .layout import is_mixture, mixture_tasks
from .presets import available_presets

logger = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 128  # kit default --per_device_eval_batch_size (bench/bench_eval.py measures it)
# --train_sampling_strategy values the kit resumes exactly (xstilts.training.trainer): random = the references'
# RandomSampler; group_by_length = the kit's speed choice (batches of similar length, less padding)
TRAIN_SAMPLINGS = ("random", "group_by_length")
# kit default --mlm_proportion: the kit's choice (the paper's mixing ratio could not be established), an equal
# share of MLM and task batches (docs/intermediate.md)
MLM_PROPORTION = 0.5


@dataclass
class ModelArguments:
    model: str = field(default="tiny-2l-h64", metadata={
        "help": "Model registry name (configs/models.json), a local model directory, or a Hub id org/name."})
    intermediate_checkpoint: str | None = field(default=None, metadata={
        "help": "Phase-2 encoder checkpoint (run_intermediate.py output) to start from instead of the pretrained model."})


@dataclass
class DataArguments:
    task: str = field(default=None, metadata={"help": "Task name (xstilts/tasks)."})
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
    # token tagging (xstilts/formats/token_tagging.py); None = the preset's value, else False
    sep_token_extra: bool | None = field(default=None, metadata={
        "help": "Tagging: end every input with two </s> and split long sentences at max_seq_length - 3 sub-words, "
                "as XTREME's run_tag.py does for XLM-R (sep_token_extra); false: one </s>, max_seq_length - 2."})
    # the multilingual MLM objective (task mlm, xstilts/formats/masked_lm.py); None = the format's default
    mlm_languages: str | None = field(default=None, metadata={
        "help": "mlm: corpus languages, 'xtreme' (XTREME's 40, default), 'xtreme-r' (50), 'all' or a comma list."})
    mlm_max_documents: int | None = field(default=None, metadata={
        "help": "mlm: cap on Wikipedia articles per language (default 10000), before segmenting."})
    mlm_dev_documents: int | None = field(default=None, metadata={
        "help": "mlm: held-out articles per language for the dev masked-token accuracy (default 20; never selected on)."})
    mlm_alpha: float | None = field(default=None, metadata={
        "help": "mlm: language sampling exponent, p(L) ~ n_L ** alpha over segments (default 0.3, XLM-R's)."})
    # translate-train targets (xstilts/tasks/translated.py): NOT zero-shot, labelled so in results and report
    train_languages: str | None = field(default=None, metadata={
        "help": "run_target.py: train on machine-translated training data too (NOT zero-shot; the result says "
                "zero_shot false): 'tt' (every translation), 'tta' (English + every translation, translate-train-all) "
                "or a comma list (en = the English training data). Tasks with translations: xnli, pawsx, xquad, "
                "mlqa, tydiqa."})
    source_variant: str | None = field(default=None, metadata={
        "help": "Read the task's data from a named alternative source (Task.source_variants; recorded with the "
                "result): udpos: 'xtreme' = XTREME's own UD-POS files rebuilt from UD 2.5 (make data-udpos-xtreme; "
                "docs/tagging.md). Default: the declared (Hub) sources, also called 'hub'."})
    # licensed data that is not on the Hub (xstilts/data/sources.py: OptionDirSource)
    ccg_dir: str | None = field(default=None, metadata={
        "help": "CCG (task ccg): directory with train.txt/dev.txt, one sentence per line of word|supertag tokens; "
                "convert CCGbank (LDC2005T13) AUTO files with `python -m xstilts.ccg convert` (docs/tagging.md)."})


@dataclass
class KitArguments:
    preset: str = field(default="xtreme", metadata={"help": "Hyperparameter preset: configs/presets/<name>.json."})
    encoder_recipe: str | None = field(default=None, metadata={
        "help": "run_intermediate.py: fine-tune by the preset's encoder recipe NAME (encoder_recipes.NAME: its task "
                "and hyperparameters; e.g. tatoeba_squad, XTREME-R's SQuAD v1.1 model for Tatoeba), starting from "
                "--intermediate_checkpoint when given, else the pretrained model. Output: "
                "<ckpts>/<model>/<intermediate|none>.NAME (the encoder the recipe's retrieval task embeds with)."})
    effective_train_batch_size: int | None = field(default=None, metadata={
        "help": "Effective batch (per-device x accumulation x devices). Gradient accumulation is derived from it."})
    eval_steps_or_epoch: str | None = field(default=None, metadata={
        "help": "Evaluate/save on English dev every N steps, or 'epoch' (set by the preset)."})
    early_stopping_patience: int | None = field(default=None, metadata={
        "help": "Stop after this many dev evaluations without improvement (None: never; best_dev selection only)."})
    divergence_margin: float = field(default=DIVERGENCE_MARGIN, metadata={
        "help": f"A run whose English dev metric at selection is at most chance + this margin (absolute, on the "
                f"metric's [0, 1] scale) is recorded as diverged (default {DIVERGENCE_MARGIN}; xstilts/training/"
                f"divergence.py). A negative value turns the chance rule off; a NaN/inf loss is always caught."})
    # the training protocol (xstilts/run/protocol.py); None = the preset's value, else the kit's default
    selection: str | None = field(default=None, metadata={
        "help": "Checkpoint selection: best_dev (best English-dev metric at the evaluation cadence), final (the last "
                "model, no evaluation during training) or step:N (the model after optimizer step N). Default: the "
                "preset's, else best_dev."})
    selection_dev: str | None = field(default=None, metadata={
        "help": "Select on the English dev split of this other task instead of the task's own (same format and "
                "labels), e.g. mnli for xnli (jiant). Default: the preset's, else the task's own dev split."})
    selection_metric: str | None = field(default=None, metadata={
        "help": "The dev metric best_dev compares: the task's metric (default) or em_f1_mean for span QA ((EM + "
                "F1) / 2, jiant)."})
    precision: str | None = field(default=None, metadata={
        "help": "bf16_where_supported (bf16 mixed precision on a GPU that supports it, fp32 elsewhere) or fp32 "
                "(the references). An explicit --bf16 / --fp16 wins. Default: the preset's, else bf16_where_supported."})
    overwrite: bool = field(default=False, metadata={
        "help": "Replace an existing finished result/checkpoint. Without it a finished run is skipped."})
    keep_checkpoints: bool = field(default=False, metadata={
        "help": "Keep the intermediate Trainer checkpoints after a successful run (default: delete them)."})
    write_predictions: str | None = field(default=None, metadata={
        "help": "Also write predictions in the XTREME leaderboard layout under DIR/<task>/test-<lang>.tsv."})
    write_labels: str | None = field(default=None, metadata={
        "help": "Write the gold labels of the evaluated split in the same layout (score with python -m xstilts.score)."})
    # calibration and divergence (xstilts.run.overlay, xstilts.training.divergence; docs/calibration.md)
    calibration: str | None = field(default=None, metadata={
        "help": "A calibration overlay (make calibrate): its learning rate for this model, arm and task replaces "
                "the preset's; --learning_rate on the command line still wins."})
    calibration_missing: str = field(default="refuse", metadata={
        "help": "When --calibration has no rate for this run: refuse (default) or preset (the preset's rate, "
                "recorded as such)."})
    replaces: str | None = field(default=None, metadata={
        "help": "run_target.py: the results.json of a diverged run that this run replaces (make grid "
                "DIVERGED_RETRIES); the seed is the diverged run's plus 1000 (xstilts.run.layout)."})


@dataclass
class MultiTaskArguments:
    tasks: str | None = field(default=None, metadata={
        "help": "Train several intermediate tasks together: a comma list (e.g. mnli,qqp,squad_v1) or 'all' (the "
                f"study's nine: {','.join(ALL_TASKS)}). One shared encoder, one head per task, one checkpoint."})
    mixture_cap: int | None = field(default=None, metadata={
        "help": "Examples-proportional mixing limit K (T5; jiant's train_examples_cap): a task's size counts as "
                "min(size, K) in the sampling rates. Default: no limit."})
    mixture_temperature: float = field(default=1.0, metadata={
        "help": "Mixing temperature T: rates proportional to min(size, K) ** (1/T). 1 = examples-proportional."})
    task_max_train_samples: str | None = field(default=None, metadata={
        "help": "Per-task cap on the training examples loaded, e.g. 'mnli=20000,qqp=5000' (overrides "
                "--max_train_samples for those tasks)."})
    mlm_proportion: float | None = field(default=None, metadata={
        "help": f"With mlm in --tasks: the share of batches drawn from the MLM objective (default {MLM_PROPORTION}), on "
                "top of the other tasks' epoch."})


def requested(argv: list[str]) -> bool:
    """Whether the command line asks for a multi-task run (``--tasks``)."""
    return any(a == "--tasks" or a.startswith("--tasks=") for a in argv)


def parse_task_list(spec: str) -> list[str]:
    """``all`` or a comma list -> intermediate task names (validated, no duplicates)."""
    valid = [t.name for t in TASKS.values() if t.phase == "intermediate"]
    spec = (spec or "").strip()
    if spec == "all":
        missing = [t for t in ALL_TASKS if t not in valid]
        if missing:
            raise UsageError(f"--tasks all needs the nine intermediate tasks {', '.join(ALL_TASKS)}, but "
                             f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not registered in this "
                             f"kit; list the tasks you want instead (registered: {', '.join(valid)})")
        return list(ALL_TASKS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError(f"--tasks is empty; give a comma list of intermediate tasks or 'all' "
                         f"(= {', '.join(ALL_TASKS)})")
    for name in names:
        if name not in valid:
            other = TASKS.get(name)
            if other is not None:
                raise UsageError(f"task {name!r} in --tasks is a {other.phase} task, not an intermediate task; "
                                 f"intermediate tasks: {', '.join(valid)}")
            raise choices_error("intermediate task in --tasks", name, [*valid, "all"],
                                f"'all' = the study's nine: {', '.join(ALL_TASKS)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"--tasks lists {', '.join(dup)} more than once")
    auxiliary = [n for n in names if TASKS[n].auxiliary]
    if auxiliary and len(auxiliary) == len(names):
        raise UsageError(f"{', '.join(auxiliary)} is an auxiliary objective: it joins an intermediate task, listed "
                         f"after it (e.g. --tasks mnli,{auxiliary[0]}; grid name mnli+{auxiliary[0]}); intermediate "
                         f"tasks: {', '.join(n for n in valid if not TASKS[n].auxiliary)}")
    if auxiliary and TASKS[names[0]].auxiliary:
        raise UsageError(f"--tasks {spec}: list {names[0]} after the task(s) it joins, e.g. --tasks "
                         f"{','.join(n for n in names if n not in auxiliary)},{','.join(auxiliary)} (one name per mix)")
    return names


def parse_task_caps(spec: str | None, tasks: list[str]) -> dict[str, int]:
    out = {}
    for item in [s.strip() for s in (spec or "").split(",") if s.strip()]:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise UsageError(f"--task_max_train_samples item {item!r}: expected TASK=N, e.g. mnli=20000")
        if name not in tasks:
            raise choices_error("task in --task_max_train_samples", name, tasks, "name a task of --tasks")
        try:
            n = int(value)
        except ValueError:
            raise UsageError(f"--task_max_train_samples {item!r}: {value!r} is not an integer") from None
        if n < 1:
            raise UsageError(f"--task_max_train_samples {item!r}: the cap must be at least 1")
        out[name] = n
    return out


@dataclass
class RetrievalArguments:
    layer: int | None = field(default=None, metadata={
        "help": "The configured (headline) layer: hidden_states index (0 = embeddings). Default: the model "
                "registry's retrieval_layer, else the study's relative depth 14/24."})
    layers: str = field(default="all", metadata={
        "help": "Layers evaluated in the one forward pass: 'all', 'default' (the configured layer only) or a "
                "comma list such as 8,14,20. Memory: n sentences x hidden x 4 bytes per layer and side."})
    pooling: str | None = field(default=None, metadata={
        "help": "mean or cls. Default: the model registry's retrieval_pooling, else mean (XTREME, jiant)."})
    include_special_tokens: bool | None = field(default=None, metadata={
        "help": "Mean pooling over <s> and </s> too (true/false). Default: the model registry's "
                "retrieval_include_special_tokens, else true (XTREME's default)."})
    batch_size: int = field(default=128, metadata={"help": "Sentences per forward pass (length-sorted batches)."})
    # BUCC mining
    k: int = field(default=bucc.DEFAULT_K, metadata={"help": "BUCC: neighbourhood size of the margin (both directions)."})
    margin: str = field(default="ratio", metadata={"help": f"BUCC: {', '.join(bucc.MARGINS)}"})
    strategy: str = field(default="max", metadata={"help": f"BUCC: {', '.join(bucc.STRATEGIES)}"})
    duplicates: str | None = field(default=None, metadata={
        "help": f"BUCC: how a mined pair of sentence TEXTS becomes id pairs ({', '.join(bucc.DUPLICATES)}): drop = a "
                "text that occurs more than once on its side maps to no id (LASER, XTREME); expand = every id of "
                "both texts (jiant). Default: the preset's retrieval.bucc2018.duplicates (docs/retrieval.md)."})
    index: str = field(default="flat", metadata={
        "help": "BUCC kNN index: flat (exact faiss.IndexFlatIP) or hnsw (approximate, for corpora too large)."})
    knn_db_chunk: int = field(default=100_000, metadata={
        "help": "BUCC, FAISS backend: the flat index holds at most this many database rows at once (bounds the "
                "index copy). The torch backend sizes its chunks from free device memory."})
    knn_query_batch: int = field(default=8192, metadata={"help": "BUCC, FAISS backend: queries per search call."})
    search_backend: str = field(default="auto", metadata={
        "help": f"Exact search ({', '.join(search_lib.BACKENDS)}): auto = the chunked torch matrix product on CUDA, "
                "FAISS (IndexFlatIP) otherwise; --index hnsw is always FAISS. Same neighbours up to exact ties."})
    search_dtype: str = field(default="float32", metadata={
        "help": f"torch backend input dtype ({', '.join(search_lib.DTYPES)}); products are accumulated in float32 "
                "either way. bfloat16 halves memory and moves cosines by ~1e-3 (docs/retrieval.md)."})
    embedding_memory_gb: float = field(default=16.0, metadata={
        "help": "BUCC: embeddings (all evaluated layers, one side) above this size go to a memory-mapped file in "
                "--embedding_dir instead of RAM (deleted after each split)."})
    embedding_dir: str | None = field(default=None, metadata={"help": "Default: <output_dir>/embeddings.tmp"})
    write_candidates: bool = field(default=False, metadata={
        "help": "BUCC: also write every test candidate with its score (configured layer) to "
                "<output_dir>/candidates/bucc2018/test-<lang>.tsv (re-threshold without re-embedding)."})
    # common
    preset: str = field(default="xtreme", metadata={
        "help": "Preset (configs/presets/<name>.json) whose retrieval.<task> block gives the protocol settings "
                "(BUCC duplicates); recorded with the result."})
    seed: int = field(default=1, metadata={"help": "Recorded for the grid layout; retrieval itself is deterministic."})
    output_dir: str | None = field(default=None, metadata={"help": "Default: results/<model>/<inter|none>/<task>/seed<k>"})
    write_predictions: str | None = field(default=None, metadata={
        "help": "Also write predictions in the XTREME leaderboard layout under DIR/<task>/test-<lang>.tsv."})
    write_labels: str | None = field(default=None, metadata={"help": "Write the gold labels in the same layout."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a finished result."})


# ----------------------------------------------------------------------------- tasks and languages
def get_task(name: str, phase: str | None = None) -> Task:
    """The task called ``name`` (of ``phase`` when given); else a UsageError listing the valid names."""
    try:
        return tasks.get(name, phase)
    except (KeyError, ValueError):
        valid = tasks.names(phase) if phase else tasks.names()
        raise choices_error(f"{phase + ' ' if phase else ''}task", name, valid) from None


def preset_entry(name: str) -> str:
    """The preset entry a task trains with: its own, or its English task's for a translated arm (``mnli_tt`` ->
    ``mnli``), so that the arm differs from the English task only by its data."""
    task = TASKS.get(name)
    return task.variant_of if task is not None and task.variant_of else name


def mixture_preset_entry(tasks: list[str]) -> str | None:
    """The preset entry of a multi-task phase 2 (``--tasks``): one intermediate task and auxiliary objectives
    (``mnli + mlm``) train with that task's entry, so that the arm differs from the task alone only by the
    objective; several tasks take the multi-task block (None)."""
    main = [n for n in tasks if not (n in TASKS and TASKS[n].auxiliary)]
    return preset_entry(main[0]) if len(main) == 1 and len(tasks) > 1 else None


def run_preset_entry(name: str) -> str | None:
    """The preset entry of the phase-2 run an intermediate-task name stands for (``mnli``, ``mnli_tt``,
    ``mnli+mlm``, ``a+b``, ``all``), as run_intermediate.py resolves it: ``preset_entry`` for one task,
    ``mixture_preset_entry`` for a mix (None: the multi-task block)."""
    return mixture_preset_entry(mixture_tasks(name)) if is_mixture(name) else preset_entry(name)


def check_not_auxiliary(name: str, phase: str) -> None:
    """An auxiliary objective (mlm) is never the task of a run: a UsageError naming it and the valid tasks."""
    task = TASKS.get(name)
    if task is not None and task.auxiliary:
        valid = [t.name for t in TASKS.values() if t.phase == phase and not t.auxiliary]
        raise UsageError(f"task {name!r} is an auxiliary phase-2 objective ({task.description}): it only joins an "
                         f"intermediate task, e.g. run_intermediate.py --tasks mnli,{name} (grid name mnli+{name}); "
                         f"valid {phase} tasks: {', '.join(valid)}")


def parse_train_languages(task: Task, spec: str) -> tuple[str, list[str]]:
    """``--train_languages`` of a translate-train target run -> (folder label, training languages): ``tt`` = every
    translation of the task, ``tta`` = English + every translation, else a comma (or ``-``) list of ``en`` and
    the task's translation languages. Bad values are a UsageError naming the valid choices."""
    tt = TRANSLATE_TRAIN.get(task.name)
    if tt is None:
        raise UsageError(f"--train_languages: task {task.name!r} has no translated training data; tasks with "
                         f"translations: {', '.join(TRANSLATE_TRAIN)}")
    spec = (spec or "").strip()
    if spec == TT:
        return TT, list(tt.sources)
    if spec == TTA:
        return TTA, [task.dev_language, *tt.sources]
    langs = list(dict.fromkeys(w.strip() for w in spec.replace("-", ",").split(",") if w.strip()))
    valid = [task.dev_language, *tt.sources]
    for lang in langs:
        if lang not in valid:
            raise choices_error(f"--train_languages language of task {task.name} ({tt.about})", lang,
                                [*valid, *MODES])
    if not langs:
        raise UsageError(f"--train_languages is empty; valid choices: {', '.join([*MODES, *valid])}")
    if langs == [task.dev_language]:
        raise UsageError(f"--train_languages {spec}: English alone is the zero-shot run; leave --train_languages out")
    return "-".join(langs), langs


def translate_train_source(task: Task, langs: list[str]) -> Concat:
    """The training data of a translate-train run: the task's English training data for ``en``, its translation
    for every other language, in the order given."""
    sources = TRANSLATE_TRAIN[task.name].sources
    return Concat(tuple(task.train if lang == task.dev_language else sources[lang] for lang in langs))


def select_source_variant(task: Task, name: str | None) -> Task:
    """``task`` reading the sources of its variant ``name`` (None or ``hub``: the declared ones); else a UsageError
    listing the task's variants."""
    if name is None or name == "hub":
        return task
    if name not in task.source_variants:
        raise choices_error(f"--source_variant of task {task.name!r}", name, ["hub", *task.source_variants])
    return replace(task, **task.source_variants[name])


LANGUAGE_SETS = ("xtreme", "xtreme-r", "all", "available")


def parse_languages(task: Task, spec: str | None) -> list[str]:
    """None/``xtreme`` -> XTREME's languages of the task; ``xtreme-r`` -> XTREME-R's; ``all`` -> both;
    else a comma list checked against the task, each language once, in the order given (``en,de,de`` is
    ``en,de``: a run's stored settings never depend on a repeated name)."""
    spec = (spec or "").strip()
    if spec in ("", "xtreme"):
        return list(task.languages)
    if spec == "xtreme-r":
        return list(task.language_set("xtreme-r"))
    if spec in ("all", "available"):  # "available" is narrowed to the data present by xstilts.run.start.prepare
        return list(task.all_languages)
    langs = list(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    for lang in langs:
        if lang not in task.all_languages:
            raise choices_error(f"language for task {task.name}", lang, [*task.all_languages, *LANGUAGE_SETS])
    if not langs:
        raise UsageError(f"no language given for task {task.name}")
    return langs


# ----------------------------------------------------------------------------- the command line
def flags_given(argv: list[str]) -> set[str]:
    out = set()
    for a in argv:
        if a.startswith("--"):
            out.add(a[2:].split("=", 1)[0])
    return out


def prescan(argv: list[str], name: str, default=None):
    for i, a in enumerate(argv):
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return default


def drop_flag(argv: list[str], name: str) -> list[str]:
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


def replace_flag(argv: list[str], name: str, value: str) -> list[str]:
    return drop_flag(argv, name) + [f"--{name}", value]


def add_choices_to_help(parser, phase: str | None = None) -> None:
    """Append the valid values to the help of --task (the tasks of ``phase``; every task by phase when None),
    --model (configs/models.json) and --preset (configs/presets/), read from the registries each time."""
    phases = [phase] if phase else sorted({t.phase for t in TASKS.values()})
    tasks = "; ".join((f"{ph}: " if not phase else "") + ", ".join(t.name for t in TASKS.values() if t.phase == ph)
                      for ph in phases)
    extra = {"task": f"Valid {phase + ' ' if phase else ''}tasks: {tasks}.",
             "model": f"Registry names: {', '.join(models.registry())}.",
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
    sampling = getattr(training_args, "train_sampling_strategy", "random")  # TrainingArguments' default
    if sampling not in TRAIN_SAMPLINGS:
        refuse("train_sampling_strategy", sampling,
               f"valid choices: {', '.join(TRAIN_SAMPLINGS)} (the kit's exact-resume samplers)")
    margin = getattr(kit_args, "divergence_margin", DIVERGENCE_MARGIN)
    if not math.isfinite(margin) or margin >= 1:
        refuse("divergence_margin", margin, "expected a number below 1 (a negative one turns the chance rule off)")
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
