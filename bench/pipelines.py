"""Pipeline and tuning overhead, measured with real worker processes.

    uv run python bench/pipelines.py   # writes bench/pipelines_results.md

- per-step overhead: a 20-step chain of no-op steps on one worker, wall time / steps
- a 100-step fan-out / fan-in DAG on two workers, wall time
- tuning overhead per trial: 20 trials of an objective that returns at once, 2 in parallel,
  from the job's creation to its completion as the job records them (after a warm-up job:
  the first job opens MLflow's and Optuna's stores in this process; the workers open theirs
  when they start, see ``Worker.warm_up``)
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slipway.core.settings import load_settings
from slipway.services import Services
from slipway.tuning.tables import TuningJobRow

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "pipelines_results.md"


def workers(home: Path, count: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env |= {
        "SLIPWAY_HOME": str(home),
        "PYTHONPATH": f"{REPO}:{REPO / 'bench'}",
        "SLIPWAY_WORKERS__POLL_SECONDS": "0.05",
    }
    return [
        subprocess.Popen(
            [sys.executable, "-m", "slipway", "worker", "--id", f"b{n}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(count)
    ]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)


def timed_run(services: Services, name: str) -> float:
    started = time.perf_counter()
    done = services.pipelines.wait(services.pipelines.start(name), timeout=600)
    assert done["state"] == "Succeeded", done
    return time.perf_counter() - started


def tune(services: Services, name: str, trials: int) -> TuningJobRow:
    """A tuning job of ``trials`` no-op trials, two in parallel, run to completion."""
    services.tuning.submit(
        {
            "name": name,
            "trial": "pipelines_flows:instant",
            "parameter_ranges": {"x": {"type": "continuous", "min": 0, "max": 1}},
            "max_jobs": trials,
            "max_parallel_jobs": 2,
            "strategy": "random",
            "code_paths": [str(REPO / "bench")],
        }
    )
    job = services.tuning.wait(name, timeout=600)
    assert job.state == "Completed", job.error
    return job


def main() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import pipelines_flows

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        services = Services.open(load_settings(home=home))
        services.pipelines.register(pipelines_flows.chain)
        services.pipelines.register(pipelines_flows.wide)
        one = workers(home, 1)
        try:
            timed_run(services, "chain")  # warm-up: the fork server starts once per worker
            chain = min(timed_run(services, "chain") for _ in range(3))
        finally:
            stop(one)
        rows.append(
            (
                "per-step overhead, 20-step chain, 1 worker",
                f"{chain / 20 * 1000:.0f} ms",
                "≤ 100 ms",
                chain / 20 <= 0.1,
            )
        )
        two = workers(home, 2)
        try:
            timed_run(services, "chain")
            wide = min(timed_run(services, "wide") for _ in range(2))
            tune(services, "tuning-warm-up", 4)  # the first job opens stores in this process
            job = tune(services, "overhead", 20)
            assert job.finished_at is not None
            tuning = (job.finished_at - job.created_at).total_seconds()
        finally:
            stop(two)
        rows.append(
            ("100-step fan-out/fan-in DAG, 2 workers", f"{wide:.1f} s", "≤ 20 s", wide <= 20)
        )
        per_trial = tuning * 2 / 20  # two slots in parallel
        rows.append(
            (
                "tuning overhead per trial (no-op objective, 2 parallel)",
                f"{per_trial * 1000:.0f} ms",
                "≤ 200 ms",
                per_trial <= 0.2,
            )
        )
        services.close()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        "## Pipelines and tuning overhead",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by"
        " `uv run python bench/pipelines.py` on "
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()};"
        " embedded SQLite, real `slipway worker` processes, steps and trials forked from the"
        " workers' warm fork server. Best of several runs after a warm-up.",
        "",
        "| measurement | Slipway | target | met |",
        "|---|---|---|---|",
        *[
            f"| {name} | {value} | {target} | {'yes' if ok else 'no'} |"
            for name, value, target, ok in rows
        ],
        "",
        "Tuning per trial = (job completed - job created, as the job records them) x 2 slots"
        " / 20 trials: asking Optuna under the job's lock, the trial's nested MLflow run and"
        " parameters, forking the trial, its intermediate values and result, telling Optuna."
        " One-time costs are not in it: a worker opens MLflow's store and starts its fork"
        " server when it starts (`Worker.warm_up`), and the fork server has Optuna's storage"
        " models imported and mapped, so a trial process opens the study in a few ms.",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
