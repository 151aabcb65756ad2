"""Several processes (torchrun, as `LAUNCH="torchrun --nproc_per_node N"` runs the grid on N GPUs) give the same
evaluation as one process: 2 CPU processes with the gloo backend (`--use_cpu true`), learning rate 0 so both runs
hold the same model, and a small evaluation batch so the batches are spread over both processes.

Before the evaluation sampler was made sequential for every world size, transformers 5 served evaluation rows in
a shuffled length-grouped order under several processes: run_target crashed on PAN-X, and the multi-task SQuAD
dev F1 (which maps predictions back to features) came out wrong (0.060 instead of 0.071), so checkpoint
selection on several GPUs could pick the wrong step.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BASE_ENV, HUB, ROOT, make_python
from forkserver import launcher_variable

COMMON = ["--preset", "tiny", "--data_root", str(HUB), "--max_steps", "2", "--eval_steps_or_epoch", "1",
          "--learning_rate", "0", "--disable_tqdm", "true", "--deepspeed", "none", "--use_cpu", "true",
          "--per_device_eval_batch_size", "4"]


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _run(script: str, args: list[str], nproc: int) -> subprocess.CompletedProcess:
    """``python script args`` (nproc 1) or ``torchrun --nproc_per_node N script args``; each process of the script
    starts warm (conftest.make_python: tests/forkserver.py, which takes torchrun's per-process variables)."""
    env = {k: v for k, v in BASE_ENV.items() if not launcher_variable(k)}
    py, env = make_python(env)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                "--master_port", _free_port(), "--no-python"] if nproc > 1 else []
    proc = subprocess.run([*launcher, *py.split(), str(ROOT / f"{script}.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("task,langs", [("panx", "en,de"), ("mlqa", "en,de")])
def test_two_processes_evaluate_like_one(tiny, tmp_path, task, langs):
    out = {}
    for n in (1, 2):
        out[n] = tmp_path / f"{task}-{n}"
        _run("run_target", ["--model", str(tiny), "--task", task, "--languages", langs, *COMMON,
                            "--output_dir", str(out[n])], n)
    one, two = (json.loads((out[n] / "results.json").read_text()) for n in (1, 2))
    assert two["hyperparameters"]["world_size"] == 2 and one["hyperparameters"]["world_size"] == 1
    # the same effective batch (per device x accumulation x processes)
    def effective(r):
        h = r["hyperparameters"]
        return h["per_device_train_batch_size"] * h["gradient_accumulation_steps"] * h["world_size"]

    assert effective(two) == effective(one) == one["hyperparameters"]["effective_train_batch_size"]
    assert two["per_language"] == one["per_language"]  # n per language too: no padded duplicates counted

    def dev(r):
        return [{k: v for k, v in e.items() if k.startswith("eval_") and k != "eval_loss"
                 and "runtime" not in k and "per_second" not in k} for e in r["selection"]["evaluations"]]

    assert dev(two) == dev(one) and dev(one)
    preds = _files(out[1] / "predictions")
    assert preds and _files(out[2] / "predictions") == preds  # byte-identical leaderboard files


def test_two_process_multitask_dev_metrics_match(tiny, tmp_path):
    metas = {}
    for n in (1, 2):
        d = tmp_path / f"mt-{n}"
        _run("run_intermediate", ["--model", str(tiny), "--tasks", "mnli,squad_v1", *COMMON, "--output_dir", str(d)], n)
        metas[n] = json.loads((d / "xstilts_meta.json").read_text())
        assert (d / "model.safetensors").exists()

    def dev(m):
        return [{k: v for k, v in e.items() if k.startswith("eval_") and ("f1" in k or "accuracy" in k)}
                for e in m["selection"]["evaluations"]]

    assert dev(metas[2]) == dev(metas[1])
    assert any("eval_squad_v1_f1" in e for e in dev(metas[1]))


def test_launcher_without_a_backend_is_refused(tiny, tmp_path):
    """torchrun on a machine without GPUs and without --use_cpu: the Trainer would run each process alone (both
    training, both writing the same files); refused before any work, with the fix named."""
    py, env = make_python({k: v for k, v in BASE_ENV.items() if not launcher_variable(k)})
    i = COMMON.index("--use_cpu")
    args = COMMON[:i] + COMMON[i + 2:]
    out = tmp_path / "refused"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           _free_port(), "--no-python", *py.split(), str(ROOT / "run_target.py"), "--model", str(tiny),
                           "--task", "xnli", "--languages", "en", *args, "--output_dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "WORLD_SIZE=2" in proc.stderr and "--use_cpu true" in proc.stderr
    assert not (out / "results.json").exists() and not (out / "trainer").exists()
