"""Two rollouts on one endpoint at once: exactly one wins, the other gets 409 Conflict
(and the same for two creations of one endpoint).

On each metadata engine, an endpoint served by a real gateway is updated by two callers at
the same moment — through the service, then over REST. The two are made to overlap for
sure, not by luck: the test holds a lock both updates need (on PostgreSQL the config table,
on SQLite the write lock) until both are seen waiting for it, then lets them go. Whatever
order they then run in, one stores the next config and starts rolling it out, and the
other is refused with a Conflict naming the endpoint's state — never a second config with
the same number, never a database error (a 500).
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LinearRegression
from sqlalchemy.engine import make_url

from slipway.api.app import create_app
from slipway.core.errors import Conflict
from slipway.core.settings import load_settings
from slipway.services import Services
from slipway.serving.resources import Endpoint
from slipway.serving.tables import EndpointConfigRow
from tests.serving.conftest import Platform, start_gateway
from tests.waiting import eventually

NAME = "race"
UPDATING = {"update", "_row"}  # an update reading the endpoint's row (see _gate)
CREATING = {"create", "_insert"}


def _spec(version: int) -> dict[str, Any]:
    return {"name": NAME, "variants": [{"name": "main", "model": f"churn:{version}"}]}


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    """A platform on each engine with two versions of a small model (the same files: an
    MLflow model saved straight into the artifact root, no run, so no time spent on one)."""
    settings = load_settings(home=tmp_path / "home", database={"url": database_url})
    opened = Services.open(settings)
    try:
        x = pd.DataFrame({"x1": np.linspace(0, 1, 20), "x2": np.linspace(1, 0, 20)})
        folder = Path(settings.artifact_root) / "models" / "churn"
        mlflow.sklearn.save_model(
            LinearRegression().fit(x, x["x1"] * 3),
            str(folder),
            signature=mlflow.models.infer_signature(x, x["x1"]),
            pip_requirements=["scikit-learn"],
        )
        for _ in range(2):
            opened.registry.register("churn", str(folder), actor="test")
        yield opened
    finally:
        opened.close()


@pytest.fixture
def platform(services: Services) -> Iterator[Platform]:
    """An endpoint InService on v1, behind a real gateway."""
    _running, stop = start_gateway(services)
    try:
        platform = Platform(services, {})
        assert platform.deploy(_spec(1)).status == "InService"
        yield platform
    finally:
        stop()


def _waiting_to_begin(frames: set[str]) -> int:
    """How many threads of this process run all of ``frames`` (say, an endpoint update
    reading its row) and wait to begin the write transaction; over REST the call runs in
    a server thread, not the caller's."""
    count = 0
    for frame in sys._current_frames().values():
        names = set()
        current: Any = frame
        while current is not None:
            names.add(current.f_code.co_name)
            current = current.f_back
        count += {*frames, "_begin"} <= names
    return count


@contextmanager
def _gate(services: Services, threads: list[threading.Thread], frames: set[str]) -> Iterator[None]:
    """Hold what every call needs until each waits for it, then let them go (``frames``:
    how to recognize the calls' threads on SQLite)."""
    db = services.db
    if db.is_sqlite:
        path = make_url(services.settings.database_url).database
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock every Database.write() takes

        def waiting() -> bool:
            # Their BEGIN IMMEDIATE (emitted as they first read), waiting out the busy
            # timeout.
            return _waiting_to_begin(frames) >= len(threads)

        release: Callable[[], None] = holder.rollback
    else:
        url = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        holder = psycopg.connect(url)  # type: ignore[assignment]
        table = EndpointConfigRow.__tablename__
        holder.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")  # inserts wait; reads pass
        watcher = psycopg.connect(url, autocommit=True)

        def waiting() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            return row is not None and row[0] >= len(threads)

        def release() -> None:
            holder.rollback()
            watcher.close()

    try:
        for thread in threads:
            thread.start()
        yield
        eventually(waiting, what="every call waiting for the lock", timeout=20)
    finally:
        release()
        holder.close()


def _race(services: Services, calls: list[Callable[[], Any]], frames: set[str]) -> list[Any]:
    """Run ``calls`` at once (gated, see :func:`_gate`); their results or exceptions."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with _gate(services, threads, frames):
        pass
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "an update did not return"
    return results


def _configs(services: Services) -> list[tuple[int, str]]:
    return [(c.version, c.outcome) for c in services.endpoints.history(NAME)]


def test_two_rollouts_at_once_one_wins_the_other_gets_409(platform: Platform) -> None:
    services = platform.services
    endpoints = services.endpoints

    # Through the service: both want v2.
    results = _race(
        services,
        [lambda i=i: endpoints.update(NAME, _spec(2), actor=f"u{i}") for i in range(2)],
        UPDATING,
    )
    won = [r for r in results if isinstance(r, Endpoint)]
    lost = [r for r in results if not isinstance(r, Endpoint)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], Conflict) and lost[0].status_code == 409, repr(lost[0])
    assert lost[0].details == {"status": "Updating"}
    assert won[0].status == "Updating" and won[0].target_version == 2
    assert _configs(services) == [(1, "deployed"), (2, "pending")]
    settled = platform.settle(NAME)
    assert (settled.status, settled.active_version) == ("InService", 2)

    # Over REST: both want v1 back.
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        url = f"/api/v1/endpoints/{NAME}"
        responses = _race(
            services, [lambda: client.put(url, json=_spec(1)) for _ in range(2)], UPDATING
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 409).json()["error"]
    assert refused["code"] == "conflict" and refused["details"] == {"status": "Updating"}
    assert NAME in refused["message"]
    assert _configs(services) == [(1, "retired"), (2, "deployed"), (3, "pending")]
    settled = platform.settle(NAME)
    assert (settled.status, settled.active_version) == ("InService", 3)


def test_two_creations_at_once_one_wins_the_other_gets_409(services: Services) -> None:
    spec = {"name": "twin", "variants": [{"name": "main", "model": "churn:1"}]}
    results = _race(
        services,
        [lambda i=i: services.endpoints.create(spec, actor=f"u{i}") for i in range(2)],
        CREATING,
    )
    won = [r for r in results if isinstance(r, Endpoint)]
    lost = [r for r in results if not isinstance(r, Endpoint)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], Conflict) and "already exists" in lost[0].message, repr(lost[0])
    assert won[0].status == "Creating" and won[0].target_version == 1
    assert [c.version for c in services.endpoints.history("twin")] == [1]
