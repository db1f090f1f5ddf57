"""Ingestion: validate the whole batch, then one Delta commit, then online upserts.

All-or-nothing: pass one validates every chunk and computes statistics; only when all of
it is valid does pass two write — offline as a single Delta commit (atomic: readers see
all of the batch or none of it), then online in chunks with event-time-conditional upserts.
If the online write fails after the offline commit, the ingestion is recorded as failed and
``materialize`` brings the online store up to date from the offline history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from slipway.core.errors import SlipwayError
from slipway.features.codec import keys_of, payloads_of
from slipway.features.definitions import FeatureGroup
from slipway.features.offline.delta import DeltaOfflineStore, SourcePosition
from slipway.features.online.base import OnlineRecordWrite, OnlineStore
from slipway.features.repository import GroupRepository, Ingest
from slipway.features.stats import IngestStats
from slipway.features.validation import validate_batch

ONLINE_CHUNK = 10_000


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


def write_online(store: OnlineStore, group: FeatureGroup, table: pa.Table) -> int:
    applied = 0
    for start in range(0, table.num_rows, ONLINE_CHUNK):
        applied += store.write(group.name, online_writes(group, table.slice(start, ONLINE_CHUNK)))
    return applied


class Ingestor:
    def __init__(
        self, repo: GroupRepository, offline: DeltaOfflineStore, online: OnlineStore
    ) -> None:
        self.repo = repo
        self.offline = offline
        self.online = online

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
    ) -> Ingest:
        """Validate every chunk, then write them; ``positions`` go into the Delta commit
        (see :meth:`DeltaOfflineStore.append`)."""
        ingest_id = self.repo.start_ingest(group.name, kind, source)
        try:
            stats = IngestStats(group)
            kept: list[pa.Table] = []
            offset = 0
            for chunk in chunks():
                valid = validate_batch(group, chunk, timezone=timezone, row_offset=offset)
                offset += chunk.num_rows
                stats.add(valid)
                if in_memory:
                    kept.append(valid)

            def validated() -> Iterator[pa.Table]:
                if in_memory:
                    yield from kept
                    return
                position = 0
                for chunk in chunks():
                    yield validate_batch(group, chunk, timezone=timezone, row_offset=position)
                    position += chunk.num_rows

            version = None
            if group.offline and stats.rows:
                batches = (b for table in validated() for b in table.to_batches())
                version = self.offline.append(
                    group, batches, ingest_id=ingest_id, evolve=evolve, positions=positions
                )
            applied = None
            if group.online and stats.rows:
                # Only each key's newest record is written (see newest_per_key): over the
                # whole batch when it is in memory, per chunk when it streams from a file.
                applied = 0
                if in_memory:
                    batch = pa.concat_tables(kept)
                    applied = write_online(self.online, group, newest_per_key(group, batch))
                    if on_progress is not None:
                        on_progress(batch.num_rows)
                else:
                    for table in validated():
                        applied += write_online(self.online, group, newest_per_key(group, table))
                        if on_progress is not None:
                            on_progress(table.num_rows)
        except SlipwayError as exc:
            self.repo.finish_ingest(ingest_id, state="failed", error=exc.message)
            raise
        except Exception as exc:
            self.repo.finish_ingest(ingest_id, state="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        return self.repo.finish_ingest(
            ingest_id,
            state="succeeded",
            rows=stats.rows,
            offline_version=version,
            online_applied=applied,
            stats=stats.to_dict(),
        )
