"""Helpers shared by both sides of the benchmarks (standard library only: the Feast side
imports this from its own virtualenv)."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
DATA = BENCH / ".data"
RESULT_PREFIX = "BENCH-RESULT "

# The data both sides read (written once by bench/data.py).
FLIGHTS = DATA / "flights_entities.parquet"
FLIGHTS_SAMPLE = DATA / "flights_entities_3k.parquet"
WEATHER = DATA / "weather.parquet"
PLANES = DATA / "planes.parquet"
SYN_FEATURES = DATA / "syn_features.parquet"  # 1M rows: 100k keys x 10 times, f0..f9
SYN_ENTITIES = DATA / "syn_entities.parquet"  # 10M entity rows
BIG_CSV = DATA / "big.csv"  # ~2 GB
QUARTER_CSV = DATA / "big_quarter.csv"  # its first ~0.5 GB

# How long an hourly weather observation describes a departure: the TTL both feature stores
# get on the weather group/view (Feast's docs recommend a TTL on every view: it bounds the
# point-in-time join's look-back). Planes are static (one row per tail number): no TTL.
WEATHER_TTL = timedelta(hours=2)

WEATHER_FEATURES = [
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
]
# name -> kind ("int", "float", "string")
PLANE_FEATURES = {
    "year": "int",
    "type": "string",
    "manufacturer": "string",
    "model": "string",
    "engines": "int",
    "seats": "int",
    "speed": "float",
    "engine": "string",
}
SYN_FEATURE_NAMES = [f"f{i}" for i in range(10)]
SYN_KEYS = 100_000

ONLINE_CALLS = 5_000
ONLINE_WARMUP = 500


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB: ``VmHWM``, which belongs to the
    process's own memory map. ``ru_maxrss`` (the fallback where there is no /proc) is
    carried over fork and exec: a child reports at least its parent's peak when it was
    spawned (a child of a 1.55 GB driver reported 1,551 MB with a VmHWM of 8.8 MB)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict[str, Any]) -> None:
    """Hand one result to the driver (a tagged JSON line on stdout)."""
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def median_of(
    fn: Callable[[], Any], runs: int = 3, warmup: int = 1
) -> tuple[float, list[float], Any]:
    """Median wall time of ``runs`` calls after ``warmup`` untimed ones, the times, and
    the last call's value."""
    for _ in range(warmup):
        fn()
    times = []
    value = None
    for _ in range(runs):
        seconds, value = timed(fn)
        times.append(seconds)
    return statistics.median(times), times, value


def latency_stats(samples: list[float]) -> dict[str, float]:
    """p50 / p99 / mean of per-call latencies, in milliseconds."""
    ordered = sorted(samples)

    def pct(p: float) -> float:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    return {
        "calls": len(ordered),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def measure_calls(fn: Callable[[int], Any], calls: int, warmup: int) -> dict[str, float]:
    """Per-call wall time of ``fn(i)`` (p50 / p99 / mean, ms) over ``calls`` calls after
    ``warmup``, and the p50 / p99 of the calling thread's CPU time per call: on a machine
    other processes keep busy, a call's wall time includes waiting for a core, which its
    CPU time does not (nor waiting for a server's answer, which is real latency)."""
    for i in range(warmup):
        fn(i)
    wall, cpu = [], []
    clock, thread = time.perf_counter, time.thread_time
    for i in range(calls):
        started, used = clock(), thread()
        fn(i)
        cpu.append(thread() - used)
        wall.append(clock() - started)
    on_cpu = latency_stats(cpu)
    return latency_stats(wall) | {"cpu_p50_ms": on_cpu["p50_ms"], "cpu_p99_ms": on_cpu["p99_ms"]}


def argv_command() -> tuple[str, list[str]]:
    if len(sys.argv) < 2:
        raise SystemExit(f"usage: {sys.argv[0]} COMMAND [ARGS...]")
    return sys.argv[1], sys.argv[2:]


def machine() -> str:
    """CPU model, cores, memory and the load average now: the figures depend on all four."""
    names = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    load = os.getloadavg()
    return (
        f"{names[0] if names else platform.processor() or 'unknown CPU'}, nproc"
        f" {os.cpu_count()}, {pages / 2**30:.0f} GiB, Python {platform.python_version()},"
        f" load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    )
