"""The benchmarks run (tiny shapes, a few steps), write what they claim, refuse to overwrite a recorded result,
and feed `make plan` (python -m xstilts.plan from-bench)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_embed  # noqa: E402
import bench_eval  # noqa: E402
import bench_mining  # noqa: E402
import bench_scaling  # noqa: E402
import bench_train  # noqa: E402

HEADER = ("benchmark", "date", "device", "cuda", "command", "versions", "load_average_at_start")


@pytest.fixture(scope="module")
def train_json(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "train.json"
    rc = bench_train.main(["--model_shape", "tiny", "--task_shape", "tag128", "--settings", "hf,kit", "--steps", "3",
                           "--warmup", "1", "--batch_size", "8", "--tmp", str(out.parent / "tmp"), "--out", str(out)])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def eval_json(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "eval.json"
    assert bench_eval.main(["--model_shape", "tiny", "--task", "xnli", "--scale", "0.002", "--out", str(out)]) == 0
    return out


def test_train_records_both_settings(train_json):
    rec = json.loads(train_json.read_text())
    assert all(k in rec for k in HEADER) and rec["benchmark"] == "train" and rec["cuda"] is False
    assert rec["versions"]["torch"] and rec["versions"]["transformers"]
    hf, kit = (next(r for r in rec["results"] if r["setting"] == s) for s in ("hf", "kit"))
    # the HF default pads every sequence to 128; the kit pads each batch to its longest member
    assert hf["padding_fraction"] > kit["padding_fraction"]
    assert hf["padded_tokens_per_second"] / hf["real_tokens_per_second"] == pytest.approx(
        1 / (1 - hf["padding_fraction"]))
    assert kit["attn_implementation"] == "sdpa" and kit["train_sampling_strategy"].endswith("group_by_length")
    assert hf["train_sampling_strategy"].endswith("random")
    assert kit["real_tokens_per_second_vs_hf"] == pytest.approx(
        kit["real_tokens_per_second"] / hf["real_tokens_per_second"])
    assert hf["mfu"] is None and hf["bf16"] is False  # no peak to compare with on a CPU
    assert all(0 < r["update_fraction"] < 1 for r in (hf, kit))
    assert rec["command"].startswith("python bench/bench_train.py --model_shape tiny")


def test_bench_refuses_to_overwrite(train_json, capsys):
    before = train_json.read_bytes()
    with pytest.raises(SystemExit, match="--overwrite"):
        bench_train.main(["--model_shape", "tiny", "--steps", "1", "--warmup", "0", "--out", str(train_json)])
    assert train_json.read_bytes() == before


def test_eval_one_pass_matches_naive(eval_json):
    rec = json.loads(eval_json.read_text())
    assert rec["benchmark"] == "eval" and rec["predictions_agree"] is True
    assert rec["languages"] == 15 and rec["rows"] == 15 * 10  # 5,010 x 0.002 per language
    assert rec["kit"]["tokens_per_second"] == pytest.approx(rec["tokens"] / rec["kit"]["seconds"])
    assert rec["speedup"] == pytest.approx(rec["naive"]["seconds"] / rec["kit"]["seconds"])


def test_embed_kit_equals_naive(tmp_path):
    out = tmp_path / "embed.json"
    assert bench_embed.main(["--model_shape", "tiny", "--n", "200", "--layers", "0,4", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["layers"] == [0, 4] and rec["sentences"] == 200
    assert rec["min_cosine_kit_vs_naive"] > 0.999  # same vectors: only the batching differs on a CPU
    assert rec["kit"]["order"] == "length-sorted" and rec["naive"]["order"] == "file"


def test_embed_bad_layer_is_named(tmp_path):
    with pytest.raises(SystemExit):
        bench_embed.main(["--model_shape", "tiny", "--layers", "9", "--out", str(tmp_path / "e.json")])
    assert not (tmp_path / "e.json").exists()


def test_mining_faiss_agrees_with_brute_force(tmp_path):
    assert bench_mining.main(["--n", "1500", "--dim", "32", "--repeat", "1", "--out_dir", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "mining-cpu-1500.json").read_text())
    assert rec["check"]["pair_agreement"] >= 0.999 and rec["candidates"] > 0
    assert rec["versions"]["faiss"]


@pytest.fixture(scope="module")
def scaling_json(tmp_path_factory) -> Path:
    """Both backends on the CPU at two sizes; FAISS stops after the first, so the second size is checked
    against the NumPy brute force."""
    out = tmp_path_factory.mktemp("bench") / "scaling.json"
    assert bench_scaling.main(["--ns", "300,800", "--dim", "32", "--faiss_max_n", "300", "--check", "200",
                               "--out", str(out)]) == 0
    return out


def test_scaling_records_both_backends_checks_and_fit(scaling_json):
    rec = json.loads(scaling_json.read_text())
    assert all(k in rec for k in HEADER) and rec["benchmark"] == "scaling" and rec["ns"] == [300, 800]
    torch_b, faiss_b = rec["backends"]["torch"], rec["backends"]["faiss"]
    assert [p["n"] for p in torch_b["points"]] == [300, 800] and [p["n"] for p in faiss_b["points"]] == [300]
    assert torch_b["search"]["backend"] == "torch" and torch_b["search"]["accumulation"] == "float32"
    both, alone = rec["checks"]
    assert both["backends"] == ["torch", "faiss"] and both["pair_agreement"] == 1.0
    assert alone["backends"] == ["torch"] and alone["against"].startswith("NumPy") and alone["fwd_id_agreement"] >= 0.999
    assert torch_b["points"][0]["candidates"] == faiss_b["points"][0]["candidates"]
    # the fit is the plan's, and the projection is the fitted rate times the work
    from xstilts.study import plan

    fit = plan.fit_search_rate([dict(p, dim=32) for p in torch_b["points"]])
    assert torch_b["fit"] == pytest.approx(fit) and fit["exponent"] is not None
    pr = torch_b["projection"]
    assert pr["seconds_per_layer"] == pytest.approx(2 * 400_000**2 * 1024 / fit["multiply_adds_per_second"])
    assert pr["seconds_per_sweep"] == pytest.approx(25 * pr["seconds_per_layer"])
    assert pr["dim_scaling"] == "x 1024/32 (linear in the dimension)"
    assert rec["command"].startswith("python bench/bench_scaling.py --ns 300,800")


def test_a_result_records_the_cpu_other_processes_used(scaling_json):
    """write_result turns the CPU clock read at the start into ``other_cpu_share``: the share of the machine's CPU
    that processes other than the benchmark used while it ran (a fraction; the raw clock is not kept)."""
    rec = json.loads(scaling_json.read_text())
    assert "cpu_clock_at_start" not in rec
    assert rec["other_cpu_share"] is None or 0 <= rec["other_cpu_share"] <= 1


def test_other_cpu_share_leaves_out_the_benchmarks_own_cpu():
    from common import other_cpu_share

    cores = __import__("os").cpu_count()
    start = {"host_busy_s": 100.0, "own_s": 1.0, "wall_s": 50.0}
    # 10 s of wall clock: the machine was busy 10 x cores - 1 s, the benchmark itself 10 x cores - 1 - 0.5 x cores s
    end = {"host_busy_s": 100.0 + 10 * cores - 1, "own_s": 1.0 + 10 * cores - 1 - 0.5 * cores, "wall_s": 60.0}
    assert other_cpu_share(start, end) == pytest.approx(0.05)
    alone = dict(end, own_s=1.0 + 10 * cores - 1)  # every busy second was the benchmark's: nobody else
    assert other_cpu_share(start, alone) == 0.0
    assert other_cpu_share(None, end) is None and other_cpu_share(start, dict(end, wall_s=50.0)) is None


def test_a_benchmark_using_every_core_is_not_under_load_by_its_own_threads():
    """The load average at the end of a run counts the benchmark's own threads, so a 2-thread benchmark on an
    otherwise idle 2-core machine ends at a load of about 2, and at its start it still counts the benchmark run
    just before. With the measured share of other processes' CPU a result is judged by that; results without it
    keep the load-average rule, applied where it was (the scaling tables)."""
    import summarize
    from xstilts.study.plan import bench_under_load

    own_threads = {"cpu_count": 2, "load_average_at_start": 0.4, "load_average_at_end": 2.1, "device": "CPU x"}
    assert not bench_under_load(dict(own_threads, other_cpu_share=0.01))
    assert not bench_under_load(dict(own_threads, other_cpu_share=0.01, load_average_at_start=1.5))
    assert bench_under_load(dict(own_threads, other_cpu_share=0.3))
    assert bench_under_load(own_threads)  # no share recorded (older results): the load average decides
    assert not bench_under_load(dict(own_threads, cuda=True))
    flag = "under load: not representative"
    assert flag in summarize._device(dict(own_threads, other_cpu_share=0.3))
    assert flag not in summarize._device(dict(own_threads, other_cpu_share=0.01))
    assert "other processes 1 % of the CPU" in summarize._device(dict(own_threads, other_cpu_share=0.01))
    assert flag not in summarize._device(own_threads) and flag in summarize._device(own_threads, True)


def test_a_command_over_its_target_time_says_so():
    """The README's two commands have wall-time targets; "ok" alone hid a demo that ran 303 s against <= 300 s."""
    import summarize

    run = {"exit_status": 0, "seconds": 303.4}
    assert summarize._command_status(run, "<= 300 s") == "ok, **3 s over its target**"
    assert summarize._command_status(dict(run, seconds=299.0), "<= 300 s") == "ok"
    assert summarize._command_status(run, None) == "ok"
    assert summarize._command_status(dict(run, exit_status=2), "<= 300 s") == "FAILED (exit 2)"


def test_fit_search_rate_by_hand():
    from xstilts.study import plan

    # seconds = 2 n^2 dim / 1e9 exactly: rate 1e9, exponent 2, seconds per n^2 = 2 x 64 / 1e9
    pts = [{"n_src": n, "n_trg": n, "dim": 64, "seconds": 2 * n * n * 64 / 1e9} for n in (1000, 2000, 4000)]
    fit = plan.fit_search_rate(pts)
    assert fit["multiply_adds_per_second"] == pytest.approx(1e9) and fit["exponent"] == pytest.approx(2.0)
    assert fit["seconds_per_n2"] == pytest.approx(128 / 1e9) and fit["max_relative_residual"] == pytest.approx(0, abs=1e-12)
    one = plan.fit_search_rate(pts[:1])
    assert one["exponent"] is None and one["multiply_adds_per_second"] == pytest.approx(1e9)


def test_summarize_projects_only_what_the_fit_supports(scaling_json, tmp_path, monkeypatch):
    """The small run gets no projection; a run whose points follow n^2 up to 200k is projected: 1e-8 s x n^2 at dim
    1024 -> 400k x 400k = 1,600 s = 26.7 min a layer, 25 layers = 11.1 h."""
    import summarize

    good = json.loads(scaling_json.read_text())
    good["command"] = "python bench/bench_scaling.py --fake"
    good["dim"] = 1024
    b = good["backends"]["torch"]
    b["points"] = [dict(b["points"][0], n=n, n_src=n, n_trg=n, seconds=1e-8 * n * n) for n in (25_000, 100_000, 200_000)]
    from xstilts.study import plan

    b["fit"] = plan.fit_search_rate([dict(p, dim=1024) for p in b["points"]])
    b["projection"] = bench_scaling.projections(b["fit"], 1024, 400_000, 1024, 25, plan.load_json(plan.SIZES_FILE))
    good["checks"] = [dict(good["checks"][0], n=n) for n in (25_000, 100_000, 200_000)]
    good["backends"]["faiss"]["points"] = []
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(scaling_json, results / "scaling-cpu-small.json")
    (results / "scaling-cpu-good.json").write_text(json.dumps(good))
    monkeypatch.setattr(summarize, "RESULTS", results)
    table = summarize.scaling_fit_table()
    small = [l for l in table.splitlines() if "--ns 300,800" in l]
    fake = [l for l in table.splitlines() if "--fake" in l]
    assert len(small) == 2 and all("no projection" in l for l in small)
    assert len(fake) == 1 and "| 26.7 min | 11.1 h |" in fake[0] and "| 2.00 |" in fake[0]
    assert "G multiply-adds/s" in summarize.scaling_points_table()


def test_plan_search_rates_from_bench(scaling_json, tmp_path):
    from xstilts.study import plan

    tp = tmp_path / "throughput.json"
    shutil.copy(plan.THROUGHPUT_FILE, tp)
    before = json.loads(tp.read_text())["search"]
    assert plan.main(["from-bench", "--search", str(scaling_json), "--write", "--throughput", str(tp)]) == 0
    search = json.loads(tp.read_text())["search"]
    rec = json.loads(scaling_json.read_text())
    for key, backend in (("cpu-torch", "torch"), ("cpu-faiss", "faiss")):
        assert search[key]["multiply_adds_per_second"] == pytest.approx(
            rec["backends"][backend]["fit"]["multiply_adds_per_second"], rel=1e-3)
        assert plan.is_measured(search[key]) and "bench/bench_scaling.py --ns 300,800" in search[key]["source"]
        assert search[key]["replaced_source"] == before[key]["source"]
    assert search["gpu-torch"] == before["gpu-torch"]  # not measured here: kept
    assert plan.main(["from-bench", "--search", str(scaling_json), "--model", "xlmr-large"]) == 2


def test_plan_uses_bench_figures(train_json, eval_json, tmp_path):
    from xstilts.study import plan

    tp = tmp_path / "throughput.json"
    shutil.copy(plan.THROUGHPUT_FILE, tp)
    assert plan.main(["from-bench", "--model", "tiny-4l-h128", "--train", str(train_json), "--eval", str(eval_json),
                      "--write", "--throughput", str(tp)]) == 0
    entry = json.loads(tp.read_text())["models"]["tiny-4l-h128"]
    kit = next(r for r in json.loads(train_json.read_text())["results"] if r["setting"] == "kit")
    assert entry["train_tokens_per_second"] == pytest.approx(kit["real_tokens_per_second"], rel=1e-3)
    assert entry["eval_tokens_per_second"] == pytest.approx(
        json.loads(eval_json.read_text())["kit"]["tokens_per_second"], rel=1e-3)
    assert plan.is_measured(entry) and "bench/bench_train.py" in entry["source"]
    assert entry["replaced_source"].startswith("measured")  # the previous entry's provenance is kept

    grid = plan.build_grid("tiny-4l-h128", "none", "xnli", "1")
    text = plan.render_plan(grid, throughput=json.loads(tp.read_text()))
    assert "[unmeasured]" not in text
    # the estimate moves with the figure: halve the throughput, the hours grow
    slow = json.loads(tp.read_text())
    for k in ("train_tokens_per_second", "eval_tokens_per_second"):
        slow["models"]["tiny-4l-h128"][k] /= 2
    est = plan.estimate(grid.cells[0], json.loads(tp.read_text()), plan.load_json(plan.SIZES_FILE), "xtreme")
    est_slow = plan.estimate(grid.cells[0], slow, plan.load_json(plan.SIZES_FILE), "xtreme")
    assert est_slow.gpu_hours == pytest.approx(2 * est.gpu_hours)


def test_plan_from_bench_refuses_a_shape_mismatch(train_json, tmp_path, capsys):
    from xstilts.study import plan

    tp = tmp_path / "throughput.json"
    shutil.copy(plan.THROUGHPUT_FILE, tp)
    before = tp.read_bytes()
    assert plan.main(["from-bench", "--model", "xlmr-large", "--train", str(train_json), "--write",
                      "--throughput", str(tp)]) == 2
    err = capsys.readouterr().err
    assert "'tiny' shape (4 layers, hidden 128)" in err and "xlmr-large has 24 layers, hidden 1024" in err
    assert tp.read_bytes() == before


def test_plan_from_bench_without_eval_stays_unmeasured(train_json):
    from xstilts.study import plan

    entry = plan.from_bench("tiny-4l-h128", train_json)
    assert not plan.is_measured(entry) and "evaluation NOT measured" in entry["source"]


def test_readme_tables_are_the_recorded_results():
    """bench/README.md's tables are generated from bench/results/*.json: no figure without its command."""
    import summarize

    readme = summarize.README.read_text()
    block = readme.split(summarize.BEGIN, 1)[1].split(summarize.END, 1)[0]
    assert block.strip() == summarize.render().strip(), "run `python bench/summarize.py --write`"
    for path in summarize.RESULTS.glob("*.json"):
        rec = json.loads(path.read_text())
        if not path.name.startswith("shapecheck-"):
            assert rec["command"].startswith("python bench/") and f"`{rec['command']}`" in block, path.name


def test_plan_from_bench_floor_and_deepspeed_note(train_json, tmp_path):
    """The per-step floor comes from the measured update time; a model the grid trains under DeepSpeed says the
    figure was measured without it; a result without the update timing stays "partly measured"."""
    from xstilts.study import plan

    entry = plan.from_bench("tiny-4l-h128", train_json, None)
    kit = next(r for r in json.loads(train_json.read_text())["results"] if r["setting"] == "kit")
    assert entry["min_step_seconds"] == pytest.approx(kit["update_seconds_per_step"], abs=1e-4)
    rec = json.loads(train_json.read_text())
    rec["model_shape"].update(num_hidden_layers=24, hidden_size=1024)  # pretend: the large shape
    for r in rec["results"]:
        r.pop("update_seconds_per_step")
    fake = tmp_path / "train-large.json"
    fake.write_text(json.dumps(rec))
    large = plan.from_bench("xlmr-large", fake, None, previous={"min_step_seconds": 0.06, "source": "estimate"})
    assert "ds_configs/zero2.json" in large["source"] and large["min_step_seconds"] == 0.06
    assert "min_step_seconds NOT measured" in large["source"] and not plan.is_measured(large)


def test_dataprep_mirror_has_the_sizes_schemas_and_lengths_asked(tiny, tmp_path):
    """bench_dataprep's full-size mirror (here at small sizes): the splits at the row counts asked, the fixture's
    schema, READMEs the kit's mirror check accepts, texts lengthened towards the target, PAN-X languages the
    fixtures lack written under their own code, every other repo linked from the fixtures."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    import bench_dataprep
    from xstilts.data.hub import mirror_files

    tok = AutoTokenizer.from_pretrained(str(tiny))
    splits = {("nyu-mll/glue", "mnli", "train"): 1500, ("google/xtreme", "PAN-X.jv", "test"): 70}
    made = bench_dataprep.build_mirror(tmp_path, splits, tok, target_tokens=45)
    glue = mirror_files(tmp_path / "nyu-mll" / "glue", "mnli")
    table = pq.read_table(glue["train"][0])
    fixture = pq.read_table(bench_dataprep.FIXTURES / "nyu-mll/glue/mnli/train-00000-of-00001.parquet")
    assert table.num_rows == 1500 and table.schema == fixture.schema
    assert table.column("idx").to_pylist() == list(range(1500))
    mnli = made["nyu-mll/glue/mnli/train"]
    assert mnli["lengthened_x"] == max(1, round(45 / mnli["fixture_tokens_per_example"]))
    jv = pq.read_table(mirror_files(tmp_path / "google" / "xtreme", "PAN-X.jv")["test"][0]).to_pylist()
    assert len(jv) == 70 and all(set(r["langs"]) == {"jv"} and len(r["langs"]) == len(r["tokens"]) == len(r["ner_tags"])
                                 for r in jv)
    assert (tmp_path / "facebook" / "anli").resolve() == (bench_dataprep.FIXTURES / "facebook" / "anli").resolve()
