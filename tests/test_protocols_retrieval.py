"""Retrieval protocols reproduced from their sources (issue 18): XTREME-R's Tatoeba encoder (SQuAD v1.1 first),
BUCC's oracle F1 beside the dev-threshold headline, BUCC's duplicate-sentence rule, the dual encoder's pooler,
candidate text and logit scale. Each preset value is pinned to the commit and file:line it cites."""

import json
import subprocess

import pytest
import torch

from conftest import HUB, ROOT, run_script
from xstilts.prepare import bucc as bucc_data
from xstilts.retrieval import bucc
from xstilts.run import layout
from xstilts.run.presets import read_preset, resolve_recipe, retrieval_settings
from xstilts.run.results import read_results
from xstilts.study import report
from xstilts.tasks import TASKS, benchmarks


# --------------------------------------------------------------------------------------------- presets vs sources

def test_xtreme_tatoeba_recipe_is_the_squad_model_of_run_tatoeba_sh():
    """google-research/xtreme@838c13b scripts/run_tatoeba.sh:45 MODEL=.../squad/
    xlm-roberta-large_LR3e-5_EPOCH2.0_maxlen384_batchsize2_gradacc16, named by train_qa.sh:41
    (${MODEL}_LR${LR}_EPOCH${NUM_EPOCHS}_maxlen${MAXL}_batchsize${BATCH_SIZE}_gradacc${GRAD_ACC}); the rest of
    train_qa.sh@838c13b: --doc_stride 128 (:67), --save_steps -1 (:68), --warmup_steps 500 (:71),
    --weight_decay 0.0001 (:73)."""
    for name in ("xtreme", "phang2020"):
        recipe = read_preset(name)["encoder_recipes"]["tatoeba_squad"]
        assert recipe["task"] == "squad_v1" and recipe["encoder"] == "squad_v1.1-finetuned"
        assert "run_tatoeba.sh:44-45" in recipe["source"] and "train_qa.sh:41" in recipe["source"]
        t = recipe["training"]
        assert (t["learning_rate"], t["num_train_epochs"], t["max_seq_length"], t["effective_train_batch_size"]) \
            == (3e-5, 2, 384, 2 * 16)
        assert (t["doc_stride"], t["warmup_steps"], t["weight_decay"], t["selection"]) == (128, 500, 1e-4, "final")
        assert "[unverified]" in recipe["unverified"]
    values = resolve_recipe("xtreme", "tatoeba_squad", "xlmr-large").values
    assert values["learning_rate"] == 3e-5 and values["num_train_epochs"] == 2 and values["adam_epsilon"] == 1e-8


def test_benchmarks_take_the_tatoeba_of_their_protocol():
    xtreme = [t.name for t in benchmarks.BENCHMARK_TASKS["xtreme"]]
    xtreme_r = [t.name for t in benchmarks.BENCHMARK_TASKS["xtreme-r"]]
    assert "tatoeba" in xtreme and "tatoeba_squad" not in xtreme
    assert "tatoeba_squad" in xtreme_r and "tatoeba" not in xtreme_r
    assert benchmarks.task_names("xtreme-r")[3] == "tatoeba"  # the same leaderboard folder
    assert TASKS["tatoeba_squad"].encoder_recipe == "tatoeba_squad" and not TASKS["tatoeba"].encoder_recipe
    assert TASKS["tatoeba_squad"].all_languages == TASKS["tatoeba"].language_set("xtreme-r")
    assert {"tatoeba", "tatoeba_squad"} <= {t.name for t in benchmarks.STUDY_TARGETS}


def test_bucc_duplicates_rule_per_preset():
    """xtreme: drop (LASER tasks/bucc/bucc.py@74bc6ae:82-95, XTREME utils_retrieve.py@838c13b:266-301);
    phang2020: expand (jiant daa5a25 Bucc2018EvaluationScheme, itertools.product)."""
    xtreme, _ = retrieval_settings("xtreme", "bucc2018")
    jiant, _ = retrieval_settings("phang2020", "bucc2018")
    assert xtreme["duplicates"] == "drop" and "bucc.py@74bc6ae:82-95" in xtreme["duplicates_source"]
    assert "utils_retrieve.py@838c13b:266-301" in xtreme["duplicates_source"]
    assert jiant["duplicates"] == "expand" and "jiant@daa5a258" in jiant["duplicates_source"]


# --------------------------------------------------------------------------------------------- the grid

def test_make_grid_builds_the_recipe_checkpoint_of_each_cell():
    out = subprocess.run(["make", "-n", "grid", "MODELS=tiny-2l-h64", "INTERMEDIATE=none mnli",
                          "TARGETS=tatoeba tatoeba_squad", "SEEDS=1", "PRESET=tiny"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    recipe_runs = [line for line in out if "--encoder_recipe tatoeba_squad" in line]
    assert len(recipe_runs) == 2
    none_dir = layout.recipe_checkpoint_dir("tiny-2l-h64", "none", "tatoeba_squad")
    mnli_dir = layout.recipe_checkpoint_dir("tiny-2l-h64", "mnli", "tatoeba_squad")
    assert none_dir == "checkpoints/tiny-2l-h64/none.tatoeba_squad"
    assert any(f"--output_dir {none_dir}" in r and "--intermediate_checkpoint" not in r for r in recipe_runs)
    assert any(f"--intermediate_checkpoint checkpoints/tiny-2l-h64/mnli --output_dir {mnli_dir}" in r
               for r in recipe_runs)
    cells = {line.split("--task ")[1].split()[0] + "@" + line.split("--output_dir ")[1].split()[0]: line
             for line in out if "run_retrieval.py" in line}
    squad_none = cells["tatoeba_squad@results/tiny-2l-h64/none/tatoeba_squad/seed1"]
    assert f"--intermediate_checkpoint {none_dir}" in squad_none and "--preset tiny" in squad_none
    assert f"--intermediate_checkpoint {mnli_dir}" in cells["tatoeba_squad@results/tiny-2l-h64/mnli/tatoeba_squad/seed1"]
    raw_none = cells["tatoeba@results/tiny-2l-h64/none/tatoeba/seed1"]
    assert "--intermediate_checkpoint" not in raw_none  # XTREME's Tatoeba: the raw encoder
    assert "--intermediate_checkpoint checkpoints/tiny-2l-h64/mnli " in \
        cells["tatoeba@results/tiny-2l-h64/mnli/tatoeba/seed1"]


def test_plan_prices_the_recipe_checkpoints():
    from xstilts.study.plan import build_grid, render_plan

    grid = build_grid(["xlmr-large"], ["none", "mnli"], ["tatoeba_squad"], [1], preset="xtreme")
    assert [c.target for c in grid.recipes] == [
        layout.recipe_checkpoint_meta("xlmr-large", i, "tatoeba_squad") for i in ("none", "mnli")]
    assert all(c.depends == c2.target for c, c2 in zip(grid.cells, grid.recipes))
    text = render_plan(grid, with_status=False)
    assert "Encoder recipes" in text and "none.tatoeba_squad" in text
    # priced as SQuAD v1.1 training with the recipe: 2 epochs at batch 32
    line = next(l for l in text.splitlines() if "none.tatoeba_squad" in l)
    assert "x batch 32" in line and "x 2 ep" in line


# --------------------------------------------------------------------------------------------- end to end

def _recipe(tiny, out, *extra):
    return run_script("run_intermediate", [
        "--model", str(tiny), "--encoder_recipe", "tatoeba_squad", "--preset", "tiny", "--data_root", str(HUB),
        "--max_steps", "2", "--eval_steps_or_epoch", "2", "--disable_tqdm", "true", "--output_dir", str(out),
        *extra])


@pytest.fixture(scope="module")
def squad_encoders(tiny, phase2, tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    assert _recipe(tiny, root / "none.tatoeba_squad") == 0
    assert _recipe(tiny, root / "mnli.tatoeba_squad", "--intermediate_checkpoint", str(phase2)) == 0
    return root


def _retrieval(tiny, task, out, *extra):
    return run_script("run_retrieval", ["--model", str(tiny), "--task", task, "--data_root", str(HUB),
                                        "--preset", "tiny", "--languages", "de,az", "--layers", "default",
                                        "--output_dir", str(out), *extra])


def test_recipe_checkpoint_records_its_recipe_and_base(squad_encoders, phase2):
    meta = json.loads((squad_encoders / "mnli.tatoeba_squad" / layout.META_FILE).read_text())
    rec = meta["encoder_recipe"]
    assert meta["task"] == "squad_v1" and rec["name"] == "tatoeba_squad" and rec["encoder"] == "squad_v1.1-finetuned"
    assert rec["base"]["intermediate"] == "mnli" and rec["base"]["checkpoint"] == str(phase2)
    assert rec["recipe"]["training"] == read_preset("tiny")["encoder_recipes"]["tatoeba_squad"]["training"]
    assert meta["hyperparameters"]["max_seq_length"] == 128 and meta["hyperparameters"]["doc_stride"] == 32
    none = json.loads((squad_encoders / "none.tatoeba_squad" / layout.META_FILE).read_text())["encoder_recipe"]
    assert none["base"] == {"intermediate": None, "checkpoint": None, "model": none["base"]["model"], "meta": None}


@pytest.mark.parametrize("inter", ["none", "mnli"])
def test_tatoeba_squad_embeds_with_the_squad_encoder(inter, tiny, phase2, squad_encoders, tmp_path):
    ckpt = squad_encoders / f"{inter}.tatoeba_squad"
    assert _retrieval(tiny, "tatoeba_squad", tmp_path / "run", "--intermediate_checkpoint", str(ckpt)) == 0
    r = read_results(tmp_path / "run" / "results.json")
    ret = r["retrieval"]
    assert ret["tatoeba_encoder"] == "squad_v1.1-finetuned" and "XTREME-R" in ret["protocol"]
    assert ret["encoder"]["recipe"]["name"] == "tatoeba_squad" and ret["encoder"]["checkpoint"] == str(ckpt)
    # the cell is the (model, intermediate) cell, not a "squad_v1" intermediate
    assert r["intermediate_task"] == (None if inter == "none" else "mnli") and r["target_task"] == "tatoeba_squad"
    # XTREME's Tatoeba of the same cell: the raw (phase-2) encoder, another number
    extra = [] if inter == "none" else ["--intermediate_checkpoint", str(phase2)]
    assert _retrieval(tiny, "tatoeba", tmp_path / "raw", *extra) == 0
    raw = read_results(tmp_path / "raw" / "results.json")
    assert raw["retrieval"]["tatoeba_encoder"] == "raw" and raw["retrieval"]["protocol"].startswith("XTREME:")
    assert raw["intermediate_task"] == r["intermediate_task"]
    # the report's protocol table says which arm matches which benchmark's protocol
    assert "encoder squad_v1.1-finetuned = XTREME-R protocol" in report._retrieval_setup(r)
    assert "encoder raw = XTREME protocol" in report._retrieval_setup(raw)


def test_tatoeba_squad_refuses_any_other_encoder(tiny, phase2, squad_encoders, tmp_path, capsys):
    # the pretrained model, a phase-2 checkpoint: not the recipe's encoder
    assert _retrieval(tiny, "tatoeba_squad", tmp_path / "a") == 2
    assert "encoder recipe 'tatoeba_squad'" in capsys.readouterr().err
    assert _retrieval(tiny, "tatoeba_squad", tmp_path / "b", "--intermediate_checkpoint", str(phase2)) == 2
    assert "--encoder_recipe tatoeba_squad" in capsys.readouterr().err
    # XTREME's Tatoeba never takes the SQuAD encoder (it would pass for the raw one)
    assert _retrieval(tiny, "tatoeba", tmp_path / "c", "--intermediate_checkpoint",
                      str(squad_encoders / "mnli.tatoeba_squad")) == 2
    assert f"pass {phase2} instead" in capsys.readouterr().err
    # a checkpoint made by another preset's recipe: refused, naming both
    assert _retrieval(tiny, "tatoeba_squad", tmp_path / "d", "--intermediate_checkpoint",
                      str(squad_encoders / "none.tatoeba_squad"), "--preset", "xtreme") == 2
    assert "of preset 'tiny', which is not the recipe of preset 'xtreme'" in capsys.readouterr().err
    assert not any((tmp_path / d / "results.json").exists() for d in "abcd")


# --------------------------------------------------------------------------------------------- dual encoder

def test_dual_encoders_pool_with_berts_pooler(tiny):
    """google-research/xtreme third_party/bert.py@838c13b:48-66: BertForRetrieval encodes outputs[1], the pooler
    output (BertPooler: dense + tanh over the first token), L2-normalised; XLM-R uses it too (xlm_roberta.py:386-393)."""
    from transformers import AutoTokenizer

    from xstilts.formats import dual_encoder as de
    from xstilts.training.modeling import load_for_task

    for name in ("lareqa", "mewslix"):
        settings = de.format_settings(TASKS[name])
        assert settings["pooling"] == "pooler" and "bert.py@838c13b" in settings["pooling_source"]
    model, handoff = load_for_task(de.model_class(), str(tiny), **de.model_kwargs(TASKS["lareqa"]))
    # the tiny checkpoint is a masked LM without a pooler: the pooler starts fresh, and the hand-off says so
    assert handoff["encoder_tensors_not_in_checkpoint"] == ["roberta.pooler.dense.bias", "roberta.pooler.dense.weight"]
    tok = AutoTokenizer.from_pretrained(str(tiny))
    q = tok(["who won", "where is it"], padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        got = model(q["input_ids"], q["attention_mask"]).logits
        h0 = model.roberta(input_ids=q["input_ids"], attention_mask=q["attention_mask"]).last_hidden_state[:, 0]
        dense = model.roberta.pooler.dense
        want = torch.nn.functional.normalize(torch.tanh(h0 @ dense.weight.T + dense.bias), dim=-1)
        cls = torch.nn.functional.normalize(h0, dim=-1)
    assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, cls, atol=1e-3)
    # the pooler is trained: it is among the parameters the optimizer sees
    assert any(n.startswith("roberta.pooler.") and p.requires_grad for n, p in model.named_parameters())


# --------------------------------------------------------------------------------------------- BUCC

def _dups():
    """Two source texts and two English texts; de-2's text also has id de-3, en-2's text also en-4."""
    src = bucc.dedupe(["de-1", "de-2", "de-3"], ["eins", "zwei", "zwei"])
    trg = bucc.dedupe(["en-1", "en-2", "en-3", "en-4"], ["one", "two", "three", "two"])
    mined = [(0, 0, 1.3), (1, 1, 1.2)]  # eins-one, zwei-two (unique-text indices)
    return src, trg, mined


def test_duplicates_drop_follows_laser():
    """LASER bucc.py:82-95: a repeated text is deleted from sent2id; :101-111 keeps a candidate only when both
    texts are still there. So zwei-two (both duplicated) is never predicted."""
    src, trg, mined = _dups()
    assert bucc.to_ids(mined, src, trg, "drop") == [("de-1", "en-1", 1.3)]
    assert bucc.to_ids(mined, src, trg, "expand") == [
        ("de-1", "en-1", 1.3), ("de-2", "en-2", 1.2), ("de-2", "en-4", 1.2), ("de-3", "en-2", 1.2),
        ("de-3", "en-4", 1.2)]
    gold = {("de-1", "en-1"), ("de-2", "en-2")}
    assert bucc.gold_with_duplicated_text(gold, src, trg) == 1
    # drop: the duplicated gold pair still counts in recall
    dropped = bucc.evaluate(bucc.to_ids(mined, src, trg, "drop"), gold, 1.0)
    assert dropped["recall"] == 50.0 and dropped["precision"] == 100.0
    with pytest.raises(ValueError, match="unknown duplicates rule"):
        bucc.to_ids(mined, src, trg, "keep")


def test_oracle_is_tuned_on_the_scored_gold():
    """Dev threshold 1.25 keeps only the best test pair; tuned on the test gold itself it keeps both."""
    dev = [("d1", "e1", 1.3), ("d2", "e2", 1.2)]
    test = [("t1", "f1", 1.3), ("t2", "f2", 1.21), ("t3", "f3", 1.1)]
    res = bucc.bucc_protocol(dev, {("d1", "e1")}, test, {("t1", "f1"), ("t2", "f2")})
    assert res["threshold"] == pytest.approx(1.25) and res["f1"] == pytest.approx(100 * 2 / 3)
    assert res["test_oracle_f1"] == 100.0 > res["f1"]
    assert bucc.oracle(test, {("t1", "f1"), ("t2", "f2")})["threshold"] == pytest.approx((1.21 + 1.1) / 2)


@pytest.mark.parametrize("preset, rule", [("xtreme", "drop"), ("phang2020", "expand")])
def test_bucc_run_stores_rule_and_oracle(preset, rule, tiny, tmp_path):
    out = tmp_path / "run"
    assert run_script("run_retrieval", ["--model", str(tiny), "--task", "bucc2018", "--data_root", str(HUB),
                                        "--preset", preset, "--languages", "de", "--layers", "default",
                                        "--write_candidates", "true", "--output_dir", str(out)]) == 0
    r = read_results(out / "results.json")
    mining = r["retrieval"]["mining"]
    assert mining["duplicates"] == rule and r["preset"]["name"] == preset
    assert r["preset"]["duplicates_source"].startswith(f"preset {preset}")
    assert r["run_settings"]["duplicates"] == rule
    m = r["per_language"]["de"]
    assert m["test_sentences"]["gold_pairs_with_duplicated_text"] == 1
    assert m["test_oracle_f1"] >= m["f1"] and r["average"]["test_oracle_f1"] == m["test_oracle_f1"]
    assert "COMPARABLE TO PUBLISHED" in r["retrieval"]["metric_definitions"]["test_oracle_f1"]
    assert r["metric"] == "f1"  # the headline stays the dev-threshold test F1
    setup = report._retrieval_setup(r)
    assert f"duplicates {rule}" in setup and f"test-ORACLE F1 {report.pct(m['test_oracle_f1'])}" in setup
    # with drop, no candidate names an id of a duplicated text; with expand, the duplicated gold pair is mined
    split = bucc_data.read_split(bucc_data.kit_dir(HUB), "de", "test")
    dup_ids = {i for ids in bucc.dedupe(split.trg_ids, split.trg_sentences)[1].values() if len(ids) > 1 for i in ids}
    cands = bucc.read_candidates(bucc.prediction_path(out / "candidates", "de"))
    hits = [t for _, t, _ in cands if t in dup_ids]
    assert (hits == []) if rule == "drop" else len(hits) >= 2


def test_bad_duplicates_rule_is_a_usage_error(tiny, tmp_path, capsys):
    assert run_script("run_retrieval", ["--model", str(tiny), "--task", "bucc2018", "--data_root", str(HUB),
                                        "--duplicates", "keep", "--output_dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "keep" in err and "drop" in err and "expand" in err


def test_slurm_recipe_arrays_run_after_phase2_and_before_their_cells(tmp_path):
    """make slurm: the SQuAD fine-tunings (array recipe) wait for phase 2; the tatoeba_squad cells (array encoder)
    wait for them; XTREME's tatoeba cells stay in baseline / phase3."""
    import re

    from test_grid import make, submit_with_fake_sbatch

    script = tmp_path / "grid.sh"
    make("slurm", "MODELS=xlmr-large", "INTERMEDIATE=none mnli", "TARGETS=tatoeba tatoeba_squad", "SEEDS=1",
         f"RESULTS={tmp_path}/r", f"CKPTS={tmp_path}/c", f"SLURM_SCRIPT={script}", "SLURM_TIME=1:00:00")
    text = script.read_text()
    block = lambda name: re.search(rf"^{name}_CELLS=\(\n(.*?)\n\)", text, re.S | re.M).group(1).split()
    assert block("RECIPE") == [f"{tmp_path}/c/xlmr-large/{i}.tatoeba_squad/xstilts_meta.json" for i in ("none", "mnli")]
    assert block("ENCODER") == [f"{tmp_path}/r/xlmr-large/{i}/tatoeba_squad/seed1/results.json" for i in ("none", "mnli")]
    assert block("BASELINE") == [f"{tmp_path}/r/xlmr-large/none/tatoeba/seed1/results.json"]
    assert block("PHASE3") == [f"{tmp_path}/r/xlmr-large/mnli/tatoeba/seed1/results.json"]
    calls, _ = submit_with_fake_sbatch(script, tmp_path)
    assert [c.split()[-1] for c in calls] == ["phase2", "baseline", "phase3", "recipe", "encoder"]
    assert "--dependency=afterok:1001" in calls[3] and "--dependency=afterok:1004" in calls[4]


def test_leaderboard_takes_only_the_benchmarks_tatoeba_arm(tmp_path):
    from xstilts.errors import UsageError
    from xstilts.study.leaderboard import gather

    with pytest.raises(UsageError, match="xtreme-r takes tatoeba_squad"):
        gather(tmp_path, "xtreme-r", "m", "none", 1, ["tatoeba"])
    with pytest.raises(UsageError, match="xtreme takes tatoeba"):
        gather(tmp_path, "xtreme", "m", "none", 1, ["tatoeba_squad"])
    with pytest.raises(UsageError, match="cells without results.json"):  # the right arm passes the protocol check
        gather(tmp_path, "xtreme-r", "m", "none", 1, ["tatoeba_squad"])
