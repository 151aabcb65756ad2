"""Translated training data (xstilts/tasks/translated.py): the sources' schemas and label order, the converter of
XTREME's translate-train release (xstilts/prepare/translations.py), the translated intermediate tasks, the
translate-train targets (NOT zero-shot: labelled so in results), their grid names, and the bad inputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from datasets import ClassLabel, Features, Value, load_dataset

from conftest import HUB, ROOT, run_script
from xstilts.data.mirror import Mirror
from xstilts.data.sources import DataSettings
from xstilts.errors import UsageError
from xstilts.formats import pair_classification, span_qa
from xstilts.prepare import downloads, translations
from xstilts.run import args as A
from xstilts.run import layout
from xstilts.study.plan import build_grid, check_tasks
from xstilts.tasks import TASKS
from xstilts.tasks import languages as L
from xstilts.tasks.translated import TRANSLATE_TRAIN, TRANSLATIONS_REPO

NLI3 = ["entailment", "neutral", "contradiction"]
XNLI_MT_FEATURES = Features({"premise": Value("string"), "hypothesis": Value("string"),
                             "label": ClassLabel(names=NLI3)})


# ----------------------------------------------------------------------------------------------- schemas
def test_xnli_mt_schema_and_label_order():
    for lang in L.XNLI_MT:
        dd = load_dataset(str(HUB / "facebook" / "xnli"), lang)
        assert list(dd) == ["train", "test", "validation"]  # the Hub's split order
        assert dd["train"].features == XNLI_MT_FEATURES and list(dd["train"].features) == ["premise", "hypothesis",
                                                                                           "label"]
    # the translated task reads them in the kit's NLI order, one language per part
    ex = pair_classification.load(TASKS["mnli_tta"], TASKS["mnli_tta"].train, DataSettings(HUB))
    counts = Counter(ex["lang"])
    assert counts["en"] == 600 and all(counts[l] == 30 for l in L.XNLI_MT) and set(counts) == {"en", *L.XNLI_MT}
    assert set(ex["label"]) == {0, 1, 2}
    tt = pair_classification.load(TASKS["mnli_tt"], TASKS["mnli_tt"].train, DataSettings(HUB), max_samples=28)
    assert Counter(tt["lang"]) == {l: 2 for l in L.XNLI_MT}  # max_samples: the same share of every language


def test_xnli_mt_with_another_label_order_is_refused(tmp_path):
    m = Mirror(tmp_path)
    feats = Features({"premise": Value("string"), "hypothesis": Value("string"),
                      "label": ClassLabel(names=["contradiction", "entailment", "neutral"])})
    for split in ("train", "test", "validation"):
        m.write("facebook/xnli", "de", split, [{"premise": "a", "hypothesis": "b", "label": 0}], feats)
    m.finish(None)
    task = TASKS["xnli"]
    with pytest.raises(UsageError, match=r"label names of field 'label' are \['contradiction', 'entailment', "
                                         r"'neutral'\], but the registry expects \['entailment', 'neutral', "
                                         r"'contradiction'\]"):
        pair_classification.load(task, TRANSLATE_TRAIN["xnli"].sources["de"], DataSettings(tmp_path))


def test_translate_train_release_schema():
    squad = load_dataset(str(HUB / TRANSLATIONS_REPO), "SQuAD.de")["train"]
    assert squad.features == translations.squad_features()
    assert list(squad.features) == ["id", "title", "context", "question", "answers"]
    assert list(squad.features["answers"]) == ["text", "answer_start"]  # rajpurkar/squad's struct order
    manifest = json.loads((HUB / TRANSLATIONS_REPO / translations.MANIFEST).read_text())
    assert set(manifest) == {f"SQuAD.{l}" for l in L.SQUAD_TRANSLATE_TRAIN} | \
        {f"TyDiQA-GoldP.{l}" for l in L.TYDIQA_TRANSLATE_TRAIN}
    ex = span_qa.load(TASKS["squad_v1_tt"], TASKS["squad_v1_tt"].train, DataSettings(HUB))
    assert Counter(ex["lang"]) == {l: 30 for l in L.SQUAD_TRANSLATE_TRAIN}
    ty = span_qa.load(TASKS["tydiqa"], TRANSLATE_TRAIN["tydiqa"].sources["sw"], DataSettings(HUB))
    assert set(ty["lang"]) == {"sw"} and len(ty) == 12


# ----------------------------------------------------------------------------------------------- the converter
def squad_json(*qas, context="Tom bought a red bicycle at the market."):
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": list(qas)}]}]}


def qa(qid, text, start):
    return {"id": qid, "question": "q?", "answers": [{"text": text, "answer_start": start}]}


def test_converter_drops_answers_not_in_the_context_and_counts_misplaced_starts():
    rows, found = translations.squad_rows(squad_json(qa("1", "red bicycle", 13), qa("2", "red bicycle", 0),
                                                     qa("3", "blue car", 13)), "x")
    assert [r["id"] for r in rows] == ["1", "2"]
    assert found == {"questions": 3, "kept": 2, "dropped_answer_not_in_context": 1, "answer_starts_not_at_text": 1}
    with pytest.raises(UsageError, match="question id '1' occurs twice"):
        translations.squad_rows(squad_json(qa("1", "Tom", 0), qa("1", "Tom", 0)), "x")
    with pytest.raises(UsageError, match="not SQuAD-format JSON"):
        translations.squad_rows({"rows": []}, "x")


def test_prepare_verifies_checksums_and_writes_the_prepared_repo(tmp_path, monkeypatch):
    src = tmp_path / "release"
    src.mkdir()
    (src / "squad.translate.train.en-de.json").write_text(json.dumps(squad_json(qa("1", "Tom", 0))))
    release = translations.RELEASES["squad"]
    # the recorded SHA-256 (TFDS's record of the real file) does not match a stand-in: refused
    with pytest.raises(UsageError, match="does not match the recorded d2d0|does not match the recorded 3c125cb2"):
        translations.prepare(release, tmp_path / "data", ["de"], from_dir=src)
    table = json.loads(downloads.CHECKSUMS_FILE.read_text())
    table["xtreme_squad_translate_train"]["files"]["squad.translate.train.en-de.json"] = None
    unrecorded = tmp_path / "checksums.json"
    unrecorded.write_text(json.dumps(table))
    monkeypatch.setattr(downloads, "CHECKSUMS_FILE", unrecorded)
    out = translations.prepare(release, tmp_path / "data", ["de"], from_dir=src)
    assert out["SQuAD.de"]["kept"] == 1 and out["SQuAD.de"]["verified_against"] is None
    ds = load_dataset(str(tmp_path / "data" / TRANSLATIONS_REPO), "SQuAD.de")["train"]
    assert ds[0]["answers"] == {"text": ["Tom"], "answer_start": [0]}
    with pytest.raises(UsageError, match="already exists; pass --overwrite"):
        translations.prepare(release, tmp_path / "data", ["de"], from_dir=src)
    with pytest.raises(UsageError, match="unknown squad translate-train language 'ro'"):
        translations.prepare(release, tmp_path / "data", ["ro"], from_dir=src)


def test_recorded_checksums_cover_every_release_file():
    for release in translations.RELEASES.values():
        files = downloads.kit_checksums(release.checksums)["files"]
        assert set(files) == {release.file.format(lang=l) for l in release.languages}
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in files.values())


# ----------------------------------------------------------------------------------------------- translated phase 2
@pytest.mark.parametrize("task,target,per_lang", [("mnli_tta", "xnli", {"en": 40, **{l: 2 for l in L.XNLI_MT}}),
                                                   ("squad_v1_tt", "xquad", {l: 2 for l in L.SQUAD_TRANSLATE_TRAIN})])
def test_translated_intermediate_task_end_to_end(task, target, per_lang, tiny, tmp_path, capsys):
    ckpt = tmp_path / task
    n = sum(per_lang.values())
    rc = run_script("run_intermediate", ["--model", str(tiny), "--task", task, "--preset", "tiny", "--data_root",
                                         str(HUB), "--max_train_samples", str(n), "--num_train_epochs", "1",
                                         "--output_dir", str(ckpt), "--disable_tqdm", "true"])
    assert rc == 0, capsys.readouterr().err
    meta = json.loads((ckpt / "xstilts_meta.json").read_text())
    assert meta["task"] == task and meta["preset"]["task_entry"] == TASKS[task].variant_of  # the English task's entry
    parts = meta["data"]["train"]["concatenation"]
    assert [p.get("language", "en") for p in parts] == list(per_lang)  # every translation named, in order
    assert meta["data"]["n_train"] == n and meta["data"]["train_rows_per_language"] == per_lang
    rc = run_script("run_target", ["--model", str(tiny), "--intermediate_checkpoint", str(ckpt), "--task", target,
                                   "--languages", "en,de", "--preset", "tiny", "--data_root", str(HUB),
                                   "--max_train_samples", "16", "--num_train_epochs", "1",
                                   "--output_dir", str(tmp_path / target), "--disable_tqdm", "true"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((tmp_path / target / "results.json").read_text())
    assert result["intermediate_task"] == task and result["zero_shot"] is True  # the target itself is zero-shot


# ----------------------------------------------------------------------------------------------- translate-train
def test_train_languages_choices():
    xnli = TASKS["xnli"]
    assert A.parse_train_languages(xnli, "tt") == ("tt", list(L.XNLI_MT))
    assert A.parse_train_languages(xnli, "tta") == ("tta", ["en", *L.XNLI_MT])
    assert A.parse_train_languages(xnli, "en,de,de") == ("en-de", ["en", "de"])
    assert A.parse_train_languages(TASKS["xquad"], "de-zh") == ("de-zh", ["de", "zh"])
    with pytest.raises(UsageError, match="unknown --train_languages language of task xnli .* 'xx'; valid choices: "
                                         "en, ar, bg"):
        A.parse_train_languages(xnli, "de,xx")
    with pytest.raises(UsageError, match="'ro'; valid choices: en, ar, de, el"):
        A.parse_train_languages(TASKS["xquad"], "ro")  # XTREME-R's Romanian has no SQuAD translation
    with pytest.raises(UsageError, match="task 'udpos' has no translated training data; tasks with translations: "
                                         "xnli, pawsx, xquad, mlqa, tydiqa"):
        A.parse_train_languages(TASKS["udpos"], "tt")
    with pytest.raises(UsageError, match="English alone is the zero-shot run"):
        A.parse_train_languages(xnli, "en")


def test_translate_train_target_is_labelled_not_zero_shot(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default output folder: results/<model>/none/xnli@tta/seed1
    rc = run_script("run_target", ["--model", str(tiny), "--task", "xnli", "--train_languages", "de,fr",
                                   "--languages", "en,de", "--preset", "tiny", "--data_root", str(HUB),
                                   "--max_train_samples", "40", "--num_train_epochs", "1", "--disable_tqdm", "true"])
    assert rc == 0, capsys.readouterr().err
    out = tmp_path / "results" / "tiny-2l-h64" / "none" / "xnli@de-fr" / "seed1"
    r = json.loads((out / "results.json").read_text())
    assert r["zero_shot"] is False and r["train_languages"] == ["de", "fr"]
    assert r["translate_train"]["label"] == "de-fr" and "XNLI-MT 1.0" in r["translate_train"]["translation"]
    assert r["translate_train"]["train_rows"] == {"de": 20, "fr": 20}
    assert r["run_settings"]["train_languages"] == ["de", "fr"]
    train = next(s for s in r["data"]["sources"] if s["role"] == "train")
    assert [p["language"] for p in train["concatenation"]] == ["de", "fr"]
    assert r["target_task"] == "xnli" and r["per_language"].keys() == {"en", "de"}


@pytest.mark.parametrize("script,argv,message", [
    ("run_target", ["--task", "xnli", "--train_languages", "de,xx"], "'xx'; valid choices: en, ar, bg, de"),
    ("run_target", ["--task", "udpos", "--train_languages", "tt"], "task 'udpos' has no translated training data"),
    ("run_intermediate", ["--task", "mnli", "--train_languages", "tt"], "--train_languages is for run_target.py"),
    ("run_target", ["--task", "xquad", "--train_languages", "tt", "--data_root", "{empty}"],
     "not prepared under --data_root"),
    ("run_target", ["--task", "xquad", "--train_languages", "de", "--data_root", "{empty}"],
     "Run `make data-squad-translate-train DATA_DIR="),
    ("run_target", ["--task", "xquad", "--train_languages", "de", "--data_root", "{empty}"],
     "or leave de out of --train_languages"),
])
def test_translate_train_bad_input_exits_2_before_any_model_loads(script, argv, message, tiny, tmp_path, capsys,
                                                                  monkeypatch):
    import transformers

    def forbidden(*a, **k):
        raise AssertionError("a model was loaded before input validation finished")

    for cls in (transformers.AutoModelForSequenceClassification, transformers.AutoModelForQuestionAnswering):
        monkeypatch.setattr(cls, "from_pretrained", forbidden)
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{empty}", str(tmp_path / "empty")) for a in argv]
    if "--data_root" not in argv:
        argv += ["--data_root", str(HUB)]
    rc = run_script(script, [*argv, "--model", str(tiny), "--preset", "tiny", "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err


def test_missing_translations_name_the_make_target(tmp_path):
    from xstilts.data.sources import check_source

    with pytest.raises(UsageError, match="make data-squad-translate-train"):
        check_source(TRANSLATE_TRAIN["xquad"].sources["de"], DataSettings(tmp_path))


# ----------------------------------------------------------------------------------------------- grid names
def test_grid_names_of_the_arms(tmp_path):
    check_tasks(["none", "mnli", "mnli+mlm", "mnli+qqp+mlm", "mnli_tt", "mnli_tta", "squad_v1_tt", "squad_v1_tta"],
                ["xnli", "xnli@tta", "xnli@tt", "pawsx@tta", "xquad@tt", "mlqa@tta", "tydiqa@tt", "xnli@en-de"])
    for bad, message in ((["mlm"], "task 'mlm' is an auxiliary phase-2 objective"),
                         (["mlm+mnli"], "list mlm after the task(s) it joins")):
        with pytest.raises(UsageError, match=re.escape(message)):
            check_tasks(bad, ["xnli"])
    for bad, message in (("udpos@tt", "task 'udpos' has no translated training data"), ("xnli@xx", "'xx'"),
                         ("nope@tt", "unknown target task 'nope@tt'")):
        with pytest.raises(UsageError, match=re.escape(message)):
            check_tasks(["none"], [bad])
    g = build_grid("xlmr-base", "none mnli+mlm mnli_tt", "xnli xnli@tta", "1", results=str(tmp_path / "r"))
    assert {c.target for c in g.cells} >= {f"{tmp_path}/r/xlmr-base/mnli+mlm/xnli@tta/seed1/results.json",
                                           f"{tmp_path}/r/xlmr-base/mnli_tt/xnli/seed1/results.json"}
    assert layout.split_target("xnli@tta") == ("xnli", "tta") and layout.split_target("xnli") == ("xnli", None)


def test_make_runs_the_arms_with_their_flags(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    proc = subprocess.run(["make", "--no-print-directory", f"PY={sys.executable}", "-n", "grid", "MODELS=xlmr-base",
                           "INTERMEDIATE=mnli+mlm mnli_tt", "TARGETS=xnli@tta", "SEEDS=1",
                           f"RESULTS={tmp_path}/r", f"CKPTS={tmp_path}/c"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("run_intermediate.py" in l and "--tasks mnli,mlm" in l for l in lines)
    assert any("run_intermediate.py" in l and "--task mnli_tt" in l for l in lines)
    cells = [l for l in lines if "run_target.py" in l]
    assert len(cells) == 2 and all("--task xnli --train_languages tta" in l for l in cells)
    assert any(f"--output_dir {tmp_path}/r/xlmr-base/mnli+mlm/xnli@tta/seed1" in l for l in cells)


def test_plan_prices_the_arms(tmp_path):
    from xstilts.study.plan import render_plan

    g = build_grid("xlmr-base", "none mnli mnli+mlm mnli_tt squad_v1_tta", "xnli xnli@tta", "1",
                   results=str(tmp_path / "r"), ckpts=str(tmp_path / "c"))
    text = render_plan(g, with_status=False)
    assert "No estimate for" not in text
    line = next(l for l in text.splitlines() if "/mnli+mlm/xstilts_meta.json" in l)
    assert "mlm: 0.5 of the batches, 392,702 segments of" in line
    assert "translate-train tta: 15 training sets" in next(l for l in text.splitlines() if "/none/xnli@tta/" in l)
    assert "5,497,828 rows" in next(l for l in text.splitlines() if "/mnli_tt/xstilts_meta.json" in l)


def test_leaderboard_refuses_a_translate_train_result_in_a_zero_shot_cell(tmp_path):
    """A translate-train run given the zero-shot cell's folder by hand (--output_dir) must not reach a leaderboard
    submission of zero-shot transfer."""
    from xstilts.study.leaderboard import gather

    cell = Path(layout.cell_dir("xlmr-base", "none", "xnli", 1, str(tmp_path)))
    for kind in (layout.PREDICTIONS_DIR, layout.LABELS_DIR):
        (cell / kind / TASKS["xnli"].xtreme_name).mkdir(parents=True)
    (cell / layout.RESULTS_FILE).write_text(json.dumps({"zero_shot": False, "train_languages": ["en", "de"]}))
    with pytest.raises(UsageError, match="holds a translate-train result \\(NOT zero-shot: trained on en, de\\)"):
        gather(tmp_path, "xtreme", "xlmr-base", "none", 1, ["xnli"])
