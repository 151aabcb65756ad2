"""The study grid as data: which cells ``make grid`` builds, what each costs, and their status.

    python -m xstilts.plan plan  --models "xlmr-base xlmr-large" --intermediate "none mnli" --targets "xnli tatoeba"
    python -m xstilts.plan slurm --models ... --out slurm/xstilts-grid.sh      (see xstilts/slurm.py)
    python -m xstilts.plan measure --model tiny-2l-h64 --task mnli --preset tiny --data_root tests/fixtures/hub
    python -m xstilts.plan from-bench --model xlmr-large --train bench/results/train-gpu-large-pair128.json \
        --eval bench/results/eval-gpu-large-xnli.json --write      (GPU benchmark figures -> configs/throughput.json)
    python -m xstilts.plan from-bench --search bench/results/scaling-*.json --write     (retrieval search rates)
    python -m xstilts.plan retrieval-cost --model xlmr-large --task bucc2018        (one retrieval cell, itemised)

``make plan`` / ``make slurm`` (mk/study.mk) call the first two with the Makefile's variables, so the cells
listed here are the Makefile's file targets, name for name (a test checks this against ``make -n grid``):

* phase 2: ``$(CKPTS)/<model>/<intermediate>/xstilts_meta.json`` (run_intermediate.py, seed 1);
* encoder recipes: ``$(CKPTS)/<model>/<intermediate|none>.<recipe>/xstilts_meta.json`` (run_intermediate.py
  --encoder_recipe), one per (model, intermediate) when a target names a recipe (``tatoeba_squad``: XTREME-R's
  SQuAD v1.1 encoder), depending on the phase-2 checkpoint unless the intermediate is ``none``; priced as training
  the recipe's task with the recipe's values (``encoder_recipes.<recipe>`` of the preset);
* cells: ``$(RESULTS)/<model>/<intermediate|none>/<target>/seed<k>/results.json`` (run_target.py, or
  run_retrieval.py for retrieval tasks), depending on the phase-2 checkpoint unless the intermediate is ``none``
  (a recipe task: on its recipe checkpoint).

GPU-hour estimate of a cell (``estimate``), from ``configs/throughput.json`` (per model and GPU) and
``configs/dataset_sizes.json`` (Hub row counts, tokens per example), with the preset's epochs and batch:

    optimizer steps  = ceil(train rows / effective batch) x epochs           (or --max_steps)
    step seconds     = max(effective batch x tokens per example / (train tokens/s per GPU x GPUs), min step seconds)
    evaluation       = (English dev rows x dev evaluations + zero-shot rows) x tokens / (eval tokens/s x GPUs)
    GPU-hours        = (steps x step seconds + evaluation seconds) x GPUs / 3600

It is an upper bound for runs with early stopping (every epoch is counted). Every figure says where it comes
from; a throughput that was not measured is marked and the plan says the estimate is unmeasured.

A retrieval cell (run_retrieval.py: one process, one device) is priced as what it does (``retrieval_cost``): one
forward pass over every sentence of its corpora (``corpora`` in dataset_sizes.json: BUCC's whole comparable
corpora, dev and test, both sides; Tatoeba's 41 test sets) gives all evaluated layers at once, then every layer
is searched in both directions per corpus:

    embedding        = sentences x tokens per sentence / eval tokens/s                      (once, all layers)
    search per layer = sum over corpora of 2 x n_src x n_en x hidden multiply-adds / search rate
    device-hours     = (embedding + layers x search per layer) / 3600

with layers = what ``--layers`` in EVAL_ARGS selects (run_retrieval.py's default ``all``: num_layers + 1) and
the search rate of configs/throughput.json ``search`` for the backend ``--search_backend`` resolves to on the
model's device (auto: torch on a GPU, FAISS on a CPU), measured by ``bench/bench_scaling.py`` (stored with
``from-bench --search``). Embeddings are float32: sentences x layers x hidden x 4 bytes, one split (both sides)
at a time (``retrieval_cost`` reports the peak and the total; above ``--embedding_memory_gb`` per side they are
memory-mapped to disk).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..data.hub import resolve_data_root
from ..errors import UsageError, choices_error
from ..paths import CONFIGS, KIT_ROOT
from ..run import layout
from ..run.args import (MLM_PROPORTION, check_not_auxiliary, parse_task_list, parse_train_languages,
                        preset_entry)
from ..run.models import registry, resolve_model
from ..run.presets import resolve_preset, resolve_recipe
from ..run.results import is_finished
from ..tasks import TASKS
from . import power, report, slurm

BASELINE = layout.BASELINE
THROUGHPUT_FILE = CONFIGS / "throughput.json"
SIZES_FILE = CONFIGS / "dataset_sizes.json"
UNMEASURED = "estimate (not measured)"


# ----------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Cell:
    """One Make file target: a phase-2 checkpoint or a result cell."""

    kind: str  # "phase2" | "recipe" | "target" | "retrieval"
    model: str
    intermediate: str  # BASELINE for cells without intermediate training
    task: str  # the phase-2 task, the encoder recipe's name (kind "recipe"), or the target task
    seed: int
    target: str  # the file target, as Make spells it
    depends: str | None = None  # the phase-2 file target this cell needs

    @property
    def output_dir(self) -> str:
        return str(Path(self.target).parent)


@dataclass
class Grid:
    models: list[str]
    intermediate: list[str]
    targets: list[str]
    seeds: list[int]
    results: str = "results"
    ckpts: str = "checkpoints"
    preset: str = "xtreme"
    phase2: list[Cell] = field(default_factory=list)
    recipes: list[Cell] = field(default_factory=list)  # encoder recipes' checkpoints (kind "recipe")
    cells: list[Cell] = field(default_factory=list)

    @property
    def baseline_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.depends is None]

    @property
    def dependent_cells(self) -> list[Cell]:
        """Cells that start from a phase-2 checkpoint."""
        recipes = {c.target for c in self.recipes}
        return [c for c in self.cells if c.depends is not None and c.depends not in recipes]

    @property
    def recipe_cells(self) -> list[Cell]:
        """Cells that embed with an encoder recipe's checkpoint."""
        recipes = {c.target for c in self.recipes}
        return [c for c in self.cells if c.depends in recipes]


def _words(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [w for v in value for w in str(v).split()]


def _unique(names: list[str], what: str) -> list[str]:
    seen = []
    for n in names:
        if n in seen:
            raise UsageError(f"{what} {n!r} is listed twice")
        seen.append(n)
    return seen


def check_models(models: list[str], model_dirs: dict[str, str]) -> None:
    reg = registry()
    for m in models:
        if m in model_dirs:
            if not (Path(model_dirs[m]) / "config.json").exists():
                raise UsageError(f"MODEL_DIR_{m}={model_dirs[m]!r} is not a model directory (no config.json)")
        elif m not in reg:
            raise choices_error("model", m, list(reg), "Or map the name to a directory with MODEL_DIR_<name>=PATH")


def check_tasks(intermediate: list[str], targets: list[str]) -> None:
    """Every name must be a task of the right phase (a multi-task name: intermediate tasks only)."""
    for name in intermediate:
        if layout.is_mixture(name):
            parse_task_list(name.replace(layout.MIXTURE_SEP, ","))  # unknown names -> the error listing the nine
            continue
        t = TASKS.get(name)
        if name != BASELINE and (t is None or t.phase != "intermediate"):
            raise choices_error("intermediate task", name, [BASELINE] + sorted(
                t.name for t in TASKS.values() if t.phase == "intermediate"))
        check_not_auxiliary(name, "intermediate")  # mlm alone: it only joins a task (mnli+mlm)
    for name in targets:
        base, label = layout.split_target(name)  # xnli@tta: a translate-train cell (NOT zero-shot)
        t = TASKS.get(base)
        if t is None or t.phase not in ("target", "retrieval"):
            raise choices_error("target task", name, sorted(t.name for t in TASKS.values()
                                                            if t.phase in ("target", "retrieval")))
        if label is not None:
            parse_train_languages(t, label)  # a task without translations, an unknown language -> the choices


def build_grid(models, intermediate, targets, seeds, *, results: str = "results", ckpts: str = "checkpoints",
               preset: str = "xtreme", model_dirs: dict[str, str] | None = None, validate: bool = True) -> Grid:
    """The cells in the Makefile's order (model, intermediate, target, seed)."""
    models = _unique(_words(models), "model")
    intermediate = _unique(_words(intermediate), "intermediate task")
    targets = _unique(_words(targets), "target task")
    seed_words = _unique(_words(seeds), "seed")
    try:
        seed_list = [int(s) for s in seed_words]
    except ValueError:
        raise UsageError(f"SEEDS must be integers, got {' '.join(seed_words)!r}") from None
    for what, vals in (("MODELS", models), ("INTERMEDIATE", intermediate), ("TARGETS", targets),
                       ("SEEDS", seed_list)):
        if not vals:
            raise UsageError(f"{what} is empty")
    if validate:
        check_models(models, model_dirs or {})
        check_tasks(intermediate, targets)

    results, ckpts = results.rstrip("/") or "/", ckpts.rstrip("/") or "/"
    grid = Grid(models, intermediate, targets, seed_list, results, ckpts, preset)
    for m in models:
        for i in intermediate:
            if i != BASELINE:
                grid.phase2.append(Cell("phase2", m, i, i, 1, layout.checkpoint_meta(m, i, ckpts)))
    recipes = list(dict.fromkeys(TASKS[t].encoder_recipe for t in targets if t in TASKS and TASKS[t].encoder_recipe))
    for m in models:
        for i in intermediate:
            for r in recipes:
                grid.recipes.append(Cell("recipe", m, i, r, 1, layout.recipe_checkpoint_meta(m, i, r, ckpts),
                                         None if i == BASELINE else layout.checkpoint_meta(m, i, ckpts)))
    for m in models:
        for i in intermediate:
            for t in targets:
                kind = "retrieval" if TASKS.get(t) is not None and TASKS[t].phase == "retrieval" else "target"
                recipe = TASKS[t].encoder_recipe if t in TASKS else ""
                depends = (layout.recipe_checkpoint_meta(m, i, recipe, ckpts) if recipe else
                           None if i == BASELINE else layout.checkpoint_meta(m, i, ckpts))
                for s in seed_list:
                    grid.cells.append(Cell(kind, m, i, t, s, layout.cell_file(m, i, t, s, results), depends))
    return grid


def status(cell: Cell) -> str:
    """done (a finished result / phase-2 checkpoint), partial (started: a Trainer checkpoint or run record
    exists), or todo."""
    out = Path(cell.output_dir)
    if cell.kind in ("phase2", "recipe"):
        meta = Path(cell.target)
        try:
            if meta.exists() and json.loads(meta.read_text()).get("finished"):
                return "done"
        except (OSError, json.JSONDecodeError):
            pass
    elif is_finished(out):
        return "done"
    return "partial" if (out / layout.TRAINER_DIR).is_dir() or (out / layout.RUN_FILE).exists() else "todo"


# ----------------------------------------------------------------------------- estimates
def load_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} is missing") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not valid JSON: {e}") from None


def is_measured(entry: dict) -> bool:
    return str(entry.get("source", "")).startswith("measured")


@dataclass
class Estimate:
    gpu_hours: float | None
    gpus: int | None
    measured: bool
    detail: str  # how it was computed, or why there is none
    unit: str = "GPU-h"


def unit_for(tp_entry: dict) -> str:
    """Device-hours are GPU-hours, except for figures measured on a CPU (the tiny models)."""
    return "CPU-h" if str(tp_entry.get("device", "")).upper().startswith("CPU") else "GPU-h"


def _train_overrides(train_args: str) -> dict:
    """The few TRAIN_ARGS flags that change the cost (the command line beats the preset, as in the scripts)."""
    words = shlex.split(train_args or "")
    out = {}
    for i, w in enumerate(words):
        for key in ("max_train_samples", "max_steps", "num_train_epochs", "effective_train_batch_size"):
            if w == f"--{key}" and i + 1 < len(words):
                out[key] = float(words[i + 1])
            elif w.startswith(f"--{key}="):
                out[key] = float(w.split("=", 1)[1])
    return out


def flag_value(args: str, name: str) -> str | None:
    """The value of ``--name`` in a flag string such as EVAL_ARGS (the last one wins, as in the scripts)."""
    words = shlex.split(args or "")
    out = None
    for i, w in enumerate(words):
        if w == f"--{name}" and i + 1 < len(words):
            out = words[i + 1]
        elif w.startswith(f"--{name}="):
            out = w.split("=", 1)[1]
    return out


# ----------------------------------------------------------------------------- retrieval cells
def retrieval_layers(model_entry: dict, eval_args: str = "") -> int:
    """How many hidden states run_retrieval.py evaluates: ``--layers`` in EVAL_ARGS (default ``all``: num_layers
    + 1; ``default``: 1; a list: its layers plus the configured one, which is always added)."""
    spec = (flag_value(eval_args, "layers") or "all").strip()
    n = int(model_entry["num_layers"])
    if spec == "all":
        return n + 1
    if spec == "default":
        return 1
    try:
        layers = {int(x) for x in spec.split(",") if x.strip()}
        configured = flag_value(eval_args, "layer")
        layers.add(int(configured) if configured is not None else int(model_entry.get("retrieval_layer",
                                                                                       round(n * 14 / 24))))
    except ValueError:
        raise UsageError(f"EVAL_ARGS --layers {spec!r}: expected 'all', 'default' or comma-separated layer "
                         f"indices") from None
    return len(layers)


def search_key(tp_entry: dict, eval_args: str = "") -> tuple[str, str]:
    """(key of configs/throughput.json ``search``, note): what ``--search_backend`` (EVAL_ARGS; default auto)
    runs on the model's device. auto = torch on a GPU, FAISS on a CPU (xstilts.retrieval.search.resolve)."""
    device = "cpu" if unit_for(tp_entry) == "CPU-h" else "gpu"
    backend = flag_value(eval_args, "search_backend") or "auto"
    if backend == "auto":
        backend = "torch" if device == "gpu" else "faiss"
    if device == "gpu" and backend == "faiss":
        return "cpu-faiss", "FAISS on a GPU node: priced on the CPU (faiss-cpu, the kit's requirement)"
    return f"{device}-{backend}", ""


def retrieval_cost(size: dict, hidden: int, layers: int, eval_tokens_per_second: float,
                   search_multiply_adds_per_second: float) -> dict:
    """Seconds and bytes of one run_retrieval.py cell (the formulas in the module doc), from the task's
    ``corpora`` (dataset_sizes.json: ``src``/``en`` sentences, ``count`` corpora of that size)."""
    corpora = size["corpora"]
    sentences = sum(c.get("count", 1) * (c["src"] + c["en"]) for c in corpora)
    tokens = sentences * float(size["eval_tokens_per_example"])
    search_per_layer = sum(c.get("count", 1) * 2 * c["src"] * c["en"] * hidden for c in corpora)
    embed_s = tokens / eval_tokens_per_second
    search_layer_s = search_per_layer / search_multiply_adds_per_second
    return {
        "sentences": sentences, "tokens": tokens, "layers": layers, "hidden": hidden,
        "embed_seconds": embed_s, "search_multiply_adds_per_layer": search_per_layer,
        "search_seconds_per_layer": search_layer_s, "search_seconds": layers * search_layer_s,
        "seconds": embed_s + layers * search_layer_s,
        "embedding_bytes_total": sentences * layers * hidden * 4,
        "embedding_bytes_peak": max(c["src"] + c["en"] for c in corpora) * layers * hidden * 4,
        "largest_side_bytes": max(max(c["src"], c["en"]) for c in corpora) * layers * hidden * 4,
    }


def _retrieval_estimate(cell, tp: dict, size: dict, throughput: dict, eval_args: str) -> Estimate:
    entry = registry().get(cell.model)
    if entry is None or "num_layers" not in entry:
        return Estimate(None, None, False, f"model {cell.model!r} has no num_layers in configs/models.json")
    if "corpora" not in size:
        return Estimate(None, None, False, f"no corpora for task {cell.task!r} in {SIZES_FILE.name}")
    key, note = search_key(tp, eval_args)
    rate = throughput.get("search", {}).get(key)
    if rate is None:
        return Estimate(None, None, False, f"no search figure {key!r} in {THROUGHPUT_FILE.name} (`python -m "
                                           f"xstilts.plan from-bench --search bench/results/scaling-*.json --write`)")
    layers = retrieval_layers(entry, eval_args)
    cost = retrieval_cost(size, int(entry["hidden_size"]), layers, float(tp["eval_tokens_per_second"]),
                          float(rate["multiply_adds_per_second"]))
    detail = (f"embed {cost['sentences']:,} sentences once ({cost['embed_seconds'] / 3600:.3g} h) + {layers} layer(s)"
              f" x search both ways {cost['search_multiply_adds_per_layer']:.3g} multiply-adds "
              f"({key}: {cost['search_seconds_per_layer']:.3g} s/layer); float32 embeddings "
              f"{cost['embedding_bytes_peak'] / 1e9:.3g} GB at a time, {cost['embedding_bytes_total'] / 1e9:.3g} GB "
              f"in all; one process" + (f"; {note}" if note else ""))
    return Estimate(cost["seconds"] / 3600.0, 1, is_measured(tp) and is_measured(rate), detail, unit_for(tp))


def estimate(cell: Cell, throughput: dict, sizes: dict, preset: str, train_args: str = "",
             eval_args: str = "") -> Estimate:
    if cell.kind == "phase2" and layout.is_mixture(cell.task):
        # the sum of the tasks' single-task estimates: an upper bound (the mixture's per-task cap lowers it)
        names = layout.mixture_tasks(cell.task)
        main = [t for t in names if not (t in TASKS and TASKS[t].auxiliary)]
        parts = [estimate(replace(cell, task=t), throughput, sizes, preset, train_args) for t in main]
        if len(main) < len(names):  # mlm: its share of the batches on top (auxiliary_estimate)
            parts.append(auxiliary_estimate(cell, main, throughput, sizes, preset, train_args))
        if any(p.gpu_hours is None for p in parts):
            return Estimate(None, None, False, "; ".join(p.detail for p in parts if p.gpu_hours is None))
        return Estimate(sum(p.gpu_hours for p in parts), parts[0].gpus, all(p.measured for p in parts),
                        f"multi-task upper bound: sum over {len(parts)} tasks"
                        + "".join(f" ({p.detail})" for p in parts[len(main):]), parts[0].unit)
    base, label = layout.split_target(cell.task)
    if label is not None:  # translate-train: every training set counted at the English set's size
        langs = parse_train_languages(TASKS[base], label)[1]
        entry = sizes.get("tasks", {}).get(base)
        if entry is None:
            return Estimate(None, None, False, f"no size for task {base!r} in {SIZES_FILE.name}")
        scaled = {"tasks": {base: dict(entry, train=int(entry["train"]) * len(langs))}}
        est = estimate(replace(cell, task=base), throughput, scaled, preset, train_args, eval_args)
        est.detail += (f"; translate-train {label}: {len(langs)} training sets, each counted at the English "
                       f"set's size (approximate)")
        return est

    tp = throughput.get("models", {}).get(cell.model)
    recipe = resolve_recipe(preset, cell.task, cell.model) if cell.kind == "recipe" else None
    size_task = recipe.header["recipe"]["task"] if recipe else cell.task  # a recipe trains its task
    size = sizes.get("tasks", {}).get(size_task)
    if tp is None:
        return Estimate(None, None, False, f"no throughput for model {cell.model!r} in {THROUGHPUT_FILE.name}")
    if size is None:
        return Estimate(None, None, False, f"no size for task {size_task!r} in {SIZES_FILE.name}")
    if cell.kind == "retrieval":
        return _retrieval_estimate(cell, tp, size, throughput, eval_args)
    gpus = int(tp.get("gpus", 1))
    train_tps = float(tp["train_tokens_per_second"]) * gpus
    eval_tps = float(tp["eval_tokens_per_second"]) * gpus
    min_step = float(tp.get("min_step_seconds", 0.0))
    eval_tokens = float(size.get("eval_tokens_per_example", size.get("tokens_per_example", 0)))
    parts = []
    values = recipe.values if recipe else resolve_preset(preset, preset_entry(cell.task), cell.model).values
    values = dict(values, **_train_overrides(train_args))
    n_train = int(size["train"])
    if values.get("max_train_samples"):
        n_train = min(n_train, int(values["max_train_samples"]))
    batch = int(values.get("effective_train_batch_size") or 32)
    epochs = float(values.get("num_train_epochs") or 3)
    steps_per_epoch = math.ceil(n_train / batch)
    steps = int(values["max_steps"]) if values.get("max_steps", 0) and values["max_steps"] > 0 \
        else math.ceil(steps_per_epoch * epochs)
    choices = int(size.get("choices", 1))  # multiple choice: one sequence per answer
    tokens = float(size["tokens_per_example"])
    max_len = values.get("max_seq_length")
    if max_len:
        tokens = min(tokens / choices, float(max_len)) * choices
    step_s = max(batch * tokens / train_tps, min_step)
    seconds = steps * step_s
    cadence = values.get("eval_steps", "epoch")
    n_evals = math.ceil(steps / steps_per_epoch) if str(cadence) == "epoch" else max(1, steps // int(cadence))
    dev_rows = int(size.get("dev", 0)) * n_evals
    test_rows = int(size.get("eval", 0))
    seconds += (dev_rows * tokens + test_rows * eval_tokens) / eval_tps
    parts.append(f"{steps:,} steps x batch {batch} ({n_train:,} rows x {epochs:g} ep)")
    if dev_rows or test_rows:
        parts.append(f"eval {dev_rows + test_rows:,} rows")
    hours = seconds * gpus / 3600.0
    return Estimate(hours, gpus, is_measured(tp), "; ".join(parts), unit_for(tp))


def auxiliary_estimate(cell: Cell, main: list[str], throughput: dict, sizes: dict, preset: str,
                       train_args: str = "") -> Estimate:
    """The MLM batches of a ``<tasks>+mlm`` mix: ``--mlm_proportion`` p (TRAIN_ARGS, else the kit's default) of
    all batches on top of the tasks' epoch, i.e. p / (1 - p) MLM rows per task row, each a full segment of
    max_seq_length tokens; dev: dataset_sizes.json's ``mlm`` entry (approximate)."""
    p = float(flag_value(train_args, "mlm_proportion") or MLM_PROPORTION)
    rows = 0
    for t in main:
        entry = sizes.get("tasks", {}).get(t)
        if entry is None:
            return Estimate(None, None, False, f"no size for task {t!r} in {SIZES_FILE.name}")
        rows += int(entry["train"])
    values = resolve_preset(preset, preset_entry(main[0]), cell.model).values
    max_len = int(values.get("max_seq_length") or 128)
    mlm = dict(sizes.get("tasks", {}).get("mlm", {}), train=math.ceil(rows * p / (1.0 - p)), eval=0,
               tokens_per_example=max_len)
    est = estimate(replace(cell, task=main[0]), throughput, {"tasks": {main[0]: mlm}}, preset, train_args)
    est.detail = f"mlm: {p:g} of the batches, {mlm['train']:,} segments of {max_len} tokens per epoch; {est.detail}"
    return est


# ----------------------------------------------------------------------------- the printed plan
def _hours(h: float | None) -> str:
    if h is None:
        return "n/a"
    return f"{h:,.0f}" if h >= 100 else f"{h:.3g}"


def render_plan(grid: Grid, *, train_args: str = "", eval_args: str = "", throughput: dict | None = None,
                sizes: dict | None = None, with_status: bool = True) -> str:
    throughput = throughput if throughput is not None else load_json(THROUGHPUT_FILE)
    sizes = sizes if sizes is not None else load_json(SIZES_FILE)
    lines = [f"Plan: {len(grid.models)} model(s) x {len(grid.intermediate)} intermediate (incl. {BASELINE!r}) x "
             f"{len(grid.targets)} target(s) x {len(grid.seeds)} seed(s), preset {grid.preset}",
             f"  models: {' '.join(grid.models)}", f"  intermediate: {' '.join(grid.intermediate)}",
             f"  targets: {' '.join(grid.targets)}", f"  seeds: {' '.join(map(str, grid.seeds))}", ""]
    total = {"all": 0.0, "todo": 0.0}
    unmeasured_models, unknown, units = set(), [], set()
    search_used, unmeasured_search = set(), set()  # keys of throughput["search"] behind the estimates

    def section(title: str, cells: list[Cell]) -> None:
        lines.append(f"{title}: {len(cells)}")
        if not cells:
            lines.append("  (none)")
        for c in cells:
            est = estimate(c, throughput, sizes, grid.preset, train_args, eval_args)
            st = status(c) if with_status else "-"
            if est.gpu_hours is None:
                unknown.append(f"{c.target}: {est.detail}")
                mark = "n/a"
            else:
                total["all"] += est.gpu_hours
                if st != "done":
                    total["todo"] += est.gpu_hours
                units.add(est.unit)
                mark = f"{_hours(est.gpu_hours)} {est.unit}" + ("" if est.measured else " [unmeasured]")
                tp = throughput["models"][c.model]
                if not is_measured(tp):
                    unmeasured_models.add(c.model)
                if c.kind == "retrieval":
                    key = search_key(tp, eval_args)[0]
                    search_used.add(key)
                    if not is_measured(throughput["search"][key]):
                        unmeasured_search.add(key)
            gpus = f"{est.gpus} GPU" if est.gpus else ""
            lines.append(f"  [{st:7}] {c.target}  {mark}  {gpus}  ({est.detail})")
        lines.append("")

    section("Phase 2: intermediate checkpoints (run_intermediate.py)", grid.phase2)
    if grid.recipes:
        section("Encoder recipes: the encoder a retrieval task embeds with, fine-tuned per (model, intermediate) "
                "(run_intermediate.py --encoder_recipe)", grid.recipes)
    section("Cells: target tasks (run_target.py) and retrieval (run_retrieval.py)", grid.cells)
    unit = units.pop() if len(units) == 1 else "device-h (GPU and CPU figures mixed)"
    lines.append(f"Total: {len(grid.phase2)} phase-2 checkpoint(s) + "
                 + (f"{len(grid.recipes)} encoder-recipe checkpoint(s) + " if grid.recipes else "")
                 + f"{len(grid.cells)} cell(s); "
                 f"estimated {_hours(total['all'])} {unit} in all, {_hours(total['todo'])} {unit} still to run"
                 + (" (UNMEASURED estimate)" if unmeasured_models or unmeasured_search else ""))
    if unmeasured_models:
        lines.append(f"NOTE: the throughput of {', '.join(sorted(unmeasured_models))} is not measured: the GPU-hours "
                     f"above are an unmeasured estimate. Where each figure comes from:")
        for m in sorted(unmeasured_models):
            lines.append(f"  {m}: {throughput['models'][m]['source']}")
        lines.append(f"  Measure on your GPU: `make bench-gpu` (stores xlmr-base/xlmr-large), or `python -m xstilts.plan "
                     f"measure --model <name> --task mnli --write`; both update "
                     f"{THROUGHPUT_FILE.relative_to(CONFIGS.parent)}.")
    if unmeasured_search:
        lines.append("NOTE: the search rate of the retrieval cells is not measured:")
        for key in sorted(unmeasured_search):
            lines.append(f"  search {key}: {throughput['search'][key]['source']}")
        lines.append("  Measure: `make bench-scaling` (CPU) or `make bench-gpu`, then `python -m xstilts.plan from-bench "
                     "--search bench/results/scaling-*.json --write`.")
    measured = sorted({c.model for c in grid.phase2 + grid.recipes + grid.cells} - unmeasured_models
                      & set(throughput.get("models", {})))
    for m in measured:
        lines.append(f"Throughput of {m}: {throughput['models'][m]['source']}")
    for key in sorted(search_used - unmeasured_search):
        lines.append(f"Search rate {key}: {throughput['search'][key]['source']}")
    if unknown:
        lines.append("No estimate for:")
        lines += [f"  {u}" for u in unknown]
    lines.append(f"Dataset sizes: {SIZES_FILE.relative_to(CONFIGS.parent)} (the Hub datasets' row counts; a --data_root "
                 f"mirror or --max_train_samples may hold fewer). Early stopping can end runs sooner.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- seeds and power
def power_plan(grid: Grid, min_gain: float) -> list[str]:
    """What the planned seeds resolve and how many seeds ``min_gain`` (points) needs, per planned size and target,
    from the seed variance measured in the grid's results tree (xstilts.study.power)."""
    try:
        groups = report.group_results(report.collect(grid.results))
    except ValueError as e:  # no results tree yet, or nothing in it
        return [f"Seeds and power: no seed variance measured yet ({e}). Run a pilot with SEEDS=\"1 2\" (or more), "
                f"then `make plan` says how many seeds a gain of {min_gain:g} points needs."]
    rows = power.power_rows(groups, min_gain / 100.0)
    retrieval = {c.task for c in grid.cells if c.kind == "retrieval"}
    return power.plan_power_lines(rows, len(grid.seeds), min_gain / 100.0, grid.results, grid.models, grid.targets,
                                  retrieval)


# ----------------------------------------------------------------------------- measuring throughput
def measure(model: str, task: str, preset: str, data_root: str | None, max_steps: int, out_dir: str,
            extra: list[str]) -> dict:
    """Train ``max_steps`` steps of phase 2 and derive tokens/s; returns a configs/throughput.json entry."""
    import datetime
    import platform

    import numpy as np

    if task not in TASKS:
        raise choices_error("task", task, TASKS)
    t = TASKS[task]
    if t.format != "pair_classification":
        raise UsageError(f"measure counts tokens of sentence-pair tasks only; {task!r} is {t.format}: "
                         f"use mnli (or another pair-classification task)")
    if str(KIT_ROOT) not in sys.path:
        sys.path.insert(0, str(KIT_ROOT))
    # a real phase-2 run (torch, transformers, datasets): imported only when measuring
    import run_intermediate

    from ..formats.pair_classification import load, tokenize  # datasets / transformers: only when measuring
    from ..training.modeling import load_tokenizer  # torch: only when measuring

    # best_dev: one dev evaluation during training, whatever the preset's rule (its speed is measured too)
    argv = ["--model", model, "--task", task, "--preset", preset, "--max_steps", str(max_steps),
            "--eval_steps_or_epoch", str(max_steps), "--selection", "best_dev", "--output_dir", out_dir, "--overwrite",
            "--disable_tqdm", "true",
            *(["--data_root", data_root] if data_root else []), *extra]
    rc = run_intermediate.main(argv)
    if rc not in (0, None):
        raise UsageError(f"the measuring run failed (exit {rc})")
    meta = json.loads((Path(out_dir) / layout.META_FILE).read_text())
    tok = load_tokenizer(resolve_model(model).path_or_id)
    ds = tokenize(load(t, t.train, resolve_data_root(data_root)), tok, meta["hyperparameters"]["max_seq_length"])
    mean_tokens = float(np.mean(ds["length"]))
    sps = meta["timing"]["train_samples_per_second"]
    evals = [e for e in meta["selection"]["evaluations"] if "eval_samples_per_second" in e]
    eval_sps = evals[-1]["eval_samples_per_second"] if evals else None
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s))"
    return {
        "gpus": 1,
        "train_tokens_per_second": round(sps * mean_tokens, 1),
        "eval_tokens_per_second": round(eval_sps * mean_tokens, 1) if eval_sps else None,
        "min_step_seconds": 0.0,
        "device": device,
        "source": (f"measured {datetime.date.today().isoformat()} on {device}: python -m xstilts.plan measure "
                   f"--model {model} --task {task} --preset {preset} --max_steps {max_steps}; "
                   f"{sps:.1f} train samples/s x {mean_tokens:.1f} mean tokens (train_runtime includes one dev "
                   f"evaluation), eval {eval_sps and round(eval_sps, 1)} samples/s on English dev"),
    }


def from_bench(model: str, train_json: str | Path, eval_json: str | Path | None = None, setting: str = "kit",
               previous: dict | None = None) -> dict:
    """A configs/throughput.json entry from ``bench/bench_train.py`` (and ``bench/bench_eval.py``) results.

    Training tokens/s = the chosen setting's real (non-pad) tokens/s; evaluation tokens/s = the kit's
    one-pass evaluation tokens/s. The bench's encoder shape must be the model's (layers, hidden size);
    without an evaluation result the entry says "partly measured" and the plan keeps its [unmeasured] mark.
    """
    models = registry()
    if model not in models:
        raise choices_error("--model", model, sorted(models))
    entry_cfg = models[model]
    train = load_json(Path(train_json))
    if train.get("benchmark") != "train":
        raise UsageError(f"{train_json}: not a bench_train.py result (benchmark={train.get('benchmark')!r})")
    shape = train.get("model_shape", {})
    want = (entry_cfg.get("num_layers"), entry_cfg.get("hidden_size"))
    got = (shape.get("num_hidden_layers"), shape.get("hidden_size"))
    if want != got:
        raise UsageError(f"{train_json} measured the {shape.get('name')!r} shape ({got[0]} layers, hidden {got[1]}), "
                         f"but {model} has {want[0]} layers, hidden {want[1]}: run bench/bench_train.py with the "
                         f"matching --model_shape")
    results = {r["setting"]: r for r in train.get("results", [])}
    if setting not in results:
        raise choices_error("--setting", setting, sorted(results))
    r = results[setting]
    src = [f"measured {train['date']} on {train['device']}: {train['command']} "
           f"(setting {setting}: {r['real_tokens_per_second']:.0f} real tokens/s, batch {train['batch_size']}, "
           f"task shape {train['task_shape']['name']})"]
    eval_tps = None
    if eval_json:
        ev = load_json(Path(eval_json))
        if ev.get("benchmark") != "eval" or "tokens_per_second" not in ev.get("kit", {}):
            raise UsageError(f"{eval_json}: not a bench_eval.py result with token counts (re-run bench/bench_eval.py)")
        if ev.get("device") != train.get("device"):
            raise UsageError(f"{eval_json} was measured on {ev.get('device')!r}, {train_json} on "
                             f"{train.get('device')!r}: use results from the same device")
        eshape = ev.get("model_shape", {})
        if (eshape.get("num_hidden_layers"), eshape.get("hidden_size")) != want:
            raise UsageError(f"{eval_json} measured the {eshape.get('name')!r} shape, not {model}'s")
        eval_tps = round(float(ev["kit"]["tokens_per_second"]), 1)
        src.append(f"evaluation: {ev['command']} ({eval_tps:.0f} tokens/s, kit one-pass evaluation)")
    else:
        eval_tps = round(3.0 * float(r["real_tokens_per_second"]), 1)
        src = ["partly " + src[0], "evaluation NOT measured: estimated as 3x training tokens/s (forward only)"]
    prev = previous or {}
    if r.get("update_seconds_per_step") is not None:
        min_step = round(float(r["update_seconds_per_step"]), 4)
        src.append(f"min_step_seconds = the measured gradient clipping + optimizer time per step ({min_step} s; a "
                   f"lower bound of the per-step floor)")
    else:  # a result from before the benchmark timed the update: the floor is not measured
        min_step = float(prev.get("min_step_seconds", 0.0))
        src = ["partly " + src[0] if not src[0].startswith("partly") else src[0], *src[1:],
               f"min_step_seconds NOT measured: kept from the previous entry ({min_step})"]
    ds_config = entry_cfg.get("deepspeed")
    if ds_config:
        src.append(f"measured without DeepSpeed on one device; the grid trains {model} with {ds_config}, which "
                   f"can be slower")
    return {
        "gpus": 1,
        "train_tokens_per_second": round(float(r["real_tokens_per_second"]), 1),
        "eval_tokens_per_second": eval_tps,
        "min_step_seconds": min_step,
        "device": train["device"] + (", bf16" if r.get("bf16") else ""),
        "source": "; ".join(src),
    }


# ----------------------------------------------------------------------------- search rates (retrieval)
def search_multiply_adds(n_src: int, n_trg: int, dim: int) -> int:
    """Multiply-adds of one mining pass: k-NN in both directions over n_src x n_trg vectors of ``dim``."""
    return 2 * n_src * n_trg * dim


def fit_search_rate(points: list[dict]) -> dict:
    """Least-squares fit of ``seconds = multiply-adds / rate`` (through the origin) over measured mining passes
    (``n_src``, ``n_trg``, ``dim``, ``seconds``), and the check of the n^2 law: the exponent b of
    ``seconds ~ n^b`` (log-log least squares over n = sqrt(n_src x n_trg), when there are two sizes or more).
    ``seconds_per_n2`` is the fitted time of an n x n pass divided by n^2 at the points' dimension."""
    import numpy as np

    if not points:
        raise UsageError("no measured point to fit")
    w = np.array([search_multiply_adds(p["n_src"], p["n_trg"], p["dim"]) for p in points], dtype=np.float64)
    t = np.array([p["seconds"] for p in points], dtype=np.float64)
    c = float((t * w).sum() / (w * w).sum())  # seconds per multiply-add
    out = {"multiply_adds_per_second": 1.0 / c, "points": len(points), "exponent": None,
           "max_relative_residual": float(np.abs(c * w - t).max() / t.max())}
    n = np.sqrt([p["n_src"] * p["n_trg"] for p in points])
    if len(set(n.round())) >= 2:
        out["exponent"] = float(np.polyfit(np.log(n), np.log(t), 1)[0])
    dims = {p["dim"] for p in points}
    if len(dims) == 1:
        out["seconds_per_n2"] = c * 2 * dims.pop()
    return out


LOADED_SHARE = 0.1  # other processes' share of the CPU during a run above which a CPU result is "under load"


def bench_start_load(record: dict) -> float | None:
    """The 1-minute load average a bench result recorded at its start (bench_mining.py's older field too)."""
    if record.get("load_average_at_start") is not None:
        return record["load_average_at_start"]
    return (record.get("loadavg_1_5_15_before") or [None])[0]


def bench_under_load(record: dict) -> bool:
    """A CPU bench result measured while other jobs ran. Where the run recorded ``other_cpu_share``
    (bench/common.py: the CPU that processes other than the benchmark used during it), above LOADED_SHARE: the
    load average does not tell, since its reading at the end counts the benchmark's own threads and its reading
    at the start still counts a benchmark that ended a minute before (make bench-cpu runs them back to back).
    Older results only have the load average: above half the cores at the start or the end."""
    if record.get("cuda") or record.get("device") == "gpu":
        return False
    if record.get("other_cpu_share") is not None:
        return record["other_cpu_share"] > LOADED_SHARE
    cores = record.get("cpu_count") or record.get("cores") or 2
    return max(bench_start_load(record) or 0, record.get("load_average_at_end") or 0) > cores / 2


def search_points(record: dict, path: str = "") -> dict[str, list[dict]]:
    """``{search key: [points]}`` of a bench result: ``bench_scaling.py`` (every backend it timed) or
    ``bench_mining.py`` (its FAISS timing). Keys as configs/throughput.json ``search``: ``<cpu|gpu>-<backend>``."""
    common = {"date": record.get("date"), "command": record.get("command"), "file": path,
              "device": record.get("device_detail") or record.get("device"),
              "load": bench_start_load(record), "other_cpu_share": record.get("other_cpu_share"),
              "under_load": bench_under_load(record)}
    if record.get("benchmark") == "scaling":
        out = {}
        for backend, b in record["backends"].items():
            key = f"{'gpu' if b['device'] in ('cuda', 'gpu') else 'cpu'}-{backend}"
            out[key] = [dict(common, n_src=p["n_src"], n_trg=p["n_trg"], dim=record["dim"], seconds=p["seconds"])
                        for p in b["points"]]
        return out
    if str(record.get("benchmark", "")).startswith("BUCC margin mining"):
        key = f"{'gpu' if record.get('device') == 'gpu' else 'cpu'}-faiss"
        return {key: [dict(common, n_src=record["n_src"], n_trg=record["n_trg"], dim=record["dim"],
                           seconds=record["seconds_faiss"])]}
    raise UsageError(f"{path}: not a bench_scaling.py or bench_mining.py result (benchmark={record.get('benchmark')!r})")


def from_bench_search(paths: list[str | Path]) -> dict[str, dict]:
    """configs/throughput.json ``search`` entries fitted (:func:`fit_search_rate`) from mining results."""
    points: dict[str, list[dict]] = {}
    for path in paths:
        for key, pts in search_points(load_json(Path(path)), str(path)).items():
            points.setdefault(key, []).extend(pts)
    out = {}
    for key, pts in sorted(points.items()):
        fit = fit_search_rate(pts)
        devices = sorted({str(p["device"]) for p in pts})
        loads = sorted({p["load"] for p in pts if p["load"] is not None})
        runs = "; ".join(sorted({f"{p['command']} ({p['date']}, load {p['load']}"
                                 + (f", other processes {100 * p['other_cpu_share']:.0f} % of the CPU"
                                    if p["other_cpu_share"] is not None else "") + ")" for p in pts}))
        exp = f", exponent of n {fit['exponent']:.2f}" if fit["exponent"] is not None else ""
        out[key] = {
            "multiply_adds_per_second": float(f"{fit['multiply_adds_per_second']:.4g}"),
            "device": ", ".join(devices),
            "source": (f"measured on {', '.join(devices)}: least-squares fit of seconds = 2 x n_src x n_en x dim / rate "
                       f"(mining both directions, margin and selection included) over {len(pts)} point(s){exp}"
                       + (f"; load average {min(loads)}-{max(loads)} at the start (a shared machine slows this figure)"
                          if any(p["under_load"] for p in pts) else "") + f": {runs}"),
        }
    return out


def record_search(entries: dict[str, dict], path: Path = THROUGHPUT_FILE) -> Path:
    """Put search-rate entries into the throughput file; each replaced entry's source is kept beside it."""
    data = load_json(path)
    search = data.setdefault("search", {})
    for key, entry in entries.items():
        old = search.get(key)
        search[key] = dict(entry, replaced_source=old.get("source")) if old is not None else entry
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


def retrieval_cell_cost(model: str, task: str, throughput: dict, sizes: dict, eval_args: str = "") -> dict:
    """:func:`retrieval_cost` of one grid cell with the figures it uses and where they come from
    (``python -m xstilts.plan retrieval-cost``)."""
    entry = registry().get(model)
    if entry is None:
        raise choices_error("--model", model, sorted(registry()))
    size = sizes.get("tasks", {}).get(task)
    if size is None or "corpora" not in size:
        raise choices_error("--task", task, sorted(t for t, v in sizes.get("tasks", {}).items() if "corpora" in v))
    tp = throughput.get("models", {}).get(model)
    if tp is None:
        raise UsageError(f"no throughput for model {model!r} in {THROUGHPUT_FILE.name}")
    key, note = search_key(tp, eval_args)
    rate = throughput.get("search", {}).get(key)
    if rate is None:
        raise UsageError(f"no search figure {key!r} in {THROUGHPUT_FILE.name}")
    layers = retrieval_layers(entry, eval_args)
    cost = retrieval_cost(size, int(entry["hidden_size"]), layers, float(tp["eval_tokens_per_second"]),
                          float(rate["multiply_adds_per_second"]))
    return dict(cost, model=model, task=task, search=key, search_note=note,
                embedding_source=tp["source"], search_source=rate["source"],
                measured=is_measured(tp) and is_measured(rate),
                eval_tokens_per_second=float(tp["eval_tokens_per_second"]),
                search_multiply_adds_per_second=float(rate["multiply_adds_per_second"]),
                corpora_source=size.get("corpora_source", ""))


def record_throughput(model: str, entry: dict, path: Path = THROUGHPUT_FILE) -> Path:
    """Put ``entry`` into the throughput file for ``model``; the replaced entry's source is kept beside it."""
    data = load_json(path)
    old = data.setdefault("models", {}).get(model)
    if old is not None:
        entry = dict(entry, replaced_source=old.get("source"))
    data["models"][model] = entry
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


# ----------------------------------------------------------------------------- command line
def _grid_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", required=True)
    p.add_argument("--intermediate", required=True)
    p.add_argument("--targets", required=True)
    p.add_argument("--seeds", default="1")
    p.add_argument("--preset", default="xtreme")
    p.add_argument("--results", default="results")
    p.add_argument("--ckpts", default="checkpoints")
    p.add_argument("--train_args", default="", help="the Makefile's TRAIN_ARGS (max_steps etc. change the cost)")
    p.add_argument("--eval_args", default="", help="the Makefile's EVAL_ARGS (retrieval: --layers, --search_backend "
                                                   "change the cost)")
    p.add_argument("--model_dir", action="append", default=[], metavar="NAME=PATH",
                   help="the Makefile's MODEL_DIR_<name>=PATH mappings")


def _model_dirs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--model_dir {item!r}: expected NAME=PATH")
        if path:
            out[name] = path
    return out


def grid_from_args(args) -> Grid:
    return build_grid(args.models, args.intermediate, args.targets, args.seeds, results=args.results,
                      ckpts=args.ckpts, preset=args.preset, model_dirs=_model_dirs(args.model_dir))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xstilts.plan", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    p_plan = sub.add_parser("plan", help="print the cells, their status and GPU-hour estimates")
    _grid_args(p_plan)
    p_plan.add_argument("--min_gain", type=float, default=report.MIN_GAIN,
                        help="the gain (points x100) to size the seeds for at 80%% power (make MIN_GAIN=...)")
    p_slurm = sub.add_parser("slurm", help="write a SLURM script (array jobs, one cell per task)")
    _grid_args(p_slurm)
    slurm.add_arguments(p_slurm)
    p_measure = sub.add_parser("measure", help="measure training throughput of a model (phase-2 steps)")
    p_measure.add_argument("--model", required=True)
    p_measure.add_argument("--task", default="mnli")
    p_measure.add_argument("--preset", default="xtreme")
    p_measure.add_argument("--data_root", default=None)
    p_measure.add_argument("--max_steps", type=int, default=50)
    p_measure.add_argument("--output_dir", default="checkpoints/_measure")
    p_measure.add_argument("--write", action="store_true", help="store the entry in the throughput file")
    p_measure.add_argument("--throughput", default=str(THROUGHPUT_FILE), help="the throughput file (--write)")
    p_bench = sub.add_parser("from-bench", help="a throughput entry from bench/bench_train.py (+ bench_eval.py) "
                                                "results, or search rates from bench_scaling.py / bench_mining.py")
    p_bench.add_argument("--model", default=None)
    p_bench.add_argument("--train", default=None, help="bench/results/train-<device>-<shape>-<task>.json")
    p_bench.add_argument("--eval", default=None, help="bench/results/eval-<device>-<shape>-<task>.json")
    p_bench.add_argument("--setting", default="kit", help="which bench setting's tokens/s (default: kit)")
    p_bench.add_argument("--write", action="store_true", help="store the entry in the throughput file")
    p_bench.add_argument("--throughput", default=str(THROUGHPUT_FILE), help="the throughput file (--write)")
    p_bench.add_argument("--search", nargs="+", default=None, metavar="RESULT",
                         help="instead of --model/--train: fit the retrieval search rates (configs/throughput.json "
                              "'search') from bench/results/scaling-*.json or mining-*.json")
    p_cost = sub.add_parser("retrieval-cost", help="what one retrieval cell costs (embedding, search, disk)")
    p_cost.add_argument("--model", required=True)
    p_cost.add_argument("--task", required=True)
    p_cost.add_argument("--eval_args", default="", help="the Makefile's EVAL_ARGS (--layers, --search_backend)")
    args, extra = p.parse_known_args(argv)
    try:
        if args.command in ("measure", "from-bench"):
            if args.command == "measure":
                entry = measure(args.model, args.task, args.preset, args.data_root, args.max_steps, args.output_dir,
                                extra)
            else:
                if extra:
                    raise UsageError(f"unknown arguments: {' '.join(extra)}")
                if args.search:
                    if args.model or args.train or args.eval:
                        raise UsageError("from-bench --search takes mining results only (no --model/--train/--eval)")
                    entries = from_bench_search(args.search)
                    print(json.dumps(entries, indent=2))
                    if args.write:
                        path = record_search(entries, Path(args.throughput))
                        print(f"stored the search rates in {path}: `make plan` now uses them", file=sys.stderr)
                    return 0
                if not args.model or not args.train:
                    raise UsageError("from-bench needs --model and --train (or --search RESULT...)")
                previous = load_json(Path(args.throughput)).get("models", {}).get(args.model)
                entry = from_bench(args.model, args.train, args.eval, args.setting, previous)
            print(json.dumps({args.model: entry}, indent=2))
            if args.write:
                path = record_throughput(args.model, entry, Path(args.throughput))
                print(f"stored in {path}: `make plan` now uses it", file=sys.stderr)
            return 0
        if extra:
            raise UsageError(f"unknown arguments: {' '.join(extra)}")
        if args.command == "retrieval-cost":
            cost = retrieval_cell_cost(args.model, args.task, load_json(THROUGHPUT_FILE), load_json(SIZES_FILE),
                                       args.eval_args)
            print(json.dumps(cost, indent=2))
            return 0
        grid = grid_from_args(args)
        if args.command == "plan":
            if not args.min_gain > 0:
                raise UsageError(f"--min_gain {args.min_gain!r}: the gain to size the seeds for must be > 0 points "
                                 f"(e.g. MIN_GAIN=0.5)")
            print(render_plan(grid, train_args=args.train_args, eval_args=args.eval_args))
            print()
            print("\n".join(power_plan(grid, args.min_gain)))
            return 0
        tp, sizes = load_json(THROUGHPUT_FILE), load_json(SIZES_FILE)
        path = slurm.write_script(grid, args, lambda c, ta, ea: estimate(c, tp, sizes, grid.preset, ta, ea))
        recipes = (f", {len(grid.recipes)} encoder-recipe checkpoint(s) and {len(grid.recipe_cells)} cell(s) "
                   f"after them" if grid.recipes else "")
        print(f"wrote {path}: {len(grid.phase2)} phase-2 task(s), {len(grid.baseline_cells)} baseline cell(s), "
              f"{len(grid.dependent_cells)} cell(s) after phase 2{recipes}. Submit with: bash {path}")
        return 0
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
