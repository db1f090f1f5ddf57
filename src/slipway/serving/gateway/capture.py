"""Data capture: sampled requests and responses, appended as Parquet to the artifact store.

The request path only appends a reference to what it served to a bounded buffer; a
background thread turns buffered requests into one row per served row and writes a Parquet
file per (endpoint, variant, hour) every second. A full buffer drops the newest request
and counts the drop — capture never blocks or fails a request.

Layout (Hive-style, so DuckDB and pandas read it partitioned)::

    capture/endpoint=<name>/variant=<variant>/hour=<YYYY-MM-DDTHH>/<gateway>-<seq>.parquet
"""

from __future__ import annotations

import io
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from slipway.core.artifacts import ArtifactStore
from slipway.serving.gateway.inputs import Batch

log = logging.getLogger("slipway.serving.capture")

CAPTURE_PREFIX = "capture"

# Per-request values repeated on each of its rows. Then: ``row`` (its index in the
# request), ``time``, ``features`` (a struct: the model's input columns, after enrichment)
# and ``prediction`` (float64, or JSON text for non-numeric outputs).
META_COLUMNS = (
    "inference_id", "endpoint", "variant", "config_version", "model_name", "model_version",
    "kind",
)  # fmt: skip


@dataclass(frozen=True)
class Captured:
    """One served request, as the capture thread needs it."""

    inference_id: str
    time: float  # epoch seconds
    endpoint: str
    variant: str
    config_version: int
    model_name: str
    model_version: int
    kind: str  # production | shadow
    batch: Batch
    predictions: list[Any]


def partition_key(endpoint: str, variant: str, hour: datetime) -> str:
    return f"{CAPTURE_PREFIX}/endpoint={endpoint}/variant={variant}/hour={hour:%Y-%m-%dT%H}"


class CaptureWriter:
    def __init__(
        self,
        artifacts: ArtifactStore,
        writer_id: str,
        *,
        capacity: int = 10_000,
        on_written: Callable[[Captured, int], None] | None = None,
    ) -> None:
        self.artifacts = artifacts
        self.writer_id = writer_id
        self.capacity = capacity
        self.on_written = on_written
        self._buffer: deque[Captured] = deque()
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self.dropped = 0
        self.written_rows = 0

    def offer(self, item: Captured) -> bool:
        """Buffer ``item``; False (and counted) when the buffer is full."""
        if len(self._buffer) >= self.capacity:
            self.dropped += 1
            return False
        self._buffer.append(item)
        return True

    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        """Write everything buffered; returns the number of rows written."""
        with self._lock:
            items = []
            while self._buffer:
                items.append(self._buffer.popleft())
            if not items:
                return 0
            groups: dict[tuple[str, str, datetime], list[Captured]] = {}
            for item in items:
                hour = datetime.fromtimestamp(item.time - item.time % 3600, UTC)
                groups.setdefault((item.endpoint, item.variant, hour), []).append(item)
            total = 0
            for (endpoint, variant, hour), members in groups.items():
                try:
                    total += self._write(endpoint, variant, hour, members)
                except Exception:  # a failed write loses this file, never the gateway
                    log.exception("writing captured data for %s/%s failed", endpoint, variant)
                    self.dropped += len(members)
            self.written_rows += total
            return total

    def _write(self, endpoint: str, variant: str, hour: datetime, items: list[Captured]) -> int:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        meta: dict[str, list[Any]] = {c: [] for c in META_COLUMNS}
        rows: list[int] = []
        times: list[datetime] = []
        predictions: list[Any] = []
        # Requests with the same input columns are stacked column by column (no per-row
        # Python work); a file holds one struct layout, so a model change inside one flush
        # (a new config) starts another file.
        layouts: dict[tuple[str, ...], list[Captured]] = {}
        for item in items:
            layouts.setdefault(tuple(item.batch.names), []).append(item)
        total = 0
        for names, members in layouts.items():
            for values in meta.values():
                values.clear()
            rows.clear()
            times.clear()
            predictions.clear()
            for item in members:
                count = item.batch.rows
                when = datetime.fromtimestamp(item.time, UTC)
                for key, value in (
                    ("inference_id", item.inference_id),
                    ("endpoint", item.endpoint),
                    ("variant", item.variant),
                    ("config_version", item.config_version),
                    ("model_name", item.model_name),
                    ("model_version", item.model_version),
                    ("kind", item.kind),
                ):
                    meta[key].extend([value] * count)
                rows.extend(range(count))
                times.extend([when] * count)
                predictions.extend(item.predictions[:count])
                if self.on_written is not None:
                    self.on_written(item, count)
            features = pa.StructArray.from_arrays(
                [
                    pa.array(np.concatenate([m.batch.arrays[i] for m in members]))
                    for i in range(len(names))
                ],
                names=list(names),
            )
            table = pa.table(
                {
                    "inference_id": meta["inference_id"],
                    "row": pa.array(rows, type=pa.int32()),
                    "time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
                    **{c: meta[c] for c in META_COLUMNS if c != "inference_id"},
                    "features": features,
                    "prediction": _prediction_column(predictions),
                }
            )
            sink = io.BytesIO()
            pq.write_table(table, sink, compression="zstd")
            name = f"{self.writer_id}-{next(self._seq):08d}.parquet"
            key = f"{partition_key(endpoint, variant, hour)}/{name}"
            self.artifacts.put_bytes(key, sink.getvalue())
            total += int(table.num_rows)
        return total


def _prediction_column(values: list[Any]) -> Any:
    """Numbers as float64 (null for NaN); anything else (labels, records) as JSON text."""
    import pyarrow as pa

    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        return pa.array(values, type=pa.float64())
    return pa.array(
        [orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY).decode() for v in values],
        type=pa.string(),
    )
