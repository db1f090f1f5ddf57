"""Soak: a real platform under steady mixed load for a long time leaks nothing and loses
nothing. Run by ``make soak`` (not by ``make test``).

``slipway up`` runs on a temporary workspace (PostgreSQL metadata and Redis online store
from the test services) — control plane, MLflow, scheduler, gateway and its workers, two
local workers, each a real process. For ``SLIPWAY_SOAK_SECONDS`` (default 1800) four
paced clients send, to 127.0.0.1 only:

- ingests of 20 records through REST, each with an ``Idempotency-Key``, 2 a second;
- invocations of the endpoint through the gateway (data capture on), 20 a second;
- pipeline executions (two steps, so step processes start and stop), one each 15 s;
- data-quality monitor runs over the captured traffic, one each 20 s.

Meanwhile :class:`soak.sampler.Sampler` reads RSS and open fds of every process of the
platform's tree every few seconds. Then, with the load stopped:

- every long-lived process stayed flat (see :mod:`soak.sampler` for the rule), and the
  number of processes did not grow;
- nothing was lost: every request was answered 2xx; the offline store holds exactly the
  records of the acknowledged ingests (each once) and each succeeded ingestion is
  recorded; every acknowledged invocation returned its prediction and is in capture;
  every pipeline execution succeeded; every monitor run completed.

The report (per-process table, samples as CSV, a chart) goes to ``SLIPWAY_SOAK_OUTPUT``,
by default ``$TMPDIR/slipway-soak/<UTC time>``; its path is printed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from tests.conftest import service_url
from tests.waiting import eventually

from slipway.core.settings import Settings, load_settings
from slipway.services import Services
from soak import flows
from soak.sampler import Sampler, counts, verdicts, write_report

pytestmark = [pytest.mark.soak, pytest.mark.postgres, pytest.mark.redis]

REPO = Path(__file__).resolve().parents[1]
# Read at import: the suite's autouse fixture clears SLIPWAY_* from a test's environment.
DURATION = float(os.environ.get("SLIPWAY_SOAK_SECONDS", "1800"))
# Outside pytest's temporary folders, which later runs (of any test) rotate away.
OUTPUT = Path(
    os.environ.get("SLIPWAY_SOAK_OUTPUT")
    or Path(tempfile.gettempdir(), "slipway-soak", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
)
# Enough samples to see a trend on a short run, one each 5 s on a long one.
INTERVAL = max(1.0, min(5.0, DURATION / 60))
RECORDS_PER_INGEST = 20
INGEST_PERIOD = 0.5
INVOKE_PERIOD = 0.05
PIPELINE_PERIOD = 15.0
MONITOR_PERIOD = 20.0
ENDPOINT = "soak"
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Platform:
    process: subprocess.Popen[bytes]
    api: str
    gateway: str


@contextmanager
def slipway_up(settings: Settings, log: Path) -> Iterator[Platform]:
    """``slipway up`` on the settings' workspace; stopped with SIGINT at the end (the
    process group is killed if it has not exited 30 s later)."""
    port, mlflow_port, gateway_port = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env |= settings.as_env() | {
        "SLIPWAY_CONFIG": str(settings.home / "none.yaml"),
        "SLIPWAY_WORKERS__POLL_SECONDS": "0.2",
        "PYTHONPATH": str(REPO),  # the workers import soak.flows
    }
    args = ["up", "--port", str(port), "--workers", "2", "--mlflow-port", str(mlflow_port)]
    args += ["--gateway-port", str(gateway_port)]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "slipway", *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    platform = Platform(
        process, f"http://127.0.0.1:{port}/api/v1", f"http://127.0.0.1:{gateway_port}"
    )
    try:

        def answers(url: str) -> bool:
            assert process.poll() is None, f"slipway up exited; see {log}"
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually(lambda: answers(f"{platform.api}/health/live"), what="control plane", timeout=90)
        eventually(lambda: answers(f"{platform.gateway}/ping"), what="gateway", timeout=90)
        yield platform
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def register_model(services: Services, name: str) -> str:
    """A linear model over ``a`` and ``b``, registered and Approved; returns name:version."""
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 2)), columns=["a", "b"])
    model = LinearRegression().fit(frame, frame.sum(axis=1))
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        experiment = services.registry.mlflow.client.create_experiment(
            f"soak-{name}", artifact_location=f"{services.settings.artifact_root}/mlflow/{name}"
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
    version = services.registry.register(name, f"runs:/{run.info.run_id}/model", actor="soak")
    services.registry.set_approval(name, version.version, "Approved", actor="soak", comment="ok")
    return f"{name}:{version.version}"


@dataclass
class Paced:
    """``send(client, index)`` every ``period`` seconds on a thread of its own until
    ``deadline`` (``time.monotonic()``); every answer is kept. The loop keeps a fixed
    schedule — pacing, not waiting for anything — and stops by itself."""

    name: str
    period: float
    send: Callable[[httpx.Client, int], httpx.Response]
    deadline: float = 0.0
    answers: list[tuple[int, int, Any]] = field(default_factory=list)  # index, status, body
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        next_at = time.monotonic()
        index = 0
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set() and time.monotonic() < self.deadline:
                try:
                    response = self.send(client, index)
                    body = response.json() if response.content else None
                    self.answers.append((index, response.status_code, body))
                except (httpx.TransportError, ValueError) as exc:
                    self.answers.append((index, 0, repr(exc)))
                index += 1
                next_at += self.period
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self, deadline: float) -> None:
        self.deadline = deadline
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(timeout=max(0.0, self.deadline - time.monotonic()) + 120)
        self._stop.set()
        assert not self._thread.is_alive(), f"{self.name} did not stop"

    def ok(self, status: int) -> list[tuple[int, int, Any]]:
        return [a for a in self.answers if a[1] == status]

    def failures(self, status: int) -> list[tuple[int, int, Any]]:
        return [a for a in self.answers if a[1] != status]


def records(index: int) -> list[dict[str, Any]]:
    """Ingest ``index``'s records: every (key, time) of the run is distinct, so the
    offline store's row count says exactly whether any record was lost or doubled."""
    first = index * RECORDS_PER_INGEST
    return [
        {
            "sensor": f"s{(first + j) % 1000}",
            "ts": (BASE + timedelta(seconds=first + j)).isoformat(),
            "reading": float(first + j),
        }
        for j in range(RECORDS_PER_INGEST)
    ]


def captured_ids(settings: Settings) -> set[str]:
    root = Path(settings.artifact_root) / "capture" / f"endpoint={ENDPOINT}"
    if not root.exists():
        return set()
    table = ds.dataset(str(root), format="parquet", partitioning="hive").to_table(
        columns=["inference_id"]
    )
    return set(table.column("inference_id").to_pylist())


@pytest.mark.timeout(DURATION + 900)
def test_soak(tmp_path: Path, postgres_url: str) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        database={"url": postgres_url},
        online_store={"url": service_url("redis")},
    )
    group = f"soak_{uuid.uuid4().hex[:8]}"  # the Redis server is shared: a name of its own
    services = Services.open(settings)  # creates the schema before the platform starts
    try:
        services.pipelines.register(flows.summed)
        model = register_model(services, "soak-model")
        baseline = tmp_path / "baseline.parquet"
        rng = np.random.default_rng(1)
        pq.write_table(
            pa.table(
                {
                    "a": rng.normal(size=2000),
                    "b": rng.normal(size=2000),
                    "score": rng.normal(size=2000),
                }
            ),
            baseline,
        )
        with slipway_up(settings, tmp_path / "up.log") as platform:
            setup(platform, group, model, baseline)
            load = run_load(platform, group)
            with Sampler(platform.process.pid, INTERVAL) as sampler:
                deadline = time.monotonic() + DURATION
                for paced in load.values():
                    paced.start(deadline)
                for paced in load.values():
                    paced.join()
            settle(platform, load)
            samples = sampler.samples
        found = verdicts(samples)
        figures = check_nothing_lost(services, settings, group, load)
        report = write_report(OUTPUT, samples, found, figures)
        print(f"\nsoak report: {report}")
        print(report.read_text())
    finally:
        services.online_store.drop_group(group)
        services.close()
    leaking = [v for v in found if not v.flat]
    assert not leaking, f"not flat: {[v.proc.label for v in leaking]}; see {report}"
    before, after = counts(samples)
    assert after <= before + 2, f"the process tree grew from {before} to {after}; see {report}"


def _created(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def setup(platform: Platform, group: str, model: str, baseline: Path) -> None:
    """The resources the load uses, created through REST like a user would."""
    api = platform.api
    with httpx.Client(timeout=60) as client:
        spec = {
            "name": group,
            "record_identifiers": [{"name": "sensor"}],
            "event_time": "ts",
            "features": [{"name": "reading", "type": "float"}],
        }
        _created(client.post(f"{api}/feature-groups", json=spec))
        endpoint = {
            "name": ENDPOINT,
            "variants": [{"name": "main", "model": model}],
            "data_capture": {"enabled": True},
        }
        _created(client.post(f"{api}/endpoints", json=endpoint))

        def in_service() -> bool:
            described = client.get(f"{api}/endpoints/{ENDPOINT}").json()
            assert described["status"] != "Failed", described
            return bool(described["status"] == "InService" and not described["target_version"])

        eventually(in_service, what="the endpoint in service", timeout=120, interval=0.5)
        base = {
            "name": "soak-base",
            "source": {"file": str(baseline)},
            "prediction_column": "score",
        }
        _created(client.post(f"{api}/baselines", json=base))
        # A two-minute window: each run reads about the same amount of captured traffic,
        # so its working set is steady and growth means a leak, not a longer window read.
        monitor = {
            "name": "soak-dq",
            "kind": "data_quality",
            "endpoint": ENDPOINT,
            "baseline": "soak-base",
            "window_hours": 2 / 60,
        }
        _created(client.post(f"{api}/monitors", json=monitor))

        def serves() -> bool:
            url = f"{platform.gateway}/endpoints/{ENDPOINT}/invocations"
            response = client.post(url, json={"dataframe_records": [{"a": 0.0, "b": 0.0}]})
            return response.status_code == 200

        eventually(serves, what="the gateway serves the endpoint", timeout=120, interval=0.5)


def run_load(platform: Platform, group: str) -> dict[str, Paced]:
    api, gateway = platform.api, platform.gateway

    def ingest(client: httpx.Client, index: int) -> httpx.Response:
        return client.post(
            f"{api}/feature-groups/{group}/records",
            json={"records": records(index)},
            headers={"Idempotency-Key": f"soak-{index}"},
        )

    def invoke(client: httpx.Client, index: int) -> httpx.Response:
        return client.post(
            f"{gateway}/endpoints/{ENDPOINT}/invocations",
            json={"dataframe_records": [{"a": float(index % 7), "b": 0.5}]},
            headers={"X-Slipway-Inference-Id": f"soak-{index}"},
        )

    def pipeline(client: httpx.Client, index: int) -> httpx.Response:
        return client.post(
            f"{api}/pipelines/{flows.summed.name}/executions",
            json={"parameters": {"n": index + 1}},
        )

    def monitor(client: httpx.Client, index: int) -> httpx.Response:
        return client.post(f"{api}/monitors/soak-dq/runs")

    return {
        "ingests": Paced("ingests", INGEST_PERIOD, ingest),
        "invocations": Paced("invocations", INVOKE_PERIOD, invoke),
        "pipelines": Paced("pipelines", PIPELINE_PERIOD, pipeline),
        "monitor runs": Paced("monitor runs", MONITOR_PERIOD, monitor),
    }


def settle(platform: Platform, load: dict[str, Paced]) -> None:
    """Wait for the queued work the load started: every execution and monitor run ends."""
    api = platform.api
    with httpx.Client(timeout=60) as client:
        executions = [body["id"] for _, _, body in load["pipelines"].ok(201)]
        runs = [body["id"] for _, _, body in load["monitor runs"].ok(202)]

        def executions_done() -> bool:
            states = [client.get(f"{api}/executions/{e}").json()["state"] for e in executions]
            assert "Failed" not in states, states
            return all(s == "Succeeded" for s in states)

        def runs_done() -> bool:
            states = [client.get(f"{api}/monitor-runs/{r}").json()["state"] for r in runs]
            assert "failed" not in states, states
            return all(s == "completed" for s in states)

        eventually(executions_done, what="every pipeline execution succeeded", timeout=300)
        eventually(runs_done, what="every monitor run completed", timeout=300)


def check_nothing_lost(
    services: Services, settings: Settings, group: str, load: dict[str, Paced]
) -> dict[str, object]:
    """Every request answered 2xx, and every acknowledged write is where it belongs."""
    for name, status in (
        ("ingests", 201),
        ("invocations", 200),
        ("pipelines", 201),
        ("monitor runs", 202),
    ):
        failed = load[name].failures(status)
        assert not failed, f"{name}: {len(failed)} not answered {status}, e.g. {failed[:3]}"

    acked = load["ingests"].ok(201)
    offline = services.features.read_offline(group)
    assert offline.num_rows == len(acked) * RECORDS_PER_INGEST, "offline rows != acknowledged"
    distinct = offline.group_by(["sensor", "ts"]).aggregate([([], "count_all")])
    assert distinct.num_rows == offline.num_rows, "an acknowledged record was written twice"
    recorded = {i.id for i in services.features.ingests(group, limit=10**7)}
    assert {body["id"] for _, _, body in acked} <= recorded
    assert all(body["state"] == "succeeded" for _, _, body in acked)
    readings = pc.sum(offline.column("reading")).as_py()
    expected = sum(r["reading"] for index, _, _ in acked for r in records(index))
    assert readings == expected, "the offline values are not the ones acknowledged"

    served = load["invocations"].ok(200)
    assert all(len(body["predictions"]) == 1 for _, _, body in served)
    wanted = {f"soak-{index}" for index, _, _ in served}
    eventually(
        lambda: wanted <= captured_ids(settings),
        what="every invocation captured",
        timeout=120,
        interval=1.0,
    )
    return {
        "duration": f"{DURATION:.0f} s, sampled every {INTERVAL:g} s",
        "ingests acknowledged": f"{len(acked)} ({offline.num_rows} records, all in the "
        "offline store once)",
        "invocations answered": f"{len(served)} (all with a prediction, all captured)",
        "pipeline executions": f"{len(load['pipelines'].answers)} (all succeeded)",
        "monitor runs": f"{len(load['monitor runs'].answers)} (all completed)",
    }
