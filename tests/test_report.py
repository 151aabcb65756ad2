"""xstilts.study.report on a synthetic results tree with known values (no model, no data, fast).

Tree: 2 model sizes x {none, mnli} x {xnli (target, seeds 1-2), tatoeba (retrieval, seed 1, per-layer)}.
Every mnli arm is the baseline plus a constant, so the gains are known exactly:
small model +5.0 on both targets, large model +2.0 on both.
"""
import csv
import json
from pathlib import Path

import pytest

from xstilts.study.report import build_report, collect, compute_gains, group_results, main
from xstilts.run.results import ResultsSchemaError, write_results

SMALL = {"name": "tiny-2l-h64", "n_params": 397604, "num_layers": 2}
LARGE = {"name": "tiny-4l-h128", "n_params": 1600000, "num_layers": 4}
XNLI_BASE = {"ar": 0.40, "de": 0.45, "en": 0.50}  # seed 1; seed 2 adds 0.02 -> averages 0.45, 0.47
TATOEBA_BASE = {"ar": 0.30, "de": 0.50}
# model -> (xnli offset of the baseline, mnli gain), tatoeba values (none, mnli), configured retrieval layer
XNLI = {"tiny-2l-h64": (0.00, 0.05), "tiny-4l-h128": (0.10, 0.02)}
TATOEBA = {"tiny-2l-h64": ({"ar": 0.30, "de": 0.50}, {"ar": 0.33, "de": 0.57}),   # diffs .03 .07 -> +5.0
           "tiny-4l-h128": ({"ar": 0.60, "de": 0.70}, {"ar": 0.61, "de": 0.73})}  # diffs .01 .03 -> +2.0
LAYER = {"tiny-2l-h64": 1, "tiny-4l-h128": 3}


def make_result(model: dict, intermediate, target: str, seed: int, per_lang: dict, *, kind: str = "target",
                layer: int | None = None) -> dict:
    """A schema-valid results.json dict."""
    avg = sum(per_lang.values()) / len(per_lang)
    d = {
        "schema_version": 1, "kind": kind,
        "model": {"name": model["name"], "path_or_id": f"models/{model['name']}", "n_params": model["n_params"],
                  "num_layers": model["num_layers"], "tiny": True},
        "intermediate_task": intermediate, "target_task": target, "task": target,
        "metric": "accuracy", "seed": seed, "languages": list(per_lang),
        "per_language": {lang: {"accuracy": v, "n": 30} for lang, v in per_lang.items()},
        "average": {"accuracy": avg},
        "preset": {"name": "tiny"}, "hyperparameters": {"learning_rate": 1e-3},
        "provenance": {"git_commit": "0123456789abcdef", "git_dirty": False,
                       "versions": {"transformers": "5.20.0", "torch": "2.13.0"}},
        "timing": {"wall_seconds": 10.0},
    }
    if kind == "target":
        d["eval_split"] = "test"
    else:
        n_layers = model["num_layers"]
        per_layer = {}
        for l in range(n_layers + 1):  # the configured layer holds the reported numbers; others are lower
            vals = per_lang if l == layer else {k: v - 0.1 - 0.01 * l for k, v in per_lang.items()}
            per_layer[str(l)] = {"average": {"accuracy": sum(vals.values()) / len(vals)},
                                 "per_language": {k: {"accuracy": v} for k, v in vals.items()}}
        d["retrieval"] = {"layer": layer, "pooling": "mean", "include_special_tokens": True,
                          "num_layers": n_layers, "per_layer": per_layer}
    return d


def write_tree(root: Path) -> Path:
    for model in (SMALL, LARGE):
        name = model["name"]
        offset, gain = XNLI[name]
        for inter in (None, "mnli"):
            arm = inter or "none"
            for seed in (1, 2):
                vals = {k: v + offset + 0.02 * (seed - 1) + (gain if inter else 0.0) for k, v in XNLI_BASE.items()}
                write_results(root / name / arm / "xnli" / f"seed{seed}" / "results.json",
                              make_result(model, inter, "xnli", seed, vals))
            vals = TATOEBA[name][1 if inter else 0]
            write_results(root / name / arm / "tatoeba" / "seed1" / "results.json",
                          make_result(model, inter, "tatoeba", 1, vals, kind="retrieval", layer=LAYER[name]))
    return root


def table_after(md: str, heading: str) -> list[dict]:
    """Rows (header -> cell) of the first markdown table after ``heading``."""
    lines = md.splitlines()
    i = lines.index(heading)
    while not lines[i].startswith("|"):
        i += 1
    block = []
    while i < len(lines) and lines[i].startswith("|"):
        block.append([c.strip() for c in lines[i].strip("|").split("|")])
        i += 1
    header, rows = block[0], block[2:]
    return [dict(zip(header, r)) for r in rows]


@pytest.fixture()
def report(tmp_path):
    root = write_tree(tmp_path / "results")
    out = tmp_path / "report"
    paths = build_report(root, out, title="Synthetic", note="Synthetic numbers for the tests.")
    return paths, Path(paths["report_md"]).read_text(encoding="utf-8")


def row(rows: list[dict], model: str, inter: str) -> dict:
    (r,) = [r for r in rows if r["model"] == model and r["intermediate"] == inter]
    return r


def test_files_written(report):
    paths, md = report
    for key in ("report_md", "results_csv", "gains_csv", "gain_png", "layers_png"):
        assert Path(paths[key]).is_file() and Path(paths[key]).stat().st_size > 0, key
    for key in ("gain_png", "layers_png"):
        assert Path(paths[key]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert md.startswith("# Synthetic\n\nSynthetic numbers for the tests.")
    for name in ("results.csv", "gains.csv", "gain_vs_size.png", "retrieval_layers.png"):
        assert f"]({name})" in md
    assert not list(Path(paths["report_md"]).parent.glob(".*.tmp"))  # no temporary files left behind


def test_main_table(report):
    _, md = report
    rows = table_after(md, "## Main table")
    assert [(r["model"], r["intermediate"]) for r in rows] == [
        ("tiny-2l-h64", "none"), ("tiny-2l-h64", "mnli"), ("tiny-4l-h128", "none"), ("tiny-4l-h128", "mnli")]
    assert list(rows[0]) == ["model", "params", "intermediate", "tatoeba", "xnli"]
    assert row(rows, "tiny-2l-h64", "none")["xnli"] == "46.0 ±1.4 (n=2)"
    assert row(rows, "tiny-2l-h64", "mnli")["xnli"] == "51.0 ±1.4 (n=2)"
    assert row(rows, "tiny-4l-h128", "none")["xnli"] == "56.0 ±1.4 (n=2)"
    assert row(rows, "tiny-4l-h128", "mnli")["xnli"] == "58.0 ±1.4 (n=2)"
    assert row(rows, "tiny-2l-h64", "none")["tatoeba"] == "40.0 (n=1)"
    assert row(rows, "tiny-2l-h64", "mnli")["tatoeba"] == "45.0 (n=1)"
    assert row(rows, "tiny-4l-h128", "mnli")["tatoeba"] == "67.0 (n=1)"
    assert row(rows, "tiny-2l-h64", "none")["params"] == "398K"


def test_gains(report):
    paths, md = report
    with open(paths["gains_csv"], newline="") as f:
        gains = {(r["model"], r["target"]): r for r in csv.DictReader(f)}
    expected = {"tiny-2l-h64": 0.05, "tiny-4l-h128": 0.02}
    methods = {"xnli": "seeds", "tatoeba": "languages", "mean": "mixed"}
    for model, gain in expected.items():
        for target, method in methods.items():
            g = gains[(model, target)]
            assert g["intermediate"] == "mnli"
            assert float(g["gain"]) == pytest.approx(gain, abs=1e-12)
            assert float(g["ci_low"]) <= float(g["gain"]) <= float(g["ci_high"])
            assert float(g["ci_low"]) < float(g["ci_high"])
            assert g["ci_method"] == method
    assert gains[("tiny-2l-h64", "xnli")]["n_seeds"] == "2"
    # language bootstrap over two differences (.03, .07): the CI lies within their range
    t = gains[("tiny-2l-h64", "tatoeba")]
    assert 0.03 - 1e-12 <= float(t["ci_low"]) and float(t["ci_high"]) <= 0.07 + 1e-12

    rows = table_after(md, "## Gain from intermediate training")
    assert [(r["model"], r["intermediate"]) for r in rows] == [("tiny-2l-h64", "mnli"), ("tiny-4l-h128", "mnli")]
    small = row(rows, "tiny-2l-h64", "mnli")
    assert small["xnli"].startswith("+5.0 [") and small["xnli"].endswith("†")
    assert small["tatoeba"].startswith("+5.0 [") and small["tatoeba"].endswith("‡")
    assert small["mean over targets"].startswith("+5.0 [")
    assert row(rows, "tiny-4l-h128", "mnli")["xnli"].startswith("+2.0 [")
    assert "bootstrap over seeds" in md and "paired bootstrap over languages" in md


def test_gains_are_deterministic(tmp_path):
    groups = group_results(collect(write_tree(tmp_path)))
    a, b = compute_gains(groups), compute_gains(groups)
    assert [(g.ci_low, g.ci_high) for g in a] == [(g.ci_low, g.ci_high) for g in b]


def test_missing_baseline_is_na(tmp_path):
    root = write_tree(tmp_path / "results")
    for f in (root / "tiny-4l-h128" / "none" / "xnli").rglob("results.json"):
        f.unlink()
    md = Path(build_report(root, tmp_path / "out")["report_md"]).read_text(encoding="utf-8")
    r = row(table_after(md, "## Gain from intermediate training"), "tiny-4l-h128", "mnli")
    assert r["xnli"] == "n/a"
    assert r["tatoeba"].startswith("+2.0 [")
    assert r["mean over targets"].endswith("(1/2 targets)")


def test_results_csv(report):
    paths, _ = report
    with open(paths["results_csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    # 2 models x 2 arms x (xnli: 2 seeds x (3 languages + avg) + tatoeba: 1 seed x (2 languages + avg))
    assert len(rows) == 2 * 2 * (2 * 4 + 1 * 3)
    assert list(rows[0]) == ["model", "n_params", "intermediate", "target", "seed", "language", "metric", "value",
                             "eval_split", "preset", "layer", "diverged"]
    avg = [r for r in rows if r["model"] == "tiny-2l-h64" and r["intermediate"] == "mnli"
           and r["target"] == "xnli" and r["seed"] == "2" and r["language"] == "avg"]
    assert len(avg) == 1 and float(avg[0]["value"]) == pytest.approx(0.52)
    tat = [r for r in rows if r["target"] == "tatoeba" and r["model"] == "tiny-4l-h128"]
    assert {r["layer"] for r in tat} == {"3"}
    assert {r["eval_split"] for r in rows if r["target"] == "xnli"} == {"test"}


def test_per_language_and_layer_tables(report):
    _, md = report
    xnli = table_after(md, "### xnli (accuracy, mean over seeds)")
    r = row(xnli, "tiny-2l-h64", "mnli")
    assert (r["ar"], r["de"], r["en"], r["avg"]) == ("46.0", "51.0", "56.0", "51.0")
    layers = table_after(md, "## Retrieval by layer")
    small = row(layers, "tiny-2l-h64", "mnli")
    assert small["1"] == "45.0*"  # the configured layer holds the reported value and is marked
    assert not small["0"].endswith("*") and not small["2"].endswith("*")
    assert small["3"] == "–"  # the 2-layer model has no layer 3
    large = row(layers, "tiny-4l-h128", "none")
    assert large["3"] == "65.0*" and [c for c in large.values() if c.endswith("*")] == ["65.0*"]


def test_protocol(report):
    _, md = report
    rows = table_after(md, "## Protocol")
    assert len(rows) == 8
    r = [r for r in rows if r["model"] == "tiny-2l-h64" and r["intermediate"] == "none" and r["target"] == "xnli"][0]
    assert (r["preset"], r["eval split"], r["seeds"], r["git commit"], r["transformers"], r["torch"],
            r["wall s (total)"]) == ("tiny", "test", "1, 2", "0123456789", "5.20.0", "2.13.0", "20.0")
    t = [r for r in rows if r["model"] == "tiny-4l-h128" and r["target"] == "tatoeba"][0]
    assert t["retrieval"].startswith("layer 3/4, mean")


def test_invalid_result_is_refused(tmp_path):
    root = write_tree(tmp_path / "results")
    bad = root / "tiny-2l-h64" / "mnli" / "xnli" / "seed2" / "results.json"
    d = json.loads(bad.read_text())
    del d["metric"]
    bad.write_text(json.dumps(d))
    with pytest.raises(ResultsSchemaError) as e:
        build_report(root, tmp_path / "out")
    assert str(bad) in str(e.value)
    assert not (tmp_path / "out" / "report.md").exists()


def test_duplicate_seed_is_refused(tmp_path):
    root = write_tree(tmp_path / "results")
    src = root / "tiny-2l-h64" / "none" / "xnli" / "seed1" / "results.json"
    copy = tmp_path / "results" / "elsewhere" / "results.json"
    copy.parent.mkdir()
    copy.write_text(src.read_text())
    with pytest.raises(ValueError, match="same model"):
        build_report(root, tmp_path / "out")


def test_empty_tree(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path)):
        collect(tmp_path)


def test_cli(tmp_path, capsys):
    root = write_tree(tmp_path / "results")
    assert main(["--results_dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == str(root / "report.md")
    assert "| tiny-2l-h64 | 398K | mnli |" in out
    assert (root / "report.md").is_file() and (root / "gain_vs_size.png").is_file()
    assert main(["--results_dir", str(tmp_path / "missing")]) == 2
    assert "error:" in capsys.readouterr().err


# ----------------------------------------------------------------------------- benchmark scores, best task, heatmaps, published
XTREME_TASKS = ("pawsx", "xnli", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc2018", "tatoeba")
QA = ("xquad", "mlqa", "tydiqa")
# known per-task gains (fractions) of each intermediate task over the baseline of tiny-2l-h64
TASK_GAIN = {"mnli": {t: 0.01 * (k + 1) for k, t in enumerate(XTREME_TASKS)},
             "squad_v1": {t: 0.03 for t in XTREME_TASKS}}


def _result(task: str, inter, per_lang: dict) -> dict:
    metric = "f1" if task in QA or task in ("udpos", "panx", "bucc2018") else "accuracy"
    d = make_result(SMALL, inter, task, 1, {lang: 0.0 for lang in per_lang},
                    kind="retrieval" if task in ("bucc2018", "tatoeba") else "target")
    d["metric"] = metric
    if task in QA:  # EM is 0.1 below F1; the XTREME score of a language is (EM + F1) / 2
        d["per_language"] = {lang: {"f1": v, "exact_match": v - 0.1, "n": 30} for lang, v in per_lang.items()}
    else:
        d["per_language"] = {lang: {metric: v, "n": 30} for lang, v in per_lang.items()}
    d["average"] = {metric: sum(per_lang.values()) / len(per_lang)}
    d.pop("retrieval", None)
    return d


def write_xtreme_tree(root: Path, tasks=XTREME_TASKS) -> Path:
    for task in tasks:
        base = {"de": 0.40, "zh": 0.50}
        write_results(root / "tiny-2l-h64" / "none" / task / "seed1" / "results.json", _result(task, None, base))
        for inter, gains in TASK_GAIN.items():
            vals = {lang: v + gains[task] for lang, v in base.items()}
            write_results(root / "tiny-2l-h64" / inter / task / "seed1" / "results.json", _result(task, inter, vals))
    return root


def test_xtreme_score_and_groups(tmp_path):
    paths = build_report(write_xtreme_tree(tmp_path / "r"), tmp_path / "out")
    md = Path(paths["report_md"]).read_text(encoding="utf-8")
    with open(paths["benchmark_csv"], newline="") as f:
        rows = {(r["intermediate"], r["benchmark"], r["group"]): r for r in csv.DictReader(f)}
    g = TASK_GAIN["mnli"]
    score = rows[("mnli", "XTREME", "score")]
    assert float(score["gain"]) == pytest.approx(sum(g.values()) / 9, abs=1e-9) and score["missing"] == ""
    assert float(score["ci_low"]) <= float(score["gain"]) <= float(score["ci_high"])
    qa = rows[("mnli", "XTREME", "question answering")]
    assert float(qa["gain"]) == pytest.approx((g["xquad"] + g["mlqa"] + g["tydiqa"]) / 3, abs=1e-9)
    assert rows[("mnli", "XTREME", "classification")]["tasks"] == "pawsx xnli"
    # XTREME-R needs xcopa, mewslix, lareqa and its own Tatoeba (tatoeba_squad: the SQuAD v1.1-fine-tuned encoder;
    # the tree's tatoeba is XTREME's raw-encoder arm, never counted for XTREME-R), which this tree lacks: named
    r_score = rows[("mnli", "XTREME-R", "score")]
    assert r_score["gain"] == "" and r_score["missing"] == "xcopa tatoeba_squad mewslix lareqa"
    assert "**not computable here: missing xcopa, tatoeba_squad, mewslix, lareqa**" in md
    xt = table_after(md, "### XTREME")
    assert row(xt, "tiny-2l-h64", "mnli")["XTREME score"].startswith(f"+{100 * sum(g.values()) / 9:.1f} [")
    assert row(xt, "tiny-2l-h64", "squad_v1")["XTREME score"].startswith("+3.0 [")
    xr = table_after(md, "### XTREME-R")
    assert row(xr, "tiny-2l-h64", "mnli")["XTREME-R score"] == "n/a (4 missing)"
    assert "(1/2: no xcopa)" in row(xr, "tiny-2l-h64", "mnli")["classification"]


def test_best_intermediate_per_size(tmp_path):
    md = Path(build_report(write_xtreme_tree(tmp_path / "r"), tmp_path / "out")["report_md"]).read_text("utf-8")
    (best,) = table_after(md, "## Best intermediate task per size")
    # mnli: +1 .. +9 points, mean +5.0; squad_v1: +3.0 everywhere, so mnli is best overall, squad_v1 on pawsx
    assert best["best intermediate (mean over targets)"] == "mnli"
    assert best["its mean gain"].startswith("+5.0 [") and best["its mean gain"].endswith("(9/9 targets)")
    assert best["candidates"] == "2"
    assert best["best for pawsx"] == "squad_v1 +3.0" and best["best for tatoeba"] == "mnli +9.0"


def test_heatmap_per_size(report):
    paths, md = report
    for model in ("tiny-2l-h64", "tiny-4l-h128"):
        png = Path(paths[f"heatmap_png:{model}"])
        assert png.name == f"gain_heatmap_{model}.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"![{model}: gain per intermediate and target task]({png.name})" in md


def test_published_numbers_are_beside_ours_and_marked(tmp_path):
    root = write_tree(tmp_path / "r")
    # our xlmr-large baseline and mnli on xnli (a renamed copy of the large tiny model's xnli results)
    for inter in ("none", "mnli"):
        for seed in (1, 2):
            src = root / "tiny-4l-h128" / inter / "xnli" / f"seed{seed}" / "results.json"
            d = json.loads(src.read_text())
            d["model"] = dict(d["model"], name="xlmr-large", n_params=560_000_000)
            write_results(tmp_path / "r" / "xlmr-large" / inter / "xnli" / f"seed{seed}" / "results.json", d)
    md = Path(build_report(root, tmp_path / "out")["report_md"]).read_text(encoding="utf-8")
    rows = table_after(md, "## Published reference numbers (published, not ours)")
    xnli = next(r for r in rows if r["target"] == "xnli")
    assert xnli["XLM-R Large [RemBERT T16] (published)"] == "79.2"
    assert xnli["X-STILTs [RemBERT T16] (published)"] == "80.0"
    assert xnli["gain [RemBERT T16] (published)"] == "+0.8"
    assert xnli["ours: xlmr-large none"] == "56.0"  # mean over seeds of the large tiny model's xnli baseline
    assert xnli["ours: xlmr-large best intermediate, gain"].startswith("mnli +2.0 [")
    tydiqa = next(r for r in rows if r["target"] == "tydiqa")
    assert tydiqa["X-STILTs [RemBERT T16] (published)"] == "59.5 / 76.0"
    assert tydiqa["gain [RemBERT T16] (published)"] == "+12.7 ((EM+F1)/2)"  # (59.5 + 76.0) / 2 - (45.0 + 65.1) / 2
    assert "arXiv 2010.12821" in md and "5.4 point improvement over XLM-R Large" in md
    # the published file can be switched off
    md2 = Path(build_report(root, tmp_path / "out2", published=None)["report_md"]).read_text(encoding="utf-8")
    assert "(published" not in md2


def test_retrieval_layer_label_names_each_metric():
    from types import SimpleNamespace

    from xstilts.study.report import _retrieval_metrics

    tat = SimpleNamespace(target="tatoeba", metric="accuracy")
    bucc = SimpleNamespace(target="bucc2018", metric="f1")
    assert _retrieval_metrics([tat, tat]) == "accuracy"
    # BUCC is scored by F1: a layer table or plot holding both must not call it accuracy
    assert _retrieval_metrics([tat, bucc]) == "score (tatoeba: accuracy, bucc2018: f1)"
