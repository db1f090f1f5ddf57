"""Retention of captured traffic: hour partitions older than the cutoff are deleted,
never one a monitor's window still needs.

Capture is stored per hour (``capture/endpoint=<e>/variant=<v>/hour=<H>/``), so a file is
old when its hour ends at or before the cutoff. Each endpoint also has a floor: the
earliest time any of its monitors may still read — the start of the window before now
(or before a scheduled run that is due but not started), for every monitor, enabled or
not (one enabled again reads its window from then), and the window start of every run
that is queued or running. Nothing ending after the floor is deleted, whatever the
cutoff. Ground-truth uploads are not capture and are left alone. Another workspace's
endpoints capture into its share of the root (``workspaces/<ws>/capture/...``), kept
and expired the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from slipway.core.artifacts import ArtifactStore
from slipway.core.db.engine import Database
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_name, scoped_resource
from slipway.monitoring.tables import MonitorRow, MonitorRunRow
from slipway.retention.queue import MONITOR_RUN_FINAL
from slipway.retention.report import KindReport
from slipway.retention.sizes import RootSizes
from slipway.security.workspaces import workspace_names
from slipway.serving.gateway.capture import CAPTURE_PREFIX

_HOUR = "%Y-%m-%dT%H"


def monitor_floors(db: Database, now: datetime) -> dict[str, datetime]:
    """Endpoint (its scoped name) → the earliest captured time one of its monitors may
    still read."""
    floors: dict[str, datetime] = {}

    def lower(endpoint: str, when: datetime) -> None:
        floors[endpoint] = min(when, floors.get(endpoint, when))

    with db.session() as session:
        for monitor in session.scalars(select(MonitorRow)):
            window = timedelta(hours=float(monitor.spec.get("window_hours", 1.0)))
            until = min(now, monitor.next_run_at) if monitor.next_run_at else now
            lower(scoped_name(monitor.workspace, monitor.endpoint), until - window)
        unfinished = session.execute(
            select(MonitorRow.workspace, MonitorRow.endpoint, MonitorRunRow.window_start)
            .join(
                MonitorRow,
                (MonitorRow.workspace == MonitorRunRow.workspace)
                & (MonitorRow.name == MonitorRunRow.monitor),
            )
            .where(MonitorRunRow.state.not_in(MONITOR_RUN_FINAL))
        )
        for workspace, endpoint, start in unfinished:
            lower(scoped_name(workspace, endpoint), start)
    return floors


def _capture_files(db: Database, sizes: RootSizes) -> Iterator[tuple[str, int]]:
    """(key, bytes) of every captured file: the default workspace's, then each other
    workspace's in its share of the root."""
    for workspace in workspace_names(db):
        yield from sizes.files(scoped_resource(workspace, CAPTURE_PREFIX))


def _hour(segment: str) -> datetime | None:
    try:
        return datetime.strptime(segment.removeprefix("hour="), _HOUR).replace(tzinfo=UTC)
    except ValueError:
        return None


def purge_capture(
    db: Database,
    artifacts: ArtifactStore,
    sizes: RootSizes,
    cutoff: datetime,
    *,
    now: datetime,
    dry_run: bool,
) -> KindReport:
    """Delete capture files whose hour ended by ``cutoff`` and outside every monitor
    window of their endpoint."""
    report = KindReport("capture", bytes_freed=0)
    floors = monitor_floors(db, now)
    held: set[str] = set()
    for key, size in _capture_files(db, sizes):
        parts = key.split("/")
        workspace = DEFAULT_WORKSPACE
        if parts[0] == "workspaces":  # workspaces/<ws>/capture/...: <ws>'s endpoints
            workspace, parts = parts[1], parts[2:]
        if len(parts) != 5 or not parts[1].startswith("endpoint="):
            continue
        hour = _hour(parts[3])
        if hour is None or hour + timedelta(hours=1) > cutoff:
            continue
        endpoint = scoped_name(workspace, parts[1].removeprefix("endpoint="))
        floor = floors.get(endpoint)
        if floor is not None and hour + timedelta(hours=1) > floor:
            report.protected += 1
            held.add(endpoint)
            continue
        if not dry_run:
            artifacts.delete(key)
        report.deleted += 1
        report.add_bytes(size)
    for endpoint in sorted(held):
        report.notes.append(
            f"endpoint {endpoint}: capture since {floors[endpoint].isoformat()} kept for"
            " its monitors' windows"
        )
    return report
