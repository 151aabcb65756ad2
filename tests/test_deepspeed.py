"""DeepSpeed: the shipped configs, how a config is chosen, and real ZeRO-2 / ZeRO-3 training on CPU.

The training tests run phase 2 (run_intermediate.py) and then phase 3 (run_target.py from the saved phase-2
encoder) under DeepSpeed's CPU accelerator (DS_ACCELERATOR=cpu, torch.distributed with one process), each
stage in its own subprocess so the process group and DeepSpeed's global state never leak into other tests.
Precision: the configs say ``"bf16": {"enabled": "auto"}``, which follows TrainingArguments (``--bf16``);
the tests do not pass ``--bf16``, so both stages train in fp32 on CPU with the shipped files unchanged.
DeepSpeed's CPU accelerator JIT-compiles a shared-memory communication op (C++) on first use; a single process
does not need it, so the driver switches it off (that build took 30-100 s on a fresh machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import HUB, ROOT, run_script
from xstilts.run.deepspeed import DEEPSPEED_OFF, read_deepspeed_config, select_deepspeed
from xstilts.errors import UsageError
from xstilts.run.models import registry

DS_CONFIGS = sorted((ROOT / "ds_configs").glob("*.json"))
TINY_ARGS = ["--preset", "tiny", "--data_root", str(HUB), "--max_steps", "2", "--eval_steps_or_epoch", "2",
             "--disable_tqdm", "true", "--logging_steps", "1"]
TARGET_ARGS = ["--task", "xnli", "--languages", "en,de"]


# ----------------------------------------------------------------------------- the shipped configs
@pytest.mark.parametrize("path", DS_CONFIGS, ids=lambda p: p.name)
def test_shipped_config_leaves_the_trainer_in_charge(path):
    cfg = json.loads(path.read_text())
    assert "optimizer" not in cfg and "scheduler" not in cfg  # would replace AdamW / the linear decay
    assert cfg["bf16"] == {"enabled": "auto"} and cfg["fp16"] == {"enabled": "auto"}
    for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                "gradient_clipping"):
        assert cfg[key] == "auto", key
    zero = cfg["zero_optimization"]
    if zero["stage"] == 3:
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True
        for key in ("reduce_bucket_size", "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold"):
            assert zero[key] == "auto", key


def test_registry_assigns_the_configs_by_size():
    reg = registry()
    stages = {}
    for name, entry in reg.items():
        if entry.get("deepspeed"):
            cfg = json.loads((ROOT / entry["deepspeed"]).read_text())
            stages[name] = (cfg["zero_optimization"]["stage"], "offload_param" in cfg["zero_optimization"])
    assert stages == {"xlmr-large": (2, False), "xlmr-xl": (3, False), "xlmr-xxl": (3, True)}
    assert reg["xlmr-base"]["deepspeed"] is None


# ----------------------------------------------------------------------------- selection (no process group)
def test_selection_precedence(tmp_path):
    argv = ["--model", "xlmr-large", "--task", "mnli"]
    out, path, source = select_deepspeed(argv, "xlmr-large", training=True)
    assert path == (ROOT / "ds_configs" / "zero2.json").resolve() and source.startswith("model registry (xlmr-large")
    assert out == argv
    # the command line wins; a path relative to the kit root works from any directory
    out, path, source = select_deepspeed(argv + ["--deepspeed", "ds_configs/zero3.json"], "xlmr-large", True)
    assert path.name == "zero3.json" and source.startswith("command line")
    assert out[-2:] == ["--deepspeed", str(path)]
    for off in ("none", "None", "off"):
        out, path, source = select_deepspeed(argv + [f"--deepspeed={off}"], "xlmr-large", True)
        assert path is None and source.startswith("off (--deepspeed none") and out == argv
    assert "none" in DEEPSPEED_OFF
    # no config in the registry, a model path, or a retrieval run: off
    assert select_deepspeed(argv, "xlmr-base", True)[1] is None
    assert select_deepspeed(argv, str(tmp_path), True)[1] is None
    assert select_deepspeed(argv, "xlmr-large", training=False)[1] is None


def test_bad_config_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match=r"unknown DeepSpeed config 'nope.json'; valid choices: .*zero2.json"):
        select_deepspeed(["--deepspeed", "nope.json"], "xlmr-large", True)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        read_deepspeed_config(bad)


def test_bad_config_stops_the_script_before_loading(tiny, tmp_path, capsys):
    rc = run_script("run_intermediate", ["--model", str(tiny), "--task", "mnli", *TINY_ARGS,
                                          "--output_dir", str(tmp_path / "x"), "--deepspeed", "missing.json"])
    assert rc == 2
    assert "unknown DeepSpeed config 'missing.json'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- real training on CPU
# Runs in a fresh interpreter: phase 2, then phase 3 from the saved encoder, under one DeepSpeed config.
# Records the DeepSpeed config the engine ran with (after the kit's batch / accumulation derivation).
DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
spec = json.loads(sys.argv[2])
import deepspeed.ops
# One process needs no shared-memory allreduce: skip DeepSpeed's CPU comm op, a C++ JIT build of 30-100 s on a
# fresh machine (torch.distributed's gloo does the few collectives of one rank).
deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
import xstilts.run.models as models
reg = dict(models.registry())
reg.update(spec.get("registry", {}))
models.registry = lambda: reg
import xstilts.training.trainer as training
seen = []
_train = training.train
def train(trainer, out, *args, **kw):
    result = _train(trainer, out, *args, **kw)
    cfg = trainer.accelerator.state.deepspeed_plugin.deepspeed_config
    seen.append({k: cfg.get(k) for k in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                                          "train_batch_size")} | {"stage": cfg["zero_optimization"]["stage"]})
    return result
import run_intermediate, run_target
run_intermediate.train = run_target.train = train
rc2 = run_intermediate.main(spec["phase2"])
rc3 = run_target.main(spec["phase3"]) if rc2 == 0 else None
json.dump({"rc2": rc2, "rc3": rc3, "engine": seen}, open(spec["report"], "w"))
"""


def _run_ds(tmp: Path, spec: dict, env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    env.update(DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", **env_extra)
    spec["report"] = str(tmp / "driver.json")
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT), json.dumps(spec)], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp / "driver.json").read_text()) | {"log": proc.stdout + proc.stderr}


def _encoder(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def plain_phase2(tiny, tmp_path_factory) -> Path:
    """The same phase-2 run without DeepSpeed: the reference the ZeRO runs must reproduce."""
    out = tmp_path_factory.mktemp("plain") / "mnli"
    assert run_script("run_intermediate", ["--model", str(tiny), "--task", "mnli", *TINY_ARGS,
                                           "--per_device_train_batch_size", "4", "--output_dir", str(out)]) == 0
    return out


def _check_against_plain(ckpt: Path, plain: Path, tiny: Path, result_dir: Path, stage: int) -> None:
    # phase 2 saved the full encoder (ZeRO-3: gathered 16-bit-on-save weights), equal to the plain run's
    got, ref, start = _encoder(ckpt), _encoder(plain), _encoder(tiny)
    assert sorted(got) == sorted(ref)
    for k in ref:
        assert got[k].shape == ref[k].shape, k
        assert torch.allclose(got[k], ref[k], atol=1e-6), k
    assert any(not torch.equal(ref[k], start["roberta." + k]) for k in ref if "roberta." + k in start)  # it trained
    meta = json.loads((ckpt / "xstilts_meta.json").read_text())
    assert meta["finished"] and meta["hyperparameters"]["deepspeed_zero_stage"] == stage
    assert meta["hyperparameters"]["deepspeed"] == f"ds_configs/zero{stage}.json"
    # phase 3 (run_target.py under the same config) reloaded that encoder completely
    r = json.loads((result_dir / "results.json").read_text())
    assert r["intermediate_task"] == "mnli" and r["handoff"]["encoder_tensors_not_in_checkpoint"] == []
    assert r["handoff"]["transferred_tensors"] == len(ref)
    assert set(r["per_language"]) == {"en", "de"}
    assert r["hyperparameters"]["deepspeed_zero_stage"] == stage
    plain_params = sum(t.numel() for t in ref.values())
    assert r["model"]["n_params"] == plain_params  # measured on load, also when ZeRO-3 partitions parameters


def test_zero2_from_the_registry_without_a_launcher(tiny, tmp_path, plain_phase2):
    """A registry entry with a ZeRO-2 config, started as a plain `python` (the kit sets the one-process
    RANK/WORLD_SIZE/MASTER_* itself); per-device batch 4 from the entry, so accumulation 4 for the preset's 16."""
    ckpt, res = tmp_path / "ckpt", tmp_path / "res"
    entry = {"path": str(tiny), "num_layers": 2, "retrieval_layer": 1, "per_device_train_batch_size": 4,
             "deepspeed": "ds_configs/zero2.json"}
    out = _run_ds(tmp_path, {
        "registry": {"tiny-zero2": entry},
        "phase2": ["--model", "tiny-zero2", "--task", "mnli", *TINY_ARGS, "--output_dir", str(ckpt)],
        "phase3": ["--model", "tiny-zero2", *TARGET_ARGS, *TINY_ARGS, "--output_dir", str(res),
                   "--intermediate_checkpoint", str(ckpt)],
    }, {})
    assert out["rc2"] == 0 and out["rc3"] == 0
    assert "DeepSpeed without a launcher: running as a single process" in out["log"]
    assert "DeepSpeed config from model registry (tiny-zero2" in out["log"]
    # the engine ran with the kit's batch derivation, not the parser's defaults
    assert out["engine"] == [{"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 4,
                              "train_batch_size": 16, "stage": 2}] * 2
    meta = json.loads((ckpt / "xstilts_meta.json").read_text())
    assert meta["preset"]["deepspeed"]["source"].startswith("model registry (tiny-zero2")
    assert meta["hyperparameters"]["gradient_accumulation_steps"] == 4
    _check_against_plain(ckpt, plain_phase2, tiny, res, stage=2)


def test_zero3_under_launcher_variables(tiny, tmp_path, plain_phase2):
    """--deepspeed on the command line, with the variables a launcher (torchrun / deepspeed) sets."""
    ckpt, res = tmp_path / "ckpt", tmp_path / "res"
    launcher = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(29500 + os.getpid() % 1000), "RANK": "0",
                "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
    common = ["--deepspeed", "ds_configs/zero3.json", "--per_device_train_batch_size", "4"]
    out = _run_ds(tmp_path, {
        "phase2": ["--model", str(tiny), "--task", "mnli", *TINY_ARGS, *common, "--output_dir", str(ckpt)],
        "phase3": ["--model", str(tiny), *TARGET_ARGS, *TINY_ARGS, *common, "--output_dir", str(res),
                   "--intermediate_checkpoint", str(ckpt)],
    }, launcher)
    assert out["rc2"] == 0 and out["rc3"] == 0
    assert "running as a single process" not in out["log"]
    assert out["engine"][0] == {"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 4,
                                "train_batch_size": 16, "stage": 3}
    r = json.loads((res / "results.json").read_text())
    assert r["preset"]["deepspeed"] == {"config": "ds_configs/zero3.json", "source": "command line (--deepspeed)"}
    _check_against_plain(ckpt, plain_phase2, tiny, res, stage=3)
