"""Resume after SIGKILL / SIGTERM, settings clashes, checkpoints from another model, label-set changes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import HUB, ROOT, run_script
from xstilts.run.results import read_results
from xstilts.training.trainer import CHECKPOINT_MARKER

STEPS = ["--max_steps", "120", "--eval_steps_or_epoch", "20", "--save_total_limit", "3", "--disable_tqdm", "true",
         "--logging_steps", "20"]


def _args(tiny, out, *extra):
    return ["--model", str(tiny), "--task", "xnli", "--languages", "en,de", "--preset", "tiny", "--data_root",
            str(HUB), "--output_dir", str(out), *STEPS, *extra]


def _start(tiny, out):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "run_target.py", *_args(tiny, out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_checkpoint(proc, out: Path, step: int, timeout: float = 120.0):
    deadline = time.time() + timeout
    target = out / "trainer" / f"checkpoint-{step}" / CHECKPOINT_MARKER  # written last: the checkpoint is complete
    while time.time() < deadline:
        if target.exists():
            return
        if proc.poll() is not None:
            raise AssertionError("run ended before the checkpoint appeared:\n" + proc.stdout.read()[-3000:])
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no checkpoint in time")


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "cell"
    assert run_script("run_target", _args(tiny, out)) == 0
    return read_results(out / "results.json")


def test_sigkill_then_rerun_resumes_to_the_same_metrics(tiny, tmp_path, reference):
    out = tmp_path / "cell"
    proc = _start(tiny, out)
    _wait_for_checkpoint(proc, out, 20)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (out / "results.json").exists()  # a killed cell is never counted as done
    assert run_script("run_target", _args(tiny, out)) == 0
    r = read_results(out / "results.json")
    assert r["timing"]["resumed_from"] is not None and "checkpoint-" in r["timing"]["resumed_from"]
    assert r["per_language"] == reference["per_language"]
    assert r["selection"]["best_metric"] == reference["selection"]["best_metric"]


def test_sigterm_saves_a_checkpoint_exits_143_and_resumes(tiny, tmp_path, reference):
    out = tmp_path / "cell"
    proc = _start(tiny, out)
    _wait_for_checkpoint(proc, out, 20)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=120)
    log = proc.stdout.read()
    assert rc == 143, log[-3000:]
    assert "preempted: stopped at step" in log
    assert not (out / "results.json").exists()
    ckpts = sorted((out / "trainer").glob("checkpoint-*"))
    assert ckpts, "no checkpoint saved on SIGTERM"
    assert run_script("run_target", _args(tiny, out)) == 0
    r = read_results(out / "results.json")
    assert r["timing"]["resumed_from"]
    assert r["per_language"] == reference["per_language"]


def test_same_dir_with_other_settings_is_refused(tiny, tmp_path, capsys, reference):
    out = tmp_path / "cell"
    assert run_script("run_target", _args(tiny, out)) == 0
    rc = run_script("run_target", _args(tiny, out, "--learning_rate", "0.005"))
    assert rc == 2
    err = capsys.readouterr().err
    assert "holds a run with different settings" in err and "learning_rate" in err
    assert run_script("run_target", _args(tiny, out, "--learning_rate", "0.005", "--overwrite")) == 0
    assert read_results(out / "results.json")["hyperparameters"]["learning_rate"] == 0.005


def test_checkpoint_of_another_model_is_refused(tiny_models, tmp_path, capsys):
    fake = tmp_path / "ckpt"
    shutil.copytree(tiny_models["tiny-4l-h128"], fake)
    (fake / "xstilts_meta.json").write_text(json.dumps({"finished": True, "task": "mnli"}))
    rc = run_script("run_target", ["--model", str(tiny_models["tiny-2l-h64"]), "--task", "xnli", "--preset", "tiny",
                                   "--data_root", str(HUB), "--intermediate_checkpoint", str(fake),
                                   "--output_dir", str(tmp_path / "out")])
    assert rc == 2
    assert "trained from another model" in capsys.readouterr().err


def test_unfinished_intermediate_checkpoint_is_refused(tiny, tmp_path, capsys):
    fake = tmp_path / "ckpt"
    shutil.copytree(tiny, fake)
    (fake / "xstilts_meta.json").write_text(json.dumps({"finished": False, "task": "mnli"}))
    rc = run_script("run_target", ["--model", str(tiny), "--task", "xnli", "--preset", "tiny", "--data_root",
                                   str(HUB), "--intermediate_checkpoint", str(fake), "--output_dir", str(tmp_path / "o")])
    assert rc == 2
    assert "is not finished" in capsys.readouterr().err


def test_checkpoint_with_another_label_set_gets_a_fresh_head(tiny, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from xstilts.training.modeling import load_for_task

    two = AutoModelForSequenceClassification.from_pretrained(tiny, num_labels=2)
    two.save_pretrained(tmp_path / "two")
    model, handoff = load_for_task(AutoModelForSequenceClassification, str(tmp_path / "two"), num_labels=3)
    assert model.classifier.out_proj.out_features == 3
    assert handoff["head_found_in_checkpoint_and_reinitialised"] == ["classifier"]


def test_data_root_without_the_needed_config_exits_2(tiny, tmp_path, capsys):
    root = tmp_path / "hub"
    shutil.copytree(HUB / "nyu-mll", root / "nyu-mll")  # no google/xtreme in this mirror
    rc = run_script("run_target", ["--model", str(tiny), "--task", "xnli", "--preset", "tiny", "--data_root",
                                   str(root), "--output_dir", str(tmp_path / "o")])
    assert rc == 2
    assert f"data root {str(root)!r} has no dataset 'google/xtreme'" in capsys.readouterr().err


def test_dataset_with_other_label_names_exits_2_naming_both(tiny, tmp_path, capsys):
    from datasets import ClassLabel, load_dataset

    root = tmp_path / "hub"
    shutil.copytree(HUB, root)
    glue = root / "nyu-mll" / "glue"
    for f in sorted((glue / "mnli").glob("*.parquet")):
        ds = load_dataset("parquet", data_files=str(f), split="train")
        ds = ds.cast_column("label", ClassLabel(names=["agree", "unsure", "disagree"]))
        ds.to_parquet(str(f))
    readme = glue / "README.md"
    readme.write_text(readme.read_text().replace("entailment", "agree").replace("neutral", "unsure")
                      .replace("contradiction", "disagree"))
    rc = run_script("run_intermediate", ["--model", str(tiny), "--task", "mnli", "--preset", "tiny", "--data_root",
                                         str(root), "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "label names of field 'label' are ['agree', 'unsure', 'disagree'], but the registry expects " \
           "['entailment', 'neutral', 'contradiction']" in err


def test_pickled_weights_are_refused(tiny, tmp_path, capsys):
    import torch
    from transformers import AutoConfig, AutoTokenizer

    d = tmp_path / "pickled"
    d.mkdir()
    AutoConfig.from_pretrained(tiny).save_pretrained(d)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(d)
    from safetensors.torch import load_file

    torch.save(load_file(str(tiny / "model.safetensors")), d / "pytorch_model.bin")
    rc = run_script("run_retrieval", ["--model", str(d), "--task", "tatoeba", "--languages", "de", "--data_root",
                                      str(HUB), "--output_dir", str(tmp_path / "o")])
    assert rc == 2
    assert "has no safetensors weights; the kit loads safetensors only" in capsys.readouterr().err


def test_pinned_revision_is_recorded(tiny, tmp_path, monkeypatch):
    from dataclasses import replace

    from xstilts import tasks as registry

    task = registry.TASKS["tatoeba"]
    monkeypatch.setitem(registry.TASKS, "tatoeba", replace(task, test=replace(task.test, revision="abc123")))
    out = tmp_path / "o"
    assert run_script("run_retrieval", ["--model", str(tiny), "--task", "tatoeba", "--languages", "de",
                                        "--data_root", str(HUB), "--output_dir", str(out)]) == 0
    r = read_results(out / "results.json")
    assert r["data"]["sources"][0]["revision"] == "abc123"
