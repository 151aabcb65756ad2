"""Phase 2 -> phase 3 -> retrieval -> report on the tiny model, offline, as `make demo` runs them."""

import json

from conftest import HUB, run_script
from xstilts.study.report import build_report
from xstilts.run.results import read_results

LANGS = "en,de,zh"


def _phase3(tiny, out, *extra):
    return run_script("run_target", [
        "--model", str(tiny), "--task", "xnli", "--languages", LANGS, "--preset", "tiny", "--data_root", str(HUB),
        "--max_steps", "8", "--eval_steps_or_epoch", "4", "--disable_tqdm", "true", "--output_dir", str(out), *extra])


def test_pipeline_end_to_end(tiny, tmp_path):
    ckpt = tmp_path / "checkpoints" / "tiny" / "mnli"
    results = tmp_path / "results"
    assert run_script("run_intermediate", [
        "--model", str(tiny), "--task", "mnli", "--preset", "tiny", "--data_root", str(HUB), "--max_steps", "8",
        "--eval_steps_or_epoch", "4", "--disable_tqdm", "true", "--output_dir", str(ckpt)]) == 0

    base_xnli = results / "tiny" / "none" / "xnli" / "seed1"
    inter_xnli = results / "tiny" / "mnli" / "xnli" / "seed1"
    # 8 steps of a tiny model stay near chance: the chance rule would mark the runs diverged and the report would
    # leave them out of its tables (tests/test_divergence.py tests that); here the tables are what is tested
    keep = ["--divergence_margin", "-1"]
    assert _phase3(tiny, base_xnli, *keep) == 0
    assert _phase3(tiny, inter_xnli, "--intermediate_checkpoint", str(ckpt), *keep) == 0
    for sub, extra in (("none", []), ("mnli", ["--intermediate_checkpoint", str(ckpt)])):
        assert run_script("run_retrieval", [
            "--model", str(tiny), "--task", "tatoeba", "--languages", "de,ja,th", "--data_root", str(HUB),
            "--output_dir", str(results / "tiny" / sub / "tatoeba" / "seed1"), *extra]) == 0

    r = read_results(inter_xnli / "results.json")
    assert r["intermediate_task"] == "mnli" and r["target_task"] == "xnli"
    assert list(r["per_language"]) == ["en", "de", "zh"]
    assert all(0 <= m["accuracy"] <= 1 and m["n"] == 30 for m in r["per_language"].values())
    assert abs(r["average"]["accuracy"] - sum(m["accuracy"] for m in r["per_language"].values()) / 3) < 1e-12
    assert r["selection"]["split"] == "English dev" and r["selection"]["language"] == "en"
    assert r["selection"]["best_checkpoint"].startswith("checkpoint-")
    assert r["handoff"]["fresh_head_tensors"] and r["handoff"]["transferred_tensors"] > 0
    assert r["preset"]["name"] == "tiny" and "max_steps" in r["preset"]["cli_overrides"]
    assert r["hyperparameters"]["max_steps"] == 8 and r["hyperparameters"]["seed"] == 1
    assert r["model"]["n_params"] > 0 and r["provenance"]["versions"]["transformers"]
    assert r["timing"]["train_samples_per_second"] > 0 and r["timing"]["wall_seconds"] > 0
    assert r["intermediate_meta"]["task"] == "mnli"
    preds = (inter_xnli / "predictions" / "xnli" / "test-de.tsv").read_text().splitlines()
    assert len(preds) == 30 and set(preds) <= {"entailment", "neutral", "contradiction"}
    assert not (inter_xnli / "trainer").exists()

    t = read_results(results / "tiny" / "mnli" / "tatoeba" / "seed1" / "results.json")
    assert t["retrieval"]["layer"] == 1 and t["retrieval"]["pooling"] == "mean"
    assert set(t["retrieval"]["per_layer"]) == {"0", "1", "2"}
    assert t["per_language"] == t["retrieval"]["per_layer"]["1"]["per_language"]
    lines = (results / "tiny" / "mnli" / "tatoeba" / "seed1" / "predictions" / "tatoeba" / "test-ja.tsv").read_text().split()
    assert len(lines) == 40 and all(0 <= int(x) < 40 for x in lines)

    build_report(results, tmp_path / "report", title="t", note="tiny offline models on fixture data")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "tiny offline models on fixture data" in md
    assert "| tiny | " in md and "xnli" in md and "tatoeba" in md
    assert "Gain from intermediate training" in md


def test_finished_run_is_skipped_and_overwrite_replaces(tiny, tmp_path):
    out = tmp_path / "cell"
    assert _phase3(tiny, out) == 0
    first = (out / "results.json").read_text()
    created = json.loads(first)["provenance"]["created"]
    assert _phase3(tiny, out) == 0  # finished: skipped, file untouched
    assert (out / "results.json").read_text() == first
    assert _phase3(tiny, out, "--seed", "2", "--overwrite") == 0
    again = json.loads((out / "results.json").read_text())
    assert again["seed"] == 2 and again["provenance"]["created"] >= created


def test_same_seed_same_metrics(tiny, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _phase3(tiny, a) == 0 and _phase3(tiny, b) == 0
    ra, rb = read_results(a / "results.json"), read_results(b / "results.json")
    assert ra["per_language"] == rb["per_language"]


def test_leaderboard_folders_score_identically_with_the_scorer(tiny, tmp_path):
    """results.json and `python -m xstilts.score` on the written folders agree to the last digit."""
    from xstilts.scoring.xtreme import score_folders

    preds, labels = tmp_path / "predictions", tmp_path / "labels"
    out_x, out_t = tmp_path / "xnli", tmp_path / "tatoeba"
    assert run_script("run_target", [
        "--model", str(tiny), "--task", "xnli", "--preset", "tiny", "--data_root", str(HUB), "--max_steps", "4",
        "--eval_steps_or_epoch", "4", "--disable_tqdm", "true", "--output_dir", str(out_x),
        "--write_predictions", str(preds), "--write_labels", str(labels)]) == 0
    assert run_script("run_retrieval", [
        "--model", str(tiny), "--task", "tatoeba", "--data_root", str(HUB), "--output_dir", str(out_t),
        "--languages", "xtreme", "--write_predictions", str(preds), "--write_labels", str(labels)]) == 0
    scored = score_folders(str(preds), str(labels), "xtreme")
    for task, out in (("xnli", out_x), ("tatoeba", out_t)):
        r = read_results(out / "results.json")
        detailed = scored["detailed"][task]
        for lang, m in r["per_language"].items():
            assert abs(detailed["accuracy"][lang] - 100 * m["accuracy"]) < 1e-9, (task, lang)
        assert abs(detailed["avg_metric"] - 100 * r["average"]["accuracy"]) < 1e-9
