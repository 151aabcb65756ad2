"""Multiple-choice format: label conversion per task, choice templates, the [batch, choices, length] collator,
phase 2 on HellaSwag / Cosmos QA / CommonsenseQA, and XCOPA end to end (Social IQa, then COPA, then 11
languages) scored like the leaderboard."""

from __future__ import annotations

import dataclasses
import json
import logging

import pyarrow.parquet as pq
import pytest
from datasets import ClassLabel, Dataset, Features, List, Value

from conftest import HUB, run_script
from xstilts.errors import UsageError
from xstilts.formats import get_format
from xstilts.formats import multiple_choice as mc
from xstilts.run.args import get_task
from xstilts.tasks.types import PARQUET_EXPORT, Source

XCOPA_LANGS = ["et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"]


def raw(hub_id: str, config: str, split: str) -> list[dict]:
    return pq.read_table(HUB / hub_id / config / f"{split}-00000-of-00001.parquet").to_pylist()


# ------------------------------------------------------------------------------------------ labels

@pytest.mark.parametrize("name,stage,hub_id,config,n_choices,expected", [
    ("hellaswag", False, "Rowan/hellaswag", "default", 4, lambda r: int(r["label"])),  # label is a string
    ("cosmosqa", False, "allenai/cosmos_qa", "default", 4, lambda r: r["label"]),  # answer0..3, int32
    ("csqa", False, "tau/commonsense_qa", "default", 5, lambda r: "ABCDE".index(r["answerKey"])),  # letter
    ("xcopa", True, "allenai/social_i_qa", "default", 3, lambda r: int(r["label"]) - 1),  # "1".."3"
    ("xcopa", False, "aps/super_glue", "copa", 2, lambda r: r["label"]),  # ClassLabel(choice1, choice2)
])
def test_labels_and_choices_per_task(name, stage, hub_id, config, n_choices, expected):
    task = get_task(name)
    task = task.stages[0] if stage else task
    for source in (task.train, task.dev):
        assert source.hub_id == hub_id and source.config == config
        rows = raw(hub_id, config, source.split)
        ds = mc.load(task, source, HUB)
        assert len(ds) == len(rows) > 0
        assert ds["label"] == [expected(r) for r in rows]
        assert all(len(c) == n_choices for c in ds["choices"]) and set(ds["lang"]) == {"en"}
        assert 0 < sum(l == 0 for l in ds["label"]) < len(ds)  # the right answer is not always first


def test_choice_fields_follow_the_hub_columns():
    csqa = get_task("csqa")
    row, ex = raw("tau/commonsense_qa", "default", "validation")[0], mc.load(csqa, csqa.dev, HUB)[0]
    assert ex["context"] == "" and ex["question"] == row["question"] and ex["choices"] == row["choices"]["text"]
    cosmos = get_task("cosmosqa")
    row, ex = raw("allenai/cosmos_qa", "default", "validation")[0], mc.load(cosmos, cosmos.dev, HUB)[0]
    assert ex["choices"] == [row[f"answer{i}"] for i in range(4)] and ex["context"] == row["context"]
    hs = get_task("hellaswag")
    row, ex = raw("Rowan/hellaswag", "default", "validation")[0], mc.load(hs, hs.dev, HUB)[0]
    assert (ex["context"], ex["question"], ex["choices"]) == (row["ctx_a"], row["ctx_b"], row["endings"])


def test_unlabelled_rows_dropped_from_training_kept_elsewhere():
    """HellaSwag test has label "", Cosmos QA -1, CommonsenseQA answerKey "", COPA -1."""
    for name in ("hellaswag", "cosmosqa", "csqa"):
        task = get_task(name)
        test = dataclasses.replace(task.dev, split="test")
        kept = mc.load(task, test, HUB)
        assert len(kept) == 8 and set(kept["label"]) == {-1}
        assert len(mc.load(dataclasses.replace(task, train=test), test, HUB)) == 0  # as a training split: dropped
    xcopa = get_task("xcopa")
    feats = mc.featurize(mc.load(xcopa, dataclasses.replace(xcopa.dev, split="test"), HUB), _tok(), 32, xcopa)
    assert set(feats["labels"]) == {mc.IGNORE_INDEX}  # ignored by the loss


def _mapper(values, feature, labels=("0", "1", "2", "3"), choices="a,b,c,d"):
    ds = Dataset.from_dict({"label": values}, features=Features({"label": feature}))
    task = dataclasses.replace(get_task("hellaswag"), labels=tuple(labels))
    return mc.label_mapper(ds, Source("x/y", "c", "train", {"choices": choices, "label": "label"}), task, "x/y")


def test_label_mapper_values_and_errors():
    to_int = _mapper(["0", "3", "", None], Value("string"))
    assert [to_int(v) for v in ("0", "3", "", None)] == [0, 3, -1, -1]
    to_int = _mapper([2, -1], Value("int32"))
    assert [to_int(2), to_int(-1)] == [2, -1]
    with pytest.raises(UsageError, match=r"label value '7' in field 'label' is not one of \['0', '1', '2', '3'\]"):
        to_int = _mapper(["7"], Value("string"))
        to_int("7")
    to_int = _mapper([1], ClassLabel(names=["choice1", "choice2"]), labels=("0", "1"), choices="choice1,choice2")
    assert to_int(1) == 1 and to_int(-1) == -1
    with pytest.raises(UsageError, match=r"label names of field 'label' are \['no', 'yes'\]"):
        _mapper([1], ClassLabel(names=["no", "yes"]), labels=("0", "1"), choices="choice1,choice2")


# --------------------------------------------------------------------------------------- templates

def test_templates_per_task():
    cases = {
        "hellaswag": (("A man sits on a stool.", "the man then", "plays a song."),
                      ("A man sits on a stool.", "the man then plays a song.")),
        "cosmosqa": (("Alex missed the bus.", "What may happen next?", "Alex walks."),
                     ("Alex missed the bus. What may happen next?", "Alex walks.")),
        "csqa": (("", "Where would you find a book?", "library"), ("Where would you find a book?", "library")),
        "xcopa": (("The baby cried.", "cause", "It was hungry."),
                  ("The baby cried. What was the cause?", "It was hungry.")),
    }
    for name, ((context, question, choice), expected) in cases.items():
        assert mc.encode_pairs(get_task(name), context, question, [choice]) == [expected]
    siqa = get_task("xcopa").stages[0]
    assert mc.encode_pairs(siqa, "Jo lent Sam money.", "Why did Jo do this?", ["to help"]) == \
        [("Jo lent Sam money. Why did Jo do this?", "to help")]
    assert mc.encode_pairs(get_task("hellaswag"), "ctx", "", ["end."]) == [("ctx", "end.")]  # empty ctx_b
    with pytest.raises(UsageError, match=r"question 'why' is not one of \['cause', 'effect'\]"):
        mc.encode_pairs(get_task("xcopa"), "p", "why", ["c"])
    with pytest.raises(UsageError, match=r"unknown multiple-choice template of task csqa 'nope'; valid choices: "
                                         r"continuation, prompt, copa"):
        mc.encode_pairs(dataclasses.replace(get_task("csqa"), format_options={"template": "nope"}), "", "q", ["c"])


def test_featurized_choices_decode_to_the_template(tiny):
    tok = _tok(tiny)
    xcopa = get_task("xcopa")
    ex = mc.load(xcopa, xcopa.dev, HUB).select([0])
    feats = mc.featurize(ex, tok, 64, xcopa)
    ids = feats[0]["input_ids"]
    assert len(ids) == 2 and feats[0]["labels"] == ex[0]["label"] and feats[0]["length"] == max(map(len, ids))
    for c, choice_ids in zip(ex[0]["choices"], ids):
        first, second = mc.encode_pairs(xcopa, ex[0]["context"], ex[0]["question"], [c])[0]
        assert choice_ids == tok(first, second, truncation=True, max_length=64)["input_ids"]


# --------------------------------------------------------------------------------------- collator

_TOK = {}


def _tok(path=None):
    from transformers import AutoTokenizer

    if path is not None:
        _TOK["tok"] = AutoTokenizer.from_pretrained(path)
    return _TOK["tok"]


@pytest.fixture(autouse=True)
def _tokenizer(tiny):
    _tok(tiny)


@pytest.mark.parametrize("name,stage,n_choices", [("xcopa", False, 2), ("xcopa", True, 3), ("hellaswag", False, 4),
                                                  ("csqa", False, 5)])
def test_collator_pads_to_batch_choices_longest(tiny, name, stage, n_choices):
    task = get_task(name)
    task = task.stages[0] if stage else task
    feats = mc.featurize(mc.load(task, task.dev, HUB).select(range(6)), _tok(), 24, task)
    batch = mc.collator(_tok())([feats[i] for i in range(6)])
    longest = max(feats["length"])
    assert tuple(batch["input_ids"].shape) == (6, n_choices, longest) <= (6, n_choices, 24)
    assert batch["attention_mask"].shape == batch["input_ids"].shape
    assert batch["labels"].tolist() == feats["labels"]
    lengths = batch["attention_mask"].sum(-1).tolist()
    assert lengths == [[len(x) for x in f] for f in feats["input_ids"]]  # padding only, nothing cut
    pad = _tok().pad_token_id
    assert all(batch["input_ids"][i, j, l:].eq(pad).all() for i in range(6) for j in range(n_choices)
               for l in [lengths[i][j]])


def test_collator_refuses_mixed_choice_counts():
    xcopa, csqa = get_task("xcopa"), get_task("csqa")
    a = mc.featurize(mc.load(xcopa, xcopa.dev, HUB).select([0]), _tok(), 24, xcopa)[0]
    b = mc.featurize(mc.load(csqa, csqa.dev, HUB).select([0]), _tok(), 24, csqa)[0]
    with pytest.raises(ValueError, match=r"mixes examples with \[2, 5\] choices"):
        mc.collator(_tok())([a, b])


# ------------------------------------------------------------------------------------- bad rows

def _bad_repo(tmp_path, rows, features):
    from xstilts.data.mirror import Mirror

    m = Mirror(tmp_path / "hub")
    m.write("me/bad", "default", "train", rows, features)
    m.describe("me/bad", {"pretty_name": "bad"}, "bad rows\n")
    m.finish()
    return tmp_path / "hub"


def test_bad_rows_are_named(tmp_path):
    hs = get_task("hellaswag")
    feats = Features({"ctx_a": Value("string"), "ctx_b": Value("string"), "endings": List(Value("string")),
                      "label": Value("string")})
    root = _bad_repo(tmp_path / "a", [{"ctx_a": "a", "ctx_b": "b", "endings": ["x", "y", "z"], "label": "0"}], feats)
    src = dataclasses.replace(hs.train, hub_id="me/bad", revision=None)
    with pytest.raises(UsageError, match=r"me/bad/default\[train\] row 0: 3 choices, but task hellaswag has 4"):
        mc.load(hs, src, root)
    csqa = get_task("csqa")
    feats = Features({"question": Value("string"), "choices": {"label": List(Value("string")),
                                                                "text": List(Value("string"))},
                      "answerKey": Value("string")})
    root = _bad_repo(tmp_path / "b", [{"question": "q", "choices": {"label": list("ABCDF"), "text": list("vwxyz")},
                                       "answerKey": "A"}], feats)
    with pytest.raises(UsageError, match=r"choice names \['A', 'B', 'C', 'D', 'F'\] differ"):
        mc.load(csqa, dataclasses.replace(csqa.train, hub_id="me/bad"), root)
    with pytest.raises(UsageError, match=r"lacks field\(s\) ctx_a, ctx_b, endings"):
        mc.load(hs, dataclasses.replace(hs.train, hub_id="me/bad", revision=None), root)


def test_parquet_export_sources_load_by_folder(monkeypatch):
    """Script-only Hub repos are read from refs/convert/parquet, where the config is a folder."""
    import datasets

    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)))
    from xstilts.data.sources import load_source

    copa = get_task("xcopa").train
    assert copa.revision == PARQUET_EXPORT
    load_source(copa, None)
    load_source(get_task("csqa").train, None)
    assert calls == [(("aps/super_glue",), {"data_dir": "copa", "split": "train", "revision": PARQUET_EXPORT}),
                     (("tau/commonsense_qa", "default"), {"split": "train"})]


# ----------------------------------------------------------------------------- phase 2 and XCOPA

@pytest.mark.parametrize("name,n_dev", [("hellaswag", 16), ("cosmosqa", 16), ("csqa", 16)])
def test_intermediate_task_trains_and_saves_the_encoder(tiny, tmp_path, name, n_dev):
    from safetensors import safe_open

    out = tmp_path / name
    assert run_script("run_intermediate", [
        "--model", str(tiny), "--task", name, "--preset", "tiny", "--data_root", str(HUB), "--max_steps", "3",
        "--disable_tqdm", "true", "--output_dir", str(out)]) == 0
    meta = json.loads((out / "xstilts_meta.json").read_text())
    assert meta["finished"] and meta["task"] == name and meta["dev_metric"]["n"] == n_dev
    assert 0 <= meta["dev_metric"]["accuracy"] <= 1 and meta["dev_metric"]["split"] == "validation"
    assert meta["global_step"] == 3 and meta["selection"]["evaluations"]
    assert meta["encoder_only"] and meta["dropped_head_tensors"] == ["classifier.weight", "classifier.bias"]
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "classifier" in k]


def test_xcopa_two_stages_eleven_languages_scored_like_the_leaderboard(tiny, tmp_path, caplog):
    from xstilts.run.results import read_results
    from xstilts.scoring.xtreme import score_folders

    out, pred, labels = tmp_path / "xcopa", tmp_path / "pred", tmp_path / "labels"
    argv = ["--model", str(tiny), "--task", "xcopa", "--preset", "tiny", "--data_root", str(HUB), "--max_steps", "3",
            "--disable_tqdm", "true", "--output_dir", str(out), "--write_predictions", str(pred),
            "--write_labels", str(labels), "--keep_checkpoints"]
    with caplog.at_level(logging.INFO):
        assert run_script("run_target", argv) == 0
    r = read_results(out / "results.json")
    assert list(r["per_language"]) == XCOPA_LANGS and all(m["n"] == 20 for m in r["per_language"].values())
    # stage 1 (Social IQa) ran first, selected on its English dev split, recorded with its sources
    (stage,) = r["stages"]
    assert stage["task"] == "siqa" and stage["finished"] and stage["data"]["n_train"] == 48
    train_source = dict(stage["data"]["train"])
    assert train_source.pop("fallback")["hub_id"] == "lighteval/siqa"  # declared, not read: no read_from_fallback
    assert train_source == {"hub_id": "allenai/social_i_qa", "config": "default", "split": "train",
                            "revision": PARQUET_EXPORT}
    assert stage["dev_metric"]["split"] == "validation" and stage["selection"]["evaluations"]
    assert stage["selection"]["global_step"] == 3 and "xcopa training" in stage["model_passed_to"]
    assert "stage 1/1 of xcopa: siqa" in caplog.text
    # stage 2 (COPA) is the task's own training, selected on COPA validation
    assert r["selection"]["split_name"] == "validation" and r["selection"]["language"] == "en"
    assert {s["role"]: s["hub_id"] for s in r["data"]["sources"]} == {
        "train": "aps/super_glue", "dev (checkpoint selection)": "aps/super_glue", "evaluation": "cambridgeltl/xcopa"}
    # leaderboard files: one {"label": i} per line; the labels are XCOPA's gold
    for lang in XCOPA_LANGS:
        lines = (pred / "xcopa" / f"test-{lang}.jsonl").read_text().splitlines()
        assert len(lines) == 20 and all(json.loads(l)["label"] in (0, 1) for l in lines)
        gold = [json.loads(l)["label"] for l in (labels / "xcopa" / f"test-{lang}.jsonl").read_text().splitlines()]
        assert gold == [row["label"] for row in raw("cambridgeltl/xcopa", lang, "test")]
    scored = score_folders(str(pred), str(labels), "xtreme-r")["detailed"]["xcopa"]
    for lang, m in r["per_language"].items():
        assert scored["accuracy"][lang] == pytest.approx(100 * m["accuracy"], abs=1e-9)
    assert scored["avg_accuracy"] == pytest.approx(100 * r["average"]["accuracy"], abs=1e-9)

    # an interrupted run (no results.json) resumes: the finished stage is read back, not trained again
    (out / "results.json").unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert run_script("run_target", argv) == 0
    again = read_results(out / "results.json")
    assert "stage 1/1 (siqa) already finished" in caplog.text
    assert again["stages"][0]["timing"] == stage["timing"]


def test_missing_stage_data_fails_before_training(tiny, tmp_path, capsys):
    root = tmp_path / "root"
    for repo in ("aps/super_glue", "cambridgeltl/xcopa"):
        (root / repo).parent.mkdir(parents=True, exist_ok=True)
        (root / repo).symlink_to(HUB / repo)
    rc = run_script("run_target", ["--model", str(tiny), "--task", "xcopa", "--preset", "tiny", "--data_root", str(root),
                                   "--output_dir", str(tmp_path / "out")])
    assert rc == 2
    assert "has no dataset 'allenai/social_i_qa'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "trainer").exists()


def test_format_is_registered_for_every_multiple_choice_task():
    fmt = get_format("multiple_choice")
    assert fmt.metrics == ("accuracy",) and fmt.model_class().__name__ == "AutoModelForMultipleChoice"
    xcopa = get_task("xcopa")
    assert xcopa.phase == "target" and xcopa.xtreme_name == "xcopa" and list(xcopa.languages) == XCOPA_LANGS
    assert [s.name for s in xcopa.stages] == ["siqa"]
    for name in ("hellaswag", "cosmosqa", "csqa"):
        assert get_task(name, phase="intermediate").format == "multiple_choice"
    with pytest.raises(UsageError, match="unknown task 'siqa'"):
        get_task("siqa")  # a stage of xcopa, not a task of its own


# Features as in the reference (datasets.md, Appendix A)
_S, _I = Value("string"), Value("int32")
HUB_FEATURES = {
    ("Rowan/hellaswag", "default"): Features({
        "ind": _I, "activity_label": _S, "ctx_a": _S, "ctx_b": _S, "ctx": _S, "endings": List(_S), "source_id": _S,
        "split": _S, "split_type": _S, "label": _S}),
    ("allenai/cosmos_qa", "default"): Features({
        "id": _S, "context": _S, "question": _S, "answer0": _S, "answer1": _S, "answer2": _S, "answer3": _S,
        "label": _I}),
    ("tau/commonsense_qa", "default"): Features({
        "id": _S, "question": _S, "question_concept": _S, "choices": {"label": List(_S), "text": List(_S)},
        "answerKey": _S}),
    ("allenai/social_i_qa", "default"): Features({
        "context": _S, "question": _S, "answerA": _S, "answerB": _S, "answerC": _S, "label": _S}),
    ("aps/super_glue", "copa"): Features({
        "premise": _S, "choice1": _S, "choice2": _S, "question": _S, "idx": _I,
        "label": ClassLabel(names=["choice1", "choice2"])}),
}


@pytest.mark.parametrize("repo,config", list(HUB_FEATURES))
def test_fixture_schemas_match_the_hub(repo, config):
    from datasets import load_dataset

    dd = load_dataset(str(HUB / repo), config)
    expected = HUB_FEATURES[(repo, config)]
    for split, ds in dd.items():
        assert ds.features == expected and list(ds.features) == list(expected), (repo, split)
        assert ds.data.schema.remove_metadata().equals(expected.arrow_schema.remove_metadata())
    assert list(dd) == (["train", "validation"] if repo == "allenai/social_i_qa" else ["train", "validation", "test"])
