#!/usr/bin/env python
"""Data preparation at full size: wall time, CPU time and peak memory of loading + featurizing the largest
training sets through the real phase scripts, run twice with the same ``datasets`` cache (the second run of an
unchanged cell must reuse the tokenized cache: measured as "no new cache file written").

No Hub here: the script writes a full-size mirror in the Hub layout ``--data_root`` reads (same configs, splits,
schemas and README as tests/fixtures/hub, which it starts from), with the big splits at their real row counts
(configs/dataset_sizes.json, datasets.md): the fixture rows repeated, their texts lengthened so that an example has
about the task's ``tokens_per_example`` tokens under the tiny tokenizer. Then, per case, the phase script on the
tiny model (tiny-2l-h64) with ``--max_steps 1``: after featurizing, one optimizer step and the (fixture-size) dev
and eval sets, so the time is nearly all loading + featurizing (panx: plus predicting 262,300 test sentences).

    python bench/bench_dataprep.py --cases xnli                     # MNLI (392,702 pairs) through run_target.py
    python bench/bench_dataprep.py --cases xnli,squad_v1,panx,anli_plus
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import RESULTS, check_out_path, header, write_result  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "hub"
ANLI_TRAIN = {"train_r1": 16946, "train_r2": 45460, "train_r3": 100459}  # datasets.md 3.2: 162,865 in all
PANX_TEST_TOTAL = 262300  # XTREME's 40 languages (configs/dataset_sizes.json "panx" eval)

# case -> the script, its task flags, the splits written at full size {(repo, config, split): rows}, and the key
# of configs/dataset_sizes.json whose tokens_per_example the synthetic texts are lengthened to
CASES = {
    "xnli": {"script": "run_target.py", "args": ["--task", "xnli", "--languages", "en"], "sizes_key": "xnli",
             "splits": {("nyu-mll/glue", "mnli", "train"): 392702}},
    "squad_v1": {"script": "run_intermediate.py", "args": ["--task", "squad_v1"], "sizes_key": "squad_v1",
                 "splits": {("rajpurkar/squad", "plain_text", "train"): 87599}},
    "anli_plus": {"script": "run_intermediate.py", "args": ["--task", "anli_plus"], "sizes_key": "anli_plus",
                  "splits": {**{("facebook/anli", "plain_text", s): n for s, n in ANLI_TRAIN.items()},
                             ("nyu-mll/glue", "mnli", "train"): 392702,
                             ("stanfordnlp/snli", "plain_text", "train"): 550152}},
    "panx": {"script": "run_target.py", "args": ["--task", "panx", "--languages", "xtreme"], "sizes_key": "panx",
             "splits": None},  # filled in by panx_splits(): PAN-X.en train/validation + 40 test sets
}


def panx_splits() -> dict:
    from xstilts.tasks.languages import PANX

    out = {("google/xtreme", "PAN-X.en", "train"): 20000, ("google/xtreme", "PAN-X.en", "validation"): 10000}
    base, extra = divmod(PANX_TEST_TOTAL, len(PANX))  # the real per-language sizes differ (10k, 1k, 100): the sum is real
    for i, code in enumerate(PANX):
        out[("google/xtreme", f"PAN-X.{code}", "test")] = base + (i < extra)
    return out


def _repeat_text(col, k: int):
    import pyarrow as pa
    import pyarrow.compute as pc

    if k <= 1:
        return col
    if pa.types.is_list(col.type):  # token lists (PAN-X): the sentence k times, tags and langs alike
        return pa.array([v * k for v in col.to_pylist()], type=col.type)
    return pc.binary_join_element_wise(*([col] * k), " ")


def lengthen(table, k: int, text_columns: list[str], list_columns: list[str]):
    """Every text (and, for token lists, every parallel list) k times: answer offsets stay valid (first copy)."""
    for name in text_columns + list_columns:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), _repeat_text(table.column(name).combine_chunks(), k))
    return table


def tile(table, n: int):
    """The table's rows repeated to exactly n rows; id-like columns made unique."""
    import pyarrow as pa

    reps = math.ceil(n / table.num_rows)
    out = pa.concat_tables([table] * reps).slice(0, n).combine_chunks()
    for name, make in (("idx", lambda: pa.array(range(n), type=pa.int32())),
                       ("id", lambda: pa.array([f"{i:024x}" for i in range(n)])),
                       ("uid", lambda: pa.array([f"synthetic-{i}" for i in range(n)]))):
        if name in out.column_names:
            i = out.schema.get_field_index(name)
            out = out.set_column(i, out.schema.field(i), make().cast(out.schema.field(i).type))
    return out


def _columns(table) -> tuple[list[str], list[str]]:
    import pyarrow as pa

    text = [f.name for f in table.schema if pa.types.is_string(f.type) and f.name in
            ("premise", "hypothesis", "context", "question")]
    lists = [f.name for f in table.schema if pa.types.is_list(f.type)] if "tokens" in table.column_names else []
    return text, lists


def _tokens_per_example(table, tokenizer, sample: int = 500) -> float:
    rows = table.slice(0, sample).to_pylist()
    if "tokens" in table.column_names:
        return sum(len(tokenizer(r["tokens"], is_split_into_words=True)["input_ids"]) for r in rows) / len(rows)
    if "context" in table.column_names:
        return sum(len(tokenizer(r["question"], r["context"])["input_ids"]) for r in rows) / len(rows)
    return sum(len(tokenizer(r["premise"], r["hypothesis"])["input_ids"]) for r in rows) / len(rows)


def build_mirror(root: Path, splits: dict, tokenizer, target_tokens: float) -> dict:
    """Copy the fixture repos the splits belong to, write the full-size splits, rewrite each README (split sizes).
    Returns per split: rows, the lengthening factor and the tokens per example reached (tiny tokenizer)."""
    import pyarrow.parquet as pq

    from xstilts.data.mirror import Mirror, parquet_name, read_readme, write_readme

    made = {}
    for repo in sorted({r for r, _, _ in splits}):
        if not (root / repo).exists():
            shutil.copytree(FIXTURES / repo, root / repo)
    for (repo, config, split), n in splits.items():
        src = FIXTURES / repo / parquet_name(config, split)
        if not src.exists():  # a PAN-X language the fixtures lack: PAN-X.de's rows under its name
            src = FIXTURES / repo / parquet_name("PAN-X.de", split)
        table = pq.read_table(src)
        text, lists = _columns(table)
        per = _tokens_per_example(table, tokenizer)
        k = max(1, round(target_tokens / per))
        table = tile(lengthen(table, k, text, lists), n)
        if "langs" in table.column_names and config.startswith("PAN-X."):
            import pyarrow as pa

            code = config.split(".", 1)[1]
            i = table.schema.get_field_index("langs")
            table = table.set_column(i, table.schema.field(i), pa.array(
                [[code] * len(t) for t in table.column("tokens").to_pylist()], type=table.schema.field(i).type))
        out = root / repo / parquet_name(config, split)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out)
        made[f"{repo}/{config}/{split}"] = {"rows": n, "lengthened_x": k, "fixture_tokens_per_example": round(per, 1),
                                            "tokens_per_example": round(_tokens_per_example(table, tokenizer), 1)}
    mirror = Mirror(root)
    for repo in sorted({r for r, _, _ in splits}):
        head, body = read_readme(root / repo)
        write_readme(root / repo, head, mirror.on_disk(repo), body)
    for readme in FIXTURES.glob("*/*/README.md"):  # the other repos (dev and eval sets): the fixtures as they are
        repo = readme.parent.relative_to(FIXTURES)
        if not (root / repo).exists():
            (root / repo).parent.mkdir(parents=True, exist_ok=True)
            (root / repo).symlink_to(readme.parent)
    return made


def _files(cache: Path) -> set[str]:
    return {str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()}


def run_once(cmd: list[str], env: dict, log: Path) -> dict:
    """One run of a phase script: wall seconds, user+sys CPU seconds and peak RSS (GB) of the process tree's
    largest process (wait4's rusage)."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    return {"exit_status": rc, "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="xnli", help=f"comma list of {', '.join(CASES)}")
    p.add_argument("--work_dir", default=None, help="mirror, model, caches and outputs (default: a temp dir, removed)")
    p.add_argument("--out", default=None, help="result JSON (default bench/results/dataprep-cpu-<cases>.json)")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case {unknown[0]!r}; valid choices: {', '.join(CASES)}")
    out = check_out_path(Path(args.out) if args.out else RESULTS / f"dataprep-cpu-{'-'.join(cases)}.json",
                         args.overwrite)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="xstilts-dataprep-"))
    work.mkdir(parents=True, exist_ok=True)

    from transformers import AutoTokenizer

    from xstilts.tiny import build

    sizes = json.loads((ROOT / "configs" / "dataset_sizes.json").read_text())["tasks"]
    model = work / "models" / "tiny-2l-h64"
    if not (model / "config.json").exists():
        build(work / "models", sizes=("tiny-2l-h64",), corpus=ROOT / "tests" / "fixtures" / "corpus.txt",
              vocab_size=2000, mlm_steps=10)
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    record = header("dataprep", "bench_dataprep.py", argv, cuda=False)
    record.update(model="tiny-2l-h64 (xstilts.tiny, vocab 2,000)", cases={})
    for name in cases:
        case = CASES[name]
        splits = case["splits"] or panx_splits()
        root = work / f"hub-{name}"
        t0 = time.perf_counter()
        made = build_mirror(root, splits, tokenizer, sizes[case["sizes_key"]]["tokens_per_example"])
        cache = work / f"hf_cache-{name}"
        shutil.rmtree(cache, ignore_errors=True)
        env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        env.pop("XSTILTS_DATA_ROOT", None)
        runs = {}
        for which in ("first", "second"):
            before = _files(cache) if cache.exists() else set()
            cmd = [sys.executable, case["script"], "--model", str(model), *case["args"], "--preset", "tiny",
                   "--data_root", str(root), "--max_steps", "1", "--eval_steps_or_epoch", "1", "--disable_tqdm",
                   "true", "--output_dir", str(work / f"out-{name}-{which}")]
            r = run_once(cmd, env, work / f"{name}-{which}.log")
            new = sorted(f for f in _files(cache) - before if f.endswith(".arrow"))
            r["new_cache_files"] = len(new)
            if r["exit_status"] != 0:
                r["log_tail"] = (work / f"{name}-{which}.log").read_text()[-3000:]
            runs[which] = r
            print(f"{name} {which}: {r}", file=sys.stderr)
        rows = sum(splits.values())
        record["cases"][name] = {
            "script": case["script"], "task_args": " ".join(case["args"]), "rows_at_full_size": rows,
            "splits": made, "mirror_build_s": round(time.perf_counter() - t0 - sum(r["wall_s"] for r in runs.values()), 1),
            "target_tokens_per_example": sizes[case["sizes_key"]]["tokens_per_example"], "runs": runs,
            "second_reuses_cache": runs["second"]["exit_status"] == 0 and runs["second"]["new_cache_files"] == 0,
            "command": " ".join(["python", case["script"], "--model", "<tiny-2l-h64>", *case["args"], "--preset",
                                 "tiny", "--data_root", "<full-size mirror>", "--max_steps", "1",
                                 "--eval_steps_or_epoch", "1", "--disable_tqdm", "true", "--output_dir", "<dir>"])}
        write_result(out, record)  # after every case: what was measured is kept if a later case is stopped
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    failed = [n for n, c in record["cases"].items() if any(r["exit_status"] for r in c["runs"].values())]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
