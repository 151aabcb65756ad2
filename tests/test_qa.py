"""Extractive span QA (xstilts/formats/span_qa.py) and its tasks: squad_v1, squad_v2, xquad, mlqa, tydiqa.

Metric values are worked out by hand in the comments, never produced by the code under test.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from datasets import Dataset

from conftest import HUB, run_script
from xstilts.data.sources import load_source
from xstilts.errors import UsageError
from xstilts.formats import span_qa as QA
from xstilts.run.args import get_task
from xstilts.run.results import read_results
from xstilts.scoring.xtreme import score_folders


@pytest.fixture(scope="module")
def tok(tiny):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny))


def examples(rows, lang="en"):
    """Canonical QA examples from (context, question, answer text or None)."""
    cols = {k: [] for k in QA.CANONICAL}
    for i, (context, question, answer) in enumerate(rows):
        cols["id"].append(f"q{i}")
        cols["title"].append("t")
        cols["context"].append(context)
        cols["question"].append(question)
        cols["answer_text"].append([answer] if answer else [])
        cols["answer_start"].append([context.index(answer)] if answer else [])
        cols["lang"].append(lang)
    return Dataset.from_dict(cols, features=QA._qa_features())


def oracle_logits(features, hit=10.0):
    """Logits that point at the labelled start/end of every window holding the answer (0 elsewhere, -100
    past each window's length as transformers pads across batches)."""
    width = max(features["length"])
    s = np.full((len(features), width), -100.0)
    e = np.full((len(features), width), -100.0)
    for i, (n, sp, ep) in enumerate(zip(features["length"], features["start_positions"], features["end_positions"])):
        s[i, :n] = e[i, :n] = 0.0
        if sp != 0:
            s[i, sp] = e[i, ep] = hit
    return s, e


# ======================================================================== offsets, windows, post-processing

@pytest.mark.parametrize("lang", ["zh", "th", "ar", "hi"])
def test_gold_spans_round_trip_through_offsets(tok, lang):
    """Real XQuAD (CJK, Thai, Arabic, Devanagari): gold span -> window positions -> post-processing gives back
    the gold text, cut from the original context; where a gold boundary falls inside a token, the smallest
    token span covering it (a superset, still a substring of the context)."""
    task = get_task("xquad")
    ex = QA.load(task, task.test, HUB, [lang])
    feats = QA.featurize(ex, tok, 128, task, train=False, doc_stride=48, max_query_length=32)
    assert len(feats) > 2 * len(ex)  # long contexts: several windows per question
    # every answer (up to 48 tokens, the overlap) lies whole in some window
    assert {x for x, sp in zip(feats["example_idx"], feats["start_positions"]) if sp != 0} == set(range(len(ex)))
    s, e = oracle_logits(feats)
    preds = QA.postprocess(ex, feats, s, e, n_best_size=20, max_answer_length=48)
    exact = 0
    for p, context, texts in zip(preds, ex["context"], ex["answer_text"]):
        assert p in context and texts[0] in p and len(p) <= len(texts[0]) + 8
        exact += p == texts[0]
    assert exact >= 0.9 * len(ex)


def test_context_substring_not_tokenizer_text(tok):
    """The answer is the context's own characters (full-width punctuation, case, spacing), never a detokenised
    string: NFKC turns '（' into '(' inside the tokenizer, the answer keeps '（'."""
    ctx = "超级碗50（Super Bowl 50）是美国国家橄榄球联盟的比赛。"
    ex = examples([(ctx, "什么比赛？", "超级碗50（Super Bowl 50）")], lang="zh")
    feats = QA.featurize(ex, tok, 64, None, train=False, doc_stride=16, max_query_length=16)
    s, e = oracle_logits(feats)
    assert QA.postprocess(ex, feats, s, e, n_best_size=20, max_answer_length=30) == ["超级碗50（Super Bowl 50）"]


def test_doc_stride_answer_in_a_later_window(tok):
    filler = " ".join(f"Town number {i} has a quiet harbour." for i in range(12))
    ctx = f"{filler} The old lighthouse stands in Zanzibar."
    ex = examples([(ctx, "Where does the old lighthouse stand?", "Zanzibar"),
                   (ctx, "What does town number 0 have?", "a quiet harbour")])
    feats = QA.featurize(ex, tok, 48, None, train=False, doc_stride=8, max_query_length=16)
    first = [i for i, x in enumerate(feats["example_idx"]) if x == 0]
    assert len(first) >= 3
    assert feats["start_positions"][first[0]] == 0  # window 1 does not hold "Zanzibar": points at <s>
    holding = [i for i in first if feats["start_positions"][i] != 0]
    assert holding and holding[0] != first[0]
    # consecutive windows overlap by exactly doc_stride context tokens
    ctx0 = [[o for o in feats["offset_start"][i] if o >= 0] for i in first[:2]]
    assert ctx0[1][:8] == ctx0[0][-8:]
    s, e = oracle_logits(feats)
    assert QA.postprocess(ex, feats, s, e, n_best_size=20, max_answer_length=30) == ["Zanzibar", "a quiet harbour"]
    # training windows carry the same labels; the answer-less windows point at <s>
    train = QA.featurize(ex, tok, 48, None, train=True, doc_stride=8, max_query_length=16)
    assert train["start_positions"] == feats["start_positions"] and "offset_start" not in train.column_names


def test_postprocess_rules(tok):
    ex = examples([("Alice met Bob in Paris last year.", "Where?", "Paris")])
    feats = QA.featurize(ex, tok, 64, None, train=False, doc_stride=16, max_query_length=16)
    assert len(feats) == 1
    n = feats["length"][0]
    ctx = [k for k, o in enumerate(feats["offset_start"][0]) if o >= 0]
    q_tok = 1  # a question token: never part of an answer even with the highest logits
    s = np.zeros((1, n + 5))
    e = np.zeros((1, n + 5))
    s[0, n:] = e[0, n:] = 50.0  # beyond the window (cross-batch padding): ignored
    s[0, q_tok] = e[0, q_tok] = 40.0
    s[0, ctx[3]] = 6.0
    e[0, ctx[1]] = 9.0  # as the end of a span starting at ctx[3]: before its start, invalid
    e[0, ctx[4]] = 4.0
    cut = lambda a, b: ex["context"][0][feats["offset_start"][0][a]:feats["offset_end"][0][b]]  # noqa: E731
    # best valid pair: ctx[3]..ctx[4], 6 + 4 = 10 (beats the one-token span ctx[1]..ctx[1], 0 + 9)
    out = QA.postprocess(ex, feats, s, e, n_best_size=20, max_answer_length=30)
    assert out == [cut(ctx[3], ctx[4])]
    # max_answer_length in tokens: with 1, the best one-token span is ctx[1] (0 + 9 > 6 + 0 of ctx[3])
    assert QA.postprocess(ex, feats, s, e, n_best_size=20, max_answer_length=1) == [cut(ctx[1], ctx[1])]
    # n_best_size=1 keeps only the single best start and end, both the question token: no valid span -> ""
    assert QA.postprocess(ex, feats, s, e, n_best_size=1, max_answer_length=30) == [""]
    with pytest.raises(RuntimeError, match="not aligned"):
        QA.postprocess(ex, feats, s[:0], e[:0])


def test_no_answer_null_score_and_threshold(tok):
    ex = examples([("Alice met Bob in Paris last year.", "Where?", None)])
    feats = QA.featurize(ex, tok, 64, None, train=True, doc_stride=16, max_query_length=16)
    assert feats["start_positions"] == [0] and feats["end_positions"] == [0]  # unanswerable: <s>
    feats = QA.featurize(ex, tok, 64, None, train=False, doc_stride=16, max_query_length=16)
    ctx = [k for k, o in enumerate(feats["offset_start"][0]) if o >= 0]
    s = np.zeros((1, feats["length"][0]))
    e = np.zeros_like(s)
    s[0, 0] = e[0, 0] = 3.0  # null score 6
    s[0, ctx[4]] = e[0, ctx[4]] = 2.0  # best span 4: null - best = 2
    run = lambda **kw: QA.postprocess(ex, feats, s, e, n_best_size=20, max_answer_length=30, **kw)  # noqa: E731
    span = ex["context"][0][feats["offset_start"][0][ctx[4]]:feats["offset_end"][0][ctx[4]]]
    assert run() == [span]  # SQuAD 1.1: never empty when a span exists
    assert run(version_2_with_negative=True, null_score_diff_threshold=0.0) == [""]
    assert run(version_2_with_negative=True, null_score_diff_threshold=2.5) == [span]


def test_squad_v2_metric_hand_computed():
    golds = [{"id": "a", "answers": [{"text": "Denver Broncos", "answer_start": 0}]},
             {"id": "b", "answers": []},
             {"id": "c", "answers": []},
             {"id": "d", "answers": [{"text": "Paris", "answer_start": 0}, {"text": "in Paris", "answer_start": 0}]}]
    preds = ["Broncos", "", "the", "the Paris"]
    # a: "broncos" vs "denver broncos": EM 0, P 1 R 1/2 -> F1 2/3
    # b: "" for an unanswerable question: EM 1, F1 1
    # c: "the" normalises to "" (article): counts as no answer -> EM 1, F1 1
    # d: "paris" == "paris": EM 1, F1 1
    out = QA.squad_v2_scores(preds, golds)
    assert out["exact_match"] == pytest.approx(3 / 4)
    assert out["f1"] == pytest.approx((2 / 3 + 3) / 4)
    assert out["HasAns_total"] == 2 and out["NoAns_total"] == 2
    assert out["HasAns_exact_match"] == pytest.approx(1 / 2) and out["HasAns_f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert out["NoAns_exact_match"] == 1.0 and out["NoAns_f1"] == 1.0
    # a span predicted for an unanswerable question scores 0
    assert QA.squad_v2_scores(["Denver"], [golds[1]])["f1"] == 0.0
    # through the format's score() for the squad_v2 task (n added)
    assert QA.score(get_task("squad_v2"), preds, golds)["n"] == 4


# ======================================================================== metrics per task (leaderboard code)

def _golds(answers):
    return [{"id": f"q{i}", "answers": [{"text": a, "answer_start": 0}]} for i, a in enumerate(answers)]


@pytest.mark.parametrize("lang,preds,answers,em,f1", [
    # zh mixed segmentation: "北京市" -> 北 京 市 vs 北 京: P 2/3 R 1 -> F1 0.8; "上海" exact
    ("zh", ["北京市", "上海"], ["北京", "上海"], 1 / 2, (0.8 + 1) / 2),
    # ar: every "ال" removed: "الكتاب" == "كتاب"; "القاهرة الكبرى" -> "قاهرة كبرى" vs "قاهرة": P 1/2 R 1 -> 2/3
    ("ar", ["الكتاب", "القاهرة الكبرى"], ["كتاب", "القاهرة"], 1 / 2, (1 + 2 / 3) / 2),
    # de articles: "der Hund" == "Hund"; "eine große Stadt" == "die große Stadt"
    ("de", ["der Hund", "eine große Stadt"], ["Hund", "die große Stadt"], 1.0, 1.0),
    # es: "la casa" == "casa"; "los perros grandes" vs "perros": P 1/2 R 1 -> 2/3
    ("es", ["la casa", "los perros grandes"], ["casa", "perros"], 1 / 2, (1 + 2 / 3) / 2),
    # vi: "của" is in MLQA's vi article list: "của Hà Nội" == "Hà Nội"; "Huế" vs "Đà Nẵng": 0
    ("vi", ["của Hà Nội", "Huế"], ["Hà Nội", "Đà Nẵng"], 1 / 2, 1 / 2),
    # hi: the danda "।" is Unicode punctuation: "भारत।" == "भारत"; no article rule: "एक देश" vs "देश" -> 2/3
    ("hi", ["भारत।", "एक देश"], ["भारत", "देश"], 1 / 2, (1 + 2 / 3) / 2),
])
def test_mlqa_scores_use_language_aware_normalisation(lang, preds, answers, em, f1):
    out = QA.score(get_task("mlqa"), preds, _golds(answers), lang)
    assert out == pytest.approx({"f1": f1, "exact_match": em, "n": 2})


def test_xquad_scores_use_squad_normalisation_for_every_language():
    # SQuAD v1.1 normalisation is whitespace-based: "北京市" and "北京" are different single tokens -> 0
    # (the zh trap of XQuAD's official scorer, reproduced on purpose)
    out = QA.score(get_task("xquad"), ["北京市", "上海"], _golds(["北京", "上海"]), "zh")
    assert out == pytest.approx({"f1": 1 / 2, "exact_match": 1 / 2, "n": 2})


# ======================================================================== data loading, settings, bad input

def test_tydiqa_languages_come_from_the_id_prefix():
    task = get_task("tydiqa")
    train = QA.load(task, task.train, HUB)
    raw = load_source(task.train, HUB)["id"]
    assert len(train) == sum(i.startswith("english-") for i in raw) < len(raw)  # the English rows, all of them
    assert set(train["lang"]) == {"en"} and all(i.startswith("english-") for i in train["id"])
    test = QA.load(task, task.test, HUB, ["ko", "en", "ar"])
    by = {lang: [i for i, l in zip(test["id"], test["lang"]) if l == lang] for lang in ("ko", "en", "ar")}
    assert all(by.values())
    assert all(i.startswith({"ko": "korean-", "en": "english-", "ar": "arabic-"}[lang]) for lang, ids in by.items()
               for i in ids)


def test_xquad_ro_comes_from_google_xquad():
    task = get_task("xquad")
    ex = QA.load(task, task.test, HUB, ["ro", "en"])
    assert sorted(set(ex["lang"])) == ["en", "ro"] and len(ex) == 60
    assert any("Panthers" in c and "ă" in c for c in ex["context"])


def test_align_answer_fixes_shifted_starts():
    assert QA.align_answer("abc Paris def Paris", "Paris", 4) == (4, 9)
    assert QA.align_answer("abc Paris def Paris", "Paris", 5) == (4, 9)  # XQuAD.ar: one off after strip
    assert QA.align_answer("abc Paris def Paris", "Paris", 13) == (14, 19)
    assert QA.align_answer("abc", "Rome", 0) is None and QA.align_answer("abc", "", 0) is None


def test_settings_and_bad_input(tok):
    with pytest.raises(UsageError, match="doc_stride 60 is too large"):
        QA.check_window(128, 60, 64)
    with pytest.raises(UsageError, match="--n_best_size must be a positive integer"):
        QA.configure(n_best_size=0)
    # parsed arguments: unset fields take the defaults, nothing carries over from an earlier run
    args = lambda **kw: SimpleNamespace(**{**dict.fromkeys(QA.OPTIONS), "max_seq_length": 384, **kw})  # noqa: E731
    assert QA.configure(args(doc_stride=32, max_query_length=32))["max_query_length"] == 32
    assert QA.configure(args(doc_stride=48)) == dict(QA.OPTIONS, doc_stride=48)
    assert QA.SpanQA.from_args(args()).settings(None) == QA.OPTIONS
    ex = examples([("a b c", "q", "b")])
    with pytest.raises(UsageError, match="too large"):
        QA.featurize(ex, tok, 64, None, doc_stride=60, max_query_length=16)
    task = get_task("mlqa")
    with pytest.raises(UsageError, match="no rows for language"):  # SQuAD dev holds English only
        QA.load(task, task.dev, HUB, ["en", "de"])


def test_cli_rejects_a_bad_doc_stride_before_loading(tiny, tmp_path, capsys):
    rc = run_script("run_target", ["--model", str(tiny), "--task", "xquad", "--preset", "tiny", "--data_root", str(HUB),
                                   "--doc_stride", "100", "--output_dir", str(tmp_path / "x")])
    assert rc == 2 and "--doc_stride 100 is too large" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ======================================================================== end to end on the tiny model

COMMON = ["--preset", "tiny", "--data_root", str(HUB), "--max_steps", "4", "--eval_steps_or_epoch", "2",
          "--max_train_samples", "48", "--per_device_eval_batch_size", "64", "--disable_tqdm", "true"]


@pytest.mark.parametrize("task,version,n_langs", [("xquad", "xtreme-r", 12), ("mlqa", "xtreme", 7),
                                                  ("tydiqa", "xtreme", 9)])
def test_target_task_end_to_end_and_leaderboard_scores_agree(tiny, tmp_path, task, version, n_langs):
    out, pred, gold = tmp_path / "run", tmp_path / "pred", tmp_path / "gold"
    assert run_script("run_target", ["--model", str(tiny), "--task", task, *COMMON, "--output_dir", str(out),
                                     "--write_predictions", str(pred), "--write_labels", str(gold)]) == 0
    r = read_results(out / "results.json")
    assert len(r["per_language"]) == n_langs and r["format"] == "span_qa" and r["metric"] == "f1"
    assert r["hyperparameters"]["doc_stride"] == 32 and r["hyperparameters"]["max_seq_length"] == 128
    assert r["selection"]["language"] == "en" and r["selection"]["evaluations"]
    assert all("eval_f1" in ev for ev in r["selection"]["evaluations"])
    # train and dev answer offsets were checked at load, and the counts stored with each source (issue 18)
    by_role = {s["role"]: s for s in r["data"]["sources"]}
    for role in ("train", "dev (checkpoint selection)"):
        offsets = by_role[role]["answer_offsets"]
        assert offsets["answers_checked"] > 0 and offsets["offset_ok"] + offsets["repaired"] + offsets["not_found"] \
            == offsets["answers_checked"]
    for lang, m in r["per_language"].items():
        assert 0 <= m["exact_match"] <= m["f1"] <= 1 and m["n"] > 0
        answers = json.loads((pred / task / f"test-{lang}.json").read_text())
        labels = json.loads((gold / task / f"test-{lang}.json").read_text())["data"]
        ids = [qa["id"] for a in labels for p in a["paragraphs"] for qa in p["qas"]]
        assert list(answers) == ids and len(ids) == m["n"]
        contexts = {qa["id"]: p["context"] for a in labels for p in a["paragraphs"] for qa in p["qas"]}
        assert all(a in contexts[i] for i, a in answers.items())  # answers are context substrings
    # the leaderboard scorer on the written folders gives the numbers of results.json
    scored = score_folders(str(pred), str(gold), version)["detailed"][task]
    for lang, m in r["per_language"].items():
        assert scored["f1"][lang] / 100 == pytest.approx(m["f1"], abs=1e-12)
        assert scored["exact_match"][lang] / 100 == pytest.approx(m["exact_match"], abs=1e-12)


@pytest.mark.parametrize("task", ["squad_v1", "squad_v2"])
def test_intermediate_squad_produces_an_encoder_checkpoint(tiny, tmp_path, task):
    out = tmp_path / task
    argv = ["--model", str(tiny), "--task", task, *COMMON, "--output_dir", str(out)]
    assert run_script("run_intermediate", argv) == 0
    meta = json.loads((out / "xstilts_meta.json").read_text())
    assert meta["finished"] and meta["task"] == task and 0 <= meta["dev_metric"]["f1"] <= 1
    assert meta["encoder_only"] and any(k.startswith("qa_outputs") for k in meta["dropped_head_tensors"])
    assert (out / "model.safetensors").exists()
    evals = meta["selection"]["evaluations"]
    assert evals and all("eval_f1" in ev and "eval_exact_match" in ev for ev in evals)
    if task == "squad_v2":  # the v2 metric with its answerable / unanswerable split
        assert all(ev["eval_HasAns_total"] + ev["eval_NoAns_total"] == 60 and ev["eval_NoAns_total"] > 0
                   for ev in evals)
    else:  # phase 3 starts from the encoder with a fresh QA head
        res = tmp_path / "xquad"
        assert run_script("run_target", ["--model", str(tiny), "--task", "xquad", "--languages", "en,zh", *COMMON,
                                         "--intermediate_checkpoint", str(out), "--output_dir", str(res)]) == 0
        r = read_results(res / "results.json")
        assert r["intermediate_task"] == "squad_v1" and r["handoff"]["transferred_tensors"] > 0
        assert r["handoff"]["fresh_head_tensors"] == ["qa_outputs.bias", "qa_outputs.weight"]
        assert not r["handoff"]["head_found_in_checkpoint_and_reinitialised"]
