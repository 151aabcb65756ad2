"""What every benchmark records the same way: the device, the library versions, the load, and the result file
(never silently replaced: a recorded measurement is only overwritten with ``--overwrite``)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

# dense (no sparsity) bf16 tensor-core peak, TFLOP/s, from the vendors' data sheets; the first key found in
# torch.cuda.get_device_name() wins, so the more specific names come first
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0, "H200 NVL": 835.0, "GH200": 989.0, "H200": 989.0,
    "GB200": 2500.0, "B200": 2250.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0,
}


def cpu_model() -> str:
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return name


def device_name(cuda: bool) -> str:
    """``NVIDIA H100 80GB HBM3`` on a GPU; ``CPU <model>, <cores> cores, <threads> threads`` otherwise."""
    import torch

    if cuda:
        return torch.cuda.get_device_name(0)
    return f"CPU {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def peak_bf16_tflops(name: str) -> float | None:
    for key, peak in PEAK_BF16_TFLOPS.items():
        if key in name:
            return peak
    return None


def versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("torch", "transformers", "datasets", "accelerate", "numpy", "faiss"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # not installed, or no __version__
            continue
    try:
        import torch

        out["cuda"] = torch.version.cuda
    except Exception:
        pass
    return out


def command_line(script: str, argv) -> str:
    """The command that reproduces the measurement (``--overwrite`` only concerns the file, so it is left out)."""
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--overwrite"]
    return " ".join(["python", f"bench/{script}", *args])


def cpu_clock() -> dict | None:
    """Seconds of CPU the whole machine has spent busy (``/proc/stat``: user, nice, system, irq, softirq and steal,
    the last being time the hypervisor gave to other guests), this process's own CPU seconds (its waited-for
    children included), and the wall clock; None where ``/proc/stat`` is not there."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields[i] for i in (0, 1, 2, 5, 6, 7) if i < len(fields)) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return {"host_busy_s": busy, "own_s": t.user + t.system + t.children_user + t.children_system,
            "wall_s": time.monotonic()}


def other_cpu_share(start: dict | None, end: dict | None) -> float | None:
    """The share of the machine's CPU capacity that *other* processes used between two :func:`cpu_clock`
    readings (0 = the benchmark had the machine to itself; 1 = every core was busy with other work throughout).
    Unlike the load average, the benchmark's own threads do not count against it."""
    if not start or not end or end["wall_s"] <= start["wall_s"]:
        return None
    other = (end["host_busy_s"] - start["host_busy_s"]) - (end["own_s"] - start["own_s"])
    return round(max(0.0, other) / ((end["wall_s"] - start["wall_s"]) * (os.cpu_count() or 1)), 3)


def header(benchmark: str, script: str, argv, cuda: bool) -> dict:
    """The fields every result JSON starts with (``cpu_clock_at_start`` becomes ``other_cpu_share`` in
    :func:`write_result`)."""
    return {"benchmark": benchmark, "date": time.strftime("%Y-%m-%d"), "device": device_name(cuda), "cuda": cuda,
            "command": command_line(script, argv), "versions": versions(),
            "load_average_at_start": round(os.getloadavg()[0], 2), "cpu_clock_at_start": cpu_clock()}


def check_out_path(path: Path, overwrite: bool) -> Path:
    """Call before measuring: a recorded result is not replaced unless asked (nothing computed is lost)."""
    if path.exists() and not overwrite:
        raise SystemExit(f"error: {path} exists (a recorded measurement); pass --overwrite (make: "
                         f"BENCH_FLAGS=--overwrite) to replace it, or --out to write elsewhere")
    return path


def write_result(path: Path, record: dict) -> Path:
    record.setdefault("load_average_at_end", round(os.getloadavg()[0], 2))
    if "cpu_clock_at_start" in record:
        record["other_cpu_share"] = other_cpu_share(record.pop("cpu_clock_at_start"), cpu_clock())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}", file=sys.stderr)
    return path
