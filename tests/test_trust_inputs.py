"""Inputs the kit must not trust blindly (issue 17): a local mirror that changed, a damaged data file or
checkpoint, a bad flag value. Each case is either seen (the data actually read is used) or refused with a
clear message (exit 2, the bad value or file named, before any model loads); never a stale or silent result.

Mirrors are copies of tests/fixtures/hub under tmp_path; no test here trains or loads a model's weights.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import HUB, run_script
from xstilts.formats import pair_classification as PCF
from xstilts.errors import UsageError
from xstilts.formats import get_format
from xstilts.run.args import get_task, parse_languages
from xstilts.tasks import TASKS


# ------------------------------------------------------------------------------------------------ helpers

def copy_repo(tmp_path: Path, repo: str = "google/xtreme") -> Path:
    """A data root holding a copy of one fixture repo; returns the root."""
    root = tmp_path / "hub"
    shutil.copytree(HUB / repo, root / repo)
    return root


def data_file(root: Path, repo: str, config: str, split: str) -> Path:
    """The one parquet file of a fixture split (the layout xstilts.data.mirror writes)."""
    f = root / repo / config / f"{split}-00000-of-00001.parquet"
    assert f.is_file(), f
    return f


def rewrite(path: Path, change) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def flip_string_labels(table: pa.Table) -> pa.Table:
    """PAWS-X labels are the strings '0'/'1': swap them."""
    flipped = pa.array(["1" if v == "0" else "0" for v in table["label"].to_pylist()], table.schema.field("label").type)
    return table.set_column(table.schema.get_field_index("label"), "label", flipped)


@pytest.fixture(autouse=True)
def _no_model_loading(monkeypatch):
    """Loading weights in these tests is a failure: every refusal must come before."""
    import transformers

    def forbidden(*a, **k):
        raise AssertionError("a model was loaded before input validation finished")

    for cls in (transformers.AutoModelForSequenceClassification, transformers.AutoModel,
                transformers.AutoModelForTokenClassification, transformers.AutoModelForQuestionAnswering):
        monkeypatch.setattr(cls, "from_pretrained", forbidden)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A model directory with a config only: enough for argument checks, which must never need weights."""
    from transformers import XLMRobertaConfig

    d = tmp_path_factory.mktemp("config_only_model")
    XLMRobertaConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16).save_pretrained(d)
    return d


# ------------------------------------------------- 1. the datasets cache follows the data actually read

PAWSX = get_task("pawsx")


def load_pawsx_de(root: Path):
    return PCF.load(PAWSX, PAWSX.test, root, ["de"])


def test_a_second_mirror_with_other_labels_is_read_not_the_cached_first(tmp_path):
    first = load_pawsx_de(HUB)["label"]
    assert len(set(first)) == 2
    root = copy_repo(tmp_path)
    rewrite(data_file(root, "google/xtreme", "PAWS-X.de", "test"), flip_string_labels)
    assert load_pawsx_de(root)["label"] == [1 - v for v in first]


def test_a_file_changed_in_place_is_seen_even_with_its_old_mtime(tmp_path):
    root = copy_repo(tmp_path)
    f = data_file(root, "google/xtreme", "PAWS-X.de", "test")
    before = load_pawsx_de(root)["label"]
    st = f.stat()
    rewrite(f, flip_string_labels)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same path, same mtime: only the content differs
    assert load_pawsx_de(root)["label"] == [1 - v for v in before]


def test_an_unchanged_mirror_reuses_the_cache_and_featurized_caches_follow_the_data(tmp_path, tiny):
    from xstilts.training.modeling import load_tokenizer

    fmt, tok = get_format("pair_classification"), load_tokenizer(str(tiny))
    root = copy_repo(tmp_path)
    ex1 = load_pawsx_de(root)
    feats1 = fmt.featurize(ex1, tok, 64)
    folder = Path(ex1.cache_files[0]["filename"]).parent
    files = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    ex2 = load_pawsx_de(root)  # nothing changed: the same cache files, nothing written
    feats2 = fmt.featurize(ex2, tok, 64)
    assert ex2.cache_files == ex1.cache_files and feats2.cache_files == feats1.cache_files
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == files

    rewrite(data_file(root, "google/xtreme", "PAWS-X.de", "test"), flip_string_labels)
    ex3 = load_pawsx_de(root)
    feats3 = fmt.featurize(ex3, tok, 64)
    assert ex3.cache_files != ex1.cache_files and feats3.cache_files != feats1.cache_files
    assert feats3["labels"] == [1 - v for v in feats1["labels"]]


# ------------------------------------------------------------- 2. damaged or incomplete mirror files

# (task, language, repo, config, split, a column the README declares): one evaluation source per format
FORMAT_SOURCES = [
    ("pawsx", "de", "google/xtreme", "PAWS-X.de", "test", "sentence2"),
    ("panx", "de", "google/xtreme", "PAN-X.de", "test", "ner_tags"),
    ("xquad", "de", "google/xtreme", "XQuAD.de", "validation", "answers"),
    ("xcopa", "et", "cambridgeltl/xcopa", "et", "test", "choice2"),
    ("lareqa", "de", "local/lareqa", "xquad_r.de", "test", "sentences"),
]


def load_eval(task_name: str, lang: str, root: Path):
    task = get_task(task_name)
    return get_format(task.format).load(task, task.eval_source(lang), root, [lang])


@pytest.mark.parametrize("task,lang,repo,config,split,column", FORMAT_SOURCES)
def test_a_parquet_without_a_declared_column_is_named(tmp_path, task, lang, repo, config, split, column):
    root = copy_repo(tmp_path, repo)
    f = data_file(root, repo, config, split)
    rewrite(f, lambda t: t.drop_columns([column]))
    declares = "dataset_info:" in (root / repo / "README.md").read_text()  # else the first file's columns rule
    reference = rf"README.md \(config '{config}'\) declares" if declares else r"\(the first file of config .*\) has"
    with pytest.raises(UsageError, match=rf"{f.name} lacks column\(s\) {column} that .*{reference}"):
        load_eval(task, lang, root)


@pytest.mark.parametrize("task,lang,repo,config,split,column", FORMAT_SOURCES)
def test_an_empty_split_is_named(tmp_path, task, lang, repo, config, split, column):
    root = copy_repo(tmp_path, repo)
    f = data_file(root, repo, config, split)
    rewrite(f, lambda t: t.slice(0, 0))
    with pytest.raises(UsageError, match=rf"{f.name} \(split '{split}' of config '{config}'\) holds 0 rows"):
        load_eval(task, lang, root)


@pytest.mark.parametrize("task,lang,repo,config,split,column", FORMAT_SOURCES)
def test_a_corrupt_parquet_is_named(tmp_path, task, lang, repo, config, split, column):
    root = copy_repo(tmp_path, repo)
    f = data_file(root, repo, config, split)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # cut short, as by a full disk
    with pytest.raises(UsageError, match=rf"{f.name} is not a readable parquet file .*corrupt or truncated"):
        load_eval(task, lang, root)


def test_readme_split_sizes_and_listed_files_are_checked(tmp_path):
    root = copy_repo(tmp_path)
    f = data_file(root, "google/xtreme", "PAWS-X.de", "test")
    rewrite(f, lambda t: t.slice(0, 5))
    with pytest.raises(UsageError, match=r"split 'test' of config 'PAWS-X.de' holds 5 rows .* says 24"):
        load_pawsx_de(root)
    f.unlink()
    with pytest.raises(UsageError, match=r"lists 'PAWS-X.de/test-00000-of-00001.parquet' for split 'test', but no "
                                         r"such file exists"):
        load_pawsx_de(root)


def test_a_partial_mirror_without_the_readmes_first_config_is_named(tmp_path):
    root = copy_repo(tmp_path)
    readme = (root / "google/xtreme/README.md").read_text()
    first = readme.split("configs:", 1)[1].split("config_name:", 1)[1].split()[0]
    assert first != "PAWS-X.de"
    shutil.rmtree(root / "google/xtreme" / first)
    with pytest.raises(UsageError, match=rf"google/xtreme/{first}/.* is missing. `datasets` opens the first config"):
        load_pawsx_de(root)


def test_a_requested_language_without_rows_is_named(tmp_path):
    """XNLI keeps every language in one file: a language with no rows would score an empty set at the end."""
    root = copy_repo(tmp_path)
    relabel = lambda t: t.set_column(t.schema.get_field_index("language"), "language", pa.array(
        ["en" if v == "de" else v for v in t["language"].to_pylist()]))  # the German rows become English
    rewrite(data_file(root, "google/xtreme", "XNLI", "test"), relabel)
    xnli = get_task("xnli")
    with pytest.raises(UsageError, match=r"task xnli: no rows for language\(s\) de in google/xtreme/XNLI\[test\]"):
        PCF.load(xnli, xnli.test, root, ["de", "en"])


def test_a_corrupt_mirror_is_refused_by_the_script_before_any_model_loads(tmp_path, model_dir, capsys):
    root = copy_repo(tmp_path)
    f = data_file(root, "google/xtreme", "PAWS-X.de", "test")
    f.write_bytes(b"not parquet")
    rc = run_script("run_target", ["--task", "pawsx", "--languages", "de", "--model", str(model_dir), "--preset",
                                   "tiny", "--data_root", str(root), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"error: {f} is not a readable parquet file" in err


def test_an_empty_bucc_file_is_refused_before_any_model_loads(tmp_path, model_dir, capsys):
    """An empty test sentence file was mined as "no pairs" and reported as a finished F1 of 0.00."""
    root = copy_repo(tmp_path, "local/bucc2018")
    empty = root / "local/bucc2018/de-en.test.de"
    empty.write_text("\n")
    rc = run_script("run_retrieval", ["--task", "bucc2018", "--languages", "de", "--model", str(model_dir),
                                      "--data_root", str(root), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"error: BUCC 2018 de-en test: {empty} is empty" in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------- damaged phase-2 checkpoint weights

def make_checkpoint(path: Path, model_dir: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    shutil.copytree(model_dir, path)
    save_file({"roberta.embeddings.word_embeddings.weight": torch.zeros(50, 8)}, str(path / "model.safetensors"))
    (path / "xstilts_meta.json").write_text(json.dumps({"finished": True, "task": "mnli"}))
    return path


def test_a_truncated_checkpoint_weights_file_is_named(tmp_path, model_dir, capsys):
    from xstilts.training.modeling import check_intermediate_checkpoint

    ckpt = make_checkpoint(tmp_path / "ckpt", model_dir)
    assert check_intermediate_checkpoint(str(ckpt))["finished"]  # whole: accepted
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # a copy cut short
    with pytest.raises(UsageError, match=r"model.safetensors is damaged .*truncated"):
        check_intermediate_checkpoint(str(ckpt))
    rc = run_script("run_target", ["--task", "pawsx", "--languages", "de", "--model", str(model_dir), "--preset",
                                   "tiny", "--data_root", str(HUB), "--intermediate_checkpoint", str(ckpt),
                                   "--output_dir", str(tmp_path / "out")])
    assert rc == 2 and "model.safetensors is damaged" in capsys.readouterr().err


def test_a_sharded_checkpoint_missing_a_shard_is_named(tmp_path, model_dir):
    from xstilts.training.modeling import check_intermediate_checkpoint

    ckpt = make_checkpoint(tmp_path / "ckpt", model_dir)
    (ckpt / "model.safetensors").rename(ckpt / "model-00001-of-00002.safetensors")
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(UsageError, match=r"lacks its weights file model-00002-of-00002.safetensors"):
        check_intermediate_checkpoint(str(ckpt))


# ----------------------------------------------------------------------- prediction files for the scorer

def test_a_non_utf8_prediction_file_is_named_by_the_scorer(tmp_path, capsys):
    from conftest import FIXTURES
    from xstilts import score

    mock = FIXTURES / "scorer" / "mock"
    pred, lab = tmp_path / "pred", tmp_path / "lab"
    shutil.copytree(mock / "predictions" / "xnli", pred / "xnli")
    shutil.copytree(mock / "labels" / "xnli", lab / "xnli")
    bad = pred / "xnli" / "test-de.tsv"
    lines = bad.read_bytes().split(b"\n")
    lines[2] = "entailment\u00e9".encode("latin-1")  # a Latin-1 byte (0xe9) on line 3
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(SystemExit) as e:
        score.main(["--prediction_folder", str(pred), "--label_folder", str(lab)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad} is not UTF-8 text: byte 0xe9" in err and "(line 3)" in err


# ------------------------------------------------------------------------------ 3. flags and their values

def target_argv(model_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["--task", "pawsx", "--languages", "de", "--model", str(model_dir), "--preset", "tiny", "--data_root",
            str(HUB), "--output_dir", str(tmp_path / "out"), *extra]


@pytest.mark.parametrize("script", ["run_target", "run_intermediate", "run_retrieval"])
def test_a_misspelt_flag_names_the_closest_one(script, model_dir, tmp_path, capsys):
    task = {"run_target": "pawsx", "run_intermediate": "mnli", "run_retrieval": "tatoeba"}[script]
    rc = run_script(script, ["--task", task, "--model", str(model_dir), "--data_root", str(HUB),
                             "--output_dir", str(tmp_path / "out"), "--langauges", "en"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "error: unknown argument '--langauges' (did you mean --languages?)" in err


@pytest.mark.parametrize("flags,message", [
    (["--max_train_samples", "0"], "--max_train_samples 0: expected a number of examples >= 1"),
    (["--max_train_samples", "-1"], "--max_train_samples -1: expected a number of examples >= 1"),
    (["--max_eval_samples", "0"], "--max_eval_samples 0: expected a number of examples >= 1"),
    (["--eval_steps_or_epoch", "0"], "--eval_steps_or_epoch '0': expected 'epoch' or a whole number of steps >= 1"),
    (["--eval_steps_or_epoch", "-25"], "--eval_steps_or_epoch '-25': expected 'epoch' or a whole number"),
    (["--eval_steps_or_epoch", "0.5"], "--eval_steps_or_epoch '0.5': expected 'epoch' or a whole number"),
    (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size 0: expected a whole number >= 1"),
    (["--per_device_eval_batch_size", "-8"], "--per_device_eval_batch_size -8: expected a whole number >= 1"),
    (["--effective_train_batch_size", "0"], "--effective_train_batch_size 0: expected a whole number >= 1"),
    (["--effective_train_batch_size", "-32"], "--effective_train_batch_size -32: expected a whole number >= 1"),
    (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps 0: expected a whole number >= 1"),
    (["--max_seq_length", "0"], "--max_seq_length 0: expected a whole number >= 1"),
    (["--num_train_epochs", "0"], "--num_train_epochs 0.0: the run would train zero steps"),
    (["--num_train_epochs", "-2"], "--num_train_epochs -2.0: the run would train zero steps"),
    (["--max_steps", "0"], "--max_steps 0: expected a number of optimizer steps >= 1, or -1"),
    (["--max_steps", "-5", "--num_train_epochs", "1"], "--max_steps -5: expected a number of optimizer steps"),
    (["--learning_rate=-1e-5"], "--learning_rate -1e-05: expected a learning rate > 0"),
])
def test_bad_numbers_are_refused_before_any_work(flags, message, model_dir, tmp_path, capsys):
    rc = run_script("run_target", target_argv(model_dir, tmp_path, *flags))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"error: {message}" in err
    assert not (tmp_path / "out").exists()


def test_a_bad_value_from_a_preset_names_the_preset(model_dir, tmp_path, monkeypatch, capsys):
    from xstilts.run import presets as preset_files

    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "broken.json").write_text(json.dumps({"name": "broken", "defaults": {"learning_rate": -0.001},
                                                     "tasks": {"pawsx": {"num_train_epochs": 1}}}))
    monkeypatch.setattr(preset_files, "PRESETS", presets)
    rc = run_script("run_target", [a if a != "tiny" else "broken" for a in target_argv(model_dir, tmp_path)])
    assert rc == 2
    assert "error: --learning_rate -0.001 (from preset 'broken'): expected a learning rate > 0" in capsys.readouterr().err


def test_max_steps_alone_may_replace_epochs():
    """--num_train_epochs 0 is fine when --max_steps N >= 1 sets the length (Trainer: max_steps wins)."""
    from types import SimpleNamespace

    from xstilts.run.args import check_values

    data = SimpleNamespace(max_train_samples=None, max_eval_samples=None, max_seq_length=64)
    kit = SimpleNamespace(effective_train_batch_size=16, eval_steps_or_epoch="epoch")
    train = SimpleNamespace(per_device_train_batch_size=8, per_device_eval_batch_size=8, gradient_accumulation_steps=1,
                            learning_rate=1e-3, max_steps=5, num_train_epochs=0)
    check_values(data, kit, train, {"max_steps", "num_train_epochs"}, "tiny")  # no error
    train.max_steps = -1
    with pytest.raises(UsageError, match="train zero steps"):
        check_values(data, kit, train, {"num_train_epochs"}, "tiny")


def test_repeated_languages_are_stored_once():
    xnli = get_task("xnli")
    assert parse_languages(xnli, "en,de,de") == ["en", "de"]
    assert parse_languages(xnli, " de , en,de,en ") == ["de", "en"]


@pytest.mark.parametrize("script,phase,must", [
    ("run_target", "target", ["xnli", "xlmr-large", "phang2020"]),
    ("run_intermediate", "intermediate", ["mnli", "xlmr-large", "phang2020"]),
    ("run_retrieval", "retrieval", ["tatoeba", "bucc2018", "xlmr-large"]),
])
def test_help_lists_the_phase_tasks_models_and_presets(script, phase, must, capsys):
    from xstilts.run.presets import available_presets
    from xstilts.run.models import registry

    assert run_script(script, ["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for word in must:
        assert word in out
    listed = out.split(f"Valid {phase} tasks: ", 1)[1].split(". ", 1)[0].split(", ")
    assert listed == [t.name for t in TASKS.values() if t.phase == phase]  # from the registry, this phase only
    assert f"Registry names: {', '.join(registry())}." in out
    if script != "run_retrieval":  # retrieval has no hyperparameter presets
        assert f"Valid presets: {', '.join(available_presets())}." in out
