"""XTREME-R's dual-encoder tasks (LAReQA, Mewsli-X): converters, retrieval, the model, and short runs on the tiny
model that are scored like the leaderboard scores them.

Expected numbers are worked out by hand in the comments; they are never produced by the functions under test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import FIXTURES, HUB, run_script
from xstilts.prepare import lareqa as lareqa_data
from xstilts.prepare import mewslix as mewslix_data
from xstilts.scoring import xtreme as S
from xstilts.errors import UsageError
from xstilts.formats import dual_encoder as de
from xstilts.run.args import get_task
from xstilts.run.results import read_results
from xstilts.retrieval.search import resolve

LAREQA_RAW = FIXTURES / "lareqa"
MEWSLIX_RAW = FIXTURES / "mewslix"
XQUAD_R = "ar de el en es hi ru th tr vi zh".split()


# ================================================================================= data preparation

def test_sentence_splitter():
    text = "Mr. Smith met J. K. Rowling in Paris. \"Why?\" she asked. It was 5 p.m. and late. 東京に着いた。次に行く。"
    got = [text[s:e] for s, e in lareqa_data.split_sentences(text)]
    assert got == ["Mr. Smith met J. K. Rowling in Paris.", "\"Why?\" she asked.", "It was 5 p.m. and late.",
                   "東京に着いた。", "次に行く。"]
    # scripts without case start a sentence too (Arabic), a lower-case word does not
    assert len(lareqa_data.split_sentences("انتهى الاجتماع. وصل الوفد.")) == 2
    assert len(lareqa_data.split_sentences("about 3 in. long")) == 1


def test_lareqa_converter_on_release_fixture(tmp_path):
    counts = lareqa_data.convert(LAREQA_RAW, tmp_path)
    assert counts["squad/train"] == {"questions": 14, "skipped": 0}  # XQuAD en paragraph 1
    assert counts["squad/validation"] == {"questions": 16, "skipped": 0}  # paragraph 2
    assert all(counts[f"xquad_r.{l}/test"] == {"questions": 30, "skipped": 0} for l in XQUAD_R)
    from datasets import load_dataset

    mine = load_dataset(str(tmp_path / "local/lareqa"), "xquad_r.de", split="test").to_list()
    committed = load_dataset(str(HUB / "local/lareqa"), "xquad_r.de", split="test").to_list()
    assert mine == committed  # the committed fixture is what the make target's converter writes
    row = mine[0]
    assert row["id"] == "56beb4343aeaaa14008c925b" and row["context_id"] == "de_1"
    # the release's sentence_breaks give the sentences; the answer "308" lies in the first one
    release = json.loads((LAREQA_RAW / "xquad-r/de.json").read_text())["data"][0]["paragraphs"][0]
    assert row["sentences"] == [release["context"][s:e] for s, e in release["sentence_breaks"]]
    assert row["answer_sentence"] == 0 and "308" in row["sentences"][0]
    with pytest.raises(UsageError, match="already exists; pass --overwrite"):
        lareqa_data.convert(LAREQA_RAW, tmp_path)


def test_lareqa_converter_refuses_the_hub_copy_without_sentence_breaks(tmp_path):
    src = tmp_path / "src"
    (src / "squad").mkdir(parents=True)
    for name in ("train-v1.1.json", "dev-v1.1.json"):
        (src / "squad" / name).write_bytes((LAREQA_RAW / "squad" / name).read_bytes())
    (src / "xquad-r").mkdir()
    for lang in XQUAD_R:
        d = json.loads((LAREQA_RAW / "xquad-r" / f"{lang}.json").read_text())
        for p in d["data"][0]["paragraphs"]:
            if lang == "th":
                del p["sentence_breaks"]
        (src / "xquad-r" / f"{lang}.json").write_text(json.dumps(d))
    with pytest.raises(UsageError, match=r"th\.json: paragraph 1 has no 'sentence_breaks'.*Run `make data-lareqa`"):
        lareqa_data.convert(src, tmp_path / "out")
    (src / "xquad-r" / "th.json").unlink()
    with pytest.raises(UsageError, match=r"missing .*xquad-r/th\.json; `make data-lareqa` downloads it"):
        lareqa_data.convert(src, tmp_path / "out")


def test_mewslix_text_preparation_by_hand():
    # one sentence of context, the mention marked by braces and prepended; braces in the text become parentheses
    ctx = {"text": "First one. The {old} summit met in Berlin today. Last.", "sentence_spans": [
        {"start": 0, "end": 10}, {"start": 11, "end": 48}, {"start": 49, "end": 54}]}
    mention = {"mention_span": {"start": 35, "end": 41, "text": "Berlin"}}
    assert mewslix_data.mention_text(ctx, mention) == ("Berlin: The (old) summit met in { Berlin } today.", True)
    entity = {"description": "Berlin is a city.\nIt is big.  Third.", "sentence_spans": [
        {"start": 0, "end": 17}, {"start": 18, "end": 28}]}
    assert mewslix_data.entity_text(entity) == "Berlin is a city. It is big."
    with pytest.raises(UsageError, match=r"mention_span text 'Bonn' != context\[35:41\] 'Berlin'"):
        mewslix_data.mention_text(ctx, {"mention_span": {"start": 35, "end": 41, "text": "Bonn"}})


def test_mewslix_converter_on_release_fixture(tmp_path):
    counts = mewslix_data.convert(MEWSLIX_RAW, tmp_path)
    assert counts["candidate_set_entities/train"]["rows"] == 16
    assert counts["wikinews_mentions/test"]["rows"] == 22 and counts["wikinews_mentions/validation"]["rows"] == 11
    from datasets import load_dataset

    for config, split in (("wikinews_mentions", "test"), ("candidate_set_entities", "train")):
        assert load_dataset(str(tmp_path / "local/mewslix"), config, split=split).to_list() == \
            load_dataset(str(HUB / "local/mewslix"), config, split=split).to_list()
    # a descriptor file without WikiNews text (the *_no_text files of the archive) is refused
    src = tmp_path / "src"
    src.mkdir()
    for name in mewslix_data.FILES.values():
        (src / name).write_bytes((MEWSLIX_RAW / name).read_bytes())
    rows = [json.loads(l) for l in (src / "wikinews_mentions-test.jsonl").read_text().splitlines()]
    rows[0]["context"]["text"] = ""
    (src / "wikinews_mentions-test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UsageError, match=r"line 1: the context has no text.*run the whole get-mewsli-x\.sh"):
        mewslix_data.convert(src, tmp_path / "out")


# ================================================================================= retrieval pieces

def test_rank_and_average_precision_on_hand_built_embeddings():
    from datasets import Dataset

    rows = [de._row("query", "q1", "en", "x", relevant=["c2", "c0"]),
            de._row("query", "q2", "de", "y", relevant=["c1"]),
            de._row("candidate", "c0", "", "a"), de._row("candidate", "c1", "", "b"), de._row("candidate", "c2", "", "c")]
    ex = Dataset.from_list(rows, features=de.example_features())
    # unit vectors: q1 is closest to c2 (cos .8), then c1 (.6), then c0 (0); q2: c0, c1, c2 in that order
    emb = np.array([[0.0, 0.6, 0.8], [1.0, 0.5, 0.1], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                   dtype=np.float32)
    for backend in ("faiss", "torch"):
        ranked = de.rank(emb, ex, search=resolve(backend, cuda=False))
        assert ranked == [["c2", "c1", "c0"], ["c0", "c1", "c2"], None, None, None], backend
    # q1: relevant at ranks 1 and 3 -> (1 + 2/3) / 2 = 5/6; q2: relevant at rank 2 -> 1/2
    aps = de.average_precisions([ranked[0], ranked[1]], [["c2", "c0"], ["c1"]])
    assert aps == pytest.approx([5 / 6, 1 / 2])
    task = get_task("lareqa")
    assert de.score(task, [ranked[0], ranked[1]], [["c2", "c0"], ["c1"]]) == pytest.approx(
        {"map@20": (5 / 6 + 1 / 2) / 2, "n": 2})
    # Mewsli-X: MRR@20 (gold c1 at rank 2 for q1 -> 1/2, at rank 2 for q2 -> 1/2)
    assert de.score(get_task("mewslix"), [ranked[0], ranked[1]], [["c1"], ["c1"]])["map@20"] == pytest.approx(0.5)


def test_lareqa_pool_is_language_agnostic():
    task = get_task("lareqa")
    ex = de.load(task, task.test, HUB, ["de", "zh", "en"])
    roles = ex["role"]
    queries = [i for i, r in enumerate(roles) if r == "query"]
    cands = [ex["id"][i] for i, r in enumerate(roles) if r == "candidate"]
    assert len(queries) == 90 and {c.split("_")[0] for c in cands} == {"de", "zh", "en"}
    first = ex[queries[0]]
    # the same question's answer sentence in each of the three languages (paragraph 1, first sentence)
    assert first["id"] == "56beb4343aeaaa14008c925b_de" and sorted(first["relevant"]) == ["de_1_0", "en_1_0", "zh_1_0"]
    assert all(ex["lang"][i] == "" for i, r in enumerate(roles) if r == "candidate")  # never scored per language


def test_model_in_batch_softmax_pooling_and_handoff(tiny):
    from transformers import AutoTokenizer

    from xstilts.training.modeling import load_for_task

    task = get_task("lareqa")
    model, handoff = load_for_task(de.model_class(), str(tiny), **de.model_kwargs(task))
    assert handoff["fresh_head_tensors"] == [] and handoff["transferred_tensors"] > 0
    assert model.config.dual_encoder_pooling == "pooler" and model.config.dual_encoder_logit_scale == 100.0
    model.config.dual_encoder_pooling = "cls"  # the pooler itself: tests/test_protocols_retrieval.py
    tok = AutoTokenizer.from_pretrained(str(tiny))
    q = tok(["who won", "where is it"], padding=True, return_tensors="pt")
    c = tok(["the broncos won", "it is in denver"], padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        out = model(q["input_ids"], q["attention_mask"], c["input_ids"], c["attention_mask"])
        eq = model(q["input_ids"], q["attention_mask"]).logits
        ec = model(c["input_ids"], c["attention_mask"]).logits
    assert torch.allclose(eq.norm(dim=-1), torch.ones(2), atol=1e-5)
    logits = 100.0 * eq @ ec.T  # each query against every candidate of the batch
    assert torch.allclose(out.logits, logits, atol=1e-4)
    expected = -(torch.log_softmax(logits, dim=1)[0, 0] + torch.log_softmax(logits, dim=1)[1, 1]) / 2
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # cls = the first token's last hidden state; mean = average over the non-padding tokens
    with torch.no_grad():
        hidden = model.base_model(input_ids=q["input_ids"], attention_mask=q["attention_mask"]).last_hidden_state
        model.config.dual_encoder_pooling = "mean"
        mean = model(q["input_ids"], q["attention_mask"]).logits
    m = q["attention_mask"].unsqueeze(-1).float()
    assert torch.allclose(eq, torch.nn.functional.normalize(hidden[:, 0], dim=-1), atol=1e-5)
    assert torch.allclose(mean, torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1), atol=1e-5)

    # softmax groups: with 4 pairs in groups of 2, query 0 competes with candidates 0 and 1 only, query 2 with 2, 3
    model.config.dual_encoder_pooling = "cls"
    q4 = tok(["who won", "where is it", "when", "how many"], padding=True, return_tensors="pt")
    c4 = tok(["the broncos won", "it is in denver", "in february", "three"], padding=True, return_tensors="pt")
    with torch.no_grad():
        model.config.dual_encoder_softmax_group = 2
        grouped = model(q4["input_ids"], q4["attention_mask"], c4["input_ids"], c4["attention_mask"])
        eq4 = model(q4["input_ids"], q4["attention_mask"]).logits
        ec4 = model(c4["input_ids"], c4["attention_mask"]).logits
    full = 100.0 * eq4 @ ec4.T
    by_hand = 0.0
    for i in range(4):
        block = slice(2 * (i // 2), 2 * (i // 2) + 2)
        by_hand -= torch.log_softmax(full[i, block], dim=0)[i % 2].item() / 4
    assert grouped.loss.item() == pytest.approx(by_hand, rel=1e-5)
    assert torch.isinf(grouped.logits[0, 2]) and torch.isinf(grouped.logits[3, 1])
    assert de.model_kwargs(task)["dual_encoder_softmax_group"] == 4  # LAReQA: train_lareqa.sh's 4 per GPU


# ================================================================================= the tasks, end to end

def _run(tiny, task, out, *extra):
    return run_script("run_target", [
        "--model", str(tiny), "--task", task, "--preset", "tiny", "--data_root", str(HUB), "--max_steps", "4",
        "--eval_steps_or_epoch", "2", "--disable_tqdm", "true", "--output_dir", str(out / "run"),
        "--write_predictions", str(out / "pred"), "--write_labels", str(out / "lab"), *extra])


def _scored_like_the_leaderboard(out, task, langs, result):
    """The written folders, scored by xstilts.score, give the per-language numbers of results.json."""
    for lang in langs:
        pred = json.loads((out / "pred" / task / f"test-{lang}.json").read_text())
        lab = json.loads((out / "lab" / task / f"test-{lang}.json").read_text())
        assert list(pred) == list(lab) and len(pred) == result["per_language"][lang]["n"]
        assert all(1 <= len(v) <= 20 for v in pred.values())
        s = S.score_task(task, pred, lab)["map@20"]
        assert s / 100 == pytest.approx(result["per_language"][lang]["map@20"], abs=1e-12)


def test_lareqa_trains_and_scores(tiny, tmp_path):
    assert _run(tiny, "lareqa", tmp_path) == 0
    r = read_results(tmp_path / "run" / "results.json")
    assert list(r["per_language"]) == XQUAD_R
    assert all(0 <= m["map@20"] <= 1 and m["n"] == 30 for m in r["per_language"].values())
    assert r["average"]["map@20"] == pytest.approx(sum(m["map@20"] for m in r["per_language"].values()) / 11)
    assert r["selection"]["split"] == "English dev" and r["selection"]["metric"] == "map@20"
    assert r["selection"]["best_checkpoint"].startswith("checkpoint-")
    assert r["format_settings"]["pooling"] == "pooler" and r["format_settings"]["logit_scale"] == 100.0
    assert r["timing"]["n_queries"] == 330 and r["timing"]["n_candidates"] > 20  # one pool of all 11 languages
    _scored_like_the_leaderboard(tmp_path, "lareqa", XQUAD_R, r)
    lab = json.loads((tmp_path / "lab" / "lareqa" / "test-th.json").read_text())
    assert all(len(v) == 11 for v in lab.values())  # the answer sentence in every language is relevant
    pred = json.loads((tmp_path / "pred" / "lareqa" / "test-th.json").read_text())
    assert len({c.split("_")[0] for v in pred.values() for c in v}) > 1  # candidates of several languages


def test_mewslix_trains_and_scores(tiny, tmp_path):
    assert _run(tiny, "mewslix", tmp_path) == 0
    r = read_results(tmp_path / "run" / "results.json")
    langs = list(mewslix_data.MENTION_LANGS)
    assert list(r["per_language"]) == langs and all(m["n"] == 2 for m in r["per_language"].values())
    assert r["timing"]["n_candidates"] == 16  # the whole candidate set, for every language
    _scored_like_the_leaderboard(tmp_path, "mewslix", langs, r)
    lab = json.loads((tmp_path / "lab" / "mewslix" / "test-ja.json").read_text())
    assert lab == {"wn-test-ja-10-m0": ["Q1490"], "wn-test-ja-11-m0": ["Q64"]}  # 東京 -> Tokyo, ベルリン -> Berlin


# ================================================================================= bad input

def test_missing_prepared_data_names_the_make_target(tiny, tmp_path, monkeypatch, capsys):
    import xstilts.data.sources as data_sources

    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["--model", str(tiny), "--preset", "tiny", "--output_dir", str(tmp_path / "out"), "--disable_tqdm", "true"]
    assert run_script("run_target", ["--task", "lareqa", "--data_root", str(empty), *args]) == 2
    err = capsys.readouterr().err
    assert "LAReQA data" in err and f"Run `make data-lareqa DATA_DIR={empty}`" in err
    monkeypatch.setattr(data_sources, "KIT_DATA", empty)  # no --data_root: the kit's data/ (here: empty)
    assert run_script("run_target", ["--task", "mewslix", *args]) == 2
    err = capsys.readouterr().err
    assert "Mewsli-X data" in err and "no --data_root given" in err and "Run `make data-mewslix`" in err
    assert not (tmp_path / "out" / "results.json").exists()
