"""The kit as a package: pyproject.toml, the hashed lock (requirements.txt) and their drift check, a
non-editable install that finds its configs, and the version in every result's provenance."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import HUB, ROOT
from xstilts import lockfile

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = (ROOT / "requirements.txt").read_text()


def test_the_lock_pins_every_dependency_inside_its_range_and_matches_pyproject():
    assert lockfile.problems(PYPROJECT, LOCK) == []
    pins = lockfile.pins(LOCK)
    assert pins["torch"] == "2.13.0"  # CI's CPU torch, without the +cpu label (a CUDA 2.13.0 satisfies it)
    assert pins["seqeval"] == "1.2.2"
    # the CPU build's environment: none of the CUDA build's dependencies (uv resolving the CUDA torch's metadata)
    assert not [n for n in pins if n.startswith(("nvidia-", "cuda-")) or n == "triton"]
    # what make venv builds with (no build isolation) is locked too
    assert {"setuptools", "setuptools-scm", "wheel", "pytest"} <= set(pins)


def test_drift_between_pyproject_and_the_lock_is_caught():
    changed = json.loads(json.dumps(PYPROJECT))
    changed["project"]["dependencies"].append("unlocked-dependency>=1")
    found = lockfile.problems(changed, LOCK)
    assert any("compiled from other pyproject inputs" in p for p in found)
    assert any(p.startswith("unlocked-dependency (unlocked-dependency>=1) is not pinned") for p in found)

    narrowed = json.loads(json.dumps(PYPROJECT))
    deps = narrowed["project"]["dependencies"]
    deps[[i for i, d in enumerate(deps) if d.startswith("transformers")][0]] = "transformers>=6"
    assert any("outside pyproject's range 'transformers>=6'" in p for p in lockfile.problems(narrowed, LOCK))

    unhashed = LOCK.replace("\nnumpy==", "\nnumpy-without-hash==0 \\\n    # via nothing\nnumpy==", 1)
    assert "numpy-without-hash has no hash in the lock" in lockfile.problems(PYPROJECT, unhashed)


def test_make_venv_installs_the_wheels_first_then_the_sdists():
    """`lockfile without` drops whole blocks (pin, hashes, comments) and keeps every other pin with its hashes."""
    rest = lockfile.without(LOCK, ["deepspeed", "seqeval"])
    assert "deepspeed==" not in rest and "seqeval==" not in rest
    assert lockfile.pins(rest) == {k: v for k, v in lockfile.pins(LOCK).items() if k not in ("deepspeed", "seqeval")}
    for name, lines in lockfile.blocks(rest):
        if name is not None:
            assert any("--hash=sha256:" in line for line in lines), name
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK_SDISTS := deepspeed seqeval" in makefile and "--require-hashes" in makefile


def test_finish_drops_the_local_label_of_torch_only():
    compiled = ("torch==2.13.0+cpu \\\n    --hash=sha256:aa\n    # via xstilts (pyproject.toml)\n"
                "foo==1.0+local \\\n    --hash=sha256:bb\n")
    out = lockfile.finish(compiled, PYPROJECT, "make lock")
    assert lockfile.pins(out) == {"torch": "2.13.0", "foo": "1.0+local"}
    assert lockfile.recorded_digest(out) == lockfile.inputs_digest(PYPROJECT)
    assert "--hash=sha256:aa" in out and "# compiled by: make lock" in out


def test_pyproject_lists_every_package_and_ships_the_configs():
    tool = PYPROJECT["tool"]["setuptools"]
    tree = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "xstilts").rglob("__init__.py")}
    listed = set(tool["packages"])
    assert tree <= listed, f"packages missing from pyproject.toml: {sorted(tree - listed)}"
    kit = {"xstilts._kit.configs", "xstilts._kit.configs.presets", "xstilts._kit.ds_configs"}
    assert listed - tree == kit
    assert tool["package-dir"] == {"xstilts._kit.configs": "configs", "xstilts._kit.ds_configs": "ds_configs"}
    # every file of configs/ and ds_configs/ is package data of the package its folder maps to
    for top in ("configs", "ds_configs"):
        for f in (ROOT / top).rglob("*"):
            if f.is_file():
                package = ".".join(("xstilts", "_kit", *f.parent.relative_to(ROOT).parts))
                assert any(f.match(pat) for pat in tool["package-data"].get(package, [])), f
    assert tool["py-modules"] == ["run_intermediate", "run_target", "run_retrieval"]


def test_entry_points_resolve_to_main_functions():
    import importlib

    scripts = PYPROJECT["project"]["scripts"]
    assert {"xstilts-intermediate", "xstilts-target", "xstilts-retrieval", "xstilts-score"} <= set(scripts)
    for name, target in scripts.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), name


def test_the_version_is_in_provenance():
    import xstilts
    from xstilts import paths
    from xstilts.provenance import provenance

    assert not paths.INSTALLED and paths.KIT_ROOT == ROOT  # a checkout: configs/ and ds_configs/ of the repo
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "xstilts.__version__"}
    assert provenance()["versions"]["xstilts"] == xstilts.__version__


def test_an_installed_copy_takes_its_commit_from_pips_record(monkeypatch):
    from importlib import metadata

    from xstilts import provenance as install

    class Dist:
        def __init__(self, text):
            self.text = text

        def read_text(self, name):
            assert name == "direct_url.json"
            return self.text

    vcs = {"url": "git+https://example.org/xstilts.git", "vcs_info": {"vcs": "git", "commit_id": "ab" * 20}}
    monkeypatch.setattr(metadata, "distribution", lambda name: Dist(json.dumps(vcs)))
    assert install.installed_git_state() == {"commit": "ab" * 20, "dirty": False}
    monkeypatch.setattr(metadata, "distribution", lambda name: Dist(json.dumps({"url": "file:///x", "dir_info": {}})))
    assert install.installed_git_state() == {"commit": None, "dirty": None}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel built from a copy of the kit's files, installed (non-editable) into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "run_intermediate.py", "run_target.py", "run_retrieval.py"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("xstilts", "configs", "ds_configs"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "_kit"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    wheel = next((tmp / "dist").glob("xstilts-*.whl"))
    # installed inside an unrelated git repository (as a venv inside some checkout would be)
    repo = tmp / "unrelated-repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    repo.mkdir()
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "unrelated"], check=True)
    site = repo / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    return site


def test_a_non_editable_install_finds_its_configs_and_runs_from_elsewhere(installed, tiny, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(installed))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    # the console scripts (xstilts-score: the one that starts without torch), from another directory
    for name, target in PYPROJECT["project"]["scripts"].items():
        assert f"from {target.split(':')[0]} import {target.split(':')[1]}" in (installed / "bin" / name).read_text()
    helped = subprocess.run([str(installed / "bin" / "xstilts-score"), "--help"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert helped.returncode == 0 and "usage:" in helped.stdout
    code = f"""
import json, sys
from pathlib import Path
from xstilts import paths
from xstilts.run.deepspeed import resolve_deepspeed_path
from xstilts.run.models import registry
from xstilts.run.presets import available_presets
assert paths.INSTALLED and paths.KIT_ROOT == Path({str(installed)!r}).resolve() / "xstilts" / "_kit", paths.KIT_ROOT
assert "xlmr-large" in registry() and {{"tiny", "xtreme", "phang2020"}} <= set(available_presets())
assert resolve_deepspeed_path("ds_configs/zero2.json") == paths.KIT_ROOT / "ds_configs" / "zero2.json"
from xstilts.prepare.downloads import CHECKSUMS_FILE
assert CHECKSUMS_FILE.is_file(), CHECKSUMS_FILE
import run_intermediate
rc = run_intermediate.main(["--model", {str(tiny)!r}, "--task", "mnli", "--preset", "tiny", "--data_root",
    {str(HUB)!r}, "--output_dir", "ckpt", "--max_steps", "2", "--eval_steps_or_epoch", "2",
    "--max_train_samples", "32", "--max_eval_samples", "16", "--disable_tqdm", "true"])
meta = json.loads(Path("ckpt/xstilts_meta.json").read_text())
print(json.dumps({{"rc": rc, "preset": meta["preset"]["name"], "provenance": meta["provenance"],
                   "module": run_intermediate.__file__}}))
"""
    run = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["rc"] == 0 and out["preset"] == "tiny"
    assert Path(out["module"]).parent == installed  # the installed copy ran, not the checkout
    import xstilts

    assert out["provenance"]["versions"]["xstilts"] == xstilts.__version__
    # a wheel installed from a file records no commit; the git repository around site-packages is not asked
    assert out["provenance"]["git_commit"] is None and out["provenance"]["git_dirty"] is None


