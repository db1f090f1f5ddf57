"""The Ray executor against a real Ray head: the same work as local workers, on Ray tasks.

Every test connects this process to the session's head (``ray_head``) as Ray's driver;
the connection is kept across tests, so the Ray worker processes (and the fork servers
in them) stay warm like a long-running worker's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.core.queue import WorkItem, WorkState
from slipway.core.settings import load_settings
from slipway.pipelines.resources import Execution
from slipway.pipelines.tables import StepRunRow
from slipway.services import Services
from slipway.training.tables import TrainingJobRow
from slipway.workers.handlers import DEFAULT_QUEUES
from slipway.workers.ray_executor import RayWorker
from slipway.workers.resources import declared_cpus
from slipway.workers.worker import Worker
from tests.pipelines import sample
from tests.workers import ray_pipelines

pytestmark = pytest.mark.ray
REPO = str(Path(__file__).resolve().parents[2])


def _services(database_url: str, home: Path, ray_head: str) -> Services:
    return Services.open(
        load_settings(
            home=home,
            database={"url": database_url},
            ray={"address": ray_head},
            workers={"lease_seconds": 1.5, "poll_seconds": 0.05},
        )
    )


@pytest.fixture
def platform(database_url: str, tmp_path: Path, ray_head: str) -> Iterator[Services]:
    opened = _services(database_url, tmp_path / "home", ray_head)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_platform(tmp_path: Path, ray_head: str) -> Iterator[Services]:
    opened = _services(f"sqlite:///{tmp_path / 'meta.db'}", tmp_path / "home", ray_head)
    yield opened
    opened.close()


@contextmanager
def running(worker: RayWorker | Worker) -> Iterator[None]:
    """``worker.run()`` in a thread for the block; then stop it and wait for it. A Ray
    worker joins the cluster from this (main) thread first, as the CLI does."""
    if isinstance(worker, RayWorker):
        worker.connect()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stopping.set()
        thread.join(timeout=120)
        assert not thread.is_alive(), "the worker did not stop"


def _until(condition: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s")


def _states(described: Execution) -> dict[str, str]:
    return {s.name: s.state for s in described.steps}


def _item_of(services: Services, execution_id: str, step: str) -> WorkItem:
    with services.db.session() as session:
        row = session.get(StepRunRow, (execution_id, step))
        assert row is not None and row.work_item_id is not None
        return services.queue.get(row.work_item_id)


def _job_item(services: Services, name: str) -> WorkItem:
    with services.db.session() as session:
        row = session.get(TrainingJobRow, ("default", name))
        assert row is not None and row.work_item_id is not None
        return services.queue.get(row.work_item_id)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_fan_out_fan_in_pipeline_gives_what_local_workers_give(
    platform: Services, tmp_path: Path
) -> None:
    worker = RayWorker(platform, queues=DEFAULT_QUEUES)
    platform.pipelines.register(sample.fan)
    with running(worker):
        on_ray = platform.pipelines.wait(platform.pipelines.start("fan", {"n": 4}), timeout=120)
    assert on_ray.state == "Succeeded", on_ray
    assert _states(on_ray)["publish"] == "Succeeded" and _states(on_ray)["publish_2"] == "Skipped"
    # Six steps ran, each as a Ray task in a Ray worker process, never in this one.
    ran = [f for f in worker.finished if f.kind == "pipeline.step"]
    assert len(ran) == 6 and {f.state for f in ran} == {"succeeded"}
    assert all(f.pid and f.pid != os.getpid() for f in ran)
    logs = "".join(r.text for r in platform.pipelines.logs(on_ray.id, "numbers"))
    assert "making 4 numbers" in logs

    local = Services.open(load_settings(home=tmp_path / "local", workers={"poll_seconds": 0.05}))
    try:
        local.pipelines.register(sample.fan)
        with running(Worker(local, queues=DEFAULT_QUEUES)):
            on_local = local.pipelines.wait(local.pipelines.start("fan", {"n": 4}), timeout=120)
    finally:
        local.close()
    outputs = {s.name: s.outputs for s in on_ray.steps}
    assert outputs == {s.name: s.outputs for s in on_local.steps}
    assert outputs["total"]["value"] == {"sum": 36.0, "parts": 3}
    assert outputs["publish"]["value"] == {"published": "big:36.0"}


def test_user_error_is_recorded_with_traceback_and_retried(platform: Services) -> None:
    queue = platform.queue
    item = queue.enqueue("system", "system.echo", {"fail": "bad data"}, max_attempts=2)
    worker = RayWorker(platform, queues=DEFAULT_QUEUES)
    assert worker.run(max_items=1) == 1
    first = queue.get(item.id)
    assert (first.state, first.attempts) == (WorkState.QUEUED, 1)  # back, after a backoff
    assert "Traceback" in (first.last_error or "")
    assert "RuntimeError: bad data" in (first.last_error or "")
    _until(lambda: queue.get(item.id).available_at.timestamp() <= time.time(), what="backoff")
    assert worker.run(max_items=1) == 1
    failed = queue.get(item.id)
    assert (failed.state, failed.attempts, failed.result) == (WorkState.FAILED, 2, None)
    assert "RuntimeError: bad data" in (failed.last_error or "")
    unknown = queue.enqueue("system", "no.such_kind", {}, max_attempts=5)
    assert worker.run(max_items=1) == 1
    assert (queue.get(unknown.id).state, queue.get(unknown.id).attempts) == (WorkState.FAILED, 1)


@pytest.mark.slow
def test_step_retries_and_permanent_failures(sqlite_platform: Services, tmp_path: Path) -> None:
    pipelines = sqlite_platform.pipelines
    pipelines.register(sample.retrying)
    pipelines.register(sample.broken)
    with running(RayWorker(sqlite_platform, queues=DEFAULT_QUEUES)):
        marker = tmp_path / "count"
        retried = pipelines.wait(
            pipelines.start("retrying", {"marker": str(marker), "failures": 2}), timeout=120
        )
        broken = pipelines.wait(pipelines.start("broken", {"marker": str(tmp_path / "m")}))
    assert retried.state == "Succeeded"
    assert retried.steps[0].attempts == 3 and marker.read_text() == "3"
    assert broken.state == "Failed" and _states(broken)["boom"] == "Failed"
    boom = broken.step("boom").error or ""
    assert "Traceback" in boom and "ValueError: bad value 1" in boom
    # The step's retries are spent (none): a PermanentFailure, not retried by the queue.
    item = _item_of(sqlite_platform, broken.id, "boom")
    assert (item.state, item.attempts) == (WorkState.FAILED, 1)


@pytest.mark.slow
def test_tuning_job_with_two_parallel_slots(sqlite_platform: Services) -> None:
    worker = RayWorker(sqlite_platform, queues=DEFAULT_QUEUES)
    with running(worker):
        sqlite_platform.tuning.submit(
            {
                "name": "on-ray",
                "trial": "tests.tuning.objectives:quadratic",
                "parameter_ranges": {
                    "x": {"type": "continuous", "min": -5, "max": 5},
                    "y": {"type": "integer", "min": -3, "max": 3},
                },
                "max_jobs": 4,
                "max_parallel_jobs": 2,
                "seed": 3,
                "code_paths": [REPO],
            }
        )
        job = sqlite_platform.tuning.wait("on-ray", timeout=180)
    assert job.state == "Completed", job.error
    trials = sqlite_platform.tuning.trials("on-ray")
    assert len(trials) == 4 and all(t.state == "COMPLETE" for t in trials)
    assert job.best is not None and job.best.value == max(t.value for t in trials)
    slots = [f for f in worker.finished if f.kind == "tuning.runner"]
    assert len(slots) == 2 and {f.state for f in slots} == {"succeeded"}
    results = [sqlite_platform.queue.get(f.item_id).result or {} for f in slots]
    # The two slots shared the budget, never overshooting it; a slot that a busy machine
    # started only after the other had run the whole budget finds the job done
    # ({"ignored": True}) and runs none.
    assert sum(r.get("trials", 0) for r in results) == 4, results
    client = sqlite_platform.registry.mlflow.client
    runs = [client.get_run(t.run_id) for t in trials]
    assert all(r.data.tags["mlflow.parentRunId"] == job.mlflow_run_id for r in runs)


@pytest.mark.slow
def test_cancelling_an_execution_cancels_its_task(
    sqlite_platform: Services, tmp_path: Path
) -> None:
    pipelines, queue = sqlite_platform.pipelines, sqlite_platform.queue
    pipelines.register(sample.slow)
    worker = RayWorker(sqlite_platform, queues=DEFAULT_QUEUES, max_in_flight=1)
    marker = tmp_path / "pid"
    with running(worker):
        run = pipelines.start("slow", {"seconds": 60, "marker": str(marker)})
        _until(marker.exists, what="the step's start")
        child = int(marker.read_text())
        pipelines.cancel(run)
        cancelled = pipelines.wait(run, timeout=30)
        _until(lambda: _gone(child), timeout=15, what="the step process's end")
        # An item that ignores its lease: only force-cancelling its task ends it.
        stuck = queue.enqueue("system", "system.echo", {"sleep": 60})
        _until(lambda: queue.get(stuck.id).state is WorkState.CLAIMED, what="the claim")
        queue.cancel(stuck.id)
        _until(lambda: any(f.item_id == stuck.id for f in worker.finished), what="the cancel")
        after = queue.enqueue("system", "system.echo", {"n": 1})
        _until(lambda: queue.get(after.id).state is WorkState.SUCCEEDED, timeout=30, what="next")
    assert cancelled.state == "Cancelled" and _states(cancelled)["sleepy"] == "Cancelled"
    item = _item_of(sqlite_platform, run, "sleepy")
    assert (item.state, item.result) == (WorkState.CANCELLED, None)
    assert next(f for f in worker.finished if f.item_id == item.id).state != "succeeded"
    ended = next(f for f in worker.finished if f.item_id == stuck.id)
    assert ended.state == "cancelled"
    assert (queue.get(stuck.id).state, queue.get(stuck.id).result) == (WorkState.CANCELLED, None)


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_without_duplicate_outputs(
    sqlite_platform: Services, tmp_path: Path
) -> None:
    pipelines = sqlite_platform.pipelines
    pipelines.register(ray_pipelines.crash_then_add)
    marker, calls = tmp_path / "crash", tmp_path / "calls"
    worker = RayWorker(sqlite_platform, queues=DEFAULT_QUEUES)
    with running(worker):
        run = pipelines.start(
            "crash-once", {"marker": str(marker), "seconds": 60, "calls": str(calls)}
        )
        _until(marker.exists, what="the step's start")
        report = json.loads(marker.read_text())
        ray_worker = next(
            pid for pid in report["ancestors"] if psutil.Process(pid).name().startswith("ray::")
        )
        assert ray_worker != os.getpid()
        os.kill(ray_worker, signal.SIGKILL)
        done = pipelines.wait(run, timeout=120)
    assert done.state == "Succeeded", done
    assert done.step("crash-once").attempts == 2
    assert Path(f"{marker}.runs").read_text() == "2"
    assert calls.read_text() == "1"  # the step after it ran once, on the one output
    assert (done.step("add-one").outputs or {})["value"] == 42
    item = _item_of(sqlite_platform, run, "crash-once")
    assert (item.state, item.attempts) == (WorkState.SUCCEEDED, 2)
    assert [f.state for f in worker.finished if f.item_id == item.id] == ["crashed", "succeeded"]
    _until(lambda: _gone(report["pid"]), timeout=15, what="the killed worker's step process")


@pytest.mark.slow
def test_cpus_become_ray_num_cpus(sqlite_platform: Services, tmp_path: Path) -> None:
    pipelines = sqlite_platform.pipelines
    pipelines.register(ray_pipelines.wide_pipeline)
    marker = tmp_path / "wide"
    worker = RayWorker(sqlite_platform, queues=DEFAULT_QUEUES)
    with running(worker):
        run = pipelines.start("wide", {"marker": str(marker), "seconds": 4})
        _until(marker.exists, what="the step's start")
        # cpus=8 on a two-CPU cluster: capped at the largest node, both CPUs held.
        _until(
            lambda: ray.available_resources().get("CPU", 0) == 0,
            timeout=4,
            what="both CPUs taken",
        )
        done = pipelines.wait(run, timeout=60)
    assert done.state == "Succeeded"
    assert [f.cpus for f in worker.finished if f.kind == "pipeline.step"] == [2.0]


@pytest.mark.slow
def test_training_job_runs_on_ray_with_its_cpus(sqlite_platform: Services) -> None:
    training = sqlite_platform.training
    job = training.submit(
        {
            "name": "epochs",
            "script": "epochs.py",
            "source_dir": str(Path(__file__).parents[1] / "training" / "scripts"),
            "hyperparameters": {"epochs": 2, "seconds": 0.05},
            "cpus": 2,
        }
    )
    item = _job_item(sqlite_platform, job.name)
    assert declared_cpus(sqlite_platform.db, item) == 2.0
    plain = sqlite_platform.queue.enqueue("system", "system.echo", {})
    assert declared_cpus(sqlite_platform.db, plain) is None
    worker = RayWorker(sqlite_platform, queues=DEFAULT_QUEUES)
    with running(worker):
        done = training.wait("epochs", timeout=120)
    assert done.state == "Succeeded", done.error
    model = json.loads(sqlite_platform.artifacts.get_bytes("jobs/epochs/model/state.json"))
    assert model == {"epoch": 2, "attempts": [1]}
    ran = [f for f in worker.finished if f.kind == "training.job"]
    assert [(f.state, f.cpus) for f in ran] == [("succeeded", 2.0)]


def test_cli_rejects_a_bad_ray_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "ws"))
    result = CliRunner().invoke(
        app, ["worker", "--executor", "ray", "--ray-address", "http://head:8265"]
    )
    assert result.exit_code == 2
    assert "ray.address" in result.output and "ray://host:port" in result.output
    result = CliRunner().invoke(app, ["worker", "--executor", "kubernetes"])
    assert result.exit_code == 2 and "workers.executor" in result.output


@pytest.mark.slow
def test_cli_worker_runs_items_on_ray_and_stops_on_sigterm(tmp_path: Path, ray_head: str) -> None:
    home = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env |= {"SLIPWAY_HOME": str(home), "SLIPWAY_CONFIG": str(tmp_path / "none.yaml")}
    services = Services.open(load_settings(home=home))
    try:
        item = services.queue.enqueue("system", "system.echo", {"via": "cli"})
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "slipway", "worker", "--executor", "ray"),
                *("--ray-address", ray_head, "--id", "cli-ray"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _until(
                lambda: (
                    services.queue.get(item.id).state is WorkState.SUCCEEDED
                    or process.poll() is not None
                ),
                timeout=90,
                what="the item's success",
            )
            assert process.poll() is None, process.communicate()[0]
            assert services.queue.get(item.id).result == {
                "echo": {"via": "cli"},
                "attempt": 1,
            }
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, output
        assert "on Ray (2 CPUs), up to 2 items in flight" in output
    finally:
        services.close()


@pytest.mark.slow
def test_cli_worker_stops_at_once_on_an_unreachable_cluster(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once it is closed
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env |= {"SLIPWAY_HOME": str(tmp_path / "ws"), "SLIPWAY_CONFIG": str(tmp_path / "none.yaml")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "slipway", "worker", "--executor", "ray", "--ray-address", closed],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"cannot reach the Ray cluster at {closed} (ray.address)" in result.stderr
    assert time.monotonic() - started < 60
