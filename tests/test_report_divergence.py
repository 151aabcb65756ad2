"""The report's divergence accounting and learning-rate table, on results that carry the records of issue 20
(``divergence``, ``replaces``, ``hyperparameters.learning_rate_source``), constructed here as the training side
writes them."""

import json
from pathlib import Path

import numpy as np
import pytest

from test_report import LARGE, SMALL, make_result, table_after
from xstilts.run.results import ResultsSchemaError, write_results
from xstilts.study import divergence, power
from xstilts.study.report import build_report, collect, group_results

LANGS = {"en": 0.10, "de": 0.0, "ar": -0.10}  # offsets from a run's level
# as xstilts.run.overlay.calibration_record writes it (branch t20a of issue 20)
CALIBRATION = {"kind": "calibration", "file": "calibration/overlay.json",
               "calibration": {"entry": "target.tiny-2l-h64.none.xnli", "created": "2026-12-01T10:00:00+00:00",
                               "commit": "0123456789abcdef", "sha256": "ab" * 32, "metric": "accuracy",
                               "selection": "the highest mean ...", "seeds": [1],
                               "schedule": "max_steps 2000 (shortened)", "grid": [1e-5, 2e-5, 3e-5],
                               "candidates": [{"learning_rate": 1e-5, "mean": 0.6, "diverged_seeds": []}],
                               "init": "the pretrained model"}}


def ok_record():
    return {"diverged": False, "reason": None, "rule": RULE, "metric": "accuracy", "dev_value": 0.8,
            "chance": 1 / 3, "margin": 0.05, "first_non_finite_step": None, "evidence": {}}


RULE = "English dev accuracy at selection <= chance 0.333 + margin 0.05, or a non-finite training loss"


def result(model, inter, seed, level, *, lr=2e-5, source=None, rec=None, replaces=None, meta_rec=None):
    d = make_result(model, inter, "xnli", seed, {l: level + o for l, o in LANGS.items()})
    d["hyperparameters"] = {"learning_rate": lr, "learning_rate_source": source or CALIBRATION}
    d["divergence"] = rec or ok_record()
    if replaces:
        d["replaces"] = replaces
    if inter:
        d["intermediate_meta"] = {"task": inter, "hyperparameters": {"learning_rate": 1e-5,
                                                                     "learning_rate_source": source or CALIBRATION},
                                  "divergence": meta_rec or ok_record()}
    return d


def write_tree(root: Path) -> Path:
    def put(model, inter, seed, d):
        write_results(root / model["name"] / (inter or "none") / "xnli" / f"seed{seed}" / "results.json", d)

    collapsed = {"diverged": True, "reason": "chance_dev", "rule": RULE, "metric": "accuracy", "dev_value": 0.34,
                 "chance": 1 / 3, "margin": 0.05, "first_non_finite_step": None,
                 "evidence": {"dev_curve": [0.34, 0.34]}}
    # small: baseline seeds 1 3 4 kept (seed 2 collapsed to chance, replaced by seed 4); mnli seeds 1 2 3
    for seed, level in ((1, 0.60), (2, 0.3333), (3, 0.62)):
        put(SMALL, None, seed, result(SMALL, None, seed, level, rec=collapsed if seed == 2 else None))
    # the replacement: seed 2 + 1000 in seed2-retry1 (xstilts.run.layout.replacement_seed / replacement_dir)
    write_results(root / SMALL["name"] / "none" / "xnli" / "seed2-retry1" / "results.json",
                  result(SMALL, None, 1002, 0.61, replaces={"seed": 2, "path": "results/tiny-2l-h64/none/xnli/"
                                                                               "seed2/results.json",
                                                            "reason": "chance_dev"}))
    for seed, level in ((1, 0.65), (2, 0.66), (3, 0.67)):
        put(SMALL, "mnli", seed, result(SMALL, "mnli", seed, level))
    # large: the mnli encoder diverged in phase 2 (NaN loss): every mnli cell is out; the baseline has no record
    nan = {"diverged": True, "reason": "non_finite_loss", "rule": RULE, "metric": "accuracy", "dev_value": None,
           "chance": 1 / 3, "margin": 0.05, "first_non_finite_step": 120, "evidence": {"loss": "nan"}}
    for seed, level in ((1, 0.70), (2, 0.72)):
        d = result(LARGE, None, seed, level, source={"kind": "preset", "file": "configs/presets/xtreme.json"})
        del d["divergence"]
        put(LARGE, None, seed, d)
        put(LARGE, "mnli", seed, result(LARGE, "mnli", seed, 0.33, meta_rec=nan))
    # a baseline run whose loss became NaN before any checkpoint was selected: null scores, kept as evidence
    d = result(LARGE, None, 3, 0.0, rec=dict(nan, first_non_finite_step=7), source={
        "kind": "preset", "file": "configs/presets/xtreme.json",
        "calibration_missing": {"file": "calibration/overlay.json", "entry": "target.tiny-4l-h128.none.xnli",
                                "note": "no entry"}})
    d["per_language"] = {lang: {"accuracy": None} for lang in LANGS}
    d["average"] = {"accuracy": None}
    put(LARGE, None, 3, d)
    return root


@pytest.fixture()
def report(tmp_path):
    paths = build_report(write_tree(tmp_path / "r"), tmp_path / "out", published=None)
    return paths, Path(paths["report_md"]).read_text(encoding="utf-8")


def test_diverged_runs_are_left_out_of_means_and_marked(report):
    paths, md = report
    M = divergence.MARK
    main = {(r["model"], r["intermediate"]): r["xnli"] for r in table_after(md, "## Main table")}
    kept = np.array([0.60, 0.62, 0.61])
    assert main[("tiny-2l-h64", "none")] == f"{100 * kept.mean():.1f} ±{100 * kept.std(ddof=1):.1f} (n=3){M}"
    assert main[("tiny-2l-h64", "mnli")] == "66.0 ±1.0 (n=3)"  # nothing left out: no mark
    assert ("tiny-4l-h128", "mnli") not in main  # every run diverged: no number at all
    assert main[("tiny-4l-h128", "none")] == f"71.0 ±1.4 (n=2){M}"  # the null-score NaN run is left out
    gains = {(r["model"], r["intermediate"]): r for r in table_after(md, "## Gain from intermediate training")}
    assert gains[("tiny-2l-h64", "mnli")]["xnli"].startswith("+5.0 [") and gains[("tiny-2l-h64", "mnli")]["xnli"].endswith(M)
    assert f"{M} diverged run(s) left out of this number" in md


def test_diverged_runs_section_lists_evidence_and_replacements(report):
    _, md = report
    rows = table_after(md, "## Diverged runs")
    assert [(r["model"], r["intermediate"], r["seed"], r["reason"]) for r in rows] == [
        ("tiny-2l-h64", "none", "2", "chance_dev"), ("tiny-4l-h128", "none", "3", "non_finite_loss"),
        ("tiny-4l-h128", "mnli", "1", "non_finite_loss"), ("tiny-4l-h128", "mnli", "2", "non_finite_loss")]
    assert rows[0]["evidence"] == "English dev accuracy 34.0 vs chance 33.3 + margin 5.0"
    assert rows[0]["replaced by"] == "seed 1002" and rows[2]["replaced by"] == "none"
    assert rows[1]["evidence"] == "non-finite loss at step 7"
    assert rows[2]["evidence"] == "phase-2 encoder (mnli) diverged; non-finite loss at step 120"
    assert "4 diverged run(s) are left out of every mean" in md and "1 of them have a replacement run" in md
    assert f"- Rule: {RULE}" in md and "- Per size: tiny-2l-h64 1, tiny-4l-h128 3." in md
    assert "2 of 12 trained result(s) carry no divergence record" in md
    # the large size lost its whole mnli arm: the power table says what its gain figures assume
    assert ("No intermediate arm with a kept run (tiny-4l-h128 / xnli): the gain figures assume an intermediate arm "
            "with as many seeds as `none`.") in md


def test_results_csv_keeps_diverged_runs_marked(report):
    import csv

    paths, _ = report
    with open(paths["results_csv"], newline="") as f:
        avg = {(r["model"], r["intermediate"], r["seed"]): r["diverged"] for r in csv.DictReader(f)
               if r["language"] == "avg"}
    assert len(avg) == 12  # every result, diverged ones included (nothing computed is lost)
    assert avg[("tiny-2l-h64", "none", "2")] == "true" and avg[("tiny-2l-h64", "none", "1002")] == "false"
    assert avg[("tiny-4l-h128", "none", "3")] == "true"
    assert avg[("tiny-4l-h128", "mnli", "1")] == "true"  # a cell whose every run diverged


def test_power_uses_kept_seeds_only(tmp_path):
    groups = group_results(collect(write_tree(tmp_path / "r")))
    small = next(r for r in power.power_rows(groups, 0.005) if r.model == "tiny-2l-h64")
    ss = np.var([0.60, 0.62, 0.61], ddof=0) * 3 + np.var([0.65, 0.66, 0.67], ddof=0) * 3
    assert small.seeds == {"none": 3, "mnli": 3} and small.excluded == 1
    assert small.sd == pytest.approx(np.sqrt(ss / 4), abs=1e-12)  # the collapsed seed would give SD ~ 0.13


def test_learning_rate_table(report):
    _, md = report
    rows = {(r["intermediate"], r["phase"], r["task"]): r for r in table_after(md, "## Learning rates")}
    cal = "(a; of 1e-05 2e-05 3e-05 on English dev accuracy)"
    assert rows[("none", "3 (target)", "xnli")]["tiny-2l-h64 (398K)"] == f"2e-05 {cal}"
    assert rows[("mnli", "2 (intermediate)", "mnli")]["tiny-2l-h64 (398K)"] == f"1e-05 {cal}"
    assert rows[("mnli", "3 (target)", "xnli")]["tiny-4l-h128 (1.6M)"] == f"2e-05 {cal}"  # diverged runs used a rate
    assert ("- (a) calibration `calibration/overlay.json` (seeds 1; schedule max_steps 2000 (shortened); "
            "date 2026-12-01T10:00:00+00:00; commit 0123456789)\n") in md
    assert "- (b) preset `configs/presets/xtreme.json`\n" in md
    # CALIBRATION_MISSING=preset: the preset's rate, said to be uncalibrated, beside the calibrated size
    assert rows[("none", "3 (target)", "xnli")]["tiny-4l-h128 (1.6M)"] == "2e-05 (b seed 1, 2); 2e-05 (c seed 3)"
    assert ("- (c) preset `configs/presets/xtreme.json` - NOT calibrated: the overlay `calibration/overlay.json` has "
            "no rate for target.tiny-4l-h128.none.xnli (CALIBRATION_MISSING=preset)") in md
    assert ("Calibration overlay given but without a rate for (the preset's rate was used, CALIBRATION_MISSING=preset; "
            "calibrated and uncalibrated arms are compared): tiny-4l-h128 / none / phase 3 / xnli.") in md
    assert "One rate from a preset for every size" not in md  # the small size is calibrated
    # seed 3 (the other source) diverged: the mean uses one source only, and the note says so
    assert ("tiny-4l-h128 / none / xnli: seeds used different rates or sources; only the runs of one of them are "
            "kept (the others diverged).") in md and "their mean mixes them" not in md


def test_rates_without_a_recorded_source_are_inferred_and_flagged(tmp_path):
    root = tmp_path / "r"
    for model in (SMALL, LARGE):
        for inter in (None, "mnli"):
            d = make_result(model, inter, "xnli", 1, {"en": 0.5, "de": 0.4})
            d["preset"] = {"name": "tiny", "values": {"learning_rate": 1e-3}, "cli_overrides": []}
            write_results(root / model["name"] / (inter or "none") / "xnli" / "seed1" / "results.json", d)
    md = Path(build_report(root, tmp_path / "out", published=None)["report_md"]).read_text(encoding="utf-8")
    assert "- (a) preset tiny (inferred: no learning_rate_source recorded)" in md
    assert ("One rate from a preset for every size, not calibrated per size (`make calibrate`, docs/study.md): "
            "mnli / phase 3 / xnli (0.001); none / phase 3 / xnli (0.001).") in md
    assert "No run is marked diverged" in md and "4 of 4 trained result(s) carry no divergence record" in md


def test_a_malformed_divergence_record_is_refused(tmp_path):
    d = result(SMALL, None, 1, 0.6)
    d["divergence"] = {"diverged": "yes"}
    write_results(tmp_path / "r" / "tiny-2l-h64" / "none" / "xnli" / "seed1" / "results.json", d)
    with pytest.raises(ResultsSchemaError, match="divergence must be an object with a boolean 'diverged'"):
        build_report(tmp_path / "r", tmp_path / "out", published=None)


def test_a_tree_where_every_run_diverged_is_reported_not_refused(tmp_path):
    """All runs collapsed (e.g. a too-large rate on every seed): the report lists them instead of failing with
    'no results' (the runs exist; hiding them would lose computed evidence)."""
    collapsed = {"diverged": True, "reason": "chance_dev", "rule": RULE, "metric": "accuracy", "dev_value": 0.3333,
                 "chance": 1 / 3, "margin": 0.02, "first_non_finite_step": None, "evidence": {}}
    for seed in (1, 2):
        write_results(tmp_path / "r" / "tiny-2l-h64" / "none" / "xnli" / f"seed{seed}" / "results.json",
                      result(SMALL, None, seed, 0.3333, rec=collapsed))
    paths = build_report(tmp_path / "r", tmp_path / "out", published=None)
    md = Path(paths["report_md"]).read_text(encoding="utf-8")
    assert "Every one of the 2 target / retrieval run(s) is marked diverged: there is no number to report." in md
    assert [r["seed"] for r in table_after(md, "## Diverged runs")] == ["1", "2"]
    assert "## Learning rates" in md
    assert Path(paths["results_csv"]).read_text().count(",avg,") == 2


def test_retrieval_results_are_not_called_unchecked():
    """A retrieval result trains nothing after phase 2 (its phase-2 encoder's record applies, through
    intermediate_meta): it is not a run "written before the check existed". The demo's report said 6 of its 24
    results were, all of them synth_tatoeba."""
    target = {"kind": "target", "target_task": "xnli", "divergence": ok_record()}
    retrieval = {"kind": "retrieval", "target_task": "tatoeba", "intermediate_meta": {"divergence": ok_record()}}
    old = {"kind": "target", "target_task": "xnli"}  # no record: written before the check
    md = divergence.section([target, retrieval, retrieval], [])
    assert "carry no divergence record" not in md
    md = divergence.section([target, retrieval, old], [])
    assert "1 of 2 trained result(s) carry no divergence record" in md
