"""CPU caps on children running user code: pinned cores, sized thread pools, real usage."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from slipway.runtime.childproc import run_child, run_forked
from slipway.runtime.limits import THREAD_VARIABLES, cores_for, thread_env

PROBE = Path(__file__).with_name("cpu_probe.py")


def test_cores_are_a_rotating_subset_or_all() -> None:
    allowed = {0, 1, 2, 3}
    assert cores_for(1, allowed, salt=0) == {0}
    assert cores_for(1, allowed, salt=5) == {1}
    assert cores_for(2, allowed, salt=3) == {3, 0}
    assert cores_for(0.5, allowed, salt=2) == {2}  # a fraction rounds up to a core
    assert cores_for(2.1, allowed, salt=0) == {0, 1, 2}
    assert cores_for(4, allowed, salt=1) is None  # all of them: nothing to pin
    assert cores_for(64, {7}, salt=9) is None


def test_thread_env_sizes_every_pool() -> None:
    assert thread_env(None) == {}
    env = thread_env(1.5)
    assert set(env) == set(THREAD_VARIABLES) and set(env.values()) == {"2"}


def _check(report: dict[str, object]) -> None:
    cores = report["cores"]
    assert isinstance(cores, list) and len(cores) == 1
    assert report["omp"] == "1"
    cpu, wall = float(report["cpu"]), float(report["wall"])  # type: ignore[arg-type]
    # Two spinning processes share one core: together at most the wall time (+ slack for
    # accounting granularity), where two free cores would give them about twice that.
    assert cpu <= wall * 1.25, report


def test_forked_child_is_pinned_to_its_cpus(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = run_forked("tests.runtime.cpu_probe", "probe", (str(out),), env={}, log=print, cpus=1)
    assert result.returncode == 0
    report = json.loads(out.read_text())
    _check(report)
    assert report["pools"] == [1]  # BLAS/OpenMP pools loaded before the fork were shrunk


def test_child_process_is_pinned_to_its_cpus(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = dict(os.environ)
    result = run_child([sys.executable, str(PROBE), str(out)], env=env, log=print, cpus=0.5)
    assert result.returncode == 0
    _check(json.loads(out.read_text()))


def test_uncapped_child_keeps_every_core(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    result = run_child([sys.executable, str(PROBE), str(out)], env=env, log=print)
    assert result.returncode == 0
    report = json.loads(out.read_text())
    assert report["cores"] == sorted(os.sched_getaffinity(0)) and report["omp"] is None
