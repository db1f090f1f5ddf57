"""Retention of the audit log: old rows are exported to the artifact store, then deleted.

Each batch runs in one transaction that holds its rows: select the oldest rows before the
cutoff, write the ones not yet exported as JSON lines to
``audit-archive/<YYYY-MM-DD>/<first id>-<last id>.jsonl`` (one file per day of the rows'
times, written atomically), then delete the batch and commit. A gc that dies after the
export and before the commit leaves rows that are already in the archive; the next run
finds them there — it reads the archive files whose id range covers a selected row — and
deletes them without writing them again. So every deleted row is in the archive exactly
once, and no row is deleted before its export is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from slipway.core.artifacts import ArtifactStore
from slipway.core.db.engine import Database
from slipway.retention.report import KindReport
from slipway.security.tables import AuditRow

ARCHIVE = "audit-archive"


def archive_key(day: str, first: int, last: int) -> str:
    return f"{ARCHIVE}/{day}/{first:012d}-{last:012d}.jsonl"


def _range(key: str) -> tuple[int, int] | None:
    name = key.rsplit("/", 1)[-1].removesuffix(".jsonl")
    first, sep, last = name.partition("-")
    if not sep or not first.isdigit() or not last.isdigit():
        return None
    return int(first), int(last)


def entry(row: AuditRow) -> dict[str, object]:
    """One archived row: every column, times in ISO 8601 UTC."""
    return {
        "id": row.id,
        "time": row.time.isoformat(),
        "actor": row.actor,
        "action": row.action,
        "resource": row.resource,
        "outcome": row.outcome,
        "status_code": row.status_code,
        "details": row.details,
    }


def read_archive(artifacts: ArtifactStore) -> list[dict[str, object]]:
    """Every archived row, in id order (for restores and tests)."""
    rows: list[dict[str, object]] = []
    for key in artifacts.list(ARCHIVE):
        rows.extend(orjson.loads(line) for line in artifacts.get_bytes(key).splitlines() if line)
    return sorted(rows, key=lambda r: int(str(r["id"])))


class AuditArchiver:
    """Export-then-delete of audit rows older than a cutoff, ``batch_size`` per batch."""

    def __init__(self, db: Database, artifacts: ArtifactStore, *, batch_size: int) -> None:
        self.db = db
        self.artifacts = artifacts
        self.batch_size = batch_size
        self._ranges: dict[str, tuple[int, int]] = {}
        self._archived: dict[str, set[int]] = {}

    def run(self, cutoff: datetime, *, dry_run: bool) -> KindReport:
        report = KindReport("audit")
        old = AuditRow.time < cutoff
        if dry_run:
            with self.db.session() as session:
                report.deleted = session.scalar(select(func.count()).where(old)) or 0
            return report
        self._ranges = {
            key: found for key in self.artifacts.list(ARCHIVE) if (found := _range(key)) is not None
        }
        exported = written = 0
        while True:
            with self.db.write() as session:
                rows = list(
                    session.scalars(
                        select(AuditRow)
                        .where(old)
                        .order_by(AuditRow.id)
                        .limit(self.batch_size)
                        .with_for_update()
                    )
                )
                if not rows:
                    break
                done = self._already_archived(rows)
                fresh = [row for row in rows if row.id not in done]
                written += self._export(fresh)
                exported += len(fresh)
                self._delete(session, [row.id for row in rows])
            report.deleted += len(rows)
        if report.deleted:
            report.notes.append(
                f"{exported} rows exported to {ARCHIVE}/ ({written} bytes) before deletion"
            )
        return report

    def _already_archived(self, rows: Sequence[AuditRow]) -> set[int]:
        """Ids of ``rows`` that an earlier, interrupted gc already exported."""
        first, last = rows[0].id, rows[-1].id
        found: set[int] = set()
        for key, (low, high) in self._ranges.items():
            if high < first or low > last:
                continue
            if key not in self._archived:
                self._archived[key] = {
                    int(orjson.loads(line)["id"])
                    for line in self.artifacts.get_bytes(key).splitlines()
                    if line
                }
            found |= self._archived[key]
        return found

    def _export(self, rows: Sequence[AuditRow]) -> int:
        """Write ``rows`` (id order) to one archive file per day; returns bytes written."""
        by_day: dict[str, list[AuditRow]] = {}
        for row in rows:
            by_day.setdefault(row.time.strftime("%Y-%m-%d"), []).append(row)
        size = 0
        for day, group in by_day.items():
            key = archive_key(day, group[0].id, group[-1].id)
            body = b"".join(orjson.dumps(entry(row)) + b"\n" for row in group)
            self.artifacts.put_bytes(key, body)
            self._ranges[key] = (group[0].id, group[-1].id)
            self._archived[key] = {row.id for row in group}
            size += len(body)
        return size

    def _delete(self, session: Session, ids: list[int]) -> None:
        session.execute(delete(AuditRow).where(AuditRow.id.in_(ids)))
