"""Diverged runs (xstilts/training/divergence.py): the chance level of each format, the rule and its record, a
non-finite loss that stops training (phase 3: a result with null scores; phase 2: exit 3 and an unfinished
record), a collapse to chance, and `make grid DIVERGED_RETRIES=N`: a diverged cell re-run with the next seed
(seed + 1000) in its own folder, `replaces` recorded, the diverged result kept.

A tiny model on the fixture data diverges on demand: learning rate 1e10 makes the loss NaN within a few steps;
0.5 collapses it to one class (English dev accuracy = the majority-class rate).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from datasets import Dataset

from conftest import HUB, ROOT, run_script
from xstilts.formats import get_format
from xstilts.run import layout
from xstilts.run.results import read_results
from xstilts.tasks import TASKS
from xstilts.training import divergence as D

CONTRACT_KEYS = {"diverged", "reason", "rule", "metric", "dev_value", "chance", "margin", "first_non_finite_step",
                 "evidence"}


# ----------------------------------------------------------------------------- chance levels
def test_chance_of_classification_is_the_majority_class_rate():
    task = TASKS["qqp"]  # unbalanced on purpose: 1 / number of labels (0.5) would miss a collapse to "0"
    ex = Dataset.from_dict({"text_a": ["a"] * 10, "text_b": ["b"] * 10, "label": [0] * 7 + [1] * 3, "lang": ["en"] * 10})
    chance, how = D.chance_level(task, get_format(task.format), ex)
    assert chance == pytest.approx(0.7) and "majority class" in how and "7 of 10" in how
    xnli = TASKS["xnli"]  # scored by the leaderboard scorer's code (class names)
    ex = Dataset.from_dict({"text_a": ["a"] * 6, "text_b": ["b"] * 6, "label": [0, 1, 2, 2, 2, 1], "lang": ["en"] * 6})
    assert D.chance_level(xnli, get_format(xnli.format), ex)[0] == pytest.approx(0.5)


def test_chance_of_tagging_qa_and_dual_encoder():
    udpos, panx = TASKS["udpos"], TASKS["panx"]
    tags = Dataset.from_dict({"tokens": [["a", "b", "c"], ["d", "e"]], "tags": [["NOUN", "NOUN", "VERB"], ["NOUN", "DET"]],
                              "lang": ["en", "en"]})
    fmt = get_format("token_tagging")
    chance, how = D.chance_level(udpos, fmt, tags)  # every token NOUN, scored as the leaderboard scores UD-POS
    assert chance == fmt.score(udpos, [["NOUN"] * 3, ["NOUN"] * 2], list(tags["tags"]))["f1"]
    assert "'NOUN'" in how and "3 of 5" in how
    ner = Dataset.from_dict({"tokens": [["a", "b", "c"]], "tags": [["B-PER", "I-PER", "O"]], "lang": ["en"]})
    assert D.chance_level(panx, get_format("token_tagging"), ner)[0] == 0.0  # all-O: no entity found

    def qa(answers):
        n = len(answers)
        return Dataset.from_dict({"id": [str(i) for i in range(n)], "title": [""] * n, "context": ["x y z"] * n,
                                  "question": ["q"] * n, "answer_text": answers,
                                  "answer_start": [[0] * len(a) for a in answers], "lang": ["en"] * n})
    v1 = D.chance_level(TASKS["squad_v1"], get_format("span_qa"), qa([["x"], ["y"], ["z"]]))[0]
    v2 = D.chance_level(TASKS["squad_v2"], get_format("span_qa"), qa([["x"], [], [], ["z"]]))[0]
    assert v1 == 0.0 and v2 == pytest.approx(0.5)  # SQuAD 2.0: the unanswerable share

    n_q, n_cand = 50, 100
    pool = Dataset.from_dict({"role": ["query"] * n_q + ["candidate"] * n_cand,
                              "id": [f"q{i}" for i in range(n_q)] + [f"c{i}" for i in range(n_cand)],
                              "relevant": [[f"c{i}"] for i in range(n_q)] + [[]] * n_cand})
    chance, how = D.chance_level(TASKS["lareqa"], get_format("dual_encoder"), pool)
    expected = sum(1 / r for r in range(1, 21)) / n_cand  # one relevant among n: E[AP@20] = H_20 / n
    assert chance == pytest.approx(expected, rel=0.35) and "random ranking" in how  # 500 draws: se ~ 15 %


# ----------------------------------------------------------------------------- the rule
def _selection(values, steps=None):
    steps = steps or [10 * (i + 1) for i in range(len(values))]
    return {"best_metric": max(values) if values else None, "best_checkpoint": f"checkpoint-{steps[0]}" if values
            else None, "global_step": steps[-1] if steps else 3,
            "evaluations": [{"step": s, "eval_accuracy": v} for s, v in zip(steps, values)]}


def test_rule_margin_and_record_format():
    ok = D.assess("accuracy", _selection([0.33, 0.40]), None, 1 / 3, "majority", n_dev=90)
    assert set(ok) == CONTRACT_KEYS and not ok["diverged"] and ok["reason"] is None
    assert ok["dev_value"] == 0.40 and ok["margin"] == D.MARGIN == 0.02 and "chance 0.3333 + margin 0.02" in ok["rule"]
    edge = D.assess("accuracy", _selection([1 / 3 + D.MARGIN]), None, 1 / 3, "majority")
    assert edge["diverged"] and edge["reason"] == D.CHANCE_DEV  # at most chance + margin: diverged
    just_above = D.assess("accuracy", _selection([1 / 3 + D.MARGIN + 1e-6]), None, 1 / 3, "majority")
    assert not just_above["diverged"]
    nan = D.assess("accuracy", _selection([0.6]), {"first_non_finite_step": 7, "loss": "nan"}, 1 / 3, "majority")
    assert nan["diverged"] and nan["reason"] == D.NON_FINITE_LOSS and nan["first_non_finite_step"] == 7
    assert nan["evidence"]["non_finite_loss"] == "nan" and nan["evidence"]["checkpoint_selected_before_it"]
    unknown = D.assess("accuracy", _selection([0.2]), None, None, "no rule")
    assert not unknown["diverged"] and "no chance level" in unknown["rule"]
    json.dumps(nan, allow_nan=False)  # strict JSON: non-finite values are stored as strings


def test_final_and_step_rules_judge_the_model_evaluated_after_training():
    """Under selection final / step:N (xstilts.training.selection) nothing is chosen on dev: the divergence rule
    judges the final model's English dev value (final_dev), and a non-finite loss leaves no model to keep."""
    final = {"rule": "final", "best_checkpoint": None, "best_metric": None, "global_step": 40, "evaluations": [],
             "final_dev": {"accuracy": 0.61, "loss": 0.9}}
    ok = D.assess("accuracy", final, None, 1 / 3, "majority", n_dev=90)
    assert ok["dev_value"] == 0.61 and not ok["diverged"]
    flat = D.assess("accuracy", dict(final, final_dev={"accuracy": 0.34}), None, 1 / 3, "majority")
    assert flat["diverged"] and flat["reason"] == D.CHANCE_DEV
    assert D.dev_at_selection(_selection([0.4, 0.5]), "accuracy") == 0.5  # best_dev: the best checkpoint's
    nan = {"first_non_finite_step": 7, "loss": "nan"}
    assert D.has_model(final, None) and not D.has_model(final, nan)
    assert not D.has_model(dict(final, rule="step:30"), nan)
    assert D.has_model(_selection([0.6]), nan)  # best_dev: the checkpoint selected before the NaN
    assert not D.has_model(dict(_selection([0.6]), best_checkpoint=None), nan)


def test_a_negative_margin_turns_the_chance_rule_off_but_not_the_nan_rule():
    flat = _selection([0.33])
    off = D.assess("accuracy", flat, None, 1 / 3, "majority", margin=-1)
    assert not off["diverged"] and off["margin"] == -1 and "chance rule turned off" in off["rule"]
    nan = D.assess("accuracy", flat, {"first_non_finite_step": 3, "loss": "nan"}, 1 / 3, "majority", margin=-1)
    assert nan["diverged"] and nan["reason"] == D.NON_FINITE_LOSS
    assert D.assess("accuracy", flat, None, 1 / 3, "majority", margin=0.05)["diverged"]


@pytest.mark.parametrize("value", ["1", "nan", "inf"])
def test_a_bad_divergence_margin_is_refused_before_any_work(tiny, tmp_path, value, capsys):
    rc = run_script("run_target", ["--model", str(tiny), "--task", "xnli", "--languages", "de", "--divergence_margin",
                                   value, "--output_dir", str(tmp_path / "x"), *BASE])
    assert rc == 2 and f"--divergence_margin {float(value)!r}" in capsys.readouterr().err
    assert not (tmp_path / "x" / "results.json").exists()


def test_needs_replacement_command(tmp_path):
    diverged, fine = tmp_path / "a.json", tmp_path / "b.json"
    diverged.write_text(json.dumps({"divergence": {"diverged": True}}))
    fine.write_text(json.dumps({"divergence": {"diverged": False}}))

    def rc(path):
        return subprocess.run([sys.executable, "-m", "xstilts.training.divergence", "needs-replacement", str(path)],
                              cwd=ROOT, capture_output=True).returncode
    assert (rc(diverged), rc(fine), rc(tmp_path / "absent.json")) == (0, 1, 1)


# ----------------------------------------------------------------------------- tiny runs that diverge
BASE = ["--preset", "tiny", "--data_root", str(HUB), "--disable_tqdm", "true"]


def test_nan_loss_stops_training_and_writes_the_diverged_result(tiny, tmp_path):
    out = tmp_path / "nan"
    rc = run_script("run_target", ["--model", str(tiny), "--task", "xnli", "--languages", "de", "--max_steps", "40",
                                   "--eval_steps_or_epoch", "20", "--learning_rate", "1e10", "--output_dir", str(out),
                                   *BASE])
    assert rc == 0
    r = read_results(out / "results.json")  # a valid result: the evidence is kept
    div = r["divergence"]
    assert set(div) == CONTRACT_KEYS and div["diverged"] and div["reason"] == "non_finite_loss"
    step = div["first_non_finite_step"]
    assert 1 <= step < 20 and r["selection"]["global_step"] == step  # stopped at once, long before max_steps
    assert r["selection"]["best_checkpoint"] is None and div["evidence"]["non_finite_loss"] in ("nan", "inf", "-inf")
    assert r["per_language"]["de"]["accuracy"] is None and r["average"]["accuracy"] is None  # no numbers from NaN weights
    assert r["hyperparameters"]["learning_rate_source"] == {"kind": "command_line", "file": None}
    # finished: the same command does not train again
    assert run_script("run_target", ["--model", str(tiny), "--task", "xnli", "--languages", "de", "--max_steps", "40",
                                     "--eval_steps_or_epoch", "20", "--learning_rate", "1e10", "--output_dir",
                                     str(out), *BASE]) == 0
    assert read_results(out / "results.json")["provenance"]["created"] == r["provenance"]["created"]


def test_final_rule_run_records_its_final_dev_as_the_value_judged_and_null_scores_after_nan(tiny, tmp_path):
    common = ["--model", str(tiny), "--task", "xnli", "--languages", "de", "--max_steps", "6", "--selection", "final",
              *BASE]
    rc = run_script("run_target", [*common, "--output_dir", str(tmp_path / "final")])
    assert rc == 0
    r = read_results(tmp_path / "final" / "results.json")
    assert r["selection"]["rule"] == "final" and r["divergence"]["dev_value"] == r["selection"]["final_dev"]["accuracy"]
    assert r["average"]["accuracy"] is not None
    rc = run_script("run_target", [*common, "--learning_rate", "1e10", "--output_dir", str(tmp_path / "nan")])
    assert rc == 0
    r = read_results(tmp_path / "nan" / "results.json")
    assert r["divergence"]["reason"] == "non_finite_loss" and "final_dev" not in r["selection"]
    assert r["average"]["accuracy"] is None  # the last model is the broken one: no numbers from NaN weights


def test_phase2_nan_before_selection_exits_3_with_its_record(tiny, tmp_path):
    out = tmp_path / "p2"
    rc = run_script("run_intermediate", ["--model", str(tiny), "--task", "mnli", "--max_steps", "40",
                                         "--eval_steps_or_epoch", "20", "--learning_rate", "1e10", "--output_dir",
                                         str(out), *BASE])
    assert rc == 3
    meta = json.loads((out / "xstilts_meta.json").read_text())
    assert meta["finished"] is False and meta["divergence"]["reason"] == "non_finite_loss"
    assert not list(out.glob("*.safetensors"))  # no encoder from broken weights


def test_collapse_to_chance_is_recorded(tiny, tmp_path):
    out = tmp_path / "collapse"
    assert run_script("run_target", ["--model", str(tiny), "--task", "xnli", "--languages", "de", "--max_steps", "8",
                                     "--eval_steps_or_epoch", "4", "--learning_rate", "0.5", "--output_dir", str(out),
                                     *BASE]) == 0
    r = read_results(out / "results.json")
    div = r["divergence"]
    assert div["diverged"] and div["reason"] == "chance_dev" and div["first_non_finite_step"] is None
    assert div["dev_value"] <= div["chance"] + div["margin"] and div["chance"] == pytest.approx(1 / 3)
    assert [e["step"] for e in div["evidence"]["dev_curve"]] == [4, 8] and div["evidence"]["n_dev"] > 0
    assert math.isfinite(r["average"]["accuracy"])  # a selected model: evaluated as usual, marked diverged


# ----------------------------------------------------------------------------- make grid DIVERGED_RETRIES
def test_grid_replaces_a_diverged_cell_with_the_next_seed(tiny, tmp_path):
    from test_grid import dry_run_cells, make

    res = tmp_path / "results"
    args = ["MODELS=tiny-2l-h64", f"MODEL_DIR_tiny-2l-h64={tiny}", "INTERMEDIATE=none", "TARGETS=xnli",
            "SEEDS=1", "PRESET=tiny", f"RESULTS={res}", f"CKPTS={tmp_path}/ckpts", f"DATA_ARGS=--data_root {HUB}",
            "TRAIN_ARGS=--max_steps 8 --eval_steps_or_epoch 4 --learning_rate 0.5 --disable_tqdm true",
            "EVAL_ARGS=--languages de"]
    assert not [c for c in dry_run_cells(make("-n", "grid", *args).stdout) if "retry" in c[1]]  # default: none
    dry = make("-n", "grid", "DIVERGED_RETRIES=1", *args[:3], "TARGETS=xnli tatoeba", *args[4:]).stdout
    assert "xnli/seed1-retry1" in dry and "tatoeba/seed1-retry" not in dry  # retrieval trains nothing
    make("grid", "DIVERGED_RETRIES=2", *args)
    cell = res / "tiny-2l-h64" / "none" / "xnli"
    first, retry1, retry2 = (read_results(p / "results.json") for p in
                             (cell / "seed1", cell / "seed1-retry1", cell / "seed1-retry2"))
    assert [r["seed"] for r in (first, retry1, retry2)] == [1, 1001, 2001]
    assert all(r["divergence"]["diverged"] for r in (first, retry1, retry2))  # 0.5 collapses every seed
    assert "replaces" not in first
    assert retry1["replaces"] == {"seed": 1, "path": layout.cell_file("tiny-2l-h64", "none", "xnli", 1, str(res)),
                                  "reason": "chance_dev"}
    assert retry2["replaces"]["seed"] == 1001 and retry2["replaces"]["path"].endswith("seed1-retry1/results.json")
    # nothing lost, nothing redone: a third attempt is not asked for, the cells are finished
    again = make("grid", "DIVERGED_RETRIES=2", *args)
    assert "run_target.py" not in again.stdout and "Nothing to be done" in again.stdout
    assert (cell / "seed1" / "results.json").exists() and len(list(res.rglob("results.json"))) == 3


def test_a_cell_that_did_not_diverge_gets_no_replacement(tmp_path):
    """The replacement rule runs the command only for a diverged result (checked here with stand-in results)."""
    from test_grid import make

    res = tmp_path / "results"
    cell = res / "xlmr-base" / "none" / "xnli" / "seed1"
    cell.mkdir(parents=True)
    (cell / "results.json").write_text(json.dumps({"divergence": {"diverged": False}}))
    out = make("grid", "MODELS=xlmr-base", "INTERMEDIATE=none", "TARGETS=xnli", "SEEDS=1", f"RESULTS={res}",
               "DIVERGED_RETRIES=1", "LAUNCH=false", "PY=" + sys.executable).stdout
    assert "needs-replacement" in out and not (res / "xlmr-base" / "none" / "xnli" / "seed1-retry1").exists()
