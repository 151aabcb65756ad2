"""The study grid in Make: dry runs list the right cells, `make plan` / `make slurm` agree with them, and a
small real grid (2 tiny sizes x {none, mnli} x {xnli, tatoeba}) completes, survives a failed cell (only that
cell re-runs) and reports gains with confidence intervals and the size plot.

Every make call runs in the repository with RESULTS/CKPTS under a temporary directory; the tiny models come
from the session fixture, mapped by name with MODEL_DIR_<name>=PATH (results are filed under the name).
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BASE_ENV, HUB, ROOT, make_python
from xstilts.study.plan import build_grid

MAKE_ENV = BASE_ENV
SIZES = ("tiny-2l-h64", "tiny-4l-h128")


def make(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    """``make ARGS`` in the repository; the Python commands it runs start warm (conftest.make_python), a dry run
    (-n) lists them with the plain interpreter."""
    py, env = (sys.executable, MAKE_ENV) if "-n" in args else make_python(MAKE_ENV)
    proc = subprocess.run(["make", "--no-print-directory", f"PY={py}", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def dry_run_cells(out: str) -> list[tuple[str, str, bool]]:
    """(script, output_dir, has --intermediate_checkpoint) for every phase command `make -n` would run."""
    cells = []
    for line in out.splitlines():
        m = re.search(r"(run_\w+\.py).*--output_dir (\S+)", line)
        if m:
            cells.append((m.group(1), m.group(2), "--intermediate_checkpoint" in line))
    return cells


def test_dry_run_lists_exactly_the_grid(tmp_path):
    res, ck = tmp_path / "r", tmp_path / "c"
    grid = dict(MODELS="xlmr-base xlmr-large", INTERMEDIATE="none mnli", TARGETS="xnli tatoeba", SEEDS="1 2")
    out = make("-n", "grid", *[f"{k}={v}" for k, v in grid.items()], f"RESULTS={res}", f"CKPTS={ck}").stdout
    got = dry_run_cells(out)
    expected = [("run_intermediate.py", f"{ck}/{m}/mnli", False) for m in ("xlmr-base", "xlmr-large")]
    for m in ("xlmr-base", "xlmr-large"):
        for i in ("none", "mnli"):
            for t in ("xnli", "tatoeba"):
                for s in (1, 2):
                    script = "run_retrieval.py" if t == "tatoeba" else "run_target.py"
                    expected.append((script, f"{res}/{m}/{i}/{t}/seed{s}", i == "mnli"))
    assert sorted(got) == sorted(expected) and len(got) == len(expected) == 18
    # the phase-2 checkpoint comes before the cells that need it
    order = [d for _, d, _ in got]
    assert order.index(f"{ck}/xlmr-base/mnli") < order.index(f"{res}/xlmr-base/mnli/xnli/seed1")
    # python's view of the grid (make plan / make slurm) is the same, file target for file target
    g = build_grid(grid["MODELS"], grid["INTERMEDIATE"], grid["TARGETS"], grid["SEEDS"], results=str(res),
                   ckpts=str(ck))
    assert sorted((c.kind != "retrieval" and c.kind != "phase2", c.output_dir) for c in g.phase2 + g.cells) == \
        sorted((s == "run_target.py", d) for s, d, _ in got)
    assert {c.output_dir for c in g.dependent_cells} == {d for _, d, dep in got if dep}


def test_bad_grid_names_are_refused_before_running(tmp_path):
    proc = make("plan", "MODELS=xlmr-huge", f"RESULTS={tmp_path}", check=False)
    assert proc.returncode != 0 and "unknown model 'xlmr-huge'; valid choices: xlmr-base" in proc.stderr
    proc = make("plan", "TARGETS=xnli nope", f"RESULTS={tmp_path}", check=False)
    assert "unknown target task 'nope'" in proc.stderr and "tatoeba" in proc.stderr
    proc = make("plan", "INTERMEDIATE=none xnli", check=False)  # a target task is no intermediate task
    assert "unknown intermediate task 'xnli'; valid choices: none, " in proc.stderr and "mnli" in proc.stderr
    # RETRIEVAL_TASKS is generated from the task declarations (mk/tasks.mk): a command-line value cannot make Make
    # start the wrong script for a retrieval task
    out = make("-n", "grid", "MODELS=xlmr-base", "INTERMEDIATE=none", "TARGETS=tatoeba", "RETRIEVAL_TASKS=bucc2018",
               f"RESULTS={tmp_path}/r").stdout
    assert [c[0] for c in dry_run_cells(out)] == ["run_retrieval.py"]


def test_plan_prints_cells_and_marks_unmeasured_estimates(tmp_path):
    out = make("plan", "MODELS=xlmr-base xlmr-xxl", "INTERMEDIATE=none mnli", "TARGETS=xnli tatoeba", "SEEDS=1",
               f"RESULTS={tmp_path}/r", f"CKPTS={tmp_path}/c").stdout
    assert f"[todo   ] {tmp_path}/c/xlmr-xxl/mnli/xstilts_meta.json" in out
    for m in ("xlmr-base", "xlmr-xxl"):
        for i in ("none", "mnli"):
            for t in ("xnli", "tatoeba"):
                assert f"{tmp_path}/r/{m}/{i}/{t}/seed1/results.json" in out
    lines = [l for l in out.splitlines() if "results.json" in l or "xstilts_meta.json" in l]
    assert len(lines) == 2 + 8 and all("GPU-h [unmeasured]" in l for l in lines)
    assert "4 GPU" in next(l for l in lines if "xlmr-xxl/none/xnli" in l)
    # phase 2 of MNLI with the xtreme preset: 392,702 rows x 3 epochs at effective batch 4
    assert "294,528 steps x batch 4 (392,702 rows x 3 ep)" in lines[0]
    assert "(UNMEASURED estimate)" in out and "estimate (not measured):" in out
    total = float(re.search(r"estimated ([\d.,]+) GPU-h in all", out).group(1).replace(",", ""))
    cells = [float(re.search(r"  ([\d.,e-]+) GPU-h", l).group(1).replace(",", "")) for l in lines]
    assert total == pytest.approx(sum(cells), rel=0.01)


# ------------------------------------------------------------------------------------------ retrieval pricing

def _figures(search_source: str = "measured by hand") -> tuple[dict, dict]:
    """A throughput and a sizes table whose costs are worked out by hand in the tests below."""
    tp = {"models": {"tiny-2l-h64": {"gpus": 1, "train_tokens_per_second": 1000, "eval_tokens_per_second": 1000,
                                     "device": "CPU (test)", "source": "measured by hand"},
                     "xlmr-large": {"gpus": 1, "train_tokens_per_second": 1000, "eval_tokens_per_second": 1000,
                                    "device": "NVIDIA (test)", "source": "measured by hand"}},
          "search": {"cpu-faiss": {"multiply_adds_per_second": 1e8, "source": search_source},
                     "cpu-torch": {"multiply_adds_per_second": 4e8, "source": "measured by hand"},
                     "gpu-torch": {"multiply_adds_per_second": 1e11, "source": "estimate (not measured): test"}}}
    sizes = {"tasks": {"bucc2018": {"eval_tokens_per_example": 10,
                                    "corpora": [{"name": "a", "src": 1000, "en": 2000},
                                                {"name": "b", "src": 10, "en": 10, "count": 3}]}}}
    return tp, sizes


def test_retrieval_cell_priced_per_layer_and_direction():
    """tiny-2l-h64: hidden 64, 2 layers (3 hidden states), configured layer 1. Sentences 3000 + 3 x 20 = 3060 at
    10 tokens / 1000 tokens/s = 30.6 s of embedding, once; search per layer = 2 x (1000 x 2000 + 3 x 10 x 10) x 64
    = 256,038,400 multiply-adds / 1e8 per s = 2.560384 s."""
    from xstilts.study import plan

    tp, sizes = _figures()
    grid = build_grid("tiny-2l-h64", "none", "bucc2018", "1")
    cell = grid.cells[0]
    layer_s = 2 * (1000 * 2000 + 3 * 10 * 10) * 64 / 1e8
    for eval_args, layers in (("", 3), ("--layers default", 1), ("--layers 0,1", 2), ("--layers 0", 2),
                              ("--layers 0 --layer 0", 1), ("--layers=all --search_backend torch", 3)):
        est = plan.estimate(cell, tp, sizes, "xtreme", eval_args=eval_args)
        rate = 4e8 if "torch" in eval_args else 1e8
        assert est.gpu_hours == pytest.approx((30.6 + layers * layer_s * 1e8 / rate) / 3600), eval_args
        assert est.measured and est.unit == "CPU-h" and f"{layers} layer(s)" in est.detail
    cost = plan.retrieval_cost(sizes["tasks"]["bucc2018"], 64, 3, 1000, 1e8)
    assert cost["sentences"] == 3060 and cost["embedding_bytes_total"] == 3060 * 3 * 64 * 4
    assert cost["embedding_bytes_peak"] == 3000 * 3 * 64 * 4 and cost["largest_side_bytes"] == 2000 * 3 * 64 * 4
    with pytest.raises(plan.UsageError, match="--layers 'x'"):
        plan.estimate(cell, tp, sizes, "xtreme", eval_args="--layers x")


def test_retrieval_search_figure_follows_the_device_and_backend():
    """GPU models: auto = torch on the GPU; FAISS there is priced on the CPU (faiss-cpu). An unmeasured search
    rate marks the cell and the plan says where the figure comes from."""
    from xstilts.study import plan

    tp, sizes = _figures(search_source="estimate (not measured): a guess")
    assert plan.search_key(tp["models"]["xlmr-large"]) == ("gpu-torch", "")
    assert plan.search_key(tp["models"]["xlmr-large"], "--search_backend faiss")[0] == "cpu-faiss"
    assert plan.search_key(tp["models"]["tiny-2l-h64"]) == ("cpu-faiss", "")
    grid = build_grid("xlmr-large tiny-2l-h64", "none", "bucc2018", "1")
    large = plan.estimate(grid.cells[0], tp, sizes, "xtreme")
    # xlmr-large: hidden 1024, 25 hidden states; gpu-torch 1e11 multiply-adds/s
    assert large.gpu_hours == pytest.approx((30.6 + 25 * 2 * (1000 * 2000 + 300) * 1024 / 1e11) / 3600)
    assert not large.measured and large.gpus == 1
    text = plan.render_plan(grid, throughput=tp, sizes=sizes, with_status=False)
    lines = [l for l in text.splitlines() if "results.json" in l]
    assert all("[unmeasured]" in l for l in lines)  # gpu-torch is an estimate; cpu-faiss too here
    assert "search cpu-faiss: estimate (not measured): a guess" in text and "search gpu-torch: estimate" in text
    tp["search"]["cpu-faiss"]["source"] = "measured by hand"
    text = plan.render_plan(grid, throughput=tp, sizes=sizes, with_status=False)
    tiny = next(l for l in text.splitlines() if "tiny-2l-h64/none/bucc2018" in l)
    assert "[unmeasured]" not in tiny and "Search rate cpu-faiss: measured by hand" in text


def test_make_plan_passes_eval_args(tmp_path):
    out = make("plan", "MODELS=xlmr-large", "INTERMEDIATE=none", "TARGETS=bucc2018 tatoeba", "SEEDS=1",
               f"RESULTS={tmp_path}/r", f"CKPTS={tmp_path}/c", "EVAL_ARGS=--layers default").stdout
    lines = [l for l in out.splitlines() if "results.json" in l]
    assert len(lines) == 2 and all("+ 1 layer(s) x search both ways" in l for l in lines)
    assert "2,928,845 sentences" in lines[0]  # the BUCC corpora, dev + test, both sides (dataset_sizes.json)


def _fake_sbatch(bin_dir: Path, log: Path) -> None:
    bin_dir.mkdir()
    sb = bin_dir / "sbatch"
    sb.write_text(f'#!/bin/bash\necho "$@" >> {log}\necho $((1000 + $(wc -l < {log})))\n')
    sb.chmod(sb.stat().st_mode | stat.S_IEXEC)


def submit_with_fake_sbatch(script: Path, tmp_path: Path) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run a `make slurm` script with a stand-in sbatch (records its arguments, prints job ids 1001, 1002, ...);
    the sbatch calls (one line each) and the script's process."""
    log = tmp_path / "sbatch.log"
    _fake_sbatch(tmp_path / "bin", log)
    env = dict(MAKE_ENV, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    sub = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert sub.returncode == 0, sub.stderr
    return log.read_text().splitlines(), sub


def test_slurm_script_arrays_and_dependency(tmp_path):
    script = tmp_path / "grid.sh"
    make("slurm", "MODELS=xlmr-base xlmr-large", "INTERMEDIATE=none mnli", "TARGETS=xnli tatoeba", "SEEDS=1 2",
         f"RESULTS={tmp_path}/r", f"CKPTS={tmp_path}/c", f"SLURM_SCRIPT={script}", "SLURM_PARTITION=gpu",
         "SLURM_TIME=12:00:00", "SLURM_MAX_PARALLEL=4", "DATA_ARGS=--data_root /data/hub")
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    block = lambda name: re.search(rf"^{name}_CELLS=\(\n(.*?)\n\)", text, re.S | re.M).group(1).split()
    assert block("PHASE2") == [f"{tmp_path}/c/{m}/mnli/xstilts_meta.json" for m in ("xlmr-base", "xlmr-large")]
    base = block("BASELINE")
    after = block("PHASE3")
    assert len(base) == len(after) == 8 and all("/none/" in c for c in base) and all("/mnli/" in c for c in after)
    assert f"{tmp_path}/r/xlmr-large/mnli/tatoeba/seed2/results.json" in after
    assert "'DATA_ARGS=--data_root /data/hub'" in text and "'MODELS=xlmr-base xlmr-large'" in text
    # submitting (a stand-in sbatch records its arguments and prints job ids 1001, 1002, ...)
    calls, sub = submit_with_fake_sbatch(script, tmp_path)
    assert len(calls) == 3
    assert "--array=0-1%4" in calls[0] and calls[0].endswith("phase2") and "--dependency" not in calls[0]
    assert "--array=0-7%4" in calls[1] and calls[1].endswith("baseline") and "--dependency" not in calls[1]
    assert "--array=0-7%4 --dependency=afterok:1001" in calls[2] and calls[2].endswith("phase3")
    assert all("--partition=gpu" in c and "--time=12:00:00" in c and "--gres=gpu:1" in c and
               "--signal=B:TERM@300" in c for c in calls)
    assert "submitted phase3: job 1003, 8 task(s), after phase2 job 1001" in sub.stdout


def test_slurm_task_passes_sigterm_to_the_run(tmp_path):
    """The job body runs `make <cell>`; a SIGTERM to the batch shell (SLURM's --signal=B:TERM) reaches the run,
    which can checkpoint; make reports the failure. A stand-in kit replaces the real Makefile."""
    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / "run.py").write_text(
        "import signal, sys, time, pathlib\n"
        "def h(*a):\n    pathlib.Path('got_term').write_text('saved'); sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, h)\npathlib.Path('started').write_text('1')\ntime.sleep(30)\n")
    (kit / "Makefile").write_text(f"cell.txt:\n\t{sys.executable} run.py\n")
    script = tmp_path / "s.sh"
    from xstilts.study.plan import main as plan_main

    assert plan_main(["slurm", "--models", "xlmr-base", "--intermediate", "none", "--targets", "xnli", "--out",
                      str(script), "--kit_dir", str(kit), "--time", "1:00:00", "--make_var", "MODELS=xlmr-base"]) == 0
    text = script.read_text().replace(f"  {tmp_path}", "  ")  # the body only needs its array
    script.write_text(re.sub(r"BASELINE_CELLS=\(\n.*?\n\)", "BASELINE_CELLS=(\n  cell.txt\n)", text, flags=re.S))
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="0")
    proc = subprocess.Popen(["bash", str(script), "baseline"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    for _ in range(100):
        if (kit / "started").exists():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)  # to the batch shell only, as --signal=B:TERM does
    out, _ = proc.communicate(timeout=20)
    assert (kit / "got_term").read_text() == "saved", out
    assert proc.returncode != 0 and "SIGTERM: passing it on" in out and "make exited with 2" in out


# ----------------------------------------------------------------------------- a small real grid
@pytest.fixture(scope="module")
def tiny_grid(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grid")
    args = [f"MODELS={' '.join(SIZES)}", "INTERMEDIATE=none mnli", "TARGETS=xnli tatoeba", "SEEDS=1", "PRESET=tiny",
            f"RESULTS={tmp}/results", f"CKPTS={tmp}/checkpoints", f"DATA_ARGS=--data_root {HUB}",
            # 2 steps stay at chance: the chance rule off (--divergence_margin -1), else every cell is diverged and
            # the report's tables, which this grid tests, are empty (tests/test_divergence.py tests the rule)
            "TRAIN_ARGS=--max_steps 2 --eval_steps_or_epoch 2 --disable_tqdm true --divergence_margin -1",
            "EVAL_ARGS=--languages de,zh",
            *[f"MODEL_DIR_{s}={tiny_models[s]}" for s in SIZES]]
    return tmp, args


def test_tiny_grid_completes_resumes_and_reports(tiny_grid):
    tmp, args = tiny_grid
    results = tmp / "results"
    broken = results / "tiny-4l-h128" / "mnli" / "xnli" / "seed1"
    # simulate a failed cell: its directory holds the record of a run with other settings, which the
    # script refuses (exit 2) before any work
    broken.mkdir(parents=True)
    (broken / "xstilts_run.json").write_text(json.dumps({"kind": "target", "task": "xnli", "seed": 99}))

    first = make("-k", "-j2", "grid", *args, check=False, timeout=400)
    assert first.returncode != 0 and "holds a run with different settings" in first.stderr
    cells = sorted(results.rglob("results.json"))
    assert len(cells) == 7 and not (broken / "results.json").exists(), first.stdout[-3000:] + first.stderr[-5000:]
    assert all((tmp / "checkpoints" / s / "mnli" / "xstilts_meta.json").exists() for s in SIZES)

    # fix the cause and run the whole grid again: only the failed cell runs
    (broken / "xstilts_run.json").unlink()
    before = {p: p.stat().st_mtime_ns for p in cells}
    again = make("grid", *args)
    ran = dry_run_cells(again.stdout)
    assert ran == [("run_target.py", str(broken), True)]
    assert (broken / "results.json").exists()
    assert {p: p.stat().st_mtime_ns for p in cells} == before
    assert "Nothing to be done" in make("grid", *args).stdout
    assert dry_run_cells(make("-n", "grid", *args).stdout) == []

    # the report from this tree: gain table with CIs, the size plot, the per-size heatmaps
    make("report", f"RESULTS={results}")
    md = (results / "report.md").read_text()
    gain_table = md.split("## Gain from intermediate training\n\n")[1].split("\n\n")[0]
    gain_rows = [l for l in gain_table.splitlines() if l.startswith("| tiny-")]
    assert [l.split("|")[1].strip() for l in gain_rows] == list(SIZES)
    for row in gain_rows:  # xnli and tatoeba gains, each with a 95% CI [low, high]
        assert len(re.findall(r"[+-]\d+\.\d \[[+-]?\d+\.\d, [+-]?\d+\.\d\]", row)) >= 2, row
    gains = (results / "gains.csv").read_text().splitlines()
    assert gains[0].startswith("model,n_params,target,intermediate,gain,ci_low,ci_high,ci_method")
    assert len(gains) == 1 + 2 * 3  # 2 sizes x (xnli, tatoeba, mean)
    for png in ("gain_vs_size.png", "gain_heatmap_tiny-2l-h64.png", "gain_heatmap_tiny-4l-h128.png"):
        assert (results / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png})" in md
    assert "## Best intermediate task per size" in md and "(published)" in md
