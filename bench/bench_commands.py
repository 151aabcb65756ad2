#!/usr/bin/env python
"""Wall time of the README's two commands, `make demo` and `make test`, on this machine, from a fresh clone.

The committed HEAD is cloned into a temporary directory (so local edits, built models and caches do not
help), `make venv` sets it up (timed separately: it depends on the package index, not on the kit), then
each command runs once with CI=true and no stdin. The JSON records each wall time, its exit status, the
commit, the CPU and the load average. A failed command is recorded as failed, never as a time.

    python bench/bench_commands.py                    # both (about 12 minutes on 2 cores)
    python bench/bench_commands.py --only demo
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import check_out_path, cpu_model, header, write_result  # noqa: E402

COMMANDS = {"demo": ["make", "demo"], "test": ["make", "test"]}


def timed(cmd: list[str], cwd: Path, log: Path) -> dict:
    env = {**os.environ, "CI": "true"}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.call(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - t0
    tail = log.read_text(errors="replace").splitlines()[-3:]
    return {"command": " ".join(cmd), "exit_status": rc, "seconds": round(seconds, 1),
            "minutes": f"{int(seconds // 60)} min {int(seconds % 60)} s", "log_tail": tail}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=sorted(COMMANDS), action="append", help="time only this command (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "commands-cpu.json"))
    p.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    args = p.parse_args(argv)
    out = check_out_path(Path(args.out), args.overwrite)
    hdr = header("commands", "bench_commands.py", argv, False)  # before measuring: the load average at the start
    names = args.only or list(COMMANDS)
    commit = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=ROOT, text=True).strip()
    dirty = bool(subprocess.check_output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, text=True).strip())
    work = Path(tempfile.mkdtemp(prefix="xstilts-commands-"))
    clone = work / "xstilts"
    subprocess.check_call(["git", "clone", "-q", str(ROOT), str(clone)])
    print(f"fresh clone of {commit[:10]} in {clone}", file=sys.stderr)
    runs = {"setup": timed(["make", "venv"], clone, work / "setup.log")}
    print(f"setup: {runs['setup']['minutes']} (exit {runs['setup']['exit_status']})", file=sys.stderr)
    failed = runs["setup"]["exit_status"] != 0
    for name in names if not failed else []:
        runs[name] = r = timed(COMMANDS[name], clone, work / f"{name}.log")
        print(f"{name}: {r['minutes']} (exit {r['exit_status']})", file=sys.stderr)
        failed |= r["exit_status"] != 0
    record = {**hdr, "cpu": cpu_model(), "cores": os.cpu_count(),
              "commit": commit, "working_tree_had_uncommitted_changes": dirty,
              "note": "timed in a fresh clone of the commit; uncommitted changes are not part of the measurement",
              "runs": runs, "targets": {"demo": "<= 300 s", "test": "<= 600 s"}}
    write_result(out, record)
    if args.keep:
        print(f"clone kept: {clone}", file=sys.stderr)
    else:
        subprocess.call(["rm", "-rf", str(work)])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
