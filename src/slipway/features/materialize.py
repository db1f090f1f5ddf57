"""Materialization: copy the latest offline record per key into the online store.

Idempotent by construction: it writes, per key, the newest record (ties broken by the
latest ingestion) with the event-time-conditional upsert, so running it again rewrites the
same record and the online store never moves backwards in event time.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

from slipway.core.errors import InvalidInput
from slipway.features.definitions import FeatureGroup
from slipway.features.ingest import ONLINE_CHUNK, online_writes, write_online
from slipway.features.offline.delta import DeltaOfflineStore
from slipway.features.online.base import OnlineStore
from slipway.features.validation import group_schema


def latest_per_key(
    offline: DeltaOfflineStore,
    group: FeatureGroup,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pa.Table:
    """Newest record per key with event time in ``[start, end)``, in the group's schema."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone", field=name)
    schema = group_schema(group)
    columns = ", ".join(f'"{c}"' for c in schema.names)
    keys = ", ".join(f'"{k}"' for k in group.key_columns)
    where = []
    params: list[datetime] = []
    if start is not None:
        where.append(f'"{group.event_time}" >= ?')
        params.append(start)
    if end is not None:
        where.append(f'"{group.event_time}" < ?')
        params.append(end)
    con = duckdb.connect()
    try:
        con.register("g", offline.dataset(group.name))
        sql = (
            f"SELECT {columns} FROM g {'WHERE ' + ' AND '.join(where) if where else ''}"
            f" QUALIFY row_number() OVER (PARTITION BY {keys}"
            f' ORDER BY "{group.event_time}" DESC, _ingest_id DESC) = 1'
        )
        table = con.sql(sql, params=params).to_arrow_table()
        assert table is not None
    finally:
        con.close()
    return table.cast(schema.with_metadata(None)) if table.schema != schema else table


def materialize(
    offline: DeltaOfflineStore,
    online: OnlineStore,
    group: FeatureGroup,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[int, int]:
    """Returns (records read, records applied online)."""
    if not group.online:
        raise InvalidInput(f"feature group {group.name!r} is offline-only", field="group")
    table = latest_per_key(offline, group, start=start, end=end)
    return table.num_rows, write_online(online, group, table)


def recent_events(offline: DeltaOfflineStore, group: FeatureGroup, horizon_us: int) -> pa.Table:
    """Every event the online event log keeps for a window horizon: per key, one record
    per event time (the latest ingestion's) within ``horizon_us`` of the key's newest
    event, oldest first, in the group's schema."""
    schema = group_schema(group)
    columns = ", ".join(f'"{c}"' for c in schema.names)
    keys = ", ".join(f'"{k}"' for k in group.key_columns)
    time = f'"{group.event_time}"'
    con = duckdb.connect()
    try:
        con.register("g", offline.dataset(group.name))
        sql = (
            f"WITH events AS (SELECT {columns} FROM g QUALIFY row_number() OVER"
            f" (PARTITION BY {keys}, {time} ORDER BY _ingest_id DESC) = 1)"
            f" SELECT {columns} FROM events QUALIFY epoch_us({time}) >="
            f" max(epoch_us({time})) OVER (PARTITION BY {keys}) - {int(horizon_us)}"
            f" ORDER BY {time}"
        )
        table = con.sql(sql).to_arrow_table()
        assert table is not None
    finally:
        con.close()
    return table.cast(schema.with_metadata(None)) if table.schema != schema else table


def backfill_events(
    offline: DeltaOfflineStore, online: OnlineStore, group: FeatureGroup, horizon_us: int
) -> int:
    """Fill the group's online event log from its offline data (a feature view with a
    window over it was defined after the data was ingested); idempotent. Returns the
    events written."""
    if not group.online:
        raise InvalidInput(f"feature group {group.name!r} is offline-only", field="group")
    table = recent_events(offline, group, horizon_us)
    written = 0
    for start in range(0, table.num_rows, ONLINE_CHUNK):
        chunk = table.slice(start, ONLINE_CHUNK)
        online.append_events(group.name, online_writes(group, chunk), horizon_us)
        written += chunk.num_rows
    return written
