"""The pieces of a platform the chaos tests run while a backing service restarts.

- the control plane (the FastAPI app) under uvicorn on a free loopback port, in this
  process, so that the test reads the same store it writes through HTTP;
- the gateway as ``slipway serve`` and a worker as ``slipway worker``: real processes,
  which must live through the outage on their own;
- :class:`Traffic`: a thread sending requests in a loop and keeping every answer, so a
  test can say what was accepted and check afterwards that none of it was lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pyarrow.dataset as ds
import uvicorn

from slipway.api.app import create_app
from slipway.core.settings import Settings
from slipway.services import Services
from tests.chaos.private import free_port
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
API = "/api/v1"


@contextmanager
def control_plane(services: Services) -> Iterator[str]:
    """The control plane on ``services``; yields its base URL (``…/api/v1``)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(services), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, name="control-plane", daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, what="the control plane started", timeout=30)
        yield f"http://127.0.0.1:{port}{API}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def environment(settings: Settings) -> dict[str, str]:
    """What a process of this platform needs: its backends, none of the caller's
    ``SLIPWAY_*`` settings, and this repository importable (for the test pipelines)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    return (
        env
        | settings.as_env()
        | {
            "SLIPWAY_CONFIG": str(settings.home / "none.yaml"),
            "SLIPWAY_WORKERS__LEASE_SECONDS": str(settings.workers.lease_seconds),
            "SLIPWAY_WORKERS__POLL_SECONDS": str(settings.workers.poll_seconds),
            "SLIPWAY_KAFKA__EVENTS_TOPIC": settings.kafka.events_topic,
            "PYTHONPATH": str(REPO),
        }
    )


@contextmanager
def process(settings: Settings, *args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``slipway ARGS`` as a child process; stopped with SIGTERM (SIGKILL after 20 s)."""
    with log.open("ab") as sink:
        child = subprocess.Popen(
            [sys.executable, "-m", "slipway", *args],
            env=environment(settings),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield child
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


@contextmanager
def gateway(settings: Settings, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``slipway serve`` with one worker; yields the process and its URL once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(settings, "serve", "--port", str(port), "--workers", "1", log=log) as child:

        def pings() -> bool:
            assert child.poll() is None, f"the gateway exited; see {log}"
            try:
                return httpx.get(f"{url}/ping", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually(pings, what="the gateway answers /ping", timeout=60)
        yield child, url


def register_model(services: Services, name: str, columns: list[str]) -> str:
    """Log and register a linear model over ``columns`` (their sum), Approved; returns
    ``name:version``. Its requirements are given, so MLflow does not spend seconds
    inferring them."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(20, len(columns))), columns=columns)
    model = LinearRegression().fit(frame, frame.sum(axis=1))
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        experiment = services.registry.mlflow.experiment_id(
            f"chaos-{name}", services.settings.artifact_root
        )
        signature = mlflow.models.infer_signature(frame, frame.sum(axis=1))
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.sklearn.log_model(
                model, name="model", signature=signature, pip_requirements=["scikit-learn"]
            )
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    version = services.registry.register(name, f"runs:/{run.info.run_id}/model", actor="test")
    services.registry.set_approval(name, version.version, "Approved", actor="test", comment="ok")
    return f"{name}:{version.version}"


def deploy(services: Services, spec: dict[str, Any]) -> None:
    """Create the endpoint and run the deployment controller until it is in service."""
    services.endpoints.create(spec, actor="test")

    def in_service() -> bool:
        services.deployments.tick()
        described = services.endpoints.describe(spec["name"])
        assert described.status != "Failed", described
        return described.status == "InService" and not described.target_version

    eventually(in_service, what=f"endpoint {spec['name']} in service", timeout=60, interval=0.2)


def captured_ids(settings: Settings, endpoint: str) -> set[str]:
    """Every inference id the gateway has written to capture for ``endpoint``."""
    root = Path(settings.artifact_root) / "capture" / f"endpoint={endpoint}"
    if not root.exists():
        return set()
    table = ds.dataset(str(root), format="parquet", partitioning="hive").to_table(
        columns=["inference_id"]
    )
    return set(table.column("inference_id").to_pylist())


@dataclass
class Answer:
    index: int
    status: int  # 0: no HTTP answer at all
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() when answered


@dataclass
class Traffic:
    """``send(client, index)`` in a loop on a thread of its own until stopped; every
    answer is kept, in order. ``pause`` paces the loop (it is not a wait for anything)."""

    send: Callable[[httpx.Client, int], httpx.Response]
    pause: float = 0.02
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        index = 0
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = self.send(client, index)
                    try:
                        body = response.json()
                    except ValueError:
                        body = response.text
                    answer = Answer(index, response.status_code, dict(response.headers), body,
                                    time.monotonic())  # fmt: skip
                except httpx.TransportError as exc:
                    answer = Answer(index, 0, {}, repr(exc), time.monotonic())
                self.answers.append(answer)
                index += 1
                self._stop.wait(self.pause)

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def statuses(self) -> set[int]:
        return {a.status for a in self.answers}

    def ok_after(self, moment: float, status: int) -> bool:
        """An answer with ``status`` came after ``moment`` (``time.monotonic()``)."""
        return any(a.status == status and a.at > moment for a in list(self.answers))


def assert_unavailable(answer: Answer) -> None:
    """A 503 as the platform gives it: Retry-After and the error body, no stack trace."""
    assert answer.status == 503, answer
    assert int(answer.headers["retry-after"]) >= 1, answer
    error = answer.body["error"]
    assert set(error) == {"code", "message", "details"}, answer
    assert error["code"] == "backend_unavailable", answer
    assert "Traceback" not in error["message"], answer
