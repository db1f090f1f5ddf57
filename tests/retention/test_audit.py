"""Audit rows: old ones are exported to audit-archive/ and only then deleted; a gc
interrupted between the two and run again exports every row exactly once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.retention import GarbageCollector
from slipway.retention.audit import ARCHIVE, AuditArchiver, read_archive
from slipway.security.tables import AuditRow
from slipway.services import Services
from tests.retention.conftest import collector_for


class Interrupted(Exception):
    pass


class DiesBeforeTheSecondDelete(AuditArchiver):
    """A gc that dies after exporting its second batch, before deleting it."""

    deletes = 0

    def _delete(self, session: Session, ids: list[int]) -> None:
        self.deletes += 1
        if self.deletes == 2:
            raise Interrupted
        super()._delete(session, ids)


def _rows(services: Services, count: int, at: datetime) -> list[int]:
    with services.db.write() as session:
        rows = [
            AuditRow(
                time=at + timedelta(seconds=n), actor="alice", action="model.approve",
                resource=f"model/m/{n}", outcome="success", status_code=200,
                details={"n": n, "at": at.isoformat()},
            )
            for n in range(count)
        ]  # fmt: skip
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _remaining(services: Services) -> list[int]:
    with services.db.session() as session:
        return list(session.scalars(select(AuditRow.id).order_by(AuditRow.id)))


def test_old_rows_are_exported_once_even_when_the_gc_is_interrupted(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    old = _rows(services, 25, at=datetime(2020, 1, 1, 12, tzinfo=UTC))
    old += _rows(services, 5, at=datetime(2020, 6, 1, 12, tzinfo=UTC))
    recent = _rows(services, 4, at=utcnow() - timedelta(days=1))
    dry = collector(audit_days=90).run(dry_run=True).kind("audit")
    assert dry.deleted == 30 and services.artifacts.list(ARCHIVE) == []

    cutoff = utcnow() - timedelta(days=90)
    crashing = DiesBeforeTheSecondDelete(services.db, services.artifacts, batch_size=10)
    with pytest.raises(Interrupted):
        crashing.run(cutoff, dry_run=False)
    # The first batch is exported and gone; the second is exported and still there.
    assert len(read_archive(services.artifacts)) == 20
    assert _remaining(services) == old[10:] + recent

    report = collector(audit_days=90, batch_size=10).run().kind("audit")

    assert report.deleted == 20
    assert _remaining(services) == recent
    archived = read_archive(services.artifacts)
    assert [row["id"] for row in archived] == old  # each deleted row once, in order
    first = archived[0]
    assert first["actor"] == "alice" and first["resource"] == "model/m/0"
    assert first["details"] == {"n": 0, "at": "2020-01-01T12:00:00+00:00"}
    days = {key.split("/")[1] for key in services.artifacts.list(ARCHIVE)}
    assert days == {"2020-01-01", "2020-06-01"}  # one folder per day of the rows' times

    assert collector(audit_days=90).run().kind("audit").deleted == 0
    assert len(read_archive(services.artifacts)) == 30


def test_audit_rows_are_kept_for_ever_by_default(services: Services) -> None:
    assert services.settings.retention.audit_days is None
    _rows(services, 3, at=datetime(2010, 1, 1, 12, tzinfo=UTC))
    gc = collector_for(services)
    gc.retention = services.settings.retention
    report = gc.run(only=["audit"]).kind("audit")
    assert not report.enabled and report.deleted == 0
    assert len(_remaining(services)) == 3
