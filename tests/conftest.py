"""Shared test fixtures: offline environment, fixture data root, tiny models built once per session."""

from __future__ import annotations

import os
import sys
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


import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session", autouse=True)
def _isolated_hf_cache(tmp_path_factory):
    """Keep the datasets cache of the test run out of the user's ~/.cache."""
    cache = tmp_path_factory.mktemp("hf_cache")
    old = os.environ.get("HF_DATASETS_CACHE")
    os.environ["HF_DATASETS_CACHE"] = str(cache)
    import datasets.config

    old_cfg = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = cache
    yield
    datasets.config.HF_DATASETS_CACHE = old_cfg
    if old is None:
        os.environ.pop("HF_DATASETS_CACHE", None)
    else:
        os.environ["HF_DATASETS_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Both tiny sizes with the shared tokenizer, a short MLM warm-up (seconds, not minutes)."""
    from xstilts.tiny import SIZES, build

    out = tmp_path_factory.mktemp("models")
    build(out, sizes=tuple(SIZES), corpus=FIXTURES / "corpus.txt", vocab_size=2000, mlm_steps=10)
    return {s: out / s for s in SIZES}


@pytest.fixture(scope="session")
def tiny(tiny_models) -> Path:
    return tiny_models["tiny-2l-h64"]


def run_script(name: str, argv: list[str]) -> int:
    """Run a top-level script's main(argv) in-process; returns its exit code."""
    import importlib

    mod = importlib.import_module(name)
    try:
        rc = mod.main(argv)
    except SystemExit as e:
        rc = e.code
    return 0 if rc is None else rc
