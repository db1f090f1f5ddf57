"""Captured traffic: old hours go, except what a monitor's window still needs."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from slipway.core.clock import utcnow
from slipway.monitoring.tables import MonitorRunRow
from slipway.retention import GarbageCollector
from slipway.services import Services
from slipway.serving.gateway.capture import partition_key

QUALITY = {"problem_type": "regression"}


def _capture(services: Services, endpoint: str, hour: datetime) -> str:
    sink = io.BytesIO()
    pq.write_table(pa.table({"time": [hour], "prediction": [1.0]}), sink)
    key = f"{partition_key(endpoint, 'main', hour)}/gw-00000001.parquet"
    services.artifacts.put_bytes(key, sink.getvalue())
    return key


def test_old_capture_goes_but_monitor_windows_keep_theirs(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    now = utcnow().replace(minute=30, second=0, microsecond=0)
    hour = now.replace(minute=0)
    ago = (1, 30, 100, 300)
    watched = {h: _capture(services, "watched", hour - timedelta(hours=h)) for h in ago}
    other = {h: _capture(services, "other", hour - timedelta(hours=h)) for h in ago[:3]}
    monitoring = services.monitoring
    monitoring.create(
        {"name": "quality", "kind": "model_quality", "endpoint": "watched",
         "window_hours": 48, "model_quality": QUALITY},
        actor="alice",
    )  # fmt: skip
    # A run queued (not yet executed) over an older window needs that window too.
    run = monitoring.run(
        "quality", actor="alice", start=now - timedelta(hours=110), end=now - timedelta(hours=90)
    )
    gc = collector(capture_days=1)
    dry = gc.run(dry_run=True, now=now).kind("capture")
    assert dry.deleted == 3 and services.artifacts.exists(watched[300])

    report = gc.run(now=now).kind("capture")

    assert report.deleted == 3 and report.protected == 2
    size = len(services.artifacts.list("capture"))
    assert report.bytes_freed is not None and report.bytes_freed > 0 and size == 4
    exists = services.artifacts.exists
    assert not exists(watched[300]) and not exists(other[100]) and not exists(other[30])
    assert exists(watched[1]) and exists(watched[30]) and exists(watched[100]) and exists(other[1])
    assert any("watched" in note for note in report.notes)

    # Once the run has finished, its window no longer holds the older hour.
    with services.db.write() as session:
        row = session.get(MonitorRunRow, run.id)
        assert row is not None
        row.state = "completed"
    assert gc.run(now=now).kind("capture").deleted == 1
    assert not exists(watched[100]) and exists(watched[30])


def test_another_workspaces_capture_is_expired_in_its_share(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    """An endpoint of workspace ``ops`` captures under ``workspaces/ops/capture``: its old
    hours go like the default workspace's, and a default endpoint of the same name is
    another endpoint (the default's monitor window does not hold ops' hours)."""
    if not services.workspaces.exists("ops"):
        services.workspaces.create("ops", actor="t")
    now = utcnow().replace(minute=30, second=0, microsecond=0)
    hour = now.replace(minute=0)
    theirs = {h: _capture(services, "ops/shared", hour - timedelta(hours=h)) for h in (1, 100)}
    ours = _capture(services, "shared", hour - timedelta(hours=100))
    assert theirs[1].startswith("workspaces/ops/capture/endpoint=shared/variant=main/")
    services.monitoring.create(
        {"name": "shared-quality", "kind": "model_quality", "endpoint": "shared",
         "window_hours": 200, "model_quality": QUALITY},
        actor="alice",
    )  # fmt: skip

    report = collector(capture_days=1).run(now=now).kind("capture")

    exists = services.artifacts.exists
    assert not exists(theirs[100]) and exists(theirs[1])
    assert exists(ours)  # held by the default workspace's monitor, which is not ops'
    assert report.deleted >= 1
