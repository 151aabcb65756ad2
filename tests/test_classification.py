"""Sentence(-pair) classification tasks: pawsx (target), qqp, anli_plus, sst2 (intermediate)."""

from __future__ import annotations

import json

import pytest

from conftest import HUB, run_script
from xstilts.formats import pair_classification as PCF
from xstilts.data import sources as data_sources
from xstilts.errors import UsageError
from xstilts.formats import pair_classification as PC
from xstilts.training.modeling import read_meta
from xstilts.run.args import get_task
from xstilts.run.results import read_results
from xstilts.scoring.xtreme import score_folders
from xstilts.tasks.classification import NLI_LABELS
from xstilts.tasks.types import Concat, Source

NLI_COLS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}


def test_registry_entries():
    pawsx = get_task("pawsx", phase="target")
    assert pawsx.languages == ("de", "en", "es", "fr", "ja", "ko", "zh") and pawsx.xtreme_name == "pawsx"
    assert pawsx.labels == ("0", "1")  # the strings of the Hub column and of the leaderboard files
    assert (pawsx.train.config, pawsx.train.split) == ("PAWS-X.en", "train")
    assert pawsx.test.config_for(pawsx.code("ko")) == "PAWS-X.ko" and pawsx.dev.split == "validation"
    assert get_task("qqp", phase="intermediate").labels == ("not_duplicate", "duplicate")
    assert get_task("sst2", phase="intermediate").labels == ("negative", "positive")
    anli = get_task("anli_plus", phase="intermediate")
    assert anli.labels == NLI_LABELS and isinstance(anli.train, Concat) and isinstance(anli.dev, Concat)
    assert [(p.hub_id, p.split) for p in anli.train.parts] == [
        ("facebook/anli", "train_r1"), ("facebook/anli", "train_r2"), ("facebook/anli", "train_r3"),
        ("nyu-mll/glue", "train"), ("stanfordnlp/snli", "train")]
    assert anli.train.parts[3].config == "mnli"
    assert anli.dev.split == "dev_r1+dev_r2+dev_r3"
    assert [d["split"] for d in anli.train.describe()["concatenation"]][-1] == "train"


def test_anli_plus_concatenates_five_splits_drops_unlabelled_keeps_one_label_set():
    task = get_task("anli_plus")
    raw = [data_sources.load_source(p, HUB) for p in task.train.parts]
    unlabelled = [sum(1 for l in ds["label"] if l < 0) for ds in raw]
    assert unlabelled[:4] == [0, 0, 0, 0] and unlabelled[4] > 0  # only SNLI has -1 rows
    ds = PCF.load(task, task.train, HUB)
    assert len(ds) == sum(len(r) for r in raw) - unlabelled[4]
    assert set(ds["label"]) == {0, 1, 2}  # one 3-way label set for every part
    # rows keep their order: ANLI r1 first, SNLI last (without its -1 rows)
    assert ds[0]["text_a"] == raw[0][0]["premise"]
    snli_kept = [r for r in raw[4] if r["label"] >= 0]
    assert ds[len(ds) - 1]["text_b"] == snli_kept[-1]["hypothesis"]
    # evaluation splits keep every row; the dev concatenation is the three ANLI dev rounds
    dev = PCF.load(task, task.dev, HUB)
    assert len(dev) == sum(len(data_sources.load_source(p, HUB)) for p in task.dev.parts)
    snli_val = PCF.load(task, Source("stanfordnlp/snli", "plain_text", "validation", NLI_COLS), HUB)
    assert -1 in snli_val["label"]
    # --max_train_samples takes the same share of every part (largest remainder)
    small = PCF.load(task, task.train, HUB, max_samples=93)
    assert len(small) == 93
    assert PCF.proportional_shares([60, 60, 90, 600, 120], 93) == [6, 6, 9, 60, 12]
    assert PCF.proportional_shares([1, 1, 1], 2) == [1, 1, 0] and PCF.proportional_shares([2, 3], 9) == [2, 3]


def test_missing_part_of_a_concatenation_fails_early(tmp_path):
    import shutil

    root = tmp_path / "hub"
    shutil.copytree(HUB / "nyu-mll", root / "nyu-mll")
    shutil.copytree(HUB / "facebook", root / "facebook")
    with pytest.raises(UsageError, match="has no dataset 'stanfordnlp/snli'"):
        data_sources.check_task_data(get_task("anli_plus"), ["en"], root, train=True, dev=True, test=False)


def test_sst2_is_one_segment_and_pairs_are_two(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny))
    sst2 = get_task("sst2")
    ex = PCF.load(sst2, sst2.dev, HUB)
    assert ex.features["text_b"].dtype == "string" and set(ex["text_b"]) == {None}
    feats = PC.featurize(ex, tok, 64, sst2, train=False)
    eos = tok.sep_token_id
    assert all(ids.count(eos) == 1 and ids[0] == tok.cls_token_id for ids in feats["input_ids"])  # <s> A </s>
    assert feats["input_ids"][0] == tok(ex[0]["text_a"])["input_ids"]
    qqp = get_task("qqp")
    pairs = PC.featurize(PCF.load(qqp, qqp.dev, HUB), tok, 64, qqp, train=False)
    assert all(ids.count(eos) == 3 for ids in pairs["input_ids"])  # <s> A </s></s> B </s>
    from datasets import Dataset

    mixed = Dataset.from_dict({"text_a": ["a", "b"], "text_b": ["x", None], "label": [0, 1], "lang": ["en", "en"]})
    with pytest.raises(ValueError, match="single-sentence or sentence-pair"):
        PC.featurize(mixed, tok, 64, sst2)


def test_glue_test_labels_dropped_only_from_training():
    qqp = get_task("qqp")
    test_src = Source("nyu-mll/glue", "qqp", "test", dict(qqp.train.columns))
    assert set(PCF.load(qqp, test_src, HUB)["label"]) == {-1}  # evaluation: kept
    assert -1 not in PCF.load(qqp, qqp.train, HUB)["label"]


def test_pawsx_string_labels_and_per_language_configs():
    task = get_task("pawsx")
    ds = PCF.load(task, task.test, HUB, list(task.languages))
    assert sorted(set(ds["lang"])) == sorted(task.languages)
    for lang in ("en", "ja"):
        raw = data_sources.load_source(task.test, HUB, task.code(lang))
        assert set(raw["label"]) == {"0", "1"}
        got = [l for l, g in zip(ds["label"], ds["lang"]) if g == lang]
        assert got == [int(v) for v in raw["label"]]


@pytest.mark.parametrize("task,n_train,n_dev", [("qqp", 300, 60), ("anli_plus", 930, 90), ("sst2", 300, 60)])
def test_intermediate_task_trains_and_saves_the_encoder(tiny, tmp_path, task, n_train, n_dev):
    out = tmp_path / task
    assert run_script("run_intermediate", [
        "--model", str(tiny), "--task", task, "--preset", "tiny", "--data_root", str(HUB), "--output_dir", str(out),
        "--max_steps", "4", "--eval_steps_or_epoch", "2", "--disable_tqdm", "true"]) == 0
    meta = read_meta(str(out))
    assert meta["finished"] and meta["encoder_only"] and meta["task"] == task
    assert meta["data"]["n_train"] == n_train and meta["dev_metric"]["n"] == n_dev
    assert 0.0 <= meta["dev_metric"]["accuracy"] <= 1.0
    assert all(k.startswith("classifier.") for k in meta["dropped_head_tensors"])
    assert json.loads((out / "config.json").read_text())["architectures"] == ["XLMRobertaModel"]


def test_pawsx_end_to_end_seven_languages_scored_like_the_leaderboard(tiny, tmp_path):
    out, pred, lab = tmp_path / "run", tmp_path / "pred", tmp_path / "lab"
    assert run_script("run_target", [
        "--model", str(tiny), "--task", "pawsx", "--preset", "tiny", "--data_root", str(HUB), "--output_dir", str(out),
        "--max_steps", "4", "--eval_steps_or_epoch", "2", "--disable_tqdm", "true",
        "--write_predictions", str(pred), "--write_labels", str(lab)]) == 0
    r = read_results(out / "results.json")
    counts = {"en": 40, "de": 24, "es": 24, "fr": 24, "ja": 24, "ko": 24, "zh": 24}
    assert {l: m["n"] for l, m in r["per_language"].items()} == counts
    for lang in counts:
        lines = (pred / "pawsx" / f"test-{lang}.tsv").read_text().splitlines()
        gold = (lab / "pawsx" / f"test-{lang}.tsv").read_text().splitlines()
        assert len(lines) == len(gold) == counts[lang] and set(lines) <= {"0", "1"} and set(gold) == {"0", "1"}
        # accuracy recomputed here from the two files agrees with results.json
        acc = sum(p == g for p, g in zip(lines, gold)) / len(gold)
        assert r["per_language"][lang]["accuracy"] == pytest.approx(acc)
    scored = score_folders(str(pred), str(lab), "xtreme")
    assert scored["detailed"]["pawsx"]["avg_accuracy"] == pytest.approx(100 * r["average"]["accuracy"])


def test_pawsx_is_not_an_intermediate_task(tiny, tmp_path, capsys):
    rc = run_script("run_intermediate", ["--model", str(tiny), "--task", "pawsx", "--preset", "tiny",
                                         "--data_root", str(HUB), "--output_dir", str(tmp_path / "x")])
    assert rc == 2 and "is a target task: use run_target.py" in capsys.readouterr().err
