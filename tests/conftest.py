"""Shared test fixtures: offline environment, fixture data root, tiny models built once per test run; the order
the tests run in (slowest work first) and how pytest-xdist may split them (``make test`` runs ``-n``)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models gain nothing from intra-op threads, and oversubscribed threads (two test processes, or a
# busy machine) slow small kernels down by an order of magnitude: one thread per process in tests.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.pop("XSTILTS_DATA_ROOT", None)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
HUB = FIXTURES / "hub"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the run_*.py scripts are imported as modules


# The datasets cache of this test process and of every process it starts (a new folder, removed at exit), out of
# the user's ~/.cache. `datasets` reads the variable when it is imported: set before anything imports it.
_HF_CACHE = tempfile.mkdtemp(prefix="xstilts-test-hf-")
atexit.register(shutil.rmtree, _HF_CACHE, True)
os.environ["HF_DATASETS_CACHE"] = _HF_CACHE

# DeepSpeed's CPU op, built by `make venv` into the venv (torch keys a JIT build on the venv's paths: a shared
# ~/.cache/torch_extensions was rebuilt, ~25 s, whenever another clone had used it)
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))

# the environment of the processes the tests start (make, the scripts, torchrun): this one's, less make's own
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
BASE_ENV.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, worker_id) -> dict[str, Path]:
    """Both tiny sizes with the shared tokenizer, a short MLM warm-up (seconds, not minutes). Under pytest-xdist
    the first worker to need them builds them into the run's shared temporary folder (a file lock) and the
    others read that build: one build per test run, whatever the number of workers."""
    from filelock import FileLock

    from xstilts.tiny import SIZES, build

    if worker_id == "master":  # no xdist: this session's own folder
        out = tmp_path_factory.mktemp("models")
        build(out, sizes=tuple(SIZES), corpus=FIXTURES / "corpus.txt", vocab_size=2000, mlm_steps=10)
        return {s: out / s for s in SIZES}
    shared = tmp_path_factory.getbasetemp().parent  # pytest-<n>/ of this run: the workers' basetemps are inside
    out, done = shared / "models", shared / "models.built"
    with FileLock(str(shared / "models.lock")):
        if not done.exists():
            build(out, sizes=tuple(SIZES), corpus=FIXTURES / "corpus.txt", vocab_size=2000, mlm_steps=10)
            done.touch()
    return {s: out / s for s in SIZES}


@pytest.fixture(scope="session")
def worker_id(request) -> str:
    """pytest-xdist's worker name (gw0, gw1, ...), "master" without xdist (xdist's own fixture, when absent)."""
    return getattr(request.config, "workerinput", {}).get("workerid", "master")


@pytest.fixture(scope="session")
def tiny(tiny_models) -> Path:
    return tiny_models["tiny-2l-h64"]


@pytest.fixture(scope="module")
def phase2(tiny, tmp_path_factory):
    """A short MNLI phase 2 of the tiny model (the encoder the retrieval tests embed with), once per module."""
    ckpt = tmp_path_factory.mktemp("phase2") / "mnli"
    assert run_script("run_intermediate", [
        "--model", str(tiny), "--task", "mnli", "--preset", "tiny", "--data_root", str(HUB), "--max_steps", "2",
        "--eval_steps_or_epoch", "2", "--disable_tqdm", "true", "--output_dir", str(ckpt)]) == 0
    return ckpt


# ------------------------------------------------------------------------------ a warm python for Make
_WARM: dict = {}
PRELOAD = ["torch", "transformers", "transformers.modeling_utils", "transformers.trainer",
           "transformers.models.xlm_roberta.modeling_xlm_roberta", "datasets", "datasets.packaged_modules.parquet.parquet",
           "accelerate", "run_target", "run_intermediate", "run_retrieval", "xstilts.report", "xstilts.leaderboard"]


def make_python(env: dict) -> tuple[str, dict]:
    """The ``PY=`` value and the environment for a ``make`` call from a test: the client of tests/forkserver.py
    (a warm python of this test process, started with ``env`` on first use), or ``sys.executable`` and ``env``
    unchanged with ``XSTILTS_TEST_FORKSERVER=0``."""
    import subprocess

    if os.environ.get("XSTILTS_TEST_FORKSERVER", "1") == "0":
        return sys.executable, env
    key = tuple(sorted(env.items()))
    if key not in _WARM:
        home = tempfile.mkdtemp(prefix="xstilts-fs-")
        sock = os.path.join(home, "socket")
        server_env = dict(env, XSTILTS_FORKSERVER=sock)
        proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "forkserver.py"), "--serve", sock, *PRELOAD],
                                cwd=ROOT, env=server_env, stdout=subprocess.PIPE, text=True)
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"tests/forkserver.py did not start (exit {proc.wait()})")
        atexit.register(shutil.rmtree, home, True)
        atexit.register(proc.kill)
        _WARM[key] = (f"{sys.executable} {ROOT / 'tests' / 'forkserver.py'}", server_env, home)
    py, server_env, _ = _WARM[key]
    return py, server_env


def run_script(name: str, argv: list[str]) -> int:
    """Run a top-level script's main(argv) in-process; returns its exit code."""
    import importlib

    mod = importlib.import_module(name)
    try:
        rc = mod.main(argv)
    except SystemExit as e:
        rc = e.code
    return 0 if rc is None else rc


# ------------------------------------------------------------------------------------------ order and split
# Approximate seconds (one idle core) of the slowest tests, by node id prefix. Only the ORDER of the run depends
# on them: the slowest work starts first, so that with `make test`'s -n workers the long runs overlap instead of
# one of them finishing alone at the end. A stale figure costs time, never a result. Refresh from the
# `--durations` list every run prints.
SLOW_SECONDS = {
    "test_benchmark.py::test_xtreme_r_on_the_tiny_model_scores_all_ten_tasks": 40,
    "test_synthetic.py::test_demo_runs_end_to_end_through_make": 18,
    "test_grid.py::test_tiny_grid_completes_resumes_and_reports": 20,
    "test_multitask.py::test_zero3_multitask_equals_the_plain_run": 12,
    "test_reliability.py::": 10,
    "test_deepspeed.py::": 10,
    "test_synthetic.py::test_synth_nli_is_learnt": 10,
    "test_fixtures.py::": 5,
    "test_multiprocess.py::": 7,
    "test_trust_runs.py::": 5,
    "test_end_to_end.py::": 4,
    "test_qa.py::test_target_task_end_to_end_and_leaderboard_scores_agree": 4,
    "test_tagging.py::test_target_runs_and_scores_every_fixture_language": 4,
    "test_package.py::": 4,
}


def _seconds(item) -> float:
    name = item.nodeid.split("tests/", 1)[-1]
    return max((s for p, s in SLOW_SECONDS.items() if name.startswith(p)), default=1.0)


# tests sharing a module-scoped fixture: one pytest-xdist group each, their ids named so that xdist sees it
from xdist_groups import (pytest_collection_modifyitems_group_ids, pytest_collection_modifyitems_groups,  # noqa
                          pytest_configure, unit_of)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Units (tests sharing a module-scoped fixture, which tests/xdist_groups.py keeps on one worker; every other
    test alone) run slowest first (SLOW_SECONDS), tests inside a unit in file order."""
    unit = {item: unit_of(item) for item in items}
    cost, first = {}, {}
    for i, item in enumerate(items):
        cost[unit[item]] = cost.get(unit[item], 0.0) + _seconds(item)
        first.setdefault(unit[item], i)
    order = {item: (-cost[unit[item]], first[unit[item]], i) for i, item in enumerate(items)}
    items.sort(key=order.__getitem__)


def pytest_collection_finish(session):
    """Everything imported so far (torch, transformers, the test modules) lives as long as the process: freeze it
    out of the garbage collector's scans. The Trainer calls gc.collect() at the start of every training, and in a
    test process holding the whole suite's modules each of those full scans took about 0.25 s."""
    import gc

    gc.collect()
    gc.freeze()
