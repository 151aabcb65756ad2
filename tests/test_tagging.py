"""Token tagging (UD-POS, PAN-X, CCG): first-sub-word labels, long sentences split and stitched back,
the leaderboard scorer's F1, leaderboard files, local data (UD 2.7, --ccg_dir) and end-to-end runs."""

import json
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, Features, List, Value

from conftest import HUB, run_script
from xstilts.data.sources import DataSettings
from xstilts.errors import UsageError
from xstilts.formats import get_format
from xstilts.formats import token_tagging as TT
from xstilts.prepare import ccg as ccg_lib
from xstilts.prepare import ud27
from xstilts.run.args import get_task, parse_languages
from xstilts.scoring.xtreme import XTREME_R_TASK2LANGS, XTREME_TASK2LANGS, evaluate_one_task, read_tag, score_task
from xstilts.tasks.types import PreparedSource

fmt = get_format("token_tagging")
CCG_DIR = HUB / "local" / "ccg"  # the kit's --ccg_dir format (synthetic), next to its AUTO/ source
UDPOS_FIXTURE_LANGS = ["en", "de", "ar", "hi", "ru", "th", "zh", "pl", "uk", "lt", "ro"]
PANX_FIXTURE_LANGS = ["en", "de", "ar", "hi", "ru", "th", "zh", "pl", "uk", "ro"]


@pytest.fixture(scope="module")
def tokenizer(tiny):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny))


def _examples(sentences, tags=None, lang="en"):
    tags = tags or [["NOUN"] * len(s) for s in sentences]
    return Dataset.from_dict({"tokens": sentences, "tags": tags, "lang": [lang] * len(sentences)})


# ------------------------------------------------------------------------------ featurize / split / stitch

def test_split_pieces_on_word_boundaries():
    assert TT.split_pieces([2, 3, 1, 4], 5) == [(0, 2), (2, 4)]
    assert TT.split_pieces([2, 3, 2, 4], 5) == [(0, 2), (2, 3), (3, 4)]
    assert TT.split_pieces([7, 1], 5) == [(0, 1), (1, 2)]  # a word longer than the budget stands alone
    assert TT.split_pieces([1, 1, 1], 5) == [(0, 3)]
    assert TT.split_pieces([], 5) == []


def test_long_sentences_split_first_subword_labels_and_exact_stitch(tokenizer):
    task = get_task("udpos")
    names = list(task.labels)
    long_words = ("Tom told Mary that the weather in Boston was unbelievably wonderful yesterday afternoon , "
                  "and 我們試試看 เหลือเวลาอีกกี่ชั่วโมง मेरे दादा ओसाका के हैं \u200b Привет мир").split(" ")
    long_words = long_words * 3 + ["end", "\u200b"]  # zero-sub-word tokens (\u200b) must still get a tag
    short = ["A", "short", "one", "."]
    sentences = [long_words, short, [], ["single"]]
    tags = [[names[(i * 7 + j) % len(names)] for j in range(len(s))] for i, s in enumerate(sentences)]
    ex = _examples(sentences, tags)
    max_len = 16
    feats = fmt.featurize(ex, tokenizer, max_len, task, train=False)

    assert max(feats["length"]) <= max_len
    per_example = {}
    for row in feats:
        per_example.setdefault(row["example_id"], []).append(row)
    assert len(per_example[0]) > 3 and len(per_example[1]) == 1 and 2 not in per_example  # empty: no feature
    for ex_id, rows in per_example.items():
        covered = []
        for row in rows:
            for pos, (w, lab, tok_id) in enumerate(zip(row["word_index"], row["labels"], row["input_ids"])):
                if w < 0:
                    assert lab == -100
                    continue
                covered.append(w)
                assert lab == names.index(tags[ex_id][w])  # the label sits on this word's position ...
                word = sentences[ex_id][w]
                first = tokenizer([word], is_split_into_words=True, add_special_tokens=False)["input_ids"]
                expected = first[0] if first else tokenizer.unk_token_id
                assert tok_id == expected  # ... which is the word's first sub-word (unk for an empty word)
        assert covered == list(range(len(sentences[ex_id])))  # every word exactly once, in order

    # stitching: per-position predictions equal to the labels give back every gold tag exactly
    width = max(feats["length"]) + 3  # predictions arrive padded to the longest row
    pred_ids = [[max(l, 0) for l in row["labels"]] + [-100] * (width - len(row["labels"])) for row in feats]
    stitched = TT.stitch(pred_ids, list(feats["example_id"]), list(feats["word_index"]),
                          [len(s) for s in sentences], names)
    assert stitched == tags


def test_stitch_refuses_a_token_without_prediction():
    with pytest.raises(RuntimeError, match="example 0: 1 of 2 tokens got no prediction"):
        TT.stitch([[0, 0]], [0], [[0, -1]], [2], ["X"])


def test_unknown_tag_is_ignored_in_training_but_scored(tokenizer):
    task = get_task("ccg")
    train = fmt.load(task, task.train, DataSettings(option_dirs={"ccg_dir": str(CCG_DIR)}))
    labels = fmt.labels(task)
    counts = {}
    for t in (t for s in train["tags"] for t in s):
        counts[t] = counts.get(t, 0) + 1
    assert labels == tuple(sorted(counts, key=lambda t: (-counts[t], t)))  # most frequent first, ties by name
    assert labels[0] == "N"
    ex = _examples([["Tom", "sleeps", "."]], [["N", "NEVER_SEEN", "."]])
    feats = fmt.featurize(ex, tokenizer, 32, task)
    got = [l for l in feats[0]["labels"] if l != -100]
    assert got == [labels.index("N"), labels.index(".")]
    assert fmt.score(task, [["N", "N", "."]], [["N", "NEVER_SEEN", "."]])["accuracy"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------------ metrics

def test_ner_f1_hand_computed_and_equal_to_the_scorer():
    task = get_task("panx")
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG"]]
    # entities: gold {PER 0-1, LOC 3, ORG 1'} pred {PER 0-1, ORG 3, ORG 1'}: 2 of 3 right both ways
    s = fmt.score(task, pred, gold)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["accuracy"] == pytest.approx(5 / 6) and s["n"] == 2 and s["n_tokens"] == 6
    assert s["f1"] * 100 == pytest.approx(score_task("panx", pred, gold)["f1"], abs=1e-12)


def test_pos_f1_has_the_official_seqeval_quirk():
    """seqeval reads the first letter of a POS tag as the chunk prefix: runs of one tag merge into one chunk."""
    task = get_task("udpos")
    gold = [["NOUN", "NOUN", "VERB", "DET", "NOUN"]]
    pred = [["NOUN", "NOUN", "VERB", "DET", "ADJ"]]
    # chunks gold: OUN(0-1) ERB(2) ET(3) OUN(4); pred: OUN(0-1) ERB(2) ET(3) DJ(4) -> 3/4 both ways
    s = fmt.score(task, pred, gold)
    assert s["f1"] == pytest.approx(0.75) and s["accuracy"] == pytest.approx(0.8)
    # one token wrong inside a merged run loses the whole chunk: F1 0 although accuracy is 2/3
    s2 = fmt.score(task, [["NOUN", "VERB", "VERB"]], [["NOUN", "NOUN", "VERB"]])
    assert s2["f1"] == 0.0 and s2["accuracy"] == pytest.approx(2 / 3)
    assert s["f1"] * 100 == pytest.approx(score_task("udpos", pred, gold)["f1"], abs=1e-12)


def test_leaderboard_files_round_trip_through_the_scorer(tmp_path):
    task = get_task("udpos")
    gold = [["PRON", "VERB", "PUNCT"], [], ["NOUN"], ["DET", "NOUN", "NOUN"]]
    pred = [["PRON", "NOUN", "PUNCT"], [], ["NOUN"], ["DET", "NOUN", "ADJ"]]
    fmt.write(tmp_path / "p", task, "de", pred, None, "test")
    fmt.write(tmp_path / "l", task, "de", gold, None, "test")
    label_file = tmp_path / "l" / "udpos" / "test-de.tsv"
    assert label_file.read_text() == "PRON\nVERB\nPUNCT\n\n\nNOUN\n\nDET\nNOUN\nNOUN\n\n"
    assert read_tag(str(label_file)) == gold  # an empty sentence survives too
    official = evaluate_one_task(str(tmp_path / "p" / "udpos" / "test-de.tsv"), str(label_file), "udpos", "de")
    ours = fmt.score(task, pred, gold)
    assert ours["f1"] * 100 == pytest.approx(official["f1"], abs=1e-12)
    assert ours["precision"] * 100 == pytest.approx(official["precision"], abs=1e-12)


# ------------------------------------------------------------------------------------------- declarations

def test_language_lists_are_the_scorer_tables_and_extra_sources():
    udpos, panx = get_task("udpos"), get_task("panx")
    assert list(udpos.languages) == XTREME_TASK2LANGS["udpos"] and len(udpos.languages) == 33
    assert parse_languages(udpos, "xtreme-r") == XTREME_R_TASK2LANGS["udpos"]
    assert len(parse_languages(udpos, "xtreme-r")) == 38
    assert list(panx.languages) == XTREME_TASK2LANGS["panx"] and len(parse_languages(panx, "xtreme-r")) == 48
    assert sorted(udpos.lang_sources) == ["lt", "pl", "ro", "uk", "wo"]
    assert all(isinstance(s, PreparedSource) and s.hub_id == "local/udpos-ud27" for s in udpos.lang_sources.values())
    assert sorted(panx.lang_sources) == sorted(["qu", "pl", "uk", "az", "lt", "pa", "gu", "ro"])
    assert {s.hub_id for s in panx.lang_sources.values()} == {"unimelb-nlp/wikiann"}
    assert udpos.eval_source("pl").config_for(udpos.code("pl")) == "udpos.Polish"
    assert udpos.test.config_for(udpos.code("zh")) == "udpos.Chinese"


def test_class_label_names_are_checked(tmp_path):
    ds = Dataset.from_dict({"tokens": [["a"]], "pos_tags": [[0]]},
                           features=Features({"tokens": List(Value("string")),
                                              "pos_tags": List(ClassLabel(names=["NOUN", "VERB"]))}))
    with pytest.raises(UsageError, match=r"tag names of field 'pos_tags' are \['NOUN', 'VERB'\], but the registry "
                                         r"expects \['ADJ', 'ADP'"):
        TT._tag_names(ds, "pos_tags", get_task("udpos"), "x")


# --------------------------------------------------------------------------------------- local sources

CONLLU_PL_A = """# sent_id = a1
# text = Miałem kota.
1-2\tMiałem\t_\t_\t_\t_\t_\t_\t_\t_
1\tMiał\tmieć\tVERB\t_\t_\t0\troot\t_\t_
2\tem\tbyć\tAUX\t_\t_\t1\taux\t_\t_
3\tkota\tkot\tNOUN\t_\t_\t1\tobj\t_\tSpaceAfter=No
3.1\tjest\tbyć\t_\t_\t_\t_\t_\t_\t_
4\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_

# sent_id = a2
1\tTak\ttak\tPART\t_\t_\t0\troot\t_\t_

"""
CONLLU_PL_B = "1\tDom\tdom\tNOUN\t_\t_\t0\troot\t_\t_\n\n"


def _ud_release(root: Path) -> Path:
    ud = root / "ud-treebanks-v2.7"
    for rel, text in {"UD_Polish-PDB/pl_pdb-ud-test.conllu": CONLLU_PL_A,
                      "UD_Polish-LFG/pl_lfg-ud-test.conllu": CONLLU_PL_B,
                      "UD_Polish-LFG/pl_lfg-ud-train.conllu": CONLLU_PL_B,
                      "UD_English-EWT/en_ewt-ud-test.conllu": CONLLU_PL_B}.items():
        (ud / rel).parent.mkdir(parents=True, exist_ok=True)
        (ud / rel).write_text(text, encoding="utf-8")
    return ud


def test_ud27_converter_and_prepared_source(tmp_path):
    ud = _ud_release(tmp_path / "dl")
    report = ud27.convert(ud, tmp_path / "root", ["pl"])
    assert report == {"pl": {"pl_lfg-ud-test.conllu": 1, "pl_pdb-ud-test.conllu": 2}}  # sorted by file name
    task = get_task("udpos")
    ex = fmt.load(task, task.test, tmp_path / "root", ["pl"])
    # range line and empty node dropped, syntactic words kept (google/xtreme's reading of UD)
    assert list(ex["tokens"]) == [["Dom"], ["Miał", "em", "kota", "."], ["Tak"]]
    assert list(ex["tags"]) == [["NOUN"], ["VERB", "AUX", "NOUN", "PUNCT"], ["PART"]]
    assert set(ex["lang"]) == {"pl"}
    with pytest.raises(UsageError, match=r"not prepared under --data_root .*Run `make data-udpos-ud27 DATA_DIR="):
        fmt.load(task, task.test, tmp_path / "empty", ["uk"])
    with pytest.raises(UsageError, match="no <lang>_\\*-ud-test.conllu below .* for: uk"):
        ud27.convert(ud, tmp_path / "root", ["uk"])


AUTO_SNIPPET = (
    "ID=wsj_0201.1 PARSER=GOLD NUMPARSE=1\n"
    "(<T S[dcl] 0 2> (<T S[dcl] 1 2> (<T NP 0 1> (<L N NNP NNP Ada N_1>) ) (<T S[dcl]\\NP 0 2> "
    "(<L (S[dcl]\\NP)/NP VBZ VBZ likes (S[dcl]\\NP_2/NP_3)_2>) (<T NP 0 2> (<L NP[nb]/N DT DT the NP[nb]_4/N_4>) "
    "(<L N NNS NNS tag|pipes N>) ) ) ) (<L . . . . .>) )\n"
    "ID=wsj_0201.2 PARSER=GOLD NUMPARSE=1\n"
    "(<T S[dcl] 0 2> (<L NP NNP NNP Bo NP>) (<L S[dcl]\\NP VBZ VBZ runs S[dcl]\\NP>) )\n")


def test_ccg_converter_on_a_hand_written_auto_snippet(tmp_path):
    (tmp_path / "AUTO" / "02").mkdir(parents=True)
    (tmp_path / "AUTO" / "02" / "wsj_0201.auto").write_text(AUTO_SNIPPET)
    (tmp_path / "AUTO" / "00").mkdir(parents=True)
    (tmp_path / "AUTO" / "00" / "wsj_0001.auto").write_text(AUTO_SNIPPET.replace("0201", "0001"))
    report = ccg_lib.convert(tmp_path / "AUTO", tmp_path / "out")
    assert report["train"] == {"file": "train.txt", "sentences": 2, "tokens": 7, "supertags": 6}
    assert "test" not in report  # no section 23: no test.txt
    lines = (tmp_path / "out" / "train.txt").read_text().splitlines()
    assert lines == ["Ada|N likes|(S[dcl]\\NP)/NP the|NP[nb]/N tag|pipes|N .|.", "Bo|NP runs|S[dcl]\\NP"]
    tokens, tags = ccg_lib.read_file(tmp_path / "out" / "train.txt")
    assert tokens[0][3] == "tag|pipes" and tags[0][3] == "N"  # split at the last '|'


def test_ccg_fixture_is_the_conversion_of_its_auto_files(tmp_path):
    ccg_lib.convert(CCG_DIR / "AUTO", tmp_path)
    for name in ("train.txt", "dev.txt", "test.txt"):
        assert (tmp_path / name).read_text() == (CCG_DIR / name).read_text()


@pytest.mark.parametrize("content,message", [
    ("Tom|N sleeps|S\\NP\nTom NP saw\n", r"train.txt, line 2: token 'Tom' is not word\|supertag"),
    ("ID=wsj_0001.1 PARSER=GOLD NUMPARSE=1\n", r"line 1: .*This looks like a CCGbank AUTO file: convert it"),
    ("Tom|N  sleeps|S\\NP\n", r"line 1: empty token"),
    ("\n\n", r"holds no sentence"),
])
def test_ccg_bad_lines_are_named(tmp_path, content, message):
    (tmp_path / "train.txt").write_text(content)
    with pytest.raises(UsageError, match=message):
        ccg_lib.read_file(tmp_path / "train.txt")


# ---------------------------------------------------------------------------------------- end to end

@pytest.fixture
def _no_model_loading(monkeypatch):
    import transformers

    def forbidden(*a, **k):
        raise AssertionError("a model was loaded before input validation finished")

    monkeypatch.setattr(transformers.AutoModelForTokenClassification, "from_pretrained", forbidden)


@pytest.mark.parametrize("argv_extra,ccg_files,message", [
    ([], None, "--ccg_dir is required for this task: CCGbank (LDC2005T13"),
    (["--ccg_dir", "/nonexistent/ccg"], None, "--ccg_dir '/nonexistent/ccg' is not a directory"),
    (["--ccg_dir", "{dir}"], {"train.txt": "Tom|N\n"}, "has no dev.txt"),
    (["--ccg_dir", "{dir}"], {"train.txt": "Tom:N\n", "dev.txt": "Tom|N\n"}, "train.txt, line 1: token 'Tom:N'"),
    (["--ccg_dir", "{dir}"], {"train.txt": "Tom|N\nBo|N\nAda N\n", "dev.txt": "Tom|N\n"}, "train.txt, line 3"),
])
def test_ccg_bad_input_fails_before_training(tiny, tmp_path, capsys, _no_model_loading, argv_extra, ccg_files,
                                             message):
    d = tmp_path / "ccg"
    if ccg_files:
        d.mkdir()
        for name, text in ccg_files.items():
            (d / name).write_text(text)
    out = tmp_path / "ckpt"
    argv = ["--model", str(tiny), "--task", "ccg", "--preset", "tiny", "--output_dir", str(out),
            *[a.replace("{dir}", str(d)) for a in argv_extra]]
    assert run_script("run_intermediate", argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (out / "trainer").exists() and not (out / "xstilts_meta.json").exists()
    if not argv_extra:
        assert "python -m xstilts.ccg convert" in err and "word|supertag" in err


def test_unprepared_ud27_names_the_make_target(tiny, tmp_path, capsys, _no_model_loading):
    argv = ["--model", str(tiny), "--task", "udpos", "--preset", "tiny", "--languages", "en,wo",
            "--data_root", str(HUB), "--output_dir", str(tmp_path / "out")]
    assert run_script("run_target", argv) == 2
    err = capsys.readouterr().err
    assert "no config 'udpos.Wolof'" in err and "written by `make data-udpos-ud27`" in err, err


@pytest.mark.parametrize("task_name,langs", [("udpos", UDPOS_FIXTURE_LANGS), ("panx", PANX_FIXTURE_LANGS)])
def test_target_runs_and_scores_every_fixture_language(tiny, tmp_path, tokenizer, task_name, langs):
    out, pred_dir, label_dir = tmp_path / "run", tmp_path / "preds", tmp_path / "labels"
    argv = ["--model", str(tiny), "--task", task_name, "--languages", ",".join(langs), "--preset", "tiny",
            "--data_root", str(HUB), "--max_steps", "6", "--eval_steps_or_epoch", "3", "--disable_tqdm", "true",
            "--output_dir", str(out), "--write_predictions", str(pred_dir), "--write_labels", str(label_dir)]
    assert run_script("run_target", argv) == 0
    r = json.loads((out / "results.json").read_text())
    assert list(r["per_language"]) == langs
    assert r["selection"]["metric"] == "f1" and r["selection"]["language"] == "en"
    task = get_task(task_name)
    ex = fmt.load(task, task.test, HUB, langs)
    longest = max(len(tokenizer(list(t), is_split_into_words=True)["input_ids"]) for t in ex["tokens"])
    assert longest > r["hyperparameters"]["max_seq_length"]  # long sentences were split and stitched back
    for lang in langs:
        m = r["per_language"][lang]
        gold = [t for t, l in zip(ex["tags"], ex["lang"]) if l == lang]
        assert m["n"] == len(gold) and m["n_tokens"] == sum(map(len, gold))
        assert 0.0 <= m["f1"] <= 1.0 and 0.0 <= m["accuracy"] <= 1.0
        pf = pred_dir / task.xtreme_name / f"test-{lang}.tsv"
        lf = label_dir / task.xtreme_name / f"test-{lang}.tsv"
        assert read_tag(str(lf)) == gold
        assert [len(s) for s in read_tag(str(pf))] == [len(s) for s in gold]  # one tag per gold token
        official = evaluate_one_task(str(pf), str(lf), task.xtreme_name, lang)
        assert m["f1"] * 100 == pytest.approx(official["f1"], abs=1e-12)  # results.json == the scorer
    assert r["average"]["f1"] == pytest.approx(sum(m["f1"] for m in r["per_language"].values()) / len(langs))


def test_ccg_intermediate_saves_an_encoder_and_its_label_set(tiny, tmp_path):
    out = tmp_path / "ccg"
    argv = ["--model", str(tiny), "--task", "ccg", "--preset", "tiny", "--ccg_dir", str(CCG_DIR), "--max_steps", "4",
            "--eval_steps_or_epoch", "2", "--disable_tqdm", "true", "--output_dir", str(out)]
    assert run_script("run_intermediate", argv) == 0
    meta = json.loads((out / "xstilts_meta.json").read_text())
    assert meta["finished"] and meta["encoder_only"] and meta["task"] == "ccg"
    assert set(meta["dev_metric"]) >= {"accuracy"} and meta["selection"]["metric"] == "accuracy" and meta["dev_metric"]["n"] == 20
    train = meta["data"]["train"]
    _, tags = ccg_lib.read_file(CCG_DIR / "train.txt")
    assert train["ccg_dir"] == str(CCG_DIR.resolve()) and train["num_labels"] == len({t for s in tags for t in s})
    assert sorted(train["labels"]) == sorted({t for s in tags for t in s})
    assert all("eval_accuracy" in e for e in meta["selection"]["evaluations"])  # supertag accuracy logged too
    assert (out / "model.safetensors").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert len(cfg.get("id2label", {})) != len(train["labels"])  # no task labels travel with the encoder
