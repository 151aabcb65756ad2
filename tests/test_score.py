"""The offline XTREME / XTREME-R scorer (xstilts.scoring.xtreme, xstilts.scoring.qa) against hand-derived values.

Expected numbers are worked out by hand in the comments (or come from the official evaluate_test.py);
they are never produced by the functions under test.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT
from xstilts.scoring import xtreme as S
from xstilts.errors import UsageError
from xstilts.scoring.qa import (mixed_segmentation, mlqa_f1, mlqa_normalize_answer, mlqa_scores,
                                normalize_answer, squad_scores)

MOCK = FIXTURES / "scorer" / "mock"
OFFICIAL = FIXTURES / "scorer" / "official_mock"


def assert_close(actual, expected, path="result"):
    """Same keys in the same order, numbers equal to 1e-12 relative."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for k in expected:
            assert_close(actual[k], expected[k], f"{path}[{k!r}]")
    else:
        assert math.isclose(actual, expected, rel_tol=1e-12, abs_tol=1e-12), f"{path}: {actual} != {expected}"


# ======================================================================== (a) metrics, by hand

def test_squad_em_f1_hand_computed():
    golds = {
        "a": ["Eiffel Tower", "the tower"],        # "the eiffel tower." -> "eiffel tower": EM 1, F1 1
        "b": ["1889"],                             # "in 1889 paris" vs "1889": P 1/3, R 1 -> F1 1/2, EM 0
        "c": ["Berlin", "Germany's capital Berlin"],  # best of F1 2/3 and F1 0.4 -> 2/3, EM 0
        "d": ["krill"],                            # unanswered: 0, still counted
    }
    preds = {"a": "The Eiffel Tower.", "b": "in 1889, Paris", "c": "Berlin Germany", "zzz": "ignored"}
    out = squad_scores(preds, golds)
    assert list(out) == ["exact_match", "f1"]
    assert out["exact_match"] == pytest.approx(100 * 1 / 4)
    assert out["f1"] == pytest.approx(100 * (1 + 0.5 + 2 / 3 + 0) / 4)


def test_squad_normalisation_is_english_only():
    assert normalize_answer("  The Cat's   HAT! ") == "cats hat"
    assert normalize_answer("“Hello”") == "“hello”"  # only ASCII punctuation is removed
    # XQuAD/TyDiQA use it for every language: a Chinese answer is one whitespace token -> F1 0
    assert squad_scores({"q": "电化电池"}, {"q": ["化学电池"]}) == {"exact_match": 0.0, "f1": 0.0}


def test_squad_accepts_squad_format_data():
    data = {"data": [{"paragraphs": [{"qas": [{"id": "x", "answers": [{"text": "a dog"}]},
                                               {"id": "y", "answers": [{"text": "two cats"}]}]}]}]}
    # x: "dog" == "dog" -> 1; y: "cats" vs "two cats": P 1, R 1/2 -> F1 2/3
    assert squad_scores({"x": "the dog", "y": "cats"}, data) == pytest.approx({"exact_match": 50.0, "f1": 100 * (1 + 2 / 3) / 2})


@pytest.mark.parametrize("lang,text,normalised", [
    ("zh", "iPhone 手机", "iphone 手 机"),          # CJK characters are single tokens, Latin runs split on spaces
    ("zh", "《红楼梦》", "红 楼 梦"),               # CJK punctuation (category P) removed
    ("ar", "الكتاب", "كتاب"),                       # the ال prefix
    ("ar", "مالك", "م ك"),                          # ... removed anywhere, also inside a word (official quirk)
    ("de", "Der Rhein, die Stadt", "rhein stadt"),
    ("es", "los Reyes Católicos y una reina", "reyes católicos y reina"),
    ("vi", "những cái bàn của tôi", "bàn tôi"),
    ("hi", "नई दिल्ली।", "नई दिल्ली"),                 # the danda is Unicode punctuation; no articles in hi
    ("en", "“The Eiffel Tower”", "eiffel tower"),   # unlike SQuAD, Unicode quotes are punctuation too
])
def test_mlqa_normalisation(lang, text, normalised):
    assert mlqa_normalize_answer(text, lang) == normalised


def test_mlqa_mixed_segmentation_and_f1():
    assert mixed_segmentation("abc def中文x") == ["abc", "def", "中", "文", "x"]
    # [电 化 电 池] vs [化 学 电 池]: common 电, 化, 池 = 3 -> P = R = 3/4 -> F1 0.75
    assert mlqa_f1("电化电池", "化学电池", "zh") == pytest.approx(0.75)
    golds = {"a": ["红楼梦"], "b": ["化学电池"], "c": ["x"]}
    out = mlqa_scores({"a": "《红楼梦》", "b": "电化电池"}, golds, "zh")  # c unanswered -> 0
    assert out == pytest.approx({"exact_match": 100 / 3, "f1": 100 * (1 + 0.75) / 3})


def test_mlqa_unknown_language_is_named():
    with pytest.raises(ValueError, match=r"unknown MLQA language 'fr'; valid choices: en, es, hi, vi, de, ar, zh"):
        mlqa_scores({"a": "x"}, {"a": ["x"]}, "fr")
    with pytest.raises(ValueError, match="'fr'"):
        mlqa_normalize_answer("x", "fr")


def test_seqeval_pos_chunk_merging_quirk():
    # seqeval reads "NOUN" as tag "N" of type "OUN": identical adjacent POS tags merge into one chunk.
    # gold NOUN NOUN VERB -> chunks (OUN,0-1) (ERB,2); pred NOUN VERB VERB -> (OUN,0) (ERB,1-2): none correct,
    # although 2 of 3 tokens are right.
    assert S.score_task("udpos", [["NOUN", "VERB", "VERB"]], [["NOUN", "NOUN", "VERB"]]) == \
        {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    # pred NOUN NOUN DET NOUN | PRON AUX: 5 chunks; gold NOUN VERB DET NOUN | PRON AUX: 6 chunks; 4 shared
    out = S.score_task("udpos", [["NOUN", "NOUN", "DET", "NOUN"], ["PRON", "AUX"]],
                       [["NOUN", "VERB", "DET", "NOUN"], ["PRON", "AUX"]])
    assert out == pytest.approx({"f1": 100 * 8 / 11, "precision": 80.0, "recall": 100 * 4 / 6})
    # NER: an I- tag after O opens an entity, so it matches B-PER I-PER
    assert S.score_task("panx", [["O", "I-PER", "I-PER"]], [["O", "B-PER", "I-PER"]])["f1"] == 100.0
    # sentences are separated: B-PER at the end of one sentence and I-PER at the start of the next are 2 entities
    out = S.score_task("panx", [["B-PER"], ["I-PER"]], [["B-PER"], ["O"]])
    assert out == pytest.approx({"f1": 100 * 2 / 3, "precision": 50.0, "recall": 100.0})


def test_accuracy_bucc_mewslix_by_hand():
    assert S.score_task("xnli", ["a", "b", "c", "d"], ["a", "b", "x", "d"]) == {"accuracy": 75.0}
    assert S.score_task("tatoeba", ["3", "1", "2"], ["3", "2", "2"]) == pytest.approx({"accuracy": 200 / 3})
    assert S.score_task("xcopa", [0, 1, 1, 0, 0], [0, 1, 0, 0, 1]) == pytest.approx({"accuracy": 60.0})
    # gold 4 pairs, predicted 5, 3 right: P 3/5, R 3/4, F1 2/3
    out = S.score_task("bucc2018", ["a\t1", "b\t2", "c\t3", "d\t9", "e\t5"], ["a\t1", "b\t2", "c\t3", "d\t4"])
    assert out == pytest.approx({"f1": 200 / 3, "precision": 60.0, "recall": 75.0})
    # MRR@20: rank 2 -> 1/2; gold at rank 21 -> 0; missing -> 0
    preds = {"m0": ["Q9", "Q1"], "m1": [f"x{i}" for i in range(20)] + ["Q2"]}
    assert S.score_task("mewslix", preds, {"m0": ["Q1"], "m1": ["Q2"], "m2": ["Q3"]}) == \
        pytest.approx({"map@20": 100 * 0.5 / 3})
    assert S.task_metric("mlqa", {"exact_match": 40.0, "f1": 60.0}) == 50.0
    assert S.task_metric("panx", {"f1": 70.0, "precision": 1.0, "recall": 2.0}) == 70.0


# ================================================================ (b) whole folders, by hand

# The language lists as printed in google-research/xtreme evaluate.py @ 838c13b.
OFFICIAL_XTREME = {
    "pawsx": "de,en,es,fr,ja,ko,zh",
    "xnli": "ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh",
    "panx": "ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,yo,my,zh,kk,tr,et,fi,hu",
    "udpos": "af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,ur,vi,yo,zh",
    "bucc2018": "de,fr,ru,zh",
    "tatoeba": "ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,et,fi,hu",
    "xquad": "en,es,de,el,ru,tr,ar,vi,th,zh,hi",
    "mlqa": "en,es,de,ar,hi,vi,zh",
    "tydiqa": "en,ar,bn,fi,id,ko,ru,sw,te",
}
OFFICIAL_XTREME_R = {
    "xnli": OFFICIAL_XTREME["xnli"],
    "panx": OFFICIAL_XTREME["panx"] + ",qu,pl,uk,az,lt,pa,gu,ro",
    "udpos": OFFICIAL_XTREME["udpos"] + ",lt,pl,uk,wo,ro",
    "tatoeba": OFFICIAL_XTREME["tatoeba"] + ",az,lt,pl,uk,ro",
    "xcopa": "et,ht,id,it,qu,sw,ta,th,tr,vi,zh",
    "lareqa": "",
    "mewslix": "ar,de,en,es,fa,ja,pl,ro,ta,tr,uk",
    "xquad": OFFICIAL_XTREME["xquad"] + ",ro",
    "mlqa": OFFICIAL_XTREME["mlqa"],
    "tydiqa": OFFICIAL_XTREME["tydiqa"],
}


def test_tables_match_the_official_script():
    for mine, official in ((S.XTREME_TASK2LANGS, OFFICIAL_XTREME), (S.XTREME_R_TASK2LANGS, OFFICIAL_XTREME_R)):
        assert list(mine) == list(official)
        assert {t: ",".join(v) for t, v in mine.items()} == official
    assert S.XTREME_GROUP2TASK == {"classification": ["pawsx", "xnli"], "tagging": ["udpos", "panx"],
                                   "qa": ["xquad", "mlqa", "tydiqa"], "retrieval": ["bucc2018", "tatoeba"]}
    assert S.XTREME_R_GROUP2TASK == {"classification": ["xnli", "xcopa"], "tagging": ["udpos", "panx"],
                                     "qa": ["xquad", "mlqa", "tydiqa"], "retrieval": ["tatoeba", "mewslix"],
                                     "multi_choice": ["xcopa"]}


def _acc(*xs):
    return [{"accuracy": x} for x in xs]


def _prf(*triples):
    return [{"f1": f, "precision": p, "recall": r} for f, p, r in triples]


def _qa(*pairs):
    return [{"exact_match": e, "f1": f} for e, f in pairs]


# Per-template scores of tests/fixtures/scorer/build_mock.py, worked out by hand (see its comments).
TEMPLATES = {
    "xnli": _acc(75.0, 40.0, 100.0),          # 3/4; 2/5; 2/2
    "pawsx": _acc(75.0, 40.0, 100.0),         # 3/4; 2/5; 2/2
    "tatoeba": _acc(25.0, 100.0, 60.0),       # 1/4; 4/4; 3/5
    "xcopa": _acc(50.0, 100.0, 20.0),         # 2/4; 3/3; 1/5
    # T0 identical; T1 6 vs 6 chunks, 4 shared; T2 5 predicted, 6 gold, 4 shared: F1 = 2*.8*(2/3)/(.8+2/3) = 8/11
    "udpos": _prf((100.0, 100.0, 100.0), (200 / 3, 200 / 3, 200 / 3), (800 / 11, 80.0, 200 / 3)),
    # T3 1 of 2 predicted, 3 gold: P 1/2, R 1/3, F1 0.4; T4 3/3; T5 nothing predicted -> 0
    "panx": _prf((40.0, 50.0, 100 / 3), (100.0, 100.0, 100.0), (0.0, 0.0, 0.0)),
    # 3 of 5 predicted, 4 gold; 2/2; 0; 2 of 4 predicted, 5 gold: F1 = 2*.5*.4/.9 = 4/9
    "bucc2018": _prf((200 / 3, 60.0, 75.0), (100.0, 100.0, 100.0), (0.0, 0.0, 0.0), (400 / 9, 50.0, 40.0)),
    "mewslix": [{"map@20": 25.0}, {"map@20": 50.0}, {"map@20": 100.0}],  # (1/2+0)/2; (1+0)/2; 1
    # Q0: (1 + 0) / 2 EM, (1 + 1/2) / 2 F1; Q1: one right, one unanswered; Q2: EM 0, F1 max(2/3, 0.4)
    "xquad": _qa((50.0, 75.0), (50.0, 50.0), (0.0, 200 / 3)),
    "tydiqa": _qa((50.0, 75.0), (50.0, 50.0), (0.0, 200 / 3)),
}
SPECIAL = {
    ("xquad", "zh"): {"exact_match": 0.0, "f1": 0.0},  # Chinese under SQuAD normalisation: one token each
    # MLQA, two questions per language: EM (1 + 0) / 2 everywhere; F1 (1 + x) / 2 with
    # en "apple pie"/"apple" x=2/3; es "ciudad de madrid"/"madrid" x=1/2; de "stadt berlin"/"berlin" 2/3;
    # ar "محمد أمين"/"أمين" 2/3; hi "भारत की राजधानी"/"राजधानी" 1/2; vi "hà nội việt nam"/"hà nội" 2/3;
    # zh first question F1 0.75 ([电 化 电 池] vs [化 学 电 池]) and an exact second one: (0.75 + 1) / 2
    ("mlqa", "en"): {"exact_match": 50.0, "f1": 100 * (1 + 2 / 3) / 2},
    ("mlqa", "es"): {"exact_match": 50.0, "f1": 75.0},
    ("mlqa", "de"): {"exact_match": 50.0, "f1": 100 * (1 + 2 / 3) / 2},
    ("mlqa", "ar"): {"exact_match": 50.0, "f1": 100 * (1 + 2 / 3) / 2},
    ("mlqa", "hi"): {"exact_match": 50.0, "f1": 75.0},
    ("mlqa", "vi"): {"exact_match": 50.0, "f1": 100 * (1 + 2 / 3) / 2},
    ("mlqa", "zh"): {"exact_match": 50.0, "f1": 87.5},
}
QA = ("xquad", "mlqa", "tydiqa")


def expected_scores(official_langs, groups):
    """Independent re-derivation: per-language template scores -> per-task averages -> groups."""
    full_r = {t: v.split(",") for t, v in OFFICIAL_XTREME_R.items() if v}
    detailed = {}
    for task, langs in official_langs.items():
        langs = langs.split(",") if langs else []
        order = full_r.get(task, langs)  # templates were assigned by index in the longest list
        per_lang = {}
        for lg in langs:
            per_lang[lg] = SPECIAL.get((task, lg)) or TEMPLATES[task][order.index(lg) % len(TEMPLATES[task])]
        entry = {}
        for lg, scores in per_lang.items():
            for m, v in scores.items():
                entry.setdefault(m, {})[lg] = v
        for m in list(entry):
            entry[f"avg_{m}"] = sum(entry[m].values()) / len(entry[m])
        if task in QA:
            entry["avg_metric"] = (entry["avg_exact_match"] + entry["avg_f1"]) / 2
        elif langs:
            entry["avg_metric"] = entry[next(k for k in ("avg_f1", "avg_accuracy", "avg_map@20") if k in entry)]
        detailed[task] = entry
    overall = {}
    if all("avg_metric" in e for e in detailed.values()):
        overall["all_task"] = sum(e["avg_metric"] for e in detailed.values()) / len(detailed)
    for g, tasks in groups.items():
        overall[g] = sum(detailed[t]["avg_metric"] for t in tasks) / len(tasks)
    return {"overall": overall, "detailed": detailed}


def test_mock_fixture_is_what_build_mock_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_mock", FIXTURES / "scorer" / "build_mock.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(tmp_path / "mock")

    def snap(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert snap(tmp_path / "mock") == snap(MOCK)


def test_mock_folders_xtreme(capsys):
    out = S.score_folders(str(MOCK / "predictions"), str(MOCK / "labels"), "xtreme")
    exp = expected_scores(OFFICIAL_XTREME, S.XTREME_GROUP2TASK)
    assert_close(out, exp)
    # spot checks of the hand derivation itself
    assert out["detailed"]["bucc2018"]["avg_f1"] == pytest.approx((200 / 3 + 100 + 0 + 400 / 9) / 4)
    assert out["detailed"]["xquad"]["avg_exact_match"] == pytest.approx(350 / 11)  # 3 x Q0, 4 x Q1 -> 50 each
    assert out["detailed"]["mlqa"]["avg_metric"] == pytest.approx((50 + (4 * 250 / 3 + 150 + 87.5) / 7) / 2)
    assert list(out["overall"]) == ["all_task", "classification", "tagging", "qa", "retrieval"]
    err = capsys.readouterr().err
    assert "ignoring task folder(s) not in xtreme: lareqa, mewslix, xcopa" in err
    assert "unanswered question(s) in" in err and "xquad/test-es.json" in err


def test_mock_folders_xtreme_r_has_no_all_task(capsys):
    out = S.score_folders(str(MOCK / "predictions"), str(MOCK / "labels"), "xtreme-r")
    exp = expected_scores(OFFICIAL_XTREME_R, S.XTREME_R_GROUP2TASK)
    assert "all_task" not in exp["overall"]  # lareqa has no metric in evaluate.py
    assert_close(out, exp)
    assert out["detailed"]["lareqa"] == {}
    assert list(out["overall"]) == ["classification", "tagging", "qa", "retrieval", "multi_choice"]
    assert out["overall"]["multi_choice"] == out["detailed"]["xcopa"]["avg_metric"] == pytest.approx(660 / 11)  # 3 x (50 + 100 + 20) + 50 + 100
    err = capsys.readouterr().err
    assert "all_task not computed: task(s) lareqa have no metric" in err
    assert "ignoring task folder(s) not in xtreme-r: bucc2018, pawsx" in err


def test_official_mock_data_reproduces_evaluate_test_values():
    """BUCC and MLQA cases of google-research/xtreme mock_test_data; values from its evaluate_test.py."""
    out = S.score_folders(str(OFFICIAL / "predictions"), str(OFFICIAL / "labels"), "xtreme")
    bucc, mlqa = out["detailed"]["bucc2018"], out["detailed"]["mlqa"]
    assert {k: v for k, v in bucc.items() if k.startswith("avg_") and k != "avg_metric"} == \
        {"avg_f1": 55.0, "avg_precision": 55.0, "avg_recall": 55.0}
    assert {k: v for k, v in mlqa.items() if k.startswith("avg_") and k != "avg_metric"} == \
        {"avg_exact_match": 57.142857142857146, "avg_f1": 81.76870748299321}
    assert out["overall"] == {}  # no group is complete


def _copy_tasks(tmp_path, *tasks):
    pred, lab = tmp_path / "pred", tmp_path / "lab"
    for t in tasks:
        shutil.copytree(MOCK / "predictions" / t, pred / t)
        shutil.copytree(MOCK / "labels" / t, lab / t)
    return pred, lab


def test_missing_task_folder_is_skipped_with_a_warning(tmp_path, capsys):
    pred, lab = _copy_tasks(tmp_path, "pawsx", "xnli", "tatoeba")
    shutil.rmtree(lab / "tatoeba")
    out = S.score_folders(str(pred), str(lab), "xtreme")
    assert list(out["detailed"]) == ["pawsx", "xnli"]
    assert list(out["overall"]) == ["classification"]
    assert out["overall"]["classification"] == pytest.approx((505 / 7 + 1075 / 15) / 2)
    err = capsys.readouterr().err
    assert "tatoeba (no folder in labels)" in err and "udpos (no folder in predictions and labels)" in err
    assert "all_task not computed" in err


def test_output_file_has_the_official_layout(tmp_path, capsys):
    pred, lab = _copy_tasks(tmp_path, "bucc2018")
    report = tmp_path / "report.json"
    assert S.main(["--prediction_folder", str(pred), "--label_folder", str(lab), "--output_file", str(report)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["overall", "detailed"]
    assert json.loads(report.read_text()) == printed["detailed"]  # overall is empty here; merged dict


# ======================================================================= (c) bad input is loud

def test_missing_language_file_is_named(tmp_path):
    pred, lab = _copy_tasks(tmp_path, "xnli")
    (pred / "xnli" / "test-sw.tsv").unlink()
    with pytest.raises(UsageError, match=r"task xnli .*missing: .*pred/xnli/test-sw\.tsv"):
        S.score_folders(str(pred), str(lab), "xtreme")


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    pred, lab = _copy_tasks(tmp_path, "xnli")
    with open(pred / "xnli" / "test-bg.tsv", "a") as f:
        f.write("neutral\n")  # template 1: 5 gold lines, now 6 predictions
    with pytest.raises(UsageError) as e:
        S.score_folders(str(pred), str(lab), "xtreme")
    msg = str(e.value)
    assert str(pred / "xnli" / "test-bg.tsv") in msg and str(lab / "xnli" / "test-bg.tsv") in msg
    assert "has 6" in msg and "has 5" in msg


def test_tagging_count_mismatches(tmp_path):
    pred, lab = _copy_tasks(tmp_path, "udpos")
    with open(pred / "udpos" / "test-af.tsv", "a") as f:
        f.write("\nNOUN\n")  # one more sentence: 3 predicted vs 2 gold
    with pytest.raises(UsageError, match=r"number of sentences differs in task udpos: .*test-af\.tsv has 3, .*test-af\.tsv has 2"):
        S.score_folders(str(pred), str(lab), "xtreme")
    with pytest.raises(UsageError, match=r"sentence 1 of task panx has 2 tags in predictions but 1 in labels"):
        S.score_task("panx", [["O", "O"]], [["O"]])


def test_unknown_task_folder_lists_valid_ones(tmp_path):
    pred, lab = _copy_tasks(tmp_path, "xnli")
    (pred / "xnlii").mkdir()
    with pytest.raises(UsageError, match=r"unknown task folder 'xnlii' in prediction folder .*; valid task folders: pawsx, xnli, panx"):
        S.score_folders(str(pred), str(lab), "xtreme")


def test_unknown_version_and_folder(tmp_path):
    with pytest.raises(UsageError, match=r"unknown xtreme_version 'xtreme-x'; valid choices: xtreme, xtreme-r"):
        S.score_folders(str(MOCK / "predictions"), str(MOCK / "labels"), "xtreme-x")
    with pytest.raises(UsageError, match=r"prediction folder '/nonexistent' is not a directory"):
        S.score_folders("/nonexistent", str(MOCK / "labels"), "xtreme")
    with pytest.raises(UsageError, match=r"task tatoeba: p\.tsv and l\.tsv are empty"):
        S.score_task("tatoeba", [], [], prediction_name="p.tsv", label_name="l.tsv")
    with pytest.raises(UsageError, match=r"unknown task 'ner'"):
        S.score_task("ner", [], [])


def test_bad_qa_and_xcopa_files(tmp_path):
    pred, lab = _copy_tasks(tmp_path, "xcopa")
    (pred / "xcopa" / "test-ht.jsonl").write_text('{"label": 1}\n\n')
    with pytest.raises(UsageError, match=r"test-ht\.jsonl line 2: expected a JSON object with a 'label' field"):
        S.score_folders(str(pred), str(lab), "xtreme-r")
    with pytest.raises(UsageError, match=r"question 'q' in preds\.json has no gold answers"):
        S.score_task("xquad", {"q": "x"}, {"q": []}, prediction_name="preds.json")


def test_cli_exits_2_with_error_message():
    proc = subprocess.run(
        [sys.executable, "-m", "xstilts.score", "--prediction_folder", str(MOCK / "predictions"),
         "--label_folder", str(MOCK / "labels"), "--xtreme_version", "xtreme-x"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown xtreme_version 'xtreme-x'; valid choices: xtreme, xtreme-r")
    assert proc.stdout == ""


# ============================================= (d) LAReQA mAP@20 and the XTREME-R overall score (extension)

def test_lareqa_average_precision_at_20_by_hand():
    ap = S.average_precision_at_k
    assert ap({"a", "b"}, ["a", "x", "b"]) == pytest.approx((1 / 1 + 2 / 3) / 2)  # hits at ranks 1 and 3
    assert ap({"a"}, ["x", "y", "a"]) == pytest.approx(1 / 3)
    assert ap({"a", "b"}, ["a", "a", "b"]) == pytest.approx((1 + 2 / 3) / 2)  # a repeated candidate counts once
    assert ap({"a"}, [f"x{i}" for i in range(20)] + ["a"]) == 0.0  # rank 21 is outside the top 20
    # 25 relevant, the top 20 all relevant: the divisor is min(25, 20) = 20, so AP = 1
    assert ap({f"t{i}" for i in range(25)}, [f"t{i}" for i in range(20)]) == pytest.approx(1.0)
    # 11 relevant (one answer sentence per language), 2 found at ranks 2 and 4: (1/2 + 2/4) / 11
    assert ap({f"{l}_1_0" for l in "ar de el en es hi ru th tr vi zh".split()},
              ["x", "de_1_0", "y", "zh_1_0"]) == pytest.approx(1 / 11)
    # mean over the labelled questions; a question without prediction scores 0; extra predictions are ignored
    labels = {"q1": ["a", "b"], "q2": ["c"], "q3": ["d"]}
    preds = {"q1": ["a", "x", "b"], "q2": ["x", "y", "c"], "other": ["d"]}
    assert S.score_task("lareqa", preds, labels) == pytest.approx({"map@20": 100 * (5 / 6 + 1 / 3 + 0) / 3})
    with pytest.raises(UsageError, match=r"lareqa: question 'q1' has no relevant candidate"):
        S.score_task("lareqa", {}, {"q1": []})
    with pytest.raises(UsageError, match=r"lareqa: .* must be JSON objects keyed by question id"):
        S.score_task("lareqa", [["a"]], [["a"]])


# Two hand-made LAReQA files, assigned by the language's index in LAREQA_LANGS (even: L0, odd: L1):
# L0: q1 relevant {a, b} ranked a x b -> (1 + 2/3) / 2 = 5/6; q2 relevant {c} ranked x y c -> 1/3; mean 7/12
# L1: q1 relevant {a} ranked a -> 1; q2 relevant {b, c}, no prediction -> 0; mean 1/2
LAREQA_FILES = [
    ({"q1": ["a", "x", "b"], "q2": ["x", "y", "c"]}, {"q1": ["a", "b"], "q2": ["c"]}, 100 * 7 / 12),
    ({"q1": ["a"]}, {"q1": ["a"], "q2": ["b", "c"]}, 50.0),
]


def _xtreme_r_folder_with_lareqa(tmp_path):
    tasks = [t for t in S.XTREME_R_TASK2LANGS if t != "lareqa"]
    pred, lab = _copy_tasks(tmp_path, *tasks)
    for i, lg in enumerate(S.LAREQA_LANGS):
        p, g, _ = LAREQA_FILES[i % 2]
        for root, obj in ((pred, p), (lab, g)):
            (root / "lareqa").mkdir(exist_ok=True)
            (root / "lareqa" / f"test-{lg}.json").write_text(json.dumps(obj))
    return pred, lab


def test_xtreme_r_overall_score_with_lareqa_on_known_folder(tmp_path, capsys):
    pred, lab = _xtreme_r_folder_with_lareqa(tmp_path)
    out = S.score_folders(str(pred), str(lab), "xtreme-r")

    exp = expected_scores(OFFICIAL_XTREME_R, S.XTREME_R_GROUP2TASK)  # the 9 other tasks, derived by hand above
    per_lang = {lg: LAREQA_FILES[i % 2][2] for i, lg in enumerate("ar de el en es hi ru th tr vi zh".split())}
    lareqa_avg = (6 * 100 * 7 / 12 + 5 * 50) / 11  # 6 languages with 7/12, 5 with 1/2 = 600/11
    assert lareqa_avg == pytest.approx(600 / 11)
    exp["detailed"]["lareqa"] = {"map@20": per_lang, "avg_map@20": lareqa_avg, "avg_metric": lareqa_avg}
    # XTREME-R overall = evaluate.py's all_task over its 10 tasks: unweighted mean of the task scores
    all_task = sum(e["avg_metric"] for e in exp["detailed"].values()) / 10
    exp["overall"] = {"all_task": all_task, **exp["overall"]}
    assert_close(out, exp)
    assert list(out["overall"]) == ["all_task", "classification", "tagging", "qa", "retrieval", "multi_choice"]
    # the groups are evaluate.py's: its retrieval group is Tatoeba + Mewsli-X (LAReQA is not in it)
    d = out["detailed"]
    assert out["overall"]["retrieval"] == pytest.approx((d["tatoeba"]["avg_metric"] + d["mewslix"]["avg_metric"]) / 2)
    assert out["overall"]["all_task"] == pytest.approx(
        (sum(d[t]["avg_metric"] for t in S.XTREME_R_TASK2LANGS if t != "lareqa") + 600 / 11) / 10)
    assert "all_task not computed" not in capsys.readouterr().err

    assert S.main(["--prediction_folder", str(pred), "--label_folder", str(lab), "--xtreme_version", "xtreme-r"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["overall"]["all_task"] == pytest.approx(all_task)
    assert printed["detailed"]["lareqa"]["avg_metric"] == pytest.approx(600 / 11)


def test_lareqa_needs_every_xquad_r_language(tmp_path):
    pred, lab = _xtreme_r_folder_with_lareqa(tmp_path)
    (pred / "lareqa" / "test-th.json").unlink()
    with pytest.raises(UsageError, match=r"task lareqa \(xtreme-r\) needs test-<lang>\.json for every language "
                                          r"\(ar, de, el, en, es, hi, ru, th, tr, vi, zh\); missing: .*pred/lareqa/test-th\.json"):
        S.score_folders(str(pred), str(lab), "xtreme-r")
