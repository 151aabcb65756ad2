"""The report's alternative arms (xstilts.study.arms) on a synthetic results tree with known values: MLM co-training
and translated intermediate data compared with English-only training at every size, and translate-train results
(zero_shot false) kept out of every zero-shot table, gain and mean.

Tree: 2 sizes x {none, mnli, mnli+mlm, mnli_tt} x xnli, seeds 1-2; plus xnli@tta (translate-train, NOT zero-shot)
for none and mnli with the SAME seeds and far higher scores (0.9): mixed into the zero-shot groups they would
change the means (or collide on the seeds).
"""
import csv
from pathlib import Path

import pytest

from test_report import LARGE, SMALL, make_result, table_after
from xstilts.run import layout
from xstilts.run.results import write_results
from xstilts.study import arms
from xstilts.study.report import build_report, collect, group_results

BASE = {"ar": 0.40, "de": 0.45, "en": 0.50}  # average 0.45
# arm -> offset over the baseline, per model: mnli +0.04/+0.02; mnli+mlm = mnli +0.01 (small) / -0.01 (large);
# mnli_tt = mnli -0.02 (small) / +0.03 (large)
OFFSET = {"tiny-2l-h64": {"none": 0.0, "mnli": 0.04, "mnli+mlm": 0.05, "mnli_tt": 0.02},
          "tiny-4l-h128": {"none": 0.10, "mnli": 0.12, "mnli+mlm": 0.11, "mnli_tt": 0.15}}
TTA = 0.9


def translate_train(model, inter, seed):
    d = make_result(model, inter, "xnli", seed, {k: TTA for k in BASE})
    d.update(zero_shot=False, train_languages=["en", "ar", "de"],
             translate_train={"label": "tta", "translation": "XNLI-MT 1.0"})
    return d


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "results"
    for model in (SMALL, LARGE):
        for arm, off in OFFSET[model["name"]].items():
            inter = None if arm == "none" else arm
            for seed in (1, 2):
                vals = {k: v + off + 0.01 * (seed - 1) for k, v in BASE.items()}
                d = make_result(model, inter, "xnli", seed, vals)
                d["zero_shot"] = True
                write_results(root / model["name"] / arm / "xnli" / f"seed{seed}" / "results.json", d)
                if arm in ("none", "mnli"):
                    write_results(root / model["name"] / arm / layout.translate_train_name("xnli", "tta") /
                                  f"seed{seed}" / "results.json", translate_train(model, inter, seed))
    return root


def test_translate_train_results_never_enter_zero_shot_groups(tree):
    results = collect(tree)
    zero, translated = arms.split_zero_shot(results)
    assert len(translated) == 8 and all(d["target_task"] == "xnli@tta" for d in translated)
    assert all(arms.is_zero_shot(d) for d in zero) and len(zero) == 16
    groups = group_results(zero)
    assert {g.target for g in groups} == {"xnli"}
    none_small = next(g for g in groups if g.model == SMALL["name"] and g.intermediate == "none")
    assert none_small.averages() == pytest.approx([0.45, 0.46])  # the zero-shot runs only
    # without the split, the same seeds of the same (model, intermediate, target) collide: the report refuses
    with pytest.raises(ValueError, match="two results for the same model"):
        group_results(results)


def test_report_keeps_translate_train_apart_and_compares_arms(tree, tmp_path):
    out = tmp_path / "report"
    paths = build_report(tree, out, published=None)
    md = Path(paths["report_md"]).read_text()
    # zero-shot tables: no xnli@tta column, baseline means unchanged by the 0.9 translate-train runs
    main = table_after(md, "## Main table")
    assert "xnli@tta" not in main[0] and main[0]["xnli"].startswith("45.5 ±")
    gains = list(csv.DictReader(open(paths["gains_csv"])))
    assert {g["target"] for g in gains} == {"xnli", "mean"}
    small = {g["intermediate"]: float(g["gain"]) for g in gains if g["model"] == SMALL["name"] and g["target"] == "xnli"}
    assert small == pytest.approx({"mnli": 0.04, "mnli+mlm": 0.05, "mnli_tt": 0.02})
    results_csv = Path(paths["results_csv"]).read_text()
    assert "xnli@tta" not in results_csv and "0.9" not in results_csv

    # the arms section: each arm vs English-only mnli, at both sizes, with CIs
    assert "## Alternative arms: MLM co-training, translated data, translate-train" in md
    rows = table_after(md, "### Intermediate arms vs English-only intermediate training")
    got = {(r["model"], r["arm"]): (r["compared with"], r["xnli"]) for r in rows}
    assert got[(SMALL["name"], "mnli+mlm")][0] == "mnli" and got[(SMALL["name"], "mnli+mlm")][1].startswith("+1.0 [")
    assert got[(LARGE["name"], "mnli+mlm")][1].startswith("-1.0 [")
    assert got[(SMALL["name"], "mnli_tt")][1].startswith("-2.0 [") and got[(LARGE["name"], "mnli_tt")][1].startswith("+3.0 [")
    assert [r["model"] for r in rows] == [SMALL["name"]] * 2 + [LARGE["name"]] * 2  # by size
    tt = table_after(md, "### Translate-train targets (NOT zero-shot)")
    assert {(r["model"], r["intermediate"], r["target"], r["train languages"]) for r in tt} == {
        (m["name"], i, "xnli", "tta") for m in (SMALL, LARGE) for i in ("none", "mnli")}
    none_small = next(r for r in tt if r["model"] == SMALL["name"] and r["intermediate"] == "none")
    assert none_small["score"] == "90.0" and none_small["vs zero-shot"].startswith("+44.5 [")
    assert "**Not zero-shot:**" in md

    arm_rows = list(csv.DictReader(open(paths["arms_csv"])))
    mlm = [r for r in arm_rows if r["arm"] == "mnli+mlm" and r["target"] == "xnli"]
    assert {r["model"]: float(r["gain"]) for r in mlm} == pytest.approx({SMALL["name"]: 0.01, LARGE["name"]: -0.01})
    assert all(r["ci_method"] == "seeds" for r in mlm)
    ttr = [r for r in arm_rows if r["comparison"].startswith("translate-train")]
    assert len(ttr) == 4 and all("NOT zero-shot" in r["comparison"] for r in ttr)


def test_english_counterparts_of_the_arms():
    assert arms.english_counterpart("mnli+mlm") == "mnli"
    assert arms.english_counterpart("mnli+qqp+mlm") == "mnli+qqp"
    assert arms.english_counterpart("mnli_tt") == "mnli" and arms.english_counterpart("squad_v1_tta") == "squad_v1"
    assert arms.english_counterpart("mnli") is None and arms.english_counterpart("mnli+qqp") is None
    assert arms.english_counterpart("none") is None


def test_no_arms_no_section(tmp_path):
    root = tmp_path / "r"
    for inter in (None, "mnli"):
        write_results(root / SMALL["name"] / (inter or "none") / "xnli" / "seed1" / "results.json",
                      make_result(SMALL, inter, "xnli", 1, BASE))
    paths = build_report(root, tmp_path / "out", published=None)
    assert "Alternative arms" not in Path(paths["report_md"]).read_text() and "arms_csv" not in paths
