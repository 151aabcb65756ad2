"""Learning-rate calibration (xstilts/study/calibrate.py, xstilts/run/overlay.py, mk/calibrate.mk): the default
grid per size, the choice on English dev (diverged rates excluded), the precedence preset < overlay < command
line with the source recorded, the refusals before any run, `make plan`'s price, and `make calibrate` -> overlay
-> `make grid CALIBRATION=...` on a tiny model and the fixture data (learning rate 3e-3 learns the fixture NLI in
60 steps; 0.5 collapses it to one class)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from conftest import HUB
from test_grid import dry_run_cells, make
from xstilts.errors import UsageError
from xstilts.run import layout
from xstilts.run.overlay import OVERLAY_FORMAT, resolve_learning_rate
from xstilts.run.results import read_results
from xstilts.run.presets import resolve_preset
from xstilts.study import calibrate as C
from xstilts.tasks import TASKS


# ----------------------------------------------------------------------------- the grid of rates
def _cal(models, tasks, **kw):
    return C.Calibration(models, ["none", "mnli"], tasks, [1], **kw)


def test_default_grid_leans_to_smaller_rates_for_larger_models():
    cal = _cal(["xlmr-base", "xlmr-large", "xlmr-xl"], ["xnli"])
    assert cal.candidates("xlmr-base", "xnli")[0] == [1e-5, 2e-5, 3e-5]  # preset 2e-5: one step each way
    assert cal.candidates("xlmr-large", "xnli")[0] == [1e-5, 2e-5, 3e-5, 5e-5]  # preset 3e-5: two below, one above
    assert cal.candidates("xlmr-xl", "xnli")[0] == [7e-6, 1e-5, 2e-5, 3e-5]  # three below
    assert cal.candidates("xlmr-large", "mnli")[0] == [5e-6, 7e-6, 1e-5, 2e-5]
    assert C.around(4e-5, 1, 1) == [3e-5, 4e-5, 5e-5]  # a preset rate off the ladder stays in the grid
    rates, rule = _cal(["xlmr-xl"], ["xnli"], rates=[1e-5, 2e-5]).candidates("xlmr-xl", "xnli")
    assert rates == [1e-5, 2e-5] and rule.startswith("CAL_RATES")


def _cand(rate, devs, diverged=()):
    vals = list(devs)
    return {"learning_rate": rate, "dev": {str(i + 1): v for i, v in enumerate(vals)}, "diverged_seeds": list(diverged),
            "mean": sum(vals) / len(vals), "runs": {}}


def test_choice_is_the_best_english_dev_mean_without_diverged_seeds():
    rate, status = C.choose([_cand(1e-5, [0.70, 0.72]), _cand(2e-5, [0.74, 0.73]), _cand(3e-5, [0.80, 0.34], [2])])
    assert rate == 2e-5 and status == "chosen"  # 3e-5 has the best mean seed but diverged on seed 2
    assert C.choose([_cand(1e-5, [0.7]), _cand(2e-5, [0.7])])[0] == 1e-5  # a tie: the smaller rate
    rate, status = C.choose([_cand(1e-5, [0.6]), _cand(2e-5, [0.7])])
    assert rate == 2e-5 and "largest rate of the grid" in status  # at the edge: flagged
    assert C.choose([_cand(1e-5, [0.3], [1]), _cand(2e-5, [0.3], [1])]) == (None, C.NO_RATE)


# ----------------------------------------------------------------------------- preset < overlay < command line
def _overlay(tmp_path, rate=2e-5):
    entry = {"learning_rate": rate, "status": "chosen", "metric": "accuracy", "candidates": [
        {"learning_rate": 1e-5, "mean": 0.7, "diverged_seeds": []}, {"learning_rate": rate, "mean": 0.8, "diverged_seeds": []}]}
    data = {"format": OVERLAY_FORMAT, "created": "2026-01-01T00:00:00+00:00", "provenance": {"git_commit": "abc"},
            "seeds": [1, 2], "schedule": {"flags": "--max_steps 10"}, "selection": {"rule": "best"},
            "models": {"xlmr-base": {"path_or_id": "/models/base-dir"}},
            "phase2": {"xlmr-base": {"mnli": dict(entry, learning_rate=7e-6)}},
            "target": {"xlmr-base": {"none": {"xnli": entry}, "mnli": {}}}}
    path = tmp_path / "overlay.json"
    path.write_text(json.dumps(data))
    return path


def _resolve(path, given=(), missing="refuse", **where):
    ta = SimpleNamespace(learning_rate=1e-5)  # the preset's (xtreme xnli on xlmr-base is 2e-5; any value here)
    ka = SimpleNamespace(calibration=str(path) if path else None, calibration_missing=missing)
    preset = {"name": "xtreme", "values": {"learning_rate": 1e-5}}
    args = dict(phase="target", model_name="xlmr-base", path_or_id="FacebookAI/xlm-roberta-base", task="xnli",
                arm="none")
    args.update(where)
    return ta.learning_rate, resolve_learning_rate(ta, ka, set(given), preset, **args), ta


def test_precedence_and_recorded_source(tmp_path):
    path = _overlay(tmp_path)
    _, src, ta = _resolve(None)
    assert ta.learning_rate == 1e-5 and src == {"kind": "preset", "file": "configs/presets/xtreme.json"}
    _, src, ta = _resolve(path)
    assert ta.learning_rate == 2e-5 and src["kind"] == "calibration" and src["file"] == str(path)
    cal = src["calibration"]
    assert cal["entry"] == "target.xlmr-base.none.xnli" and cal["grid"] == [1e-5, 2e-5] and cal["seeds"] == [1, 2]
    assert cal["commit"] == "abc" and cal["schedule"] == {"flags": "--max_steps 10"} and len(cal["sha256"]) == 64
    _, src, ta = _resolve(path, given={"learning_rate"})
    assert ta.learning_rate == 1e-5 and src["kind"] == "command_line"  # the command line wins
    _, src, ta = _resolve(path, phase="phase2", task="mnli", arm=None)
    assert ta.learning_rate == 7e-6 and src["calibration"]["entry"] == "phase2.xlmr-base.mnli"
    # a model filed under another name (MODEL_DIR_<name>): found by its path
    _, src, ta = _resolve(path, model_name="base-dir", path_or_id="/models/base-dir")
    assert ta.learning_rate == 2e-5
    # an arm the overlay lacks: refused before any work, or the preset's rate, recorded loudly
    with pytest.raises(UsageError, match="no learning rate for target.xlmr-base.mnli.xnli.*CALIBRATION_MISSING"):
        _resolve(path, arm="mnli")
    _, src, ta = _resolve(path, arm="mnli", missing="preset")
    assert ta.learning_rate == 1e-5 and src["kind"] == "preset"
    assert src["calibration_missing"]["entry"] == "target.xlmr-base.mnli.xnli"
    with pytest.raises(UsageError, match="not a calibration overlay"):
        (tmp_path / "bad.json").write_text("{}")
        _resolve(tmp_path / "bad.json")


def test_a_new_overlay_never_silently_replaces_another(tmp_path):
    out = tmp_path / "cal" / "overlay.json"
    first = {"format": OVERLAY_FORMAT, "created": "2026-01-01T00:00:00+00:00", "provenance": {"git_commit": "a"},
             "target": {"m": {"none": {"xnli": {"learning_rate": 2e-5}}}}}
    C.write_overlay(first, out)
    written = out.read_bytes()
    # the same choices written again later: the file results already name (and hash) stays as it is
    note = C.write_overlay(dict(first, created="2026-02-02T00:00:00+00:00", provenance={"git_commit": "b"}), out)
    assert out.read_bytes() == written and "unchanged" in note
    # other choices: the previous overlay is kept beside the new one
    second = dict(first, created="2026-03-03T00:00:00+00:00", target={"m": {"none": {"xnli": {"learning_rate": 1e-5}}}})
    note = C.write_overlay(second, out)
    kept = tmp_path / "cal" / "overlay.superseded-2026-01-01T000000+0000.json"
    assert kept.read_bytes() == written and str(kept) in note
    assert json.loads(out.read_text())["target"]["m"]["none"]["xnli"]["learning_rate"] == 1e-5


# ----------------------------------------------------------------------------- make: refusals and the plan
def test_bad_calibration_settings_are_refused_before_any_run(tmp_path):
    base = ["calibrate", "MODELS=xlmr-base", "INTERMEDIATE=none", "TARGETS=xnli", f"RESULTS={tmp_path}/results"]
    for extra, message in ((f"CAL_DIR={tmp_path}/results/cal", "overlaps RESULTS"),
                           ("CAL_SCHEDULE=--learning_rate 1e-5", "unknown CAL_SCHEDULE flag '--learning_rate'"),
                           ("TRAIN_ARGS=--learning_rate 1e-5", "TRAIN_ARGS sets --learning_rate"),
                           ("CAL_RATES=1e-5 fast", "'fast' is not a number"),
                           ("TARGETS=xnli nope", "unknown target task 'nope'")):
        cal_dir = [] if extra.startswith("CAL_DIR") else [f"CAL_DIR={tmp_path}/cal"]
        proc = make(*base, *cal_dir, extra, check=False)
        assert proc.returncode != 0 and message in proc.stderr, (extra, proc.stderr[-800:])
        assert "run_" not in proc.stdout
    assert not (tmp_path / "cal").exists()


def test_make_plan_prices_the_calibration(tmp_path):
    out = make("plan", "MODELS=xlmr-base xlmr-large", "INTERMEDIATE=none mnli", "TARGETS=xnli tatoeba",
               "CAL_SEEDS=1 2", "CAL_SCHEDULE=--max_steps 1000", f"RESULTS={tmp_path}/r", f"CAL_DIR={tmp_path}/c").stdout
    cal = out.split("Calibration (make calibrate")[1]
    assert "xlmr-large  phase 2 mnli: rates 5e-06 7e-06 1e-05 2e-05 x 2 seed(s)" in cal
    assert "xlmr-base  after mnli -> xnli: rates 1e-05 2e-05 3e-05 x 2 seed(s)" in cal
    assert "the preset's with --max_steps 1000" in cal and "1,000 steps" in cal
    assert "not calibrated (retrieval, no training): tatoeba" in cal
    # 2 seeds x (xlmr-base: 3 rates x (phase 2 + 2 arms x xnli) + xlmr-large: 4 rates x 3) = 2 x (9 + 12)
    assert "Calibration total: 42 run(s)" in cal and "GPU-h" in cal
    # a setting only a calibration refuses (a fixed rate in TRAIN_ARGS) leaves make plan working, and says why
    out = make("plan", "MODELS=xlmr-base", "INTERMEDIATE=none", "TARGETS=xnli", "TRAIN_ARGS=--learning_rate 1e-5",
               f"RESULTS={tmp_path}/r", f"CAL_DIR={tmp_path}/c").stdout
    assert "results.json" in out and "not priced with these settings: TRAIN_ARGS sets --learning_rate" in out


# ----------------------------------------------------------------------------- make calibrate -> make grid
@pytest.fixture(scope="module")
def calibrated(tiny, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("calibrate")
    common = ["MODELS=tiny-2l-h64", f"MODEL_DIR_tiny-2l-h64={tiny}", "PRESET=tiny", f"DATA_ARGS=--data_root {HUB}",
              f"RESULTS={tmp}/results", f"CKPTS={tmp}/ckpts", f"CAL_DIR={tmp}/cal"]
    cal_args = [*common, "INTERMEDIATE=none mnli", "TARGETS=xnli tatoeba", "CAL_RATES=3e-3 0.5",
                "CAL_SCHEDULE=--max_steps 60 --eval_steps_or_epoch 60", "TRAIN_ARGS=--disable_tqdm true"]
    first = make("-j2", "calibrate", *cal_args, timeout=600)
    return tmp, common, cal_args, first


def test_make_calibrate_writes_the_overlay_with_its_provenance(calibrated):
    tmp, _, cal_args, first = calibrated
    overlay = json.loads((tmp / "cal" / "overlay.json").read_text())
    assert "from the pretrained model  xnli: 0.003" in first.stdout
    assert overlay["format"] == OVERLAY_FORMAT and overlay["seeds"] == [1] and overlay["provenance"]["git_commit"]
    assert overlay["schedule"]["flags"] == "--max_steps 60 --eval_steps_or_epoch 60" and overlay["created"]
    assert "English dev" in overlay["selection"]["rule"] and overlay["targets_not_calibrated"] == {
        "tatoeba": "retrieval: trains nothing"}
    p2 = overlay["phase2"]["tiny-2l-h64"]["mnli"]
    assert p2["learning_rate"] == 3e-3 and p2["metric"] == "accuracy" and p2["preset_learning_rate"] == 1e-3
    assert [c["learning_rate"] for c in p2["candidates"]] == [3e-3, 0.5] and p2["schedule_in_force"]["max_steps"] == 60
    collapsed = p2["candidates"][1]
    assert collapsed["diverged_seeds"] == [1] and collapsed["dev"]["1"] == pytest.approx(1 / 3)
    for arm in ("none", "mnli"):
        e = overlay["target"]["tiny-2l-h64"][arm]["xnli"]
        assert e["learning_rate"] == 3e-3 and e["candidates"][0]["mean"] > 1 / 3 + 0.02, (arm, e)
    enc = overlay["target"]["tiny-2l-h64"]["mnli"]["xnli"]["init"]
    assert enc["phase2_learning_rate"] == 3e-3 and enc["checkpoint"] == layout.calibration_phase2_dir(
        "tiny-2l-h64", "mnli", 3e-3, 1, f"{tmp}/cal")
    # the candidates are ordinary runs in the calibration tree, English dev only
    run = read_results(tmp / "cal" / "tiny-2l-h64" / "mnli-lr0.003" / "xnli" / "lr0.5" / "seed1" / "results.json")
    assert run["eval_split"] == "validation" and list(run["per_language"]) == ["en"]
    assert run["intermediate_checkpoint"] == enc["checkpoint"] and run["hyperparameters"]["learning_rate"] == 0.5
    assert not (tmp / "results").exists()  # nothing in the study's tree
    # re-running trains nothing (every run is finished) and chooses the same rates
    again = make("calibrate", *cal_args)
    assert dry_run_cells(again.stdout) == []
    assert json.loads((tmp / "cal" / "overlay.json").read_text()) == overlay  # the same file, kept as written
    assert "unchanged" in again.stdout


def test_grid_uses_the_overlay_and_records_the_source(calibrated):
    tmp, common, _, _ = calibrated
    path = f"{tmp}/cal/overlay.json"
    grid = [*common, "INTERMEDIATE=none mnli", "TARGETS=xnli", "SEEDS=1", f"CALIBRATION={path}",
            "TRAIN_ARGS=--max_steps 4 --eval_steps_or_epoch 4 --disable_tqdm true", "EVAL_ARGS=--languages de"]
    make("-j2", "grid", *grid)
    meta = json.loads((tmp / "ckpts" / "tiny-2l-h64" / "mnli" / "xstilts_meta.json").read_text())
    assert meta["hyperparameters"]["learning_rate"] == 3e-3
    assert meta["hyperparameters"]["learning_rate_source"]["calibration"]["entry"] == "phase2.tiny-2l-h64.mnli"
    for arm in ("none", "mnli"):
        r = read_results(tmp / "results" / "tiny-2l-h64" / arm / "xnli" / "seed1" / "results.json")
        src = r["hyperparameters"]["learning_rate_source"]
        assert r["hyperparameters"]["learning_rate"] == 3e-3 and src["kind"] == "calibration"
        assert src["file"] == path and src["calibration"]["entry"] == f"target.tiny-2l-h64.{arm}.xnli"
        assert "learning_rate_source" not in r["run_settings"]["hyperparameters"]  # provenance, not identity
    # an arm the overlay has no rate for: refused before any run (or the preset's rate, CALIBRATION_MISSING=preset)
    other = [g if not g.startswith("INTERMEDIATE=") else "INTERMEDIATE=none qqp" for g in grid]
    proc = make("grid", *other, check=False)
    assert proc.returncode != 0 and "no learning rate for phase2.tiny-2l-h64.qqp, target.tiny-2l-h64.qqp.xnli" \
        in proc.stderr
    assert not (tmp / "ckpts" / "tiny-2l-h64" / "qqp").exists()
    dry = make("-n", "grid", *other, "CALIBRATION_MISSING=preset").stdout
    assert f"--calibration {path} --calibration_missing preset" in dry


def test_the_preset_rate_of_an_arm_is_its_english_tasks():
    """make demo-arms failed in its calibration: 'preset tiny has no settings for task synth_nli_tt'. A translated
    arm trains with its English task's preset entry, and a task + auxiliary objective (synth_nli+synth_mlm) with
    the task's, as run_intermediate.py resolves them (xstilts.run.args.run_preset_entry)."""
    from xstilts.study.calibrate import preset_rate

    for preset, task in (("tiny", "synth_nli"), ("phang2020", "mnli"), ("xtreme", "squad_v1")):
        rate = preset_rate(preset, task, "")
        assert rate is not None
        for arm in (f"{task}_tt", f"{task}_tta"):
            if arm in TASKS:
                assert preset_rate(preset, arm, "") == rate, arm
    assert preset_rate("tiny", "synth_nli+synth_mlm", "") == preset_rate("tiny", "synth_nli", "")
    assert preset_rate("phang2020", "mnli+mlm", "") == preset_rate("phang2020", "mnli", "")
    assert preset_rate("phang2020", "mnli+qqp", "") == resolve_preset("phang2020", None, "").values["learning_rate"]
