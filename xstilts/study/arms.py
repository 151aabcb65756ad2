"""The report's section on the paper's alternative arms (docs/intermediate.md): each compared with English-only
intermediate training, at every model size, with the report's confidence intervals.

* **Intermediate arms** (zero-shot on the targets, like every intermediate task): multilingual MLM co-training
  (``mnli+mlm``: compared with ``mnli``; ``a+b+mlm`` with ``a+b``) and translated intermediate data
  (``mnli_tt``, ``mnli_tta``, ``squad_v1_tt``, ``squad_v1_tta``: with their English task, ``Task.variant_of``).
  Gain = arm - English-only intermediate task, same model and target.
* **Translate-train targets** (``run_target.py --train_languages``; results with ``zero_shot: false``): NOT
  zero-shot. They never enter the report's zero-shot tables, gains, means or figures (``split_zero_shot`` takes
  them out before anything is grouped); here each is shown beside the zero-shot result of the same model,
  intermediate checkpoint and target, under its own name ``<target>@<tt|tta|languages>``.

The statistics are the report's own (``xstilts.study.report``: per-target gains, bootstrap CIs over seeds or
languages, means over targets), passed in by the report (which imports this module, so this module cannot import
it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..files import atomic_write_text
from ..run import layout
from ..tasks import TASKS

ARMS_CSV = "arms.csv"
ARMS_COLUMNS = ["model", "n_params", "comparison", "arm", "baseline", "target", "gain", "ci_low", "ci_high",
                "ci_method", "n_seeds", "n_seeds_baseline"]


def is_zero_shot(result: dict) -> bool:
    """Results without the field predate translate-train: zero-shot."""
    return result.get("zero_shot", True) is not False


def split_zero_shot(results: list[dict]) -> tuple[list[dict], list[dict]]:
    """(zero-shot results, translate-train results); the latter with their target renamed ``<task>@<label>``, so
    that grouping keeps them apart from the zero-shot cell of the same target."""
    zero, translated = [], []
    for d in results:
        if is_zero_shot(d):
            zero.append(d)
            continue
        label = (d.get("translate_train") or {}).get("label") or "-".join(d.get("train_languages") or ["?"])
        translated.append(dict(d, target_task=layout.translate_train_name(d["target_task"], label)))
    return zero, translated


def english_counterpart(intermediate: str) -> str | None:
    """The English-only intermediate training an arm is compared with: ``mnli+mlm`` -> ``mnli``,
    ``mnli_tt`` -> ``mnli``; None for anything that is not an arm."""
    if layout.is_mixture(intermediate):
        tasks = layout.mixture_tasks(intermediate)
        main = [t for t in tasks if not (t in TASKS and TASKS[t].auxiliary)]
        if len(main) == len(tasks) or not main:
            return None
        return main[0] if len(main) == 1 else layout.mixture_name(main)
    task = TASKS.get(intermediate)
    return task.variant_of if task is not None and task.variant_of else None


def arm_kind(intermediate: str) -> str:
    if layout.is_mixture(intermediate):
        return "+ multilingual MLM"
    return {"tt": "translated data only", "tta": "English + translations"}.get(intermediate.rsplit("_", 1)[-1],
                                                                             "translated data")


@dataclass
class Tools:
    """What the report lends this section: its gain with CI (``gain(arm, baseline)``), its mean over targets
    (``mean(pairs)``), its cell format, markdown table and parameter format."""

    gain: Callable
    mean: Callable
    cell: Callable
    table: Callable
    params: Callable


def _index(groups) -> dict:
    return {(g.model, g.intermediate, g.target): g for g in groups}


def intermediate_arm_gains(groups, tools: Tools) -> list[tuple[str, list]]:
    """Per (model, arm with its English counterpart present): [(label, gains per target + mean)]."""
    index, out = _index(groups), []
    targets = sorted({g.target for g in groups})
    keys = list(dict.fromkeys((g.model, g.intermediate) for g in groups))
    for model, arm in keys:
        base = english_counterpart(arm)
        if base is None:
            continue
        pairs = [(index[(model, arm, t)], index[(model, base, t)]) for t in targets
                 if (model, arm, t) in index and (model, base, t) in index]
        if pairs:
            out.append(((model, arm, base), [tools.gain(a, b) for a, b in pairs] + [tools.mean(pairs)]))
    return out


def translate_train_gains(groups, tt_groups, tools: Tools) -> list:
    """Per translate-train group: (the group, its gain over the zero-shot result of the same model, intermediate
    checkpoint and target, or None without one)."""
    index, out = _index(groups), []
    for g in tt_groups:
        task, _ = layout.split_target(g.target)
        base = index.get((g.model, g.intermediate, task))
        out.append((g, tools.gain(g, base) if base is not None else None))
    return out


def section(groups, tt_groups, tools: Tools) -> str | None:
    """The markdown of the section (None when the results hold no arm)."""
    arms = intermediate_arm_gains(groups, tools)
    tts = translate_train_gains(groups, tt_groups, tools)
    if not arms and not tts:
        return None
    parts = []
    if arms:
        targets = sorted({g.target for g in groups})
        rows = []
        sizes = {g.model: g.n_params for g in groups}
        for (model, arm, base), gains in sorted(arms, key=lambda a: (sizes[a[0][0]], a[0][0], a[0][1])):
            by_target = {g.target: g for g in gains}
            mean = by_target.get("mean")
            rows.append([model, tools.params(sizes[model]), arm, arm_kind(arm), base,
                         *[tools.cell(by_target.get(t)) for t in targets],
                         tools.cell(mean) + (f" ({mean.n_targets}/{len(targets)} targets)"
                                             if mean is not None and mean.n_targets < len(targets) else "")])
        parts += ["### Intermediate arms vs English-only intermediate training",
                  "Gain = arm − its English-only intermediate task (same model, same target), points (×100), with "
                  "the 95% CIs of the gain table; zero-shot on every target. `+ multilingual MLM`: the task trained "
                  "together with masked LM on multilingual text (mnli+mlm vs mnli: Wikipedia in XTREME's languages; "
                  "synth_nli+synth_mlm: the synthetic world's text); `translated data only` / `English + "
                  "translations`: the task's training set translated (mnli_tt / mnli_tta vs mnli, squad_v1_tt / "
                  "squad_v1_tta vs squad_v1: machine translations; synth_nli_tt / synth_nli_tta: exact ones). Phang et al. 2020 found neither consistently "
                  "better than English-only training (abstract of arXiv 2005.13013v2).",
                  tools.table(["model", "params", "arm", "kind", "compared with", *targets, "mean over targets"],
                              rows, right=5)]
    if tts:
        rows = []
        for g, gain in tts:
            task, label = layout.split_target(g.target)
            langs = sorted({lang for r in g.runs for lang in (r.get("train_languages") or [])})
            mean = g.averages().mean()
            rows.append([g.model, tools.params(g.n_params), g.intermediate, task, label, f"{100 * mean:.1f}",
                         tools.cell(gain) if gain is not None else "n/a (no zero-shot result)",
                         " ".join(langs), str(len(g.runs))])
        parts += ["### Translate-train targets (NOT zero-shot)",
                  "**Not zero-shot:** these runs trained on machine-translated target-task data "
                  "(`run_target.py --train_languages`; `zero_shot: false` in their results). They appear in no "
                  "other table, gain, mean or figure of this report. `tt`: every translation, `tta`: English + "
                  "every translation (translate-train-all, the protocol of the published XLM-R XL/XXL XNLI "
                  "numbers). Score: mean over seeds of the task average (×100); vs zero-shot: the same model, "
                  "intermediate checkpoint and target trained on English only, with the 95% CI as above.",
                  tools.table(["model", "params", "intermediate", "target", "train languages", "score",
                               "vs zero-shot", "languages trained on", "seeds"], rows, right=5)]
    return "\n\n".join(parts)


def arms_csv(groups, tt_groups, tools: Tools, fmt: Callable) -> str:
    """Every comparison of the section, as fractions (``fmt``: the report's number format)."""
    import csv
    import io

    rows = []
    for (model, arm, base), gains in intermediate_arm_gains(groups, tools):
        for g in gains:
            rows.append([model, g.n_params, "intermediate arm vs English", arm, base, g.target, fmt(g.gain),
                         fmt(g.ci_low), fmt(g.ci_high), g.ci_method, g.n_seeds, g.n_seeds_baseline])
    for grp, g in translate_train_gains(groups, tt_groups, tools):
        if g is not None:
            rows.append([grp.model, grp.n_params, "translate-train vs zero-shot (NOT zero-shot)", grp.target,
                         layout.split_target(grp.target)[0], grp.target, fmt(g.gain), fmt(g.ci_low), fmt(g.ci_high),
                         g.ci_method, g.n_seeds, g.n_seeds_baseline])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ARMS_COLUMNS)
    w.writerows(rows)
    return buf.getvalue()


def write_csv(path, groups, tt_groups, tools: Tools, fmt: Callable) -> None:
    atomic_write_text(path, arms_csv(groups, tt_groups, tools, fmt))
