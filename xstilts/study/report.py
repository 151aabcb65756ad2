"""Turn a results tree into a report a researcher can paste: report.md, two CSVs and two figures.

Input: every ``results.json`` below a root (``<root>/<model>/<intermediate|none>/<target>/seed<k>/``,
found with ``rglob``, at any depth). Translate-train results (``zero_shot: false``) are kept out of every
zero-shot table, gain, mean and figure; the section on the alternative arms (``xstilts.study.arms``) shows them,
and compares MLM co-training and translated intermediate data with English-only intermediate training. Each file is read with :func:`xstilts.results.read_results`; a file
that fails the schema stops the report with :class:`ResultsSchemaError` naming it (nothing is skipped
silently). Results of kind ``intermediate`` (no target task) are not tabulated; the report says how
many there were.

Numbers
    Metric values are fractions in [0, 1]; tables show them x100 with one decimal. A table cell is the
    mean over seeds of the task average; ``±`` is the sample standard deviation over seeds (ddof=1),
    shown when there are at least 2 seeds.

Gain
    gain = mean over seeds of the task average with intermediate training
           - the same for the baseline (``none``) of the same model and target task.
    The "mean over targets" gain is the unweighted mean of the per-target gains that exist for that
    model and intermediate task.

95% confidence intervals (percentile bootstrap, 2000 resamples, ``numpy.random.default_rng(0)``)
    * seeds: when both arms have >= 2 seeds. Each resample draws the seeds of each arm independently
      with replacement (as many as that arm has) and takes the difference of the two means of the
      task averages. This reflects run-to-run (seed) variance only; with 2-3 seeds it is coarse.
    * languages: otherwise (typically 1 seed each). Paired bootstrap over the languages both arms
      evaluated: per-language difference (intermediate - baseline, each the mean over its seeds),
      resample languages with replacement, take the mean difference. This reflects how consistent the
      gain is across languages, not seed variance.
    Each cell starts from a fresh generator seeded with 0, so a cell's interval does not depend on
    which other results are in the tree. For the mean over targets, the per-target resamples are drawn
    one target after another (targets sorted) from one generator seeded with 0, i.e. independently
    across targets, and averaged resample by resample; its method is the per-target method, or
    ``mixed``. The bounds are the 2.5th and 97.5th percentiles of the resampled gains.

The size question's sections (issue 20; docs/study.md), each in its own module:
    * Diverged runs (``divergence``): runs marked diverged are left out of every number above and below (``runs``
      of a :class:`Group` holds the kept runs; ``diverged`` the others) and listed; ``§`` marks affected numbers.
    * Learning rates (``rates``): the rate of every phase per size, arm and task, and where it came from.
    * Seeds and power (``power``): per size and target, the gain the seeds resolve and the seeds a chosen gain
      (``--min_gain``, points) needs; ``power.csv``.
    * What the gain is made of (``decompose``): English gain, transfer-gap change, gain per script and family;
      ``decomposition.csv`` and two figures.
    * Published numbers (``published``): each with its source and protocol, one protocol per table.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..paths import CONFIGS
from ..files import atomic_write_text
from ..run.results import RESULTS_FILE, ResultsSchemaError, read_results
from ..run.layout import BASELINE
from ..tasks.benchmarks import paper_groups
from . import arms, decompose, divergence, power, protocols, published as pubnum, rates
from .figures import new_figure, save_figure
from .markdown import format_params, md_table, pct, signed

N_BOOT = 2000
BOOT_SEED = 0
TABULATED_KINDS = ("target", "retrieval")
SEED_MARK, LANG_MARK = "†", "‡"  # CI method markers in the gain table
REPORT_MD, RESULTS_CSV, GAINS_CSV = "report.md", "results.csv", "gains.csv"
GAIN_PNG, LAYERS_PNG = "gain_vs_size.png", "retrieval_layers.png"
BENCH_CSV, HEATMAP_PNG = "benchmark_gains.csv", "gain_heatmap_{model}.png"
PUBLISHED_JSON = CONFIGS / "published.json"
PUBLISHED = pubnum.PUBLISHED  # the mark on every published number in the report
MIN_GAIN = 0.5  # points: the gain the power table sizes the seeds for (make MIN_GAIN=...)
POWER_CSV = "power.csv"
# Task groups of the benchmark papers' tables (xstilts.tasks.benchmarks.PAPER_GROUPS)
BENCHMARKS = paper_groups()
BENCH_COLUMNS = ["model", "n_params", "intermediate", "benchmark", "group", "tasks", "missing", "gain", "ci_low",
                 "ci_high", "ci_method"]
RESULTS_COLUMNS = ["model", "n_params", "intermediate", "target", "seed", "language", "metric", "value",
                   "eval_split", "preset", "layer", "diverged"]
GAINS_COLUMNS = ["model", "n_params", "target", "intermediate", "gain", "ci_low", "ci_high", "ci_method",
                 "n_seeds", "n_seeds_baseline"]


# ----------------------------------------------------------------------------- reading and grouping
def collect(root: str | Path) -> list[dict]:
    """Read every results.json under ``root`` (sorted). Adds ``_source`` (the file path) to each dict."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"results directory {root} does not exist or is not a directory")
    files = sorted(root.rglob(RESULTS_FILE))
    if not files:
        raise ValueError(f"no {RESULTS_FILE} found under {root}")
    out = []
    for path in files:
        d = read_results(path)
        _check_extra(d, path)
        d["_source"] = str(path)
        out.append(d)
    return out


def _check_extra(d: dict, path: Path) -> None:
    """Fields the report relies on beyond :func:`validate`."""
    if d["kind"] in TABULATED_KINDS and not d["target_task"]:
        raise ResultsSchemaError(f"{path}: kind {d['kind']!r} without a target_task")
    if d["kind"] == "retrieval" and "retrieval" in d:
        per_layer = (d["retrieval"] or {}).get("per_layer") or {}
        for layer, entry in per_layer.items():
            if not isinstance(entry, dict) or d["metric"] not in (entry.get("average") or {}):
                raise ResultsSchemaError(f"{path}: retrieval.per_layer[{layer!r}].average lacks {d['metric']!r}")


@dataclass
class Group:
    """All seeds of one (model, intermediate, target)."""

    model: str
    n_params: int
    intermediate: str
    target: str
    kind: str
    metric: str
    runs: list[dict]  # sorted by seed; diverged runs are not among them
    diverged: list[dict] = field(default_factory=list)  # left out of every number (xstilts.study.divergence)

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.runs]

    def averages(self) -> np.ndarray:
        return np.array([r["average"][self.metric] for r in self.runs], dtype=float)

    def languages(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.runs:
            for lang in r.get("languages") or r["per_language"]:
                if lang in r["per_language"]:
                    seen.setdefault(lang)
        return list(seen)

    def language_means(self) -> dict[str, float]:
        """Per language: mean over the seeds that evaluated it."""
        out = {}
        for lang in self.languages():
            vals = [r["per_language"][lang][self.metric] for r in self.runs if lang in r["per_language"]]
            out[lang] = float(np.mean(vals))
        return out

    def layer_means(self) -> dict[int, float]:
        """Retrieval only: layer -> mean over seeds of the average metric at that layer."""
        vals: dict[int, list[float]] = {}
        for r in self.runs:
            per_layer = ((r.get("retrieval") or {}).get("per_layer")) or {}
            for layer, entry in per_layer.items():
                vals.setdefault(int(layer), []).append(entry["average"][self.metric])
        return {k: float(np.mean(v)) for k, v in sorted(vals.items())}

    def configured_layers(self) -> set[int]:
        return {r["retrieval"]["layer"] for r in self.runs
                if isinstance(r.get("retrieval"), dict) and r["retrieval"].get("layer") is not None}


def intermediate_name(d: dict) -> str:
    return d["intermediate_task"] or BASELINE


def _intermediate_order(name: str) -> tuple:
    return (name != BASELINE, name)


def group_results(results: list[dict]) -> list[Group]:
    """Group by (model, intermediate, target); refuse duplicates and inconsistent metrics."""
    by_key: dict[tuple, list[dict]] = {}
    for d in results:
        if d["kind"] not in TABULATED_KINDS:
            continue
        by_key.setdefault((d["model"]["name"], intermediate_name(d), d["target_task"]), []).append(d)
    n_params = _model_sizes(results)
    groups = []
    for (model, inter, target), runs in by_key.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        _check_group(runs)
        kept, diverged = divergence.split_runs(runs)
        if kept:  # a cell whose every run diverged has no number; the "Diverged runs" section lists it
            groups.append(Group(model, n_params[model], inter, target, runs[0]["kind"], runs[0]["metric"], kept,
                                diverged))
    return sorted(groups, key=lambda g: (g.n_params, g.model, _intermediate_order(g.intermediate), g.target))


def _model_sizes(results: list[dict]) -> dict[str, int]:
    """Model name -> n_params (the largest recorded, should runs disagree)."""
    sizes: dict[str, int] = {}
    for d in results:
        name, n = d["model"]["name"], int(d["model"]["n_params"])
        sizes[name] = max(sizes.get(name, n), n)
    return sizes


def _check_group(runs: list[dict]) -> None:
    seen: dict[int, str] = {}
    for r in runs:
        if r["seed"] in seen:
            raise ValueError(f"two results for the same model, intermediate task, target and seed "
                             f"{r['seed']}: {seen[r['seed']]} and {r['_source']}")
        seen[r["seed"]] = r["_source"]
    for attr in ("metric", "kind"):
        values = {r[attr] for r in runs}
        if len(values) > 1:
            raise ValueError(f"inconsistent {attr} {sorted(values)} across seeds: "
                             + ", ".join(r["_source"] for r in runs))


def _models(groups: list[Group]) -> list[tuple[str, int]]:
    return list(dict.fromkeys((g.model, g.n_params) for g in groups))


def _row_keys(groups: list[Group]) -> list[tuple[str, int, str]]:
    """(model, n_params, intermediate) in report order."""
    return list(dict.fromkeys((g.model, g.n_params, g.intermediate) for g in groups))


def _targets(groups: list[Group]) -> list[str]:
    return sorted({g.target for g in groups})


def _index(groups: list[Group]) -> dict[tuple[str, str, str], Group]:
    return {(g.model, g.intermediate, g.target): g for g in groups}


# ----------------------------------------------------------------------------- gains and bootstrap
@dataclass
class Gain:
    model: str
    n_params: int
    intermediate: str
    target: str  # a target task, or "mean"
    gain: float
    ci_low: float
    ci_high: float
    ci_method: str  # seeds | languages | mixed | none
    n_seeds: int
    n_seeds_baseline: int
    n_targets: int = 1
    warning: str = ""
    n_excluded: int = 0  # diverged runs left out of this number


def seed_bootstrap(inter: np.ndarray, base: np.ndarray, rng: np.random.Generator, n: int = N_BOOT) -> np.ndarray:
    """Resampled differences of means, each arm's seeds drawn independently with replacement."""
    a = inter[rng.integers(0, len(inter), size=(n, len(inter)))].mean(axis=1)
    b = base[rng.integers(0, len(base), size=(n, len(base)))].mean(axis=1)
    return a - b


def language_bootstrap(diffs: np.ndarray, rng: np.random.Generator, n: int = N_BOOT) -> np.ndarray:
    """Resampled mean of paired per-language differences."""
    if len(diffs) == 0:
        return np.full(n, np.nan)
    return diffs[rng.integers(0, len(diffs), size=(n, len(diffs)))].mean(axis=1)


def _replicates(inter: Group, base: Group, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    if len(inter.runs) >= 2 and len(base.runs) >= 2:
        return seed_bootstrap(inter.averages(), base.averages(), rng), "seeds"
    a, b = inter.language_means(), base.language_means()
    common = [lang for lang in a if lang in b]
    return language_bootstrap(np.array([a[l] - b[l] for l in common], dtype=float), rng), "languages"


def _interval(reps: np.ndarray) -> tuple[float, float]:
    if np.isnan(reps).any():
        return float("nan"), float("nan")
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return float(lo), float(hi)


def _language_warning(inter: Group, base: Group) -> str:
    a, b = set(inter.languages()), set(base.languages())
    if a == b:
        return ""
    return (f"{inter.model} {inter.intermediate} vs {BASELINE} on {inter.target}: languages differ "
            f"(only in {inter.intermediate}: {sorted(a - b) or '-'}; only in {BASELINE}: {sorted(b - a) or '-'}); "
            f"the gain compares task averages, the language CI uses the {len(a & b)} shared languages")


def target_gain(inter: Group, base: Group) -> Gain:
    reps, method = _replicates(inter, base, np.random.default_rng(BOOT_SEED))
    lo, hi = _interval(reps)
    gain = float(inter.averages().mean() - base.averages().mean())
    return Gain(inter.model, inter.n_params, inter.intermediate, inter.target, gain, lo, hi, method,
                len(inter.runs), len(base.runs), warning=_language_warning(inter, base),
                n_excluded=len(inter.diverged) + len(base.diverged))


def mean_gain(pairs: list[tuple[Group, Group]]) -> Gain:
    """Mean over targets of the per-target gains (pairs sorted by target)."""
    rng = np.random.default_rng(BOOT_SEED)
    reps, methods, gains = [], set(), []
    for inter, base in pairs:
        r, m = _replicates(inter, base, rng)
        reps.append(r)
        methods.add(m)
        gains.append(inter.averages().mean() - base.averages().mean())
    lo, hi = _interval(np.mean(reps, axis=0))
    inter0 = pairs[0][0]
    return Gain(inter0.model, inter0.n_params, inter0.intermediate, "mean", float(np.mean(gains)), lo, hi,
                methods.pop() if len(methods) == 1 else "mixed",
                min(len(i.runs) for i, _ in pairs), min(len(b.runs) for _, b in pairs), n_targets=len(pairs),
                n_excluded=sum(len(i.diverged) + len(b.diverged) for i, b in pairs))


def compute_gains(groups: list[Group]) -> list[Gain]:
    """Per (model, intermediate != none): one Gain per target with a baseline, then the mean over targets."""
    index = _index(groups)
    gains = []
    for model, _, inter in _row_keys(groups):
        if inter == BASELINE:
            continue
        pairs = [(index[(model, inter, t)], index[(model, BASELINE, t)]) for t in _targets(groups)
                 if (model, inter, t) in index and (model, BASELINE, t) in index]
        gains.extend(target_gain(i, b) for i, b in pairs)
        if pairs:
            gains.append(mean_gain(pairs))
    return gains


# ----------------------------------------------------------------------------- task groups and benchmark scores
def task_score(metrics: dict, metric: str) -> float:
    """The XTREME score of one language: (EM + F1) / 2 for QA (evaluate.py), else the task metric."""
    if "f1" in metrics and "exact_match" in metrics:
        return (metrics["f1"] + metrics["exact_match"]) / 2.0
    return metrics[metric]


def score_group(g: Group) -> Group:
    """The same runs with metric ``score`` (QA: (EM + F1) / 2 per language, averaged; others unchanged)."""
    runs = []
    for r in g.runs:
        per = {lang: {"score": task_score(m, g.metric)} for lang, m in r["per_language"].items()}
        qa = any("exact_match" in m and "f1" in m for m in r["per_language"].values())
        avg = float(np.mean([v["score"] for v in per.values()])) if qa else r["average"][g.metric]
        runs.append(dict(r, per_language=per, average={"score": avg}))
    return Group(g.model, g.n_params, g.intermediate, g.target, g.kind, "score", runs, g.diverged)


@dataclass
class GroupGain:
    model: str
    n_params: int
    intermediate: str
    benchmark: str
    group: str  # a task group, or "score" (the benchmark's overall score)
    tasks: list[str]  # tasks present (with a baseline)
    missing: list[str]
    gain: Gain | None


def benchmark_gains(groups: list[Group]) -> list[GroupGain]:
    """Per model and intermediate task: the gain on each XTREME / XTREME-R task group (over the group's tasks
    that are present) and on the benchmark score (only when every task of the benchmark is present)."""
    index = _index(groups)
    out = []
    for model, n_params, inter in _row_keys(groups):
        if inter == BASELINE:
            continue

        def pairs_for(tasks):
            have = [t for t in sorted(tasks) if (model, inter, t) in index and (model, BASELINE, t) in index]
            return have, [(score_group(index[(model, inter, t)]), score_group(index[(model, BASELINE, t)]))
                          for t in have]

        for bench, task_groups in BENCHMARKS.items():
            for name, tasks in task_groups.items():
                have, pairs = pairs_for(tasks)
                missing = [t for t in tasks if t not in have]
                out.append(GroupGain(model, n_params, inter, bench, name, have, missing,
                                     mean_gain(pairs) if pairs else None))
            all_tasks = [t for ts in task_groups.values() for t in ts]
            have, pairs = pairs_for(all_tasks)
            missing = [t for t in all_tasks if t not in have]
            out.append(GroupGain(model, n_params, inter, bench, "score", have, missing,
                                 mean_gain(pairs) if pairs and not missing else None))
    return out


def benchmark_tables(ggs: list[GroupGain]) -> str:
    if not ggs:
        return "_No intermediate-task results: nothing to compare with the baseline._"
    parts = []
    for bench, task_groups in BENCHMARKS.items():
        rows = []
        for key in dict.fromkeys((g.model, g.n_params, g.intermediate) for g in ggs):
            cells = []
            for name in [*task_groups, "score"]:
                (gg,) = [g for g in ggs if (g.model, g.n_params, g.intermediate) == key and g.benchmark == bench
                         and g.group == name]
                if gg.gain is None:
                    cells.append("n/a" if name != "score" or not gg.tasks else f"n/a ({len(gg.missing)} missing)")
                else:
                    text = _gain_cell(gg.gain)
                    if gg.missing:
                        text += f" ({len(gg.tasks)}/{len(gg.tasks) + len(gg.missing)}: no {', '.join(gg.missing)})"
                    cells.append(text)
            rows.append([key[0], format_params(key[1]), key[2], *cells])
        header = ["model", "params", "intermediate", *task_groups, f"{bench} score"]
        all_tasks = [t for ts in task_groups.values() for t in ts]
        present = sorted({t for g in ggs if g.benchmark == bench for t in g.tasks})
        absent = [t for t in all_tasks if t not in present]
        note = (f"{bench} score gain: mean of the gains on all {len(all_tasks)} tasks "
                f"({', '.join(all_tasks)}); " + (f"**not computable here: missing {', '.join(absent)}**."
                                                  if absent else "every task is present."))
        parts.append(f"### {bench}\n\n" + md_table(header, rows, right=3) + "\n\n" + note)
    parts.append("Gains in points (×100) with 95% CIs as above (per-target resamples averaged). A group's gain is "
                 "the mean of its tasks' gains over the tasks present (`k/n: no ...` names the missing ones); per "
                 "task the XTREME score of a language is used: (EM + F1) / 2 for QA, else the task metric. Task "
                 "averages are over the languages each run evaluated, which can differ from the benchmark's "
                 "official language list (e.g. Tatoeba: 36 languages in XTREME, 41 in XTREME-R).")
    return "\n\n".join(parts)


def best_intermediate_table(groups: list[Group], gains: list[Gain]) -> str:
    """Per model size: the intermediate task with the largest mean gain over targets (among those covering the
    most targets), and the best one for each target."""
    targets = _targets(groups)
    rows = []
    for model, n_params in _models(groups):
        means = [g for g in gains if g.model == model and g.target == "mean"]
        if not means:
            continue
        best = max(means, key=lambda g: (g.n_targets, g.gain))
        excludes_zero = not math.isnan(best.ci_low) and (best.ci_low > 0 or best.ci_high < 0)
        per_target = []
        for t in targets:
            cands = [g for g in gains if g.model == model and g.target == t]
            if cands:
                b = max(cands, key=lambda g: g.gain)
                per_target.append(f"{b.intermediate} {signed(b.gain)}")
            else:
                per_target.append("n/a")
        rows.append([model, format_params(n_params), best.intermediate,
                     _gain_cell(best) + f" ({best.n_targets}/{len(targets)} targets)",
                     "yes" if excludes_zero else "no", f"{len(means)}", *per_target])
    if not rows:
        return "_No intermediate-task results._"
    return (md_table(["model", "params", "best intermediate (mean over targets)", "its mean gain", "CI excludes 0",
                      "candidates", *[f"best for {t}" for t in targets]], rows, right=3)
            + "\n\nBest = largest mean gain over the targets, among the intermediate tasks that cover the most "
              "targets; `candidates` = intermediate tasks compared. Differences between candidates are not tested: "
              "overlapping CIs mean the ranking is uncertain.")


# ----------------------------------------------------------------------------- published reference numbers
def load_published(path: str | Path | None) -> dict | None:
    return pubnum.load(path)


def published_section(pub: dict, groups: list[Group], gains: list[Gain]) -> str:
    """The published numbers (xstilts.study.published) beside ours: our baseline and best gain per task."""
    index = _index(groups)

    def ours_base(model: str, task: str, raw: bool = False) -> float | None:
        g = index.get((model, BASELINE, task))
        return None if g is None else float((g if raw else score_group(g)).averages().mean())

    def ours_best(model: str, task: str) -> str | None:
        cands = [g for g in gains if g.model == model and g.target == task]
        best = max(cands, key=lambda g: g.gain) if cands else None
        return f"{best.intermediate} {_gain_cell(best)}" if best else None

    return pubnum.section(pub, ours_base, ours_best)


# ----------------------------------------------------------------------------- formatting
def mean_cell(values: np.ndarray, n_excluded: int = 0) -> str:
    mark = divergence.mark(n_excluded)
    if len(values) >= 2:
        return f"{pct(values.mean())} ±{pct(values.std(ddof=1))} (n={len(values)}){mark}"
    return f"{pct(values.mean())} (n={len(values)}){mark}"


# ----------------------------------------------------------------------------- report sections
def main_table(groups: list[Group]) -> str:
    index, targets = _index(groups), _targets(groups)
    rows = []
    for model, n_params, inter in _row_keys(groups):
        cells = [mean_cell(index[(model, inter, t)].averages(), len(index[(model, inter, t)].diverged))
                 if (model, inter, t) in index else "–" for t in targets]
        rows.append([model, format_params(n_params), inter, *cells])
    return md_table(["model", "params", "intermediate", *targets], rows, right=3)


def _metric_line(groups: list[Group]) -> str:
    seen = {}
    for g in groups:
        seen.setdefault(g.target, (g.metric, g.kind))
    parts = [f"{t}: {m}" + (" (retrieval, at the configured layer)" if k == "retrieval" else "")
             for t, (m, k) in sorted(seen.items())]
    return "Metric per target: " + "; ".join(parts) + "."


def _gain_cell(g: Gain | None) -> str:
    if g is None:
        return "n/a"
    mark = {"seeds": SEED_MARK, "languages": LANG_MARK, "mixed": SEED_MARK + LANG_MARK}.get(g.ci_method, "")
    return f"{signed(g.gain)} [{signed(g.ci_low)}, {signed(g.ci_high)}]{mark}{divergence.mark(g.n_excluded)}"


def gain_table(groups: list[Group], gains: list[Gain]) -> str:
    by_key = {(g.model, g.intermediate, g.target): g for g in gains}
    targets = _targets(groups)
    rows = []
    for model, n_params, inter in _row_keys(groups):
        if inter == BASELINE:
            continue
        cells = [_gain_cell(by_key.get((model, inter, t))) for t in targets]
        mean = by_key.get((model, inter, "mean"))
        mean_cell_text = _gain_cell(mean)
        if mean is not None and mean.n_targets < len(targets):
            mean_cell_text += f" ({mean.n_targets}/{len(targets)} targets)"
        rows.append([model, format_params(n_params), inter, *cells, mean_cell_text])
    if not rows:
        return "_No intermediate-task results: nothing to compare with the baseline._"
    return md_table(["model", "params", "intermediate", *targets, "mean over targets"], rows, right=3)


def gain_footnote(gains: list[Gain]) -> str:
    methods = {g.ci_method for g in gains}
    notes = [f"Gain = intermediate − {BASELINE} (same model and target), in points (×100); "
             f"`n/a`: no `{BASELINE}` baseline for that model and target. Brackets: 95% CI, percentile "
             f"bootstrap, {N_BOOT} resamples, RNG seed {BOOT_SEED}."]
    if "seeds" in methods or "mixed" in methods:
        notes.append(f"{SEED_MARK} bootstrap over seeds: both arms have ≥2 seeds; each arm's seeds resampled "
                     f"with replacement, difference of the mean task averages (seed variance only).")
    if "languages" in methods or "mixed" in methods:
        notes.append(f"{LANG_MARK} paired bootstrap over languages: fewer than 2 seeds in an arm; languages "
                     f"resampled with replacement, mean of the per-language differences (variation across "
                     f"languages, not across seeds).")
    notes.append("Mean over targets: mean of the per-target gains; its CI averages per-target resamples drawn "
                 "independently for each target.")
    if any(g.n_excluded for g in gains):
        notes.append(f"{divergence.MARK} diverged run(s) left out of this number (section \"Diverged runs\").")
    notes += [f"Note: {g.warning}." for g in gains if g.warning]
    return "\n".join(f"- {n}" for n in notes)


def language_tables(groups: list[Group]) -> str:
    parts = []
    for target in _targets(groups):
        tg = [g for g in groups if g.target == target]
        langs = list(dict.fromkeys(lang for g in tg for lang in g.languages()))
        rows = []
        for g in tg:
            means = g.language_means()
            rows.append([g.model, g.intermediate, *[pct(means[l]) if l in means else "–" for l in langs],
                         pct(g.averages().mean()) + divergence.mark(len(g.diverged))])
        parts.append(f"### {target} ({tg[0].metric}, mean over seeds)\n\n"
                     + md_table(["model", "intermediate", *langs, "avg"], rows, right=2))
    return "\n\n".join(parts)


def layer_table(groups: list[Group]) -> str | None:
    rg = [g for g in groups if g.kind == "retrieval" and g.layer_means()]
    if not rg:
        return None
    n_layers = max(max(g.layer_means()) for g in rg) + 1
    rows = []
    for g in rg:
        means, configured = g.layer_means(), g.configured_layers()
        cells = [(pct(means[l]) + ("*" if l in configured else "")) if l in means else "–" for l in range(n_layers)]
        rows.append([g.model, g.intermediate, g.target, *cells])
    table = md_table(["model", "intermediate", "target", *[str(l) for l in range(n_layers)]], rows, right=3)
    return (table + f"\n\nAverage {_retrieval_metrics(rg)} (×100, mean over seeds) of retrieval with the "
            "representation of each layer (0 = embeddings). `*` marks the configured layer (`retrieval.layer`), "
            "the one reported in the main table.")


def _retrieval_metrics(rg: list[Group]) -> str:
    """``accuracy`` (Tatoeba alone), or ``score (tatoeba: accuracy, bucc2018: f1)`` when the metrics differ."""
    by_target = dict.fromkeys((g.target, g.metric) for g in rg)
    metrics = {m for _, m in by_target}
    if len(metrics) == 1:
        return next(iter(metrics))
    return "score (" + ", ".join(f"{t}: {m}" for t, m in by_target) + ")"


def _distinct(values) -> str:
    vals = [str(v) for v in dict.fromkeys(values) if v not in (None, "")]
    return ", ".join(vals) if vals else "–"


def _commit(r: dict) -> str | None:
    prov = r.get("provenance") or {}
    c = prov.get("git_commit")
    if not c:
        return None
    return c[:10] + ("+dirty" if prov.get("git_dirty") else "")


def _retrieval_setup(r: dict) -> str | None:
    ret = r.get("retrieval")
    if not isinstance(ret, dict):
        return None
    special = ret.get("include_special_tokens")
    extra = "" if special is None else (", +special" if special else ", -special")
    out = f"layer {ret.get('layer')}/{ret.get('num_layers', '?')}, {ret.get('pooling')}{extra}"
    if ret.get("tatoeba_encoder"):  # which benchmark's Tatoeba protocol this arm is (run_retrieval.py)
        protocol = str(ret.get("protocol") or "").split(":")[0]
        out += f"; encoder {ret['tatoeba_encoder']} = {protocol or '?'} protocol"
    mining = ret.get("mining") or {}
    if mining.get("duplicates"):
        out += f"; duplicates {mining['duplicates']}"
    oracle = (r.get("average") or {}).get("test_oracle_f1")
    if oracle is not None:
        out += (f"; test-ORACLE F1 {pct(oracle)} (threshold tuned on the test gold: comparable to published BUCC "
                f"figures, not the score)")
    return out


def _wall_seconds(runs: list[dict]) -> str:
    vals = [(r.get("timing") or {}).get("wall_seconds") for r in runs]
    known = [v for v in vals if isinstance(v, (int, float))]
    if not known:
        return "–"
    return f"{sum(known):.1f}" + ("" if len(known) == len(vals) else f" ({len(vals) - len(known)} unknown)")


def protocol_table(groups: list[Group]) -> str:
    rows = []
    for g in groups:
        rs = g.runs
        versions = [(r.get("provenance") or {}).get("versions") or {} for r in rs]
        rows.append([
            g.model, g.intermediate, g.target,
            _distinct((r.get("preset") or {}).get("name") for r in rs),
            _distinct(r.get("eval_split") for r in rs),
            _distinct(_retrieval_setup(r) for r in rs),
            _distinct(protocols.summary(r) for r in rs),
            ", ".join(str(s) for s in g.seeds),
            _distinct(_commit(r) for r in rs),
            _distinct(v.get("transformers") for v in versions),
            _distinct(v.get("torch") for v in versions),
            _wall_seconds(rs),
        ])
    return md_table(["model", "intermediate", "target", "preset", "eval split", "retrieval",
                     "protocol", "seeds",
                     "git commit", "transformers", "torch", "wall s (total)"], rows)


def resume_notes(groups: list[Group]) -> str | None:
    """Runs that were interrupted and resumed from a Trainer checkpoint, with any warning the resume recorded
    (resuming is exact; a warning says why a run may still differ from an uninterrupted one)."""
    lines = []
    for g in groups:
        for r in g.runs:
            resume = r.get("resume") or {}
            if resume.get("resumed_from"):
                warn = "; ".join(f"**warning:** {w}" for w in resume.get("warnings") or [])
                lines.append(f"- {g.model} / {g.intermediate} / {g.target} / seed {r['seed']}: resumed from "
                             f"`{Path(resume['resumed_from']).name}`" + (f"; {warn}" if warn else ""))
    return "\n".join(lines) if lines else None


def render_markdown(groups: list[Group], gains: list[Gain], *, title: str, note: str | None, n_files: int,
                    n_skipped: int, has_layers_png: bool, group_gains: list[GroupGain] | None = None,
                    heatmaps: dict[str, str] | None = None, published: dict | None = None,
                    study: StudySections | None = None, arms_section: str | None = None) -> str:
    out = [f"# {title}", ""]
    if note:
        out += [note.strip(), ""]
    source = f"{n_files} result file(s)"
    if n_skipped:
        source += f"; {n_skipped} of kind `intermediate` (no target task) are not tabulated"
    out += [f"_{source}._", ""]
    out += ["## Main table", "",
            f"Mean over seeds of the task average (×100); `±` sample standard deviation over seeds; "
            f"`n` number of seeds. Rows: models by size, `{BASELINE}` = no intermediate training.", "",
            main_table(groups), "", _metric_line(groups), ""]
    out += ["## Gain from intermediate training", "", gain_table(groups, gains), "", gain_footnote(gains), ""]
    out += [f"![Gain from intermediate training vs model size]({GAIN_PNG})", "",
            "_Gain vs model size per target (colour) and the mean over targets (black); error bars: the 95% CIs "
            "above._", ""]
    if study is not None:
        out += study.markdown
    if group_gains is not None:
        out += ["## Gain per task group and benchmark score", "", benchmark_tables(group_gains), ""]
    out += ["## Best intermediate task per size", "", best_intermediate_table(groups, gains), ""]
    if arms_section:
        out += ["## Alternative arms: MLM co-training, translated data, translate-train", "", arms_section, ""]
    if heatmaps:
        out += ["## Intermediate × target gains per size", "",
                "Colour: gain (×100) on one scale shared by all sizes; `*`: the 95% CI excludes 0; grey: no "
                "result or no baseline.", ""]
        for model, name in heatmaps.items():
            out += [f"### {model}", "", f"![{model}: gain per intermediate and target task]({name})", ""]
    if published is not None:
        out += [f"## Published reference numbers ({PUBLISHED}, not ours)", "",
                published_section(published, groups, gains), ""]
    out += ["## Per-language results", "", language_tables(groups), ""]
    layers = layer_table(groups)
    if layers:
        out += ["## Retrieval by layer", "", layers, ""]
    out += ["## Protocol", "", "`protocol`: the checkpoint rule; batch sampling; precision in force; the deviations from "
            "the preset's source by name (each result's `protocol.deviations`; docs/protocols.md).", "",
            protocol_table(groups), ""]
    resumed = resume_notes(groups)
    if resumed:
        out += ["### Resumed runs", "", resumed, ""]
    files = [f"- Tidy results (one row per model × intermediate × target × seed × language, plus `avg`; "
             f"values are fractions; diverged runs included, `diverged` true): [{RESULTS_CSV}]({RESULTS_CSV})",
             f"- Gains with 95% CIs (fractions): [{GAINS_CSV}]({GAINS_CSV})",
             f"- Figure: [{GAIN_PNG}]({GAIN_PNG})"]
    if group_gains is not None:
        files.append(f"- Gains per task group and benchmark score (fractions): [{BENCH_CSV}]({BENCH_CSV})")
    files += [f"- Figure: [{name}]({name})" for name in (heatmaps or {}).values()]
    files += study.files if study is not None else []
    if has_layers_png:
        files.append(f"- Figure: [{LAYERS_PNG}]({LAYERS_PNG})")
    if arms_section:
        files.append(f"- Alternative arms vs English-only training, and translate-train vs zero-shot (fractions): "
                     f"[arms.csv](arms.csv)")
    out += ["## Files", "", *files, "",
            "_In the size plot, points of different series are offset slightly along x so that their error bars "
            "do not overlap._", ""]
    if has_layers_png:
        out += [f"![Retrieval score by layer]({LAYERS_PNG})", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- CSV
def _csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _fmt_num(x, digits: int | None = None) -> str:
    """Empty for missing/NaN; floats exact (repr), or to ``digits`` significant digits for derived values."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if not isinstance(x, float):
        return str(x)
    return repr(x) if digits is None else f"{x:.{digits}g}"


def results_csv(groups: list[Group], results: list[dict] | None = None) -> str:
    """One row per run x language (+ ``avg``); diverged runs too, with ``diverged`` true (also those of cells where
    every run diverged, found in ``results``)."""
    runs = [(g.model, g.n_params, g.intermediate, g.target, g.metric, r) for g in groups for r in g.runs + g.diverged]
    listed = {(g.model, g.intermediate, g.target) for g in groups}
    sizes = _model_sizes(results) if results else {}
    for r in results or []:
        key = (r["model"]["name"], intermediate_name(r), r["target_task"])
        if r["kind"] in TABULATED_KINDS and key not in listed:
            runs.append((key[0], sizes[key[0]], key[1], key[2], r["metric"], r))
    rows = []
    for model, n_params, inter, target, metric, r in runs:
        ret = r.get("retrieval") if isinstance(r.get("retrieval"), dict) else {}
        common = [r.get("eval_split") or "", (r.get("preset") or {}).get("name") or "",
                  "" if ret.get("layer") is None else ret["layer"], str(divergence.is_diverged(r)).lower()]
        for lang, m in list(r["per_language"].items()) + [("avg", r["average"])]:
            rows.append([model, n_params, inter, target, r["seed"], lang, metric, _fmt_num(m[metric]), *common])
    return _csv_text(RESULTS_COLUMNS, rows)


def gains_csv(gains: list[Gain]) -> str:
    rows = [[g.model, g.n_params, g.target, g.intermediate, _fmt_num(g.gain, 12), _fmt_num(g.ci_low, 12),
             _fmt_num(g.ci_high, 12), g.ci_method, g.n_seeds, g.n_seeds_baseline] for g in gains]
    return _csv_text(GAINS_COLUMNS, rows)


# ----------------------------------------------------------------------------- figures
def _errorbars(gs: list[Gain]) -> np.ndarray:
    # clipped at 0: a degenerate interval (the same gain in every language) can sit a rounding error off the gain
    lo = [max(0.0, 100 * (g.gain - g.ci_low)) if not math.isnan(g.ci_low) else 0.0 for g in gs]
    hi = [max(0.0, 100 * (g.ci_high - g.gain)) if not math.isnan(g.ci_high) else 0.0 for g in gs]
    return np.array([lo, hi])


def plot_gains(gains: list[Gain], path: Path) -> None:
    """Colour = target (black = mean over targets), marker and dash pattern = intermediate task."""
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    series: dict[tuple[str, str], list[Gain]] = {}
    for g in gains:
        series.setdefault((g.intermediate, g.target), []).append(g)
    keys = sorted(series, key=lambda k: (k[0], k[1] == "mean", k[1]))
    targets = sorted({t for _, t in keys if t != "mean"})
    palette = [f"C{i}" for i in range(10)]
    colors = {t: palette[i % len(palette)] for i, t in enumerate(targets)} | {"mean": "black"}
    inters = sorted({i for i, _ in keys})
    styles = {inter: ("os^Dv"[k % 5], ["--", ":", "-."][k % 3]) for k, inter in enumerate(inters)}
    for i, (inter, target) in enumerate(keys):
        gs = sorted(series[(inter, target)], key=lambda g: g.n_params)
        dodge = 1.04 ** (i - (len(keys) - 1) / 2)  # small horizontal offset so error bars do not overlap
        x = np.array([g.n_params for g in gs], dtype=float) * dodge
        y = np.array([100 * g.gain for g in gs])
        is_mean = target == "mean"
        marker, dash = styles[inter]
        label = f"{inter}: mean over targets" if is_mean else f"{inter} → {target}"
        ax.errorbar(x, y, yerr=_errorbars(gs), marker=marker, capsize=3, label=label, color=colors[target],
                    linewidth=3.0 if is_mean else 1.3, markersize=7 if is_mean else 5,
                    linestyle="-" if is_mean else dash, zorder=3 if is_mean else 2)
    ax.axhline(0.0, color="grey", linewidth=1, zorder=1)
    ax.set_xscale("log")
    ax.set_xlabel("encoder parameters (log scale)")
    ax.set_ylabel("gain over no intermediate training (points ×100)")
    ax.set_title("Gain from intermediate training vs model size")
    if keys:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no intermediate-task results with a baseline", ha="center", va="center",
                transform=ax.transAxes)
    ax.grid(True, which="both", alpha=0.3)
    save_figure(fig, path)


def heatmap_name(model: str) -> str:
    import re

    return HEATMAP_PNG.format(model=re.sub(r"[^A-Za-z0-9._-]+", "_", model))


def plot_heatmaps(groups: list[Group], gains: list[Gain], out: Path) -> dict[str, Path]:
    """One PNG per model size: rows = intermediate tasks, columns = targets (+ mean), colour = gain (x100) on a
    diverging scale shared by all sizes (so sizes compare by colour); * = the 95% CI excludes 0."""
    targets = _targets(groups) + ["mean"]
    values = [abs(100 * g.gain) for g in gains if not math.isnan(g.gain)]
    vmax = max(values) if values and max(values) > 0 else 1.0
    paths = {}
    for model, n_params in _models(groups):
        inters = [i for m, _, i in _row_keys(groups) if m == model and i != BASELINE]
        if not inters:
            continue
        by_key = {(g.intermediate, g.target): g for g in gains if g.model == model}
        grid = np.full((len(inters), len(targets)), np.nan)
        for r, i in enumerate(inters):
            for c, t in enumerate(targets):
                if (i, t) in by_key:
                    grid[r, c] = 100 * by_key[(i, t)].gain
        fig = new_figure(width=1.6 + 1.1 * len(targets), height=1.4 + 0.5 * len(inters))
        ax = fig.add_subplot(1, 1, 1)
        cmap = __import__("matplotlib").colormaps["RdBu"].with_extremes(bad="#dddddd")
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto")
        for r, i in enumerate(inters):
            for c, t in enumerate(targets):
                g = by_key.get((i, t))
                if g is None:
                    ax.text(c, r, "n/a", ha="center", va="center", fontsize=8, color="#555555")
                    continue
                star = "*" if not math.isnan(g.ci_low) and (g.ci_low > 0 or g.ci_high < 0) else ""
                ax.text(c, r, f"{100 * g.gain:+.1f}{star}", ha="center", va="center", fontsize=8,
                        color="white" if abs(100 * g.gain) > 0.6 * vmax else "black")
        ax.set_xticks(range(len(targets)), labels=targets, rotation=30, ha="right")
        ax.set_yticks(range(len(inters)), labels=inters)
        ax.set_xlabel("target task")
        ax.set_ylabel("intermediate task")
        ax.set_title(f"{model} ({format_params(n_params)}): gain over {BASELINE} (points; * CI excludes 0)",
                     fontsize=9)
        fig.colorbar(im, ax=ax, label="gain (×100)")
        path = out / heatmap_name(model)
        save_figure(fig, path)
        paths[model] = path
    return paths


def benchmark_csv(ggs: list[GroupGain]) -> str:
    rows = []
    for g in ggs:
        gain = g.gain
        rows.append([g.model, g.n_params, g.intermediate, g.benchmark, g.group, " ".join(g.tasks), " ".join(g.missing),
                     _fmt_num(gain.gain, 12) if gain else "", _fmt_num(gain.ci_low, 12) if gain else "",
                     _fmt_num(gain.ci_high, 12) if gain else "", gain.ci_method if gain else ""])
    return _csv_text(BENCH_COLUMNS, rows)


def plot_layers(groups: list[Group], path: Path) -> bool:
    rg = [g for g in groups if g.kind == "retrieval" and g.layer_means()]
    if not rg:
        return False
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    several_targets = len({g.target for g in rg}) > 1
    for g in rg:
        means = g.layer_means()
        layers = list(means)
        label = f"{g.model} / {g.intermediate}" + (f" / {g.target}" if several_targets else "")
        line, = ax.plot(layers, [100 * means[l] for l in layers], marker="o", label=label,
                        linestyle="-" if g.intermediate == BASELINE else "--")
        chosen = [l for l in layers if l in g.configured_layers()]
        ax.plot(chosen, [100 * means[l] for l in chosen], marker="*", markersize=15, linestyle="none",
                color=line.get_color())
    ax.set_xlabel("layer (0 = embeddings; ★ = configured layer)")
    metric = _retrieval_metrics(rg)
    ax.set_ylabel(f"retrieval {metric} (×100)")
    ax.set_title(f"Retrieval {metric.split(' (')[0]} by layer")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, alpha=0.3)
    save_figure(fig, path)
    return True


# ----------------------------------------------------------------------------- entry points
@dataclass
class Report:
    paths: dict[str, str]
    main_table: str


@dataclass
class StudySections:
    """The sections of issue 20 (divergence, learning rates, power, decomposition): markdown, files written."""

    markdown: list[str]
    paths: dict[str, Path]
    files: list[str]


def study_sections(results: list[dict], groups: list[Group], out: Path, min_gain: float) -> StudySections:
    """Diverged runs, learning rates, seeds and power (``min_gain`` in points), the gain decomposition; writes
    power.csv, decomposition.csv and the decomposition figures into ``out``."""
    mark = divergence.mark
    sizes = _model_sizes(results)
    tabulated = [d for d in results if d["kind"] in TABULATED_KINDS]
    diverged = divergence.diverged_runs(tabulated, sizes)
    rows = power.power_rows(groups, min_gain / 100.0)
    decs = decompose.decompose(groups, N_BOOT, BOOT_SEED)
    skipped = sorted({g.target for g in groups if g.intermediate != BASELINE} - {d.target for d in decs})
    paths = {"power_csv": out / POWER_CSV, "decomposition_csv": out / decompose.DECOMP_CSV}
    atomic_write_text(paths["power_csv"], power.to_csv(rows, min_gain / 100.0))
    atomic_write_text(paths["decomposition_csv"], decompose.to_csv(decs))
    files = [f"- Seeds and power per size and target (fractions): [{POWER_CSV}]({POWER_CSV})",
             f"- Gain decomposition and gain per language group with 95% CIs (fractions): "
             f"[{decompose.DECOMP_CSV}]({decompose.DECOMP_CSV})"]
    for key, name, plot in (("decomposition_png", decompose.DECOMP_PNG, decompose.plot_decomposition),
                            ("groups_png", decompose.GROUPS_PNG, decompose.plot_groups)):
        if plot(decs, out / name):
            paths[key] = out / name
            files.append(f"- Figure: [{name}]({name})")
    md = ["## Diverged runs", "", divergence.section(tabulated, diverged), "",
          "## Learning rates", "", rates.section(tabulated, sizes), "",
          "## Seeds and power", "", power.power_table(rows, min_gain / 100.0, mark), "",
          "## What the gain is made of: English gain and transfer gap", "",
          decompose.section(decs, mark, skipped), ""]
    return StudySections(md, paths, files)


def all_diverged_report(results: list[dict], out: Path, title: str | None, note: str | None) -> Report:
    """Every target and retrieval run is marked diverged: no number to report, but the runs are listed (with their
    evidence and learning rates) and kept in results.csv, never an error that hides them."""
    sizes = _model_sizes(results)
    tabulated = [d for d in results if d["kind"] in TABULATED_KINDS]
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results_csv": out / RESULTS_CSV, "report_md": out / REPORT_MD}
    atomic_write_text(paths["results_csv"], results_csv([], results))
    md = [f"# {title or 'X-STILTs: gain from intermediate training by model size'}", ""]
    if note:
        md += [note.strip(), ""]
    md += [f"_{len(results)} result file(s)._", "",
           f"**Every one of the {len(tabulated)} target / retrieval run(s) is marked diverged: there is no number "
           f"to report.** The runs are listed below and kept in [{RESULTS_CSV}]({RESULTS_CSV}) (`diverged` true).", "",
           "## Diverged runs", "", divergence.section(tabulated, divergence.diverged_runs(tabulated, sizes)), "",
           "## Learning rates", "", rates.section(tabulated, sizes), ""]
    atomic_write_text(paths["report_md"], "\n".join(md))
    return Report({k: str(v) for k, v in paths.items()}, "(every run diverged: no table)")


def write_report(root: str | Path, out_dir: str | Path | None = None, title: str | None = None,
                 note: str | None = None, published: str | Path | None = PUBLISHED_JSON,
                 min_gain: float = MIN_GAIN) -> Report:
    if not min_gain > 0:
        raise ValueError(f"--min_gain {min_gain!r}: the gain to size the seeds for must be > 0 points (e.g. 0.5)")
    results = collect(root)
    # translate-train results (zero_shot false) never enter the zero-shot groups: only the arms section shows them
    zero_shot, translated = arms.split_zero_shot(results)
    groups = group_results(zero_shot)
    out = Path(out_dir if out_dir is not None else root)
    if not groups:
        if not any(d["kind"] in TABULATED_KINDS for d in results):
            raise ValueError(f"no target or retrieval results under {root} (only kind 'intermediate')")
        return all_diverged_report(results, out, title, note)
    gains = compute_gains(groups)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results_csv": out / RESULTS_CSV, "gains_csv": out / GAINS_CSV, "gain_png": out / GAIN_PNG}
    atomic_write_text(paths["results_csv"], results_csv(groups, results))
    atomic_write_text(paths["gains_csv"], gains_csv(gains))
    plot_gains(gains, paths["gain_png"])
    if plot_layers(groups, out / LAYERS_PNG):
        paths["layers_png"] = out / LAYERS_PNG
    pub = load_published(published)
    ggs = benchmark_gains(groups)
    paths["benchmark_csv"] = out / BENCH_CSV
    atomic_write_text(paths["benchmark_csv"], benchmark_csv(ggs))
    heatmaps = plot_heatmaps(groups, gains, out)
    paths.update({f"heatmap_png:{m}": p for m, p in heatmaps.items()})
    n_skipped = sum(1 for d in results if d["kind"] not in TABULATED_KINDS)
    study = study_sections(zero_shot, groups, out, min_gain)
    paths.update(study.paths)
    tools = arms.Tools(target_gain, mean_gain, _gain_cell, md_table, format_params)
    tt_groups = group_results(translated)
    arms_md = arms.section(groups, tt_groups, tools)
    if arms_md is not None:
        paths["arms_csv"] = out / arms.ARMS_CSV
        arms.write_csv(paths["arms_csv"], groups, tt_groups, tools, lambda x: _fmt_num(x, 12))
    md = render_markdown(groups, gains, title=title or "X-STILTs: gain from intermediate training by model size",
                         note=note, n_files=len(results), n_skipped=n_skipped,
                         has_layers_png="layers_png" in paths, group_gains=ggs,
                         heatmaps={m: p.name for m, p in heatmaps.items()}, published=pub, study=study,
                         arms_section=arms_md)
    paths["report_md"] = out / REPORT_MD
    atomic_write_text(paths["report_md"], md)  # last: its presence means the report is complete
    return Report({k: str(v) for k, v in paths.items()}, main_table(groups))


def build_report(root: str | Path, out_dir: str | Path | None = None, title: str | None = None,
                 note: str | None = None, published: str | Path | None = PUBLISHED_JSON,
                 min_gain: float = MIN_GAIN) -> dict[str, str]:
    """Write report.md, results.csv, gains.csv, benchmark_gains.csv, power.csv, decomposition.csv,
    gain_vs_size.png, one gain heatmap per size, the decomposition figures (and retrieval_layers.png); return their
    paths."""
    return write_report(root, out_dir, title, note, published, min_gain).paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xstilts.report", description=__doc__.splitlines()[0])
    p.add_argument("--results_dir", required=True, help="root of the results tree (searched for results.json)")
    p.add_argument("--out_dir", default=None, help="where to write the report (default: results_dir)")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--note", default=None, help="paragraph printed under the title")
    p.add_argument("--published", default=str(PUBLISHED_JSON),
                   help="published reference numbers shown beside ours (JSON, configs/published.json), or 'none'")
    p.add_argument("--min_gain", type=float, default=MIN_GAIN,
                   help=f"the gain (points x100) the power table sizes the seeds for at 80%% power (default "
                        f"{MIN_GAIN}; make MIN_GAIN=...)")
    args = p.parse_args(argv)
    try:
        published = None if args.published.lower() == "none" else args.published
        report = write_report(args.results_dir, args.out_dir, args.title, args.note, published, args.min_gain)
    except ValueError as e:  # includes ResultsSchemaError
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.paths["report_md"])
    print()
    print(report.main_table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
