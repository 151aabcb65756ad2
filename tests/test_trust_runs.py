"""The run lifecycle never lets a wrong number through (issue 17): interrupted --overwrite, one run per output
directory (lock), exact resume from any checkpoint (mid-epoch, pair task and QA, multi-task), no result from an
untrained head, incomplete checkpoints, Ctrl-C, read-only and full output directories, the smaller points
(refusal wording, settings differences, umask, a corrupted settings file).

A kill is simulated in-process by a callback that raises right after checkpoint N was saved (what SIGKILL at
that moment leaves behind), SIGTERM by sending the real signal to the test process during training.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import HUB, ROOT, run_script
from xstilts.errors import UsageError
from xstilts.run.results import read_results

XNLI = ["--task", "xnli", "--languages", "en,de", "--preset", "tiny", "--data_root", str(HUB),
        "--max_train_samples", "96", "--num_train_epochs", "2", "--eval_steps_or_epoch", "4",
        "--save_total_limit", "2", "--disable_tqdm", "true", "--logging_steps", "4"]  # 6 steps an epoch, 12 in all
XQUAD = ["--task", "xquad", "--languages", "en,de", "--preset", "tiny", "--data_root", str(HUB),
         "--max_train_samples", "40", "--num_train_epochs", "2", "--eval_steps_or_epoch", "3",
         "--save_total_limit", "2", "--disable_tqdm", "true", "--logging_steps", "3"]
MULTITASK = ["--tasks", "mnli,qqp", "--preset", "tiny", "--data_root", str(HUB), "--max_train_samples", "48",
             "--max_eval_samples", "24", "--num_train_epochs", "2", "--eval_steps_or_epoch", "3",
             "--save_total_limit", "2", "--disable_tqdm", "true"]  # 6 batches an epoch


class Killed(BaseException):
    """The simulated kill: not an Exception, so nothing in the kit catches it."""


@pytest.fixture
def stop_at(monkeypatch):
    """``stop_at(step, how)``: the next training run stops at ``step``: ``"kill"`` raises ``Killed`` right after
    checkpoint-``step`` is saved, ``"sigterm"`` sends SIGTERM to this process at the start of that step,
    ``"ctrl-c"`` raises KeyboardInterrupt after checkpoint-``step``."""
    from transformers import TrainerCallback

    from xstilts.training.trainer import Preemption, preemption_callback_class

    def arm(step: int, how: str = "kill"):
        class Stop(preemption_callback_class()):
            def on_step_begin(self, args, state, control, **kwargs):
                if how == "sigterm" and state.global_step == step - 1:
                    os.kill(os.getpid(), signal.SIGTERM)

            def on_save(self, args, state, control, **kwargs):
                if state.global_step == step and how == "kill":
                    raise Killed()
                if state.global_step == step and how == "ctrl-c":
                    raise KeyboardInterrupt()

        assert issubclass(Stop, TrainerCallback)
        monkeypatch.setattr(Preemption, "callback", lambda self: Stop(self))

    yield arm
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _target(tiny, out, common, *extra) -> int:
    return run_script("run_target", ["--model", str(tiny), *common, "--output_dir", str(out), *extra])


def _same_run(a: dict, b: dict) -> None:
    """Per-language metrics, the selected checkpoint and every English dev evaluation are identical."""
    assert b["per_language"] == a["per_language"]
    assert b["average"] == a["average"]
    for key in ("best_checkpoint", "best_metric", "global_step"):
        assert b["selection"][key] == a["selection"][key], key

    def evals(r):  # every dev number (loss included: it moves with any change in the training batches)
        return [{k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k}
                for e in r["selection"]["evaluations"]]

    assert evals(b) == evals(a) and evals(a)


def _messages(stderr: str) -> list[str]:
    """The script's own lines on stderr (not the libraries' progress bars)."""
    return [line for line in stderr.splitlines() if line.startswith(("error:", "interrupted", "preempted:"))]


@pytest.fixture(scope="module")
def xnli_reference(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("xnli-ref") / "cell"
    assert _target(tiny, out, XNLI) == 0
    return read_results(out / "results.json")


# ================================================================ 3. resume is exact from any checkpoint
def test_kill_mid_epoch_then_resume_in_a_moved_directory_gives_the_same_result(tiny, tmp_path, stop_at,
                                                                               xnli_reference):
    """Killed right after checkpoint-8 (epoch 2 of 2, step 2 of 6), the directory then moved: the resumed run
    trains on the same batches, selects the same checkpoint and reports the same numbers. (Before: epoch 2 was
    shuffled from the fresh process's random state, and the best checkpoint's recorded path was lost.)"""
    out = tmp_path / "cell"
    stop_at(8, "kill")
    with pytest.raises(Killed):
        _target(tiny, out, XNLI)
    assert not (out / "results.json").exists()
    moved = tmp_path / "moved"
    shutil.move(str(out), str(moved))
    assert _target(tiny, moved, XNLI) == 0
    r = read_results(moved / "results.json")
    assert r["timing"]["resumed_from"].endswith("checkpoint-8")
    _same_run(xnli_reference, r)
    assert r["resume"]["resumed_from"].endswith("checkpoint-8") and r["resume"]["warnings"] == []


def test_sigterm_mid_epoch_qa_resumes_to_the_same_selection(tiny, tmp_path, stop_at):
    """xquad: SIGTERM at step 7 (not an evaluation step; epoch 2 of 2, step 2 of 5) -> checkpoint-7, exit 143;
    the re-run reports what an uninterrupted run reports."""
    ref = tmp_path / "ref"
    assert _target(tiny, ref, XQUAD) == 0
    reference = read_results(ref / "results.json")
    steps = reference["selection"]["global_step"]
    assert steps == 10  # 5 an epoch: the stop is inside the second epoch
    out = tmp_path / "cell"
    stop_at(7, "sigterm")
    assert _target(tiny, out, XQUAD) == 143
    assert (out / "trainer" / "checkpoint-7").is_dir() and not (out / "results.json").exists()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert _target(tiny, out, XQUAD) == 0
    r = read_results(out / "results.json")
    assert r["timing"]["resumed_from"].endswith("checkpoint-7")
    _same_run(reference, r)


def test_multitask_kill_mid_epoch_resumes_exactly_with_the_mixture_record(tiny, tmp_path, stop_at):
    """Multi-task phase 2 (MixtureBatchSampler): killed after checkpoint-9 (epoch 2 of 2); the resumed run's
    dev metrics, selection and batches drawn per task equal the uninterrupted run's (the count used to restart
    at 0 on resume)."""
    from xstilts.training.modeling import read_meta

    ref = tmp_path / "ref"
    assert run_script("run_intermediate", ["--model", str(tiny), *MULTITASK, "--output_dir", str(ref)]) == 0
    out = tmp_path / "cell"
    stop_at(9, "kill")
    with pytest.raises(Killed):
        run_script("run_intermediate", ["--model", str(tiny), *MULTITASK, "--output_dir", str(out)])
    assert not (out / "xstilts_meta.json").exists()
    assert run_script("run_intermediate", ["--model", str(tiny), *MULTITASK, "--output_dir", str(out)]) == 0
    a, b = read_meta(str(ref)), read_meta(str(out))
    assert b["selection"]["best_checkpoint"] == a["selection"]["best_checkpoint"]
    assert b["selection"]["evaluations"] and [
        {k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k} for e in b["selection"]["evaluations"]
    ] == [{k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k} for e in a["selection"]["evaluations"]]
    assert b["dev_metric"] == a["dev_metric"]
    assert b["multitask"]["batches_drawn"] == a["multitask"]["batches_drawn"]
    assert a["global_step"] == 12
    assert sum(a["multitask"]["batches_drawn"].values()) == 12 * a["hyperparameters"]["gradient_accumulation_steps"]
    assert b["resume"]["resumed_from"].endswith("checkpoint-9")


def test_resumed_epoch_reaches_every_sampler_under_the_multi_process_wrappers():
    """Under several processes accelerate wraps the batch sampler in BatchSamplerShard, and on resume in
    SkipBatchSampler: neither passes set_epoch on, so the resumed epoch was drawn as epoch 0."""
    from accelerate.data_loader import BatchSamplerShard, SkipBatchSampler
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    from xstilts.training.multitask import MixtureBatchSampler
    from xstilts.training.trainer import _length_grouped_sampler_class, _set_epoch_everywhere

    mixture = MixtureBatchSampler([10, 6], [0.5, 0.5], batch_size=2, num_batches=8, seed=1)
    loader = DataLoader(list(range(16)), batch_sampler=SkipBatchSampler(BatchSamplerShard(mixture, 2, 0), 1))
    _set_epoch_everywhere(loader, 3)
    assert mixture.epoch == 3
    grouped = _length_grouped_sampler_class()(4, lengths=list(range(40)), seed=1)
    loader = DataLoader(list(range(40)), batch_sampler=SkipBatchSampler(
        BatchSamplerShard(BatchSampler(grouped, 4, False), 2, 0), 2))
    _set_epoch_everywhere(loader, 2)
    assert grouped.epoch == 2
    # the order of an epoch is a function of (seed, epoch) only, whatever the global random state
    import torch

    torch.manual_seed(0)
    first = list(grouped)
    torch.manual_seed(123)
    assert list(grouped) == first
    grouped.set_epoch(3)
    assert list(grouped) != first
    assert list(SequentialSampler(range(3))) == [0, 1, 2]


# ================================================================ 5. incomplete checkpoints
def test_half_written_latest_checkpoint_is_skipped_and_resume_is_exact(tiny, tmp_path, stop_at, xnli_reference,
                                                                       caplog):
    """A kill during a save (or a full disk) leaves checkpoint-12 without trainer_state.json: the re-run used
    to crash on it every time. Now it resumes from checkpoint-8, says so, and reports the uninterrupted
    numbers."""
    out = tmp_path / "cell"
    stop_at(8, "kill")
    with pytest.raises(Killed):
        _target(tiny, out, XNLI)
    half = out / "trainer" / "checkpoint-12"
    half.mkdir()
    shutil.copy(out / "trainer" / "checkpoint-8" / "model.safetensors", half / "model.safetensors")
    assert _target(tiny, out, XNLI) == 0
    r = read_results(out / "results.json")
    assert r["resume"]["incomplete_checkpoints_removed"] == ["checkpoint-12"]
    assert r["timing"]["resumed_from"].endswith("checkpoint-8")
    assert "checkpoint-12 is incomplete" in caplog.text
    _same_run(xnli_reference, r)


def test_full_disk_during_a_save_is_one_clear_error_and_the_checkpoint_is_recognisably_incomplete(
        tiny, tmp_path, monkeypatch, capsys, xnli_reference):
    """ENOSPC while checkpoint-8 is being written: exit 2 with one line naming where, no traceback;
    checkpoint-8 has no completion marker; the re-run resumes from checkpoint-4 to the uninterrupted result."""
    import transformers

    from xstilts.training.trainer import checkpoint_is_complete

    out = tmp_path / "cell"
    real = transformers.Trainer._save_optimizer_and_scheduler

    def full_disk(self, output_dir):
        if output_dir.endswith("checkpoint-8"):
            raise OSError(errno.ENOSPC, "No space left on device", os.path.join(output_dir, "optimizer.pt"))
        return real(self, output_dir)

    monkeypatch.setattr(transformers.Trainer, "_save_optimizer_and_scheduler", full_disk)
    assert _target(tiny, out, XNLI) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(_messages(err)) == 1, err
    assert _messages(err)[0].startswith("error: no space left") and "no space left" in err and str(out / "trainer" / "checkpoint-8") in err
    assert "checkpoint-4" in err  # where the re-run resumes
    ckpt = out / "trainer" / "checkpoint-8"
    assert (ckpt / "model.safetensors").exists() and not checkpoint_is_complete(ckpt)
    assert checkpoint_is_complete(out / "trainer" / "checkpoint-4")
    monkeypatch.setattr(transformers.Trainer, "_save_optimizer_and_scheduler", real)
    assert _target(tiny, out, XNLI) == 0
    r = read_results(out / "results.json")
    assert r["resume"]["incomplete_checkpoints_removed"] == ["checkpoint-8"]
    _same_run(xnli_reference, r)


# ================================================================ 6. Ctrl-C, read-only directory
def test_ctrl_c_is_one_line_with_the_checkpoint_and_exit_130(tiny, tmp_path, stop_at, capsys):
    out = tmp_path / "cell"
    stop_at(4, "ctrl-c")
    try:
        rc = _target(tiny, out, XNLI)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped the script (traceback)")
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err
    assert _messages(err) == [f"interrupted (Ctrl-C): latest complete checkpoint: "
                                        f"{out / 'trainer' / 'checkpoint-4'}; re-run the same command to resume "
                                        f"from it"]
    assert not (out / "xstilts.lock").exists()  # released


def test_read_only_output_dir_exits_2_before_any_work(tiny, tmp_path, monkeypatch, capsys):
    """A read-only output directory: exit 2 naming it, before a model or dataset loads. As root, permission bits
    do not stop writes: the test then makes the file system refuse (EROFS) writes below that directory."""
    import run_target

    ro = tmp_path / "ro"
    ro.mkdir()
    out = ro / "cell"
    if os.geteuid() != 0:
        ro.chmod(0o555)
    else:
        real_open, real_mkdir = os.open, Path.mkdir

        def under_ro(path) -> bool:
            return str(path).startswith(str(ro))

        def read_only_open(path, flags, *args, **kwargs):
            if under_ro(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise OSError(errno.EROFS, "Read-only file system", str(path))
            return real_open(path, flags, *args, **kwargs)

        def read_only_mkdir(self, *args, **kwargs):
            if under_ro(self):
                raise OSError(errno.EROFS, "Read-only file system", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only_open)
        monkeypatch.setattr(Path, "mkdir", read_only_mkdir)

    def no_load(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(run_target, "load_tokenizer", no_load)
    try:
        rc = _target(tiny, out, XNLI)
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err
    assert rc == 2 and "is not writable" in err and str(out) in err, err


# ================================================================ 2. one run per output directory
def _start(tiny, out, *extra) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "run_target.py", "--model", str(tiny), *XNLI, "--output_dir", str(out),
                             *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_second_run_into_a_locked_directory_exits_2_naming_the_holder_and_the_first_finishes(tiny, tmp_path,
                                                                                           capsys):
    out = tmp_path / "cell"
    first = _start(tiny, out, "--num_train_epochs", "6")  # long enough to still hold the lock below
    lock = out / "xstilts.lock"
    deadline = time.time() + 120
    while not lock.exists():
        assert first.poll() is None, first.stdout.read()[-3000:]
        assert time.time() < deadline, "the first run never took the lock"
        time.sleep(0.05)
    holder = json.loads(lock.read_text())
    assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
    assert "run_target.py" in holder["command"][0] and holder["started"]
    rc = _target(tiny, out, XNLI, "--num_train_epochs", "6")
    err = capsys.readouterr().err
    assert first.poll() is None, "the first run ended before the second was refused: the test proves nothing"
    assert rc == 2 and "is in use by another run" in err and f"pid {first.pid}" in err, err
    log = first.communicate(timeout=300)[0]
    assert first.returncode == 0, log[-3000:]
    assert read_results(out / "results.json")["timing"]["resumed_from"] is None
    assert not lock.exists()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_lock_of_a_dead_process_is_explained_and_taken_over(tiny, tmp_path, caplog):
    out = tmp_path / "cell"
    out.mkdir()
    pid = _dead_pid()
    (out / "xstilts.lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "earlier",
                                                  "command": ["run_target.py", "--task", "xnli"]}))
    assert run_script("run_retrieval", ["--model", str(tiny), "--task", "tatoeba", "--languages", "de",
                                        "--data_root", str(HUB), "--output_dir", str(out)]) == 0
    assert f"taking over the stale lock {out / 'xstilts.lock'}" in caplog.text and f"pid {pid}" in caplog.text
    assert (out / "results.json").exists() and not (out / "xstilts.lock").exists()


def test_lock_of_another_host_is_refused_with_how_to_remove_it(tiny, tmp_path, capsys):
    out = tmp_path / "cell"
    out.mkdir()
    (out / "xstilts.lock").write_text(json.dumps({"pid": 1, "host": "node-7.cluster", "started": "earlier",
                                                  "command": ["run_target.py"]}))
    rc = run_script("run_retrieval", ["--model", str(tiny), "--task", "tatoeba", "--languages", "de",
                                      "--data_root", str(HUB), "--output_dir", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "locked by a run on another host" in err and "node-7.cluster" in err
    assert f"delete {str(out / 'xstilts.lock')!r}" in err
    assert not (out / "results.json").exists()


_RACE = """
import sys, time
from pathlib import Path
from xstilts.errors import UsageError
from xstilts.run.rundir import acquire, release
try:
    lock = acquire(Path(sys.argv[1]))
except UsageError:
    print("refused"); sys.exit(0)
print("held"); sys.stdout.flush(); time.sleep(1.5); release(lock)
"""


@pytest.mark.parametrize("stale", [False, True], ids=["fresh", "over-a-stale-lock"])
def test_racing_claims_give_the_lock_to_exactly_one(tmp_path, stale):
    out = tmp_path / "cell"
    out.mkdir()
    if stale:
        (out / "xstilts.lock").write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(),
                                                      "started": "earlier", "command": []}))
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(5)]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["held", "refused", "refused", "refused", "refused"]


# ================================================================ 1. an interrupted --overwrite
def test_interrupted_overwrite_never_leaves_the_old_result_as_the_new_one(tiny, tmp_path, stop_at, caplog):
    """An --overwrite run killed before it finished used to leave the old results.json next to the new settings
    file: the next run said "finished; skipping" and make treated the cell as done."""
    out = tmp_path / "cell"
    common = [*XNLI, "--num_train_epochs", "1"]
    assert _target(tiny, out, common) == 0
    old = (out / "results.json").read_text()
    stop_at(4, "kill")
    with pytest.raises(Killed):
        _target(tiny, out, common, "--learning_rate", "0.002", "--overwrite")
    assert not (out / "results.json").exists()  # what `make grid` looks at
    [kept] = list((out / "superseded").iterdir())
    assert (kept / "results.superseded.json").read_text() == old  # nothing lost
    assert (kept / "xstilts_run.json").exists() and (kept / "predictions").is_dir()
    record = json.loads((kept / "SUPERSEDED.json").read_text())
    assert record["reason"] == "--overwrite" and "results.json" in record["files"]
    assert "--overwrite: moved" in caplog.text and str(kept) in caplog.text
    # the next run (no --overwrite) continues the new run instead of taking the old result for it
    assert _target(tiny, out, common, "--learning_rate", "0.002") == 0
    r = read_results(out / "results.json")
    assert r["hyperparameters"]["learning_rate"] == 0.002
    assert r["run_settings"] == json.loads((out / "xstilts_run.json").read_text())
    assert r["timing"]["resumed_from"].endswith("checkpoint-4")


def test_a_result_counts_as_finished_only_with_the_settings_of_its_directory(tmp_path):
    from xstilts.run.results import is_finished

    assert not is_finished(tmp_path)
    result = {"schema_version": 1, "kind": "target", "model": {"name": "m", "path_or_id": "m", "n_params": 1},
              "target_task": "xnli", "intermediate_task": None, "seed": 1, "metric": "accuracy",
              "per_language": {"de": {"accuracy": 0.5}}, "average": {"accuracy": 0.5}, "hyperparameters": {},
              "provenance": {}, "timing": {}, "run_settings": {"seed": 1}}
    (tmp_path / "results.json").write_text(json.dumps(result))
    (tmp_path / "xstilts_run.json").write_text(json.dumps({"seed": 2}))  # a newer run of other settings started
    assert not is_finished(tmp_path)
    (tmp_path / "xstilts_run.json").write_text(json.dumps({"seed": 1}))
    assert is_finished(tmp_path)


def test_interrupted_overwrite_of_a_phase2_checkpoint(tiny, tmp_path, stop_at):
    from xstilts.training.modeling import read_meta

    out = tmp_path / "ckpt"
    common = ["--model", str(tiny), "--task", "mnli", "--preset", "tiny", "--data_root", str(HUB), "--max_steps",
              "4", "--eval_steps_or_epoch", "2", "--disable_tqdm", "true", "--output_dir", str(out)]
    umask = os.umask(0o002)
    try:
        assert run_script("run_intermediate", common) == 0
    finally:
        os.umask(umask)
    # a group can share the checkpoint (safetensors writes weights 0600)
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()} == {
        "config.json": 0o664, "model.safetensors": 0o664, "tokenizer.json": 0o664, "tokenizer_config.json": 0o664,
        "xstilts_meta.json": 0o664, "xstilts_run.json": 0o664}
    old = read_meta(str(out))
    stop_at(2, "kill")
    with pytest.raises(Killed):
        run_script("run_intermediate", [*common, "--seed", "2", "--overwrite"])
    assert not (out / "xstilts_meta.json").exists() and not (out / "model.safetensors").exists()
    [kept] = list((out / "superseded").iterdir())
    assert json.loads((kept / "xstilts_meta.superseded.json").read_text()) == old
    assert (kept / "model.safetensors").exists() and (kept / "config.json").exists()
    assert run_script("run_intermediate", [*common, "--seed", "2"]) == 0
    new = read_meta(str(out))
    assert new["seed"] == 2 and new["run_settings"] == json.loads((out / "xstilts_run.json").read_text())
    assert new["resume"]["resumed_from"].endswith("checkpoint-2")


def test_multitask_and_retrieval_starts_supersede_too(tiny, tmp_path, monkeypatch):
    """Multi-task phase 2 (start.begin_multitask) and run_retrieval (start.begin_retrieval) start their own way
    too: both move the old result aside as soon as an --overwrite run starts."""
    import run_retrieval

    from xstilts.run.start import begin_multitask

    ckpt = tmp_path / "mt"
    ckpt.mkdir()
    (ckpt / "xstilts_meta.json").write_text(json.dumps({"finished": True, "task": "mnli+qqp"}))
    mt = begin_multitask(["--model", str(tiny), *MULTITASK, "--output_dir", str(ckpt), "--overwrite"])
    assert not mt.run.skip and not (ckpt / "xstilts_meta.json").exists()
    assert len(list((ckpt / "superseded").glob("*/xstilts_meta.superseded.json"))) == 1
    from xstilts.run.rundir import release_all

    release_all()  # begin() alone: the script wrapper would release the lock

    out = tmp_path / "tatoeba"
    args = ["--model", str(tiny), "--task", "tatoeba", "--languages", "de", "--data_root", str(HUB),
            "--output_dir", str(out)]
    assert run_script("run_retrieval", args) == 0

    def killed(*a, **k):
        raise Killed()

    monkeypatch.setattr(run_retrieval, "run_tatoeba", killed)
    with pytest.raises(Killed):
        run_script("run_retrieval", [*args, "--layers", "default", "--overwrite"])
    assert not (out / "results.json").exists() and not (out / "per_layer.csv").exists()
    assert len(list((out / "superseded").glob("*/results.superseded.json"))) == 1


# ================================================================ 4. no result from an untrained head
def test_results_and_phase2_meta_with_an_empty_selection_are_never_written(tmp_path):
    from xstilts.run.record import write_phase2_meta
    from xstilts.run.results import UntrainedResultError, write_results

    result = {"schema_version": 1, "kind": "target", "model": {"name": "m", "path_or_id": "m", "n_params": 1},
              "target_task": "xnli", "intermediate_task": None, "seed": 1, "metric": "accuracy",
              "per_language": {"de": {"accuracy": 0.3}}, "average": {"accuracy": 0.3}, "hyperparameters": {},
              "provenance": {}, "timing": {}}
    untrained = {"split": "English dev", "metric": "accuracy", "best_checkpoint": None, "best_metric": None,
                 "global_step": 0, "evaluations": []}
    with pytest.raises(UntrainedResultError, match="training ran 0 optimizer steps"):
        write_results(tmp_path / "results.json", dict(result, selection=untrained))
    never_evaluated = dict(untrained, global_step=5)
    with pytest.raises(UntrainedResultError, match="no checkpoint was selected"):
        write_results(tmp_path / "results.json", dict(result, selection=never_evaluated))
    with pytest.raises(UntrainedResultError):
        write_phase2_meta(tmp_path / "xstilts_meta.json", {"finished": True, "selection": untrained,
                                                           "run_settings": {"seed": 1}})
    assert list(tmp_path.iterdir()) == []
    selected = dict(untrained, global_step=5, best_checkpoint="checkpoint-5", best_metric=0.4)
    write_results(tmp_path / "results.json", dict(result, selection=selected))


# ================================================================ 7. smaller points
def test_refused_run_does_not_claim_to_skip_and_names_only_the_differing_settings(tiny, tmp_path, capsys, caplog):
    out = tmp_path / "cell"
    common = [*XNLI, "--num_train_epochs", "1"]
    assert _target(tiny, out, common) == 0
    caplog.clear()
    capsys.readouterr()
    assert _target(tiny, out, common, "--learning_rate", "0.005", "--weight_decay", "0.02") == 2
    err = capsys.readouterr().err
    assert "skipping" not in caplog.text
    assert len(_messages(err)) == 1 and _messages(err)[0].startswith("error: output_dir ")
    assert "hyperparameters.learning_rate: 0.001 -> 0.005" in err and "hyperparameters.weight_decay: 0.01 -> 0.02" in err
    assert "per_device_eval_batch_size" not in err  # not the two whole dictionaries


def test_settings_diff_names_nested_keys():
    from xstilts.run.rundir import settings_diff

    old = {"seed": 1, "hyperparameters": {"learning_rate": 0.001, "bf16": False}, "languages": ["en", "de"]}
    new = {"seed": 1, "hyperparameters": {"learning_rate": 0.002, "bf16": False, "optim": "adamw"},
           "languages": ["en"]}
    assert settings_diff(old, new) == ["hyperparameters.learning_rate: 0.001 -> 0.002",
                                       "hyperparameters.optim: (absent) -> 'adamw'",
                                       "languages: ['en', 'de'] -> ['en']"]


def test_outputs_respect_the_umask(tmp_path):
    from xstilts.run.results import atomic_write_json

    old = os.umask(0o002)
    try:
        atomic_write_json(tmp_path / "results.json", {"a": 1})
        os.umask(0o022)
        atomic_write_json(tmp_path / "other.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "other.json").stat().st_mode & 0o777 == 0o644


def test_corrupted_settings_file_is_a_clear_error_naming_it(tiny, tmp_path, capsys):
    out = tmp_path / "cell"
    out.mkdir()
    (out / "xstilts_run.json").write_text('{"kind": "target", "task": ')
    rc = _target(tiny, out, XNLI)
    err = capsys.readouterr().err
    assert rc == 2 and f"{str(out / 'xstilts_run.json')!r} is corrupted" in err and "--overwrite" in err, err
    assert _target(tiny, out, [*XNLI, "--max_steps", "2", "--eval_steps_or_epoch", "2"], "--overwrite") == 0
    assert len(list((out / "superseded").glob("*/xstilts_run.json"))) == 1


def test_report_shows_resumed_runs_and_their_warnings(tmp_path):
    from test_report import write_tree

    from xstilts.study.report import build_report

    root = write_tree(tmp_path / "results")
    cell = root / "tiny-2l-h64" / "mnli" / "xnli" / "seed2" / "results.json"
    r = json.loads(cell.read_text())
    r["resume"] = {"resumed_from": "/x/trainer/checkpoint-50", "incomplete_checkpoints_removed": [],
                   "warnings": ["checkpoint-50 was written with transformers 5.24.0, this run has 5.25.0"]}
    cell.write_text(json.dumps(r))
    md = Path(build_report(root, tmp_path / "report", title="t")["report_md"]).read_text(encoding="utf-8")
    section = md.split("### Resumed runs\n\n")[1].split("\n\n")[0]
    assert section == ("- tiny-2l-h64 / mnli / xnli / seed 2: resumed from `checkpoint-50`; **warning:** "
                       "checkpoint-50 was written with transformers 5.24.0, this run has 5.25.0")


def test_a_lock_file_never_exists_without_its_holder_record(tmp_path, monkeypatch):
    """A second run (or a person) reading the lock must never find it empty or half-written: the record is complete
    before the lock's name exists (the first run's pid could not be named otherwise). Seen as a flaky
    test_second_run_into_a_locked_directory_... under load, where the reader came between creation and write."""
    from xstilts.run import rundir

    lock = tmp_path / "xstilts.lock"
    seen = []
    real_dumps = rundir.json.dumps

    def dumps(obj, *a, **k):  # the moment the record is serialised, the lock's name must not exist yet
        if isinstance(obj, dict) and "pid" in obj:
            seen.append(lock.exists())
        return real_dumps(obj, *a, **k)

    monkeypatch.setattr(rundir.json, "dumps", dumps)
    held = rundir.acquire(tmp_path)
    try:
        assert seen == [False]
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["xstilts.lock"]  # no temporary file left
        monkeypatch.setattr(rundir, "_alive", lambda pid, start=None: True)
        with pytest.raises(UsageError, match="is in use by another run"):
            rundir.acquire(tmp_path)  # the name exists: the second claim fails as with O_EXCL
    finally:
        rundir.release(held)
    assert not lock.exists()
