"""Bad input: a clear message naming the value and the valid choices, exit code 2, before any model loads."""

import subprocess
import sys

import pytest

from conftest import HUB, ROOT, run_script

FAST = ["--data_root", str(HUB), "--preset", "tiny"]


@pytest.fixture(autouse=True)
def _no_model_loading(monkeypatch):
    """Any attempt to load weights during these tests is a failure: errors must come first."""
    import transformers

    def forbidden(*a, **k):
        raise AssertionError("a model was loaded before input validation finished")

    for cls in (transformers.AutoModelForSequenceClassification, transformers.AutoModel):
        monkeypatch.setattr(cls, "from_pretrained", forbidden)


@pytest.mark.parametrize("script,argv,message", [
    ("run_target", ["--task", "xnlii", "--model", "tiny-2l-h64"], "unknown task 'xnlii'; valid choices: mnli, xnli, tatoeba"),
    ("run_target", ["--task", "mnli", "--model", "tiny-2l-h64"], "task 'mnli' is an intermediate task: use run_intermediate.py"),
    ("run_target", ["--task", "xnli", "--languages", "en,klingon", "--model", "{tiny}"], "unknown language for task xnli 'klingon'; valid choices: ar, bg, de"),
    ("run_target", ["--task", "xnli", "--model", "xlmr-huge"], "unknown model 'xlmr-huge'; valid choices: xlmr-base, xlmr-large, xlmr-xl, xlmr-xxl, tiny-2l-h64, tiny-4l-h128"),
    ("run_target", ["--task", "xnli", "--model", "{tiny}", "--preset", "jiant"], "unknown preset 'jiant'; valid choices: phang2020, tiny, xtreme"),
    ("run_target", ["--task", "xnli", "--model", "{tiny}", "--data_root", "/nonexistent/root"], "data root '/nonexistent/root' (from --data_root) is not a directory"),
    ("run_target", ["--task", "xnli", "--model", "{tiny}", "--intermediate_checkpoint", "/nonexistent/ckpt"], "intermediate checkpoint '/nonexistent/ckpt' does not exist"),
    ("run_intermediate", ["--task", "xnli", "--model", "{tiny}"], "task 'xnli' is a target task: use run_target.py"),
    ("run_intermediate", ["--task", "qqpp", "--model", "{tiny}"], "unknown task 'qqpp'"),
    ("run_retrieval", ["--task", "tatoeba", "--model", "{tiny}", "--languages", "xx"], "unknown language for task tatoeba 'xx'"),
    ("run_retrieval", ["--task", "tatoeba", "--model", "{tiny}", "--pooling", "max"], "unknown pooling 'max'; valid choices: mean, cls"),
])
def test_bad_input_exits_2_with_named_choices(script, argv, message, tiny, capsys, tmp_path):
    argv = [a.replace("{tiny}", str(tiny)) for a in argv]
    if "--data_root" not in argv:
        argv += ["--data_root", str(HUB)]
    if script != "run_retrieval" and "--preset" not in argv:
        argv += ["--preset", "tiny"]
    argv += ["--output_dir", str(tmp_path / "out")]
    rc = run_script(script, argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_layer_outside_model_is_refused(tiny, capsys, tmp_path, monkeypatch):
    rc = run_script("run_retrieval", ["--task", "tatoeba", "--model", str(tiny), "--data_root", str(HUB),
                                      "--layer", "9", "--output_dir", str(tmp_path)])
    assert rc == 2
    assert "--layer 9 is outside the model: valid hidden_states indices are 0..2" in capsys.readouterr().err


def test_unregistered_model_directory_without_config(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = run_script("run_target", ["--task", "xnli", "--model", str(tmp_path / "empty"), *FAST])
    assert rc == 2
    assert "has no config.json" in capsys.readouterr().err


def test_cli_exit_code_in_a_real_process():
    p = subprocess.run([sys.executable, "run_target.py", "--task", "nope"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2
    assert "error: unknown task 'nope'; valid choices:" in p.stderr
