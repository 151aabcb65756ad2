"""What a gain is made of: the English gain, the change in the transfer gap, and the gain per language group.

For one size, intermediate task and target task, take the per-language scores of each arm (mean over its kept
seeds) on the languages both arms evaluated: English E, the other m languages x_1..x_m with mean X. Then

    transfer gap            gap = E - X
    zero-shot gain          dX  = dE - d(gap)                       (exact)
    gain of the average     dA  = dE - m / (m + 1) * d(gap)          (exact; A = the mean over all m + 1 languages)

where d(.) = intermediate arm - baseline arm. dA is the gain table's number whenever the task average is the
unweighted mean over these languages (the section says where it is not). A gain made only of English (dE > 0,
d(gap) = dE, dX = 0) is not cross-lingual transfer; the study's question is about dX and d(gap) < 0.

The gain per language group is the mean of the per-language gains over the non-English languages of a group:
script (ISO 15924, CLDR default) and family (Glottolog), from the cited table ``xstilts.tasks.languages.LANGUAGES``;
languages not in the table (the synthetic world) are not grouped.

95% intervals, percentile bootstrap (``n_boot`` resamples, a fresh ``numpy.random.default_rng(seed)`` per row):
    * ``seeds`` when both arms have >= 2 kept seeds: each arm's seeds drawn with replacement (the same draws, in
      the same order, as the gain table's seed bootstrap, so the all-language interval is that table's), every
      component recomputed from the resampled per-language means. Run-to-run variance only.
    * ``examples`` otherwise, when the metric is a per-example proportion (accuracy) and every score records its
      test-set size ``n``: each run's per-language accuracy redrawn as Binomial(n, p) / n, which is exactly a
      bootstrap over that language's test examples, independently per run and arm (unpaired: conservative, the
      arms share their test examples). Test-set sampling variance only.
    * ``none`` otherwise (one seed and an F1-type metric: resampling examples needs the predictions).
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..run.layout import BASELINE
from ..tasks.languages import LANGUAGE_SOURCES, LANGUAGES, SCRIPT_NAMES
from .figures import new_figure, save_figure
from .markdown import format_params, interval, md_table, signed

ENGLISH = "en"
COMPONENTS = ("all", "english", "gap_change", "others")
COMPONENT_NAMES = {"all": "gain (all languages)", "english": "English gain ΔE", "gap_change": "gap change Δgap",
                   "others": "zero-shot gain ΔX (non-English mean)"}
PROPORTION_METRICS = ("accuracy",)
DECOMP_PNG, GROUPS_PNG, DECOMP_CSV = "decomposition_vs_size.png", "gain_by_language_group.png", "decomposition.csv"
DECOMP_COLUMNS = ["model", "n_params", "intermediate", "target", "component", "group", "languages", "gain", "ci_low",
                  "ci_high", "ci_method", "n_seeds", "n_seeds_baseline", "n_excluded"]


@dataclass
class Part:
    value: float
    lo: float
    hi: float
    languages: list[str]


@dataclass
class Decomposition:
    model: str
    n_params: int
    intermediate: str
    target: str
    metric: str
    languages: list[str]  # shared, English first
    parts: dict[str, Part]  # COMPONENTS
    scripts: dict[str, Part]  # script code -> gain over its non-English languages
    families: dict[str, Part]  # Glottolog family -> gain
    gap_base: float
    gap_inter: float
    method: str  # seeds | examples | none
    n_seeds: int
    n_seeds_baseline: int
    n_excluded: int = 0
    average_gain: float = math.nan  # the gain table's number (task averages)
    ungrouped: list[str] = field(default_factory=list)  # non-English languages not in the language table


# ----------------------------------------------------------------------------- per-language matrices
def _matrix(g, langs: list[str]) -> np.ndarray:
    """runs x languages of the group's metric (NaN where a run did not evaluate a language)."""
    return np.array([[r["per_language"][l][g.metric] if l in r["per_language"] else np.nan for l in langs]
                     for r in g.runs], dtype=float)


def _counts(g, langs: list[str]) -> np.ndarray | None:
    """runs x languages of the test-set sizes, or None when the metric is not a proportion or a size is missing."""
    if g.metric not in PROPORTION_METRICS:
        return None
    out = []
    for r in g.runs:
        row = []
        for l in langs:
            n = (r["per_language"].get(l) or {}).get("n")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                return None
            row.append(n)
        out.append(row)
    return np.array(out, dtype=np.int64)


def _seed_resamples(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    return _nanmean(values[idx], axis=1)  # n_boot x languages


def _example_resamples(values: np.ndarray, counts: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    p = np.clip(values, 0.0, 1.0)
    draws = rng.binomial(counts[None, :, :], p[None, :, :], size=(n_boot, *values.shape)) / counts[None, :, :]
    return draws.mean(axis=1)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN; an all-NaN slice gives NaN (shown as n/a) without numpy's warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(a, axis=axis)


# ----------------------------------------------------------------------------- one decomposition
def _weights(langs: list[str], subset: list[str]) -> np.ndarray:
    w = np.zeros(len(langs))
    for l in subset:
        w[langs.index(l)] = 1.0 / len(subset)
    return w


def _groups_of(others: list[str], column: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for l in others:
        if l in LANGUAGES:
            out.setdefault(getattr(LANGUAGES[l], column), []).append(l)
    return dict(sorted(out.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def decompose_pair(inter, base, n_boot: int, seed: int) -> Decomposition | None:
    """The decomposition of one (intermediate, baseline) pair of groups, or None without English and at least one
    other shared language (e.g. retrieval tasks: English is the pivot, not a test language)."""
    base_langs = set(base.languages())
    langs = [l for l in inter.languages() if l in base_langs]
    if ENGLISH not in langs or len(langs) < 2:
        return None
    langs = [ENGLISH] + [l for l in langs if l != ENGLISH]
    others = langs[1:]
    m = len(others)
    vi, vb = _matrix(inter, langs), _matrix(base, langs)
    gi, gb = _nanmean(vi, axis=0), _nanmean(vb, axis=0)
    diff = gi - gb
    weights = {"all": _weights(langs, langs), "english": _weights(langs, [ENGLISH]),
               "others": _weights(langs, others)}
    weights["gap_change"] = weights["english"] - weights["others"]
    scripts, families = _groups_of(others, "script"), _groups_of(others, "family")
    group_w = {("script", k): _weights(langs, v) for k, v in scripts.items()}
    group_w |= {("family", k): _weights(langs, v) for k, v in families.items()}

    rng = np.random.default_rng(seed)
    if len(vi) >= 2 and len(vb) >= 2:
        method = "seeds"
        reps = _seed_resamples(vi, rng, n_boot) - _seed_resamples(vb, rng, n_boot)
    else:
        ci, cb = _counts(inter, langs), _counts(base, langs)
        if ci is not None and cb is not None and not np.isnan(vi).any() and not np.isnan(vb).any():
            method = "examples"
            reps = _example_resamples(vi, ci, rng, n_boot) - _example_resamples(vb, cb, rng, n_boot)
        else:
            method, reps = "none", None

    def part(w: np.ndarray, members: list[str]) -> Part:
        value = float(diff @ w)
        if reps is None:
            return Part(value, math.nan, math.nan, members)
        r = reps @ w
        if np.isnan(r).any():
            return Part(value, math.nan, math.nan, members)
        lo, hi = np.percentile(r, [2.5, 97.5])
        return Part(value, float(lo), float(hi), members)

    parts = {"all": part(weights["all"], langs), "english": part(weights["english"], [ENGLISH]),
             "gap_change": part(weights["gap_change"], langs), "others": part(weights["others"], others)}
    return Decomposition(
        inter.model, inter.n_params, inter.intermediate, inter.target, inter.metric, langs, parts,
        {k: part(group_w[("script", k)], v) for k, v in scripts.items()},
        {k: part(group_w[("family", k)], v) for k, v in families.items()},
        gap_base=float(gb[0] - gb[1:].mean()), gap_inter=float(gi[0] - gi[1:].mean()), method=method,
        n_seeds=len(vi), n_seeds_baseline=len(vb),
        n_excluded=len(getattr(inter, "diverged", []) or []) + len(getattr(base, "diverged", []) or []),
        average_gain=float(inter.averages().mean() - base.averages().mean()),
        ungrouped=[l for l in others if l not in LANGUAGES])


def decompose(groups, n_boot: int, seed: int) -> list[Decomposition]:
    """Every (model, intermediate != none, target) with a baseline, in report order (``groups`` as
    :class:`xstilts.study.report.Group`, sorted by size)."""
    index = {(g.model, g.intermediate, g.target): g for g in groups}
    out = []
    for g in groups:
        if g.intermediate == BASELINE or (g.model, BASELINE, g.target) not in index:
            continue
        d = decompose_pair(g, index[(g.model, BASELINE, g.target)], n_boot, seed)
        if d is not None:
            out.append(d)
    return out


# ----------------------------------------------------------------------------- markdown
def _cell(p: Part | None, mark: str = "") -> str:
    if p is None:
        return "n/a"
    return f"{signed(p.value)} {interval(p.lo, p.hi)}{mark}"


METHOD_TEXT = {"seeds": "seeds", "examples": "test examples", "none": "none"}


def section(decs: list[Decomposition], mark=lambda n: "", skipped: list[str] | None = None) -> str:
    """Markdown: the identity, the decomposition table, and the gain per script and per family group."""
    out = ["For a size, intermediate task and target, with the per-language scores (mean over kept seeds) on the "
           "languages both arms evaluated — English E, the other m languages with mean X — and d = intermediate − "
           f"`{BASELINE}`:", "",
           "- transfer gap: gap = E − X;",
           "- zero-shot gain: **ΔX = ΔE − Δgap** (exact);",
           "- gain of the task average over all m + 1 languages: **ΔA = ΔE − m/(m+1) · Δgap** (exact).", "",
           "A gain that is all English (ΔE > 0, Δgap = ΔE, ΔX = 0) is not transfer; a negative Δgap is what "
           "intermediate training gives the other languages beyond English. Points ×100, 95% CIs in brackets.", ""]
    if not decs:
        out.append("_No target with English and other languages in both arms: nothing to decompose._")
        if skipped:
            out.append(f"_Not decomposable (no English test score): {', '.join(skipped)}._")
        return "\n".join(out)
    rows = []
    for d in decs:
        mk = mark(d.n_excluded)
        rows.append([d.model, format_params(d.n_params), d.intermediate, d.target, str(len(d.languages) - 1),
                     _cell(d.parts["all"], mk), _cell(d.parts["english"], mk), _cell(d.parts["gap_change"], mk),
                     _cell(d.parts["others"], mk), f"{100 * d.gap_base:.1f} → {100 * d.gap_inter:.1f}",
                     METHOD_TEXT[d.method]])
    out.append(md_table(["model", "params", "intermediate", "target", "m", COMPONENT_NAMES["all"],
                         COMPONENT_NAMES["english"], COMPONENT_NAMES["gap_change"], COMPONENT_NAMES["others"],
                         f"gap: {BASELINE} → intermediate", "CI over"], rows, right=4))
    notes = ["CI over `seeds`: both arms have ≥ 2 seeds; seeds resampled per arm (run-to-run variance; the "
             "all-language interval equals the gain table's). `test examples`: one seed in an arm and an accuracy "
             "metric; each run's per-language accuracy redrawn as Binomial(n, p)/n (a bootstrap over test "
             "examples, arms unpaired: conservative). `none`: one seed and an F1-type metric."]
    off = [d for d in decs if abs(d.parts["all"].value - d.average_gain) > 5e-5]
    for d in off:
        notes.append(f"{d.model} / {d.intermediate} / {d.target}: the gain table's {signed(d.average_gain)} (task "
                     f"averages) differs from the mean over these languages ({signed(d.parts['all'].value)}): the "
                     f"runs' average is not the unweighted mean over the shared languages.")
    if skipped:
        notes.append(f"Not decomposable (no English test score in both arms): {', '.join(skipped)}.")
    out += ["", *[f"- {n}" for n in notes], "", f"![English gain and zero-shot gain vs model size]({DECOMP_PNG})", "",
            "_Per target: the English gain (solid) and the zero-shot gain over the other languages (dashed) vs size; "
            "the vertical distance between them is −Δgap. Error bars: the CIs above._", ""]
    out += ["### Gain by language group", "", group_tables(decs, mark)]
    return "\n".join(out)


def group_tables(decs: list[Decomposition], mark=lambda n: "") -> str:
    parts = []
    for target in sorted({d.target for d in decs}):
        ds = [d for d in decs if d.target == target]
        for column, attr, names in (("script", "scripts", SCRIPT_NAMES), ("family", "families", {})):
            keys = list(dict.fromkeys(k for d in ds for k in getattr(d, attr)))
            if not keys:
                continue
            members = {k: next(getattr(d, attr)[k].languages for d in ds if k in getattr(d, attr)) for k in keys}
            header = [f"{names.get(k, k)} ({', '.join(members[k])})" for k in keys]
            rows = [[d.model, format_params(d.n_params), d.intermediate,
                     *[_cell(getattr(d, attr).get(k), mark(d.n_excluded)) for k in keys]] for d in ds]
            parts.append(f"**{target}, by {column}** (non-English languages; gain in points ×100)\n\n"
                         + md_table(["model", "params", "intermediate", *header], rows, right=3))
    ungrouped = sorted({l for d in decs for l in d.ungrouped})
    if not parts:
        return (f"_No language of these targets is in the language table (`xstilts.tasks.languages.LANGUAGES`): "
                f"{', '.join(ungrouped) or '–'} (the synthetic world's languages have no script or family)._")
    notes = [f"Script: {LANGUAGE_SOURCES['script']}.", f"Family: {LANGUAGE_SOURCES['family']}.",
             "A group's gain is the mean of its languages' gains; groups of one language are that language."]
    if ungrouped:
        notes.append(f"Not in the language table, not grouped: {', '.join(ungrouped)}.")
    if any(d.scripts for d in decs):
        notes.append(f"![Gain by language group vs size]({GROUPS_PNG})")
    return "\n\n".join(parts) + "\n\n" + "\n".join(f"- {n}" for n in notes)


# ----------------------------------------------------------------------------- CSV and figures
def to_csv(decs: list[Decomposition]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(DECOMP_COLUMNS)

    def num(x: float) -> str:
        return "" if math.isnan(x) else f"{x:.12g}"

    for d in decs:
        common = [d.model, d.n_params, d.intermediate, d.target]
        tail = [d.method, d.n_seeds, d.n_seeds_baseline, d.n_excluded]
        for name in COMPONENTS:
            p = d.parts[name]
            w.writerow([*common, name, "", " ".join(p.languages), num(p.value), num(p.lo), num(p.hi), *tail])
        for kind, attr in (("script", "scripts"), ("family", "families")):
            for k, p in getattr(d, attr).items():
                w.writerow([*common, kind, k, " ".join(p.languages), num(p.value), num(p.lo), num(p.hi), *tail])
    return buf.getvalue()


def _bars(parts: list[Part]) -> np.ndarray:
    lo = [0.0 if math.isnan(p.lo) else max(0.0, 100 * (p.value - p.lo)) for p in parts]
    hi = [0.0 if math.isnan(p.hi) else max(0.0, 100 * (p.hi - p.value)) for p in parts]
    return np.array([lo, hi])


def _panels(n: int):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = new_figure(width=4.6 * cols, height=3.6 * rows)
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(n)]


def plot_decomposition(decs: list[Decomposition], path: Path) -> bool:
    """Per target one panel: English gain (solid) and zero-shot gain (dashed) vs size, one colour per
    intermediate task."""
    targets = sorted({d.target for d in decs})
    if not targets:
        return False
    fig, axes = _panels(len(targets))
    inters = sorted({d.intermediate for d in decs})
    colors = {i: f"C{k % 10}" for k, i in enumerate(inters)}
    for ax, target in zip(axes, targets):
        for k, inter in enumerate(inters):
            ds = sorted((d for d in decs if d.target == target and d.intermediate == inter), key=lambda d: d.n_params)
            if not ds:
                continue
            x = np.array([d.n_params for d in ds], dtype=float)
            for comp, style, dodge in (("english", "-", 0.97), ("others", "--", 1.03)):
                ps = [d.parts[comp] for d in ds]
                ax.errorbar(x * dodge ** (k + 1), [100 * p.value for p in ps], yerr=_bars(ps), color=colors[inter],
                            linestyle=style, marker="o" if comp == "english" else "s", capsize=3,
                            label=f"{inter}: {'English' if comp == 'english' else 'other languages'}")
        _gain_vs_size_axes(ax, target, legend_size=7)
    save_figure(fig, path)
    return True


def _gain_vs_size_axes(ax, title: str, legend_size: int) -> None:
    """A gain-vs-size panel's frame: the zero line, log size axis, labels, grid, legend."""
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("encoder parameters (log scale)")
    ax.set_ylabel("gain (points ×100)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size, loc="best")


def plot_groups(decs: list[Decomposition], path: Path) -> bool:
    """Per target and grouping (script, family) one panel: each group's gain vs size (line style = intermediate)."""
    panels = [(t, attr) for t in sorted({d.target for d in decs}) for attr in ("scripts", "families")
              if any(getattr(d, attr) for d in decs if d.target == t)]
    if not panels:
        return False
    fig, axes = _panels(len(panels))
    inters = sorted({d.intermediate for d in decs})
    for ax, (target, attr) in zip(axes, panels):
        ds = [d for d in decs if d.target == target]
        keys = list(dict.fromkeys(k for d in ds for k in getattr(d, attr)))
        for c, key in enumerate(keys):
            for k, inter in enumerate(inters):
                pts = sorted(((d.n_params, getattr(d, attr)[key]) for d in ds
                              if d.intermediate == inter and key in getattr(d, attr)), key=lambda t: t[0])
                if not pts:
                    continue
                ax.errorbar([n for n, _ in pts], [100 * p.value for _, p in pts], yerr=_bars([p for _, p in pts]),
                            color=f"C{c % 10}", linestyle=["-", "--", ":", "-."][k % 4], marker="o", capsize=2,
                            label=f"{SCRIPT_NAMES.get(key, key)}" + (f" ({inter})" if len(inters) > 1 else ""))
        _gain_vs_size_axes(ax, f"{target}: by {'script' if attr == 'scripts' else 'family'}", legend_size=6)
    save_figure(fig, path)
    return True
