"""Per-layer retrieval results of ONE run: metric vs layer per language group (PNG) and the same as CSV.

``run_retrieval.py`` writes both next to ``results.json`` (``per_layer.png``, ``per_layer.csv``) from the
``retrieval.per_layer`` block of the result. Groups are language families (``xstilts.tasks.languages.FAMILIES``);
each group's line is the mean over its evaluated languages, the thick black line the mean over all, and a
star marks the configured layer (the headline number). Cross-run plots (models, intermediate tasks) are
the report's (``xstilts.study.report``: ``retrieval_layers.png``).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..study.figures import new_figure, save_figure
from .summary import group_languages, mean_of


def layer_series(result: dict) -> tuple[list[int], dict[str, dict[int, float]], dict[int, float]]:
    """(layers, {group label: {layer: mean metric}}, {layer: mean over all languages}) from a result."""
    metric = result["metric"]
    per_layer = {int(k): v for k, v in result["retrieval"]["per_layer"].items()}
    layers = sorted(per_layer)
    langs = list(dict.fromkeys(l for v in per_layer.values() for l in v["per_language"]))
    groups = group_languages(langs)
    series = {}
    for g, ls in groups.items():
        label = f"{g} ({', '.join(ls)})" if len(ls) <= 4 else f"{g} ({len(ls)} languages)"
        series[label] = {l: mean_of({x: per_layer[l]["per_language"][x] for x in ls
                                     if x in per_layer[l]["per_language"]}, metric) for l in layers}
    overall = {l: per_layer[l]["average"][metric] for l in layers}
    return layers, series, overall


def per_layer_csv(result: dict) -> str:
    """One row per (layer, language) with every numeric metric of the entry; plus group and average rows."""
    per_layer = {int(k): v for k, v in result["retrieval"]["per_layer"].items()}
    keys = []
    for v in per_layer.values():
        for m in v["per_language"].values():
            keys += [k for k, x in m.items() if isinstance(x, (int, float)) and not isinstance(x, bool)
                     and k not in keys]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["layer", "configured", "language", *keys])
    configured = result["retrieval"].get("layer")
    for layer in sorted(per_layer):
        for lang, m in per_layer[layer]["per_language"].items():
            w.writerow([layer, int(layer == configured), lang, *[_fmt(m.get(k)) for k in keys]])
        w.writerow([layer, int(layer == configured), "avg", *[_fmt(per_layer[layer]["average"].get(k))
                                                              for k in keys]])
    return buf.getvalue()


def _fmt(x) -> str:
    if x is None:
        return ""
    return repr(float(x)) if isinstance(x, float) else str(x)


def plot_per_layer(result: dict, path: str | os.PathLike) -> Path:
    """Write the PNG: metric (x100) vs layer, one line per language group, mean over all in black."""
    path = Path(path)
    layers, series, overall = layer_series(result)
    configured = result["retrieval"].get("layer")
    metric = result["metric"]
    from matplotlib import colormaps

    fig = new_figure(9.5, 5)
    ax = fig.add_subplot(1, 1, 1)
    colours = colormaps["tab20"].colors  # 20 distinct colours: one per group (there are at most 11)
    for i, (label, vals) in enumerate(series.items()):
        ax.plot(layers, [100 * vals[l] for l in layers], marker="os^vD<>ph*X"[i % 11], markersize=4, linewidth=1.2,
                alpha=0.85, color=colours[(2 * i) % 20 if i < 10 else (2 * i + 1) % 20], label=label)
    ax.plot(layers, [100 * overall[l] for l in layers], color="black", linewidth=2.5, marker="o",
            label=f"all {len({x for v in result['retrieval']['per_layer'].values() for x in v['per_language']})} "
                  "languages")
    if configured in overall:
        ax.plot([configured], [100 * overall[configured]], marker="*", markersize=16, color="black",
                linestyle="none", label=f"configured layer {configured}")
    model = (result.get("model") or {}).get("name", "?")
    inter = result.get("intermediate_task") or "none"
    ax.set_title(f"{result['task']}: {metric} by layer ({model}, intermediate: {inter})")
    ax.set_xlabel("layer (hidden_states index; 0 = embeddings)")
    ax.set_ylabel(f"{metric} (x100)" + (" [test, threshold from dev]" if result["task"] == "bucc2018" else
                                        " [en->xx]" if metric == "accuracy" else ""))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    save_figure(fig, path, dpi=120)
    return path
