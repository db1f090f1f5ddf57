"""Ingestion: validate the whole batch, then one Delta commit, then online upserts.

All-or-nothing: pass one validates every chunk and computes statistics; only when all of
it is valid does pass two write — offline as a single Delta commit (atomic: readers see
all of the batch or none of it), then online in chunks with event-time-conditional upserts.
If the online write fails after the offline commit, the ingestion is recorded as failed and
``materialize`` brings the online store up to date from the offline history.

Retries are safe when the client names the batch with an idempotency key (the
``Idempotency-Key`` header over REST, ``idempotency_key=`` in the SDK): the key claims one
ingestion record, and a retry — after a lost answer, an error, or the writing process
being killed — replays a succeeded ingestion without writing, or resumes a failed or dead
one under the same ingestion id. The offline commit is stamped with that id, so a resumed
attempt sees whether the dead one's commit landed and appends only if it did not; the
online upserts are conditional on event time, so writing them again changes nothing.
The batch is written once, however often it is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, SlipwayError
from slipway.features.codec import keys_of, payloads_of
from slipway.features.definitions import FeatureGroup
from slipway.features.offline.delta import DeltaOfflineStore, SourcePosition
from slipway.features.online.base import OnlineRecordWrite, OnlineStore
from slipway.features.repository import Claim, GroupRepository
from slipway.features.resources import Ingest
from slipway.features.stats import IngestStats
from slipway.features.validation import validate_batch

ONLINE_CHUNK = 10_000
# A keyed attempt whose heartbeat is older than this is presumed dead and may be resumed;
# a live one beats several times within it.
STALE_AFTER_SECONDS = 60.0


class _Heartbeat:
    """A keyed attempt's heartbeat, renewed as chunks pass; ``fence`` renews at once and
    raises if another attempt has taken the ingestion over, so this one writes nothing
    after a retry presumed it dead."""

    def __init__(self, repo: GroupRepository, claim: Claim, stale_after: float) -> None:
        self.repo = repo
        self.claim = claim
        self.every = stale_after / 4
        self.last = time.monotonic()
        self.lost = False

    def beat(self) -> None:
        if time.monotonic() - self.last >= self.every:
            self.fence()

    def fence(self) -> None:
        try:
            self.claim = self.repo.renew_ingest(self.claim)
        except Conflict as exc:
            # Remembered: the Delta writer may hand this back wrapped in its own error.
            self.lost = True
            raise _TakenOver(exc.message) from None
        self.last = time.monotonic()


class _TakenOver(Exception):
    """This attempt lost its claim; the attempt that took it over records the outcome."""


def online_writes(group: FeatureGroup, table: pa.Table) -> list[OnlineRecordWrite]:
    keys = keys_of(group, table)
    times = table.column(group.event_time).cast(pa.int64()).to_pylist()
    payloads = payloads_of(group, table)
    return [OnlineRecordWrite(k, t, p) for k, t, p in zip(keys, times, payloads, strict=True)]


def newest_per_key(group: FeatureGroup, table: pa.Table) -> pa.Table:
    """The one record per key that writing ``table`` in order would leave in the online
    store: the latest event time, and among equal ones the last row (ties go to the
    incoming record). Writing only these gives the same online state for a fraction of
    the writes when keys repeat (a history of updates: 1M rows of 100k keys are 100k
    writes). The offline store keeps every row."""
    if table.num_rows < 2:
        return table
    keys = group.key_columns
    # sort_indices is stable: among equal keys and event times, input order is kept.
    order = pc.sort_indices(
        table.select([*keys, group.event_time]),
        sort_keys=[(k, "ascending") for k in keys] + [(group.event_time, "ascending")],
    )
    ordered = table.take(order)
    size = ordered.num_rows
    last = None
    for name in keys:
        column = ordered.column(name)
        changes = pc.not_equal(column.slice(0, size - 1), column.slice(1))
        last = changes if last is None else pc.or_(last, changes)
    assert last is not None
    # A row is kept when the next row has another key; the last row always is.
    keep = pa.chunked_array([*pa.chunked_array(last).chunks, pa.array([True])])
    return ordered.filter(keep)


_ROW = "__slipway_row"


def last_per_event(group: FeatureGroup, table: pa.Table) -> pa.Table:
    """``table`` with one row per (key, event time): the last one, in input order.

    A batch stating the same fact twice (a re-sent stream message, a file with a
    repeated line) is one fact whose later statement wins, as it would if the two came
    in separate ingestions. Kept in the offline table both would share an ingestion id
    and time, and which one a training set or a window saw would be up to the query
    plan; the online store already keeps the later. Rows keep their order; a table
    without repeats comes back as it is."""
    if table.num_rows < 2:
        return table
    columns = [*group.key_columns, group.event_time]
    numbered = table.select(columns).append_column(
        _ROW, pa.array(range(table.num_rows), pa.int64())
    )
    last = numbered.group_by(columns, use_threads=False).aggregate([(_ROW, "max")])
    if last.num_rows == table.num_rows:
        return table
    rows = last.column(f"{_ROW}_max")
    return table.take(rows.take(pc.sort_indices(rows)))


def write_online(store: OnlineStore, group: FeatureGroup, table: pa.Table) -> int:
    applied = 0
    for start in range(0, table.num_rows, ONLINE_CHUNK):
        applied += store.write(group.name, online_writes(group, table.slice(start, ONLINE_CHUNK)))
    return applied


class Horizons(Protocol):
    """A group's horizon: how long the online store keeps each key's events for the
    feature views' window aggregations over it (the longest window of any view version),
    in microseconds; None when no view aggregates it."""

    def __call__(self, group: str) -> int | None: ...

    def forget(self) -> None:
        """Read the views again on the next call (this process just defined one)."""
        ...


# Makes the horizons of a workspace (slipway.features.views.horizons.HorizonCache).
HorizonsFactory = Callable[[Database, str], Horizons]


class _NoHorizons:
    """No feature view aggregates any group: no events are kept."""

    def __call__(self, group: str) -> int | None:
        return None

    def forget(self) -> None:
        return None


no_horizons: Horizons = _NoHorizons()


def write_serving(
    store: OnlineStore, group: FeatureGroup, table: pa.Table, horizon_us: int | None
) -> int:
    """Write ``table`` (validated rows, in ingestion order) to the online store: every row
    to the group's event log when a feature view aggregates the group (all events count
    in a window, not only each key's newest), then each key's newest record. Returns the
    records applied."""
    if horizon_us is None:
        return write_online(store, group, newest_per_key(group, table))
    # Every row is encoded once: each key's newest record is one of the events.
    numbered = table.append_column(_ROW, pa.array(range(table.num_rows), pa.int64()))
    newest = np.zeros(table.num_rows, dtype=bool)
    newest[newest_per_key(group, numbered).column(_ROW).to_numpy()] = True
    records: list[OnlineRecordWrite] = []
    for start in range(0, table.num_rows, ONLINE_CHUNK):
        events = online_writes(group, table.slice(start, ONLINE_CHUNK))
        store.append_events(group.name, events, horizon_us)
        chosen = newest[start : start + len(events)]
        records.extend(event for event, keep in zip(events, chosen, strict=True) if keep)
    applied = 0
    for start in range(0, len(records), ONLINE_CHUNK):
        applied += store.write(group.name, records[start : start + ONLINE_CHUNK])
    return applied


class Ingestor:
    def __init__(
        self,
        repo: GroupRepository,
        offline: DeltaOfflineStore,
        online: OnlineStore,
        *,
        stale_after: float = STALE_AFTER_SECONDS,
        horizons: Horizons = no_horizons,
    ) -> None:
        self.repo = repo
        self.offline = offline
        self.online = online
        self.stale_after = stale_after
        self.horizons = horizons

    def ingest(
        self,
        group: FeatureGroup,
        chunks: Callable[[], Iterator[pa.Table]],
        *,
        source: str,
        kind: str = "ingest",
        timezone: str | None = None,
        evolve: bool = False,
        in_memory: bool = False,
        on_progress: Callable[[int], None] | None = None,
        positions: Sequence[SourcePosition] = (),
        idempotency_key: str | None = None,
    ) -> Ingest:
        """Validate every chunk, then write them; ``positions`` go into the Delta commit
        (see :meth:`DeltaOfflineStore.append`). With ``idempotency_key``, a repeat of a
        succeeded ingestion returns its record and writes nothing, and a repeat of a
        failed or dead one resumes it (see the module's docstring)."""
        heart: _Heartbeat | None = None
        resumed = False
        if idempotency_key is None:
            ingest_id = self.repo.start_ingest(group.name, kind, source)
        else:
            claim = self.repo.claim_ingest(
                group.name, kind, source, idempotency_key, stale_after=self.stale_after
            )
            if isinstance(claim, Ingest):
                return claim
            ingest_id, resumed = claim.id, claim.resumed
            heart = _Heartbeat(self.repo, claim, self.stale_after)

        def beat() -> None:
            if heart is not None:
                heart.beat()

        def fence() -> None:
            if heart is not None:
                heart.fence()

        def beating(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for b in batches:
                beat()
                yield b

        try:
            stats = IngestStats(group)
            kept: list[pa.Table] = []
            offset = 0
            for chunk in chunks():
                beat()
                valid = validate_batch(group, chunk, timezone=timezone, row_offset=offset)
                offset += chunk.num_rows
                if in_memory:
                    kept.append(valid)
                else:
                    stats.add(last_per_event(group, valid))
            if in_memory and kept:
                # One fact per (key, event time) over the whole batch (see last_per_event).
                kept = [last_per_event(group, pa.concat_tables(kept))]
                stats.add(kept[0])

            def validated() -> Iterator[pa.Table]:
                if in_memory:
                    yield from kept
                    return
                position = 0
                for chunk in chunks():
                    # A file streamed in chunks: a fact repeated within a chunk is one; in
                    # two chunks of one file, both rows are kept (see docs/feature-store.md).
                    yield last_per_event(
                        group, validate_batch(group, chunk, timezone=timezone, row_offset=position)
                    )
                    position += chunk.num_rows

            version = None
            if resumed and group.offline and stats.rows:
                # The dead attempt may have committed before it died: never append twice.
                version = self.offline.committed_version(group.name, ingest_id)
            if version is None and group.offline and stats.rows:
                fence()
                batches = beating(b for table in validated() for b in table.to_batches())
                version = self.offline.append(
                    group, batches, ingest_id=ingest_id, evolve=evolve, positions=positions
                )
            applied = None
            if group.online and stats.rows:
                # Only each key's newest record is written (see newest_per_key): over the
                # whole batch when it is in memory, per chunk when it streams from a file.
                applied = 0
                horizon = self.horizons(group.name)
                if in_memory:
                    batch = pa.concat_tables(kept)
                    applied = write_serving(self.online, group, batch, horizon)
                    if on_progress is not None:
                        on_progress(batch.num_rows)
                else:
                    for table in validated():
                        beat()
                        applied += write_serving(self.online, group, table, horizon)
                        if on_progress is not None:
                            on_progress(table.num_rows)
            fence()
        except Exception as exc:
            if heart is None or not heart.lost:
                self._failed(ingest_id, exc)
                raise
            raise Conflict(
                f"ingestion {idempotency_key!r} into feature group {group.name!r} was taken"
                f" over by another attempt: {exc}",
                details={"ingest_id": ingest_id, "idempotency_key": idempotency_key},
            ) from None
        return self.repo.finish_ingest(
            ingest_id,
            state="succeeded",
            rows=stats.rows,
            offline_version=version,
            online_applied=applied,
            stats=stats.to_dict(),
        )

    def _failed(self, ingest_id: int, exc: Exception) -> None:
        """Record the attempt as failed, with the error a user can act on."""
        message = exc.message if isinstance(exc, SlipwayError) else f"{type(exc).__name__}: {exc}"
        self.repo.finish_ingest(ingest_id, state="failed", error=message)
