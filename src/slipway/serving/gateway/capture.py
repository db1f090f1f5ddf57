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
from slipway.registry.predict import Batch

log = logging.getLogger("slipway.serving.capture")

CAPTURE_PREFIX = "capture"

# Columns: ``inference_id``, ``row`` (the row's index in its request), ``time``,
# ``config_version``, ``model_name``, ``model_version``, ``kind`` (production | shadow),
# ``features`` (a struct: the model's input columns, after enrichment) and ``prediction``
# (float64, or JSON text for non-numeric outputs). ``endpoint`` and ``variant`` are the
# partition keys (in the path), as ``hour`` is.
COLUMNS = (
    "inference_id", "row", "time", "config_version", "model_name", "model_version", "kind",
    "features", "prediction",
)  # fmt: skip


@dataclass(slots=True)  # built on the request path: no frozen-dataclass setattr cost
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
        on_written: Callable[[str, int, str, int], None] | None = None,
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
            pop = self._buffer.popleft
            items = [pop() for _ in range(len(self._buffer))]
            if not items:
                return 0
            groups: dict[tuple[str, str, int], list[Captured]] = {}
            for item in items:
                key = (item.endpoint, item.variant, int(item.time) // 3600)
                group = groups.get(key)
                if group is None:
                    groups[key] = [item]
                else:
                    group.append(item)
            total = 0
            for (endpoint, variant, hours), members in groups.items():
                hour = datetime.fromtimestamp(hours * 3600, UTC)
                try:
                    total += self._write(endpoint, variant, hour, members)
                except Exception:  # a failed write loses this file, never the gateway
                    log.exception("writing captured data for %s/%s failed", endpoint, variant)
                    self.dropped += len(members)
            self.written_rows += total
            return total

    def _write(self, endpoint: str, variant: str, hour: datetime, items: list[Captured]) -> int:
        """One Parquet file per input layout. Everything is built column-wise from one
        value per request (NumPy repeats them per row): this runs beside the request path,
        under the same interpreter lock, so its Python work per request is kept minimal."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        layouts: dict[tuple[str, ...], list[Captured]] = {}
        for item in items:
            names = tuple(item.batch.names)
            layout = layouts.get(names)
            if layout is None:
                layouts[names] = [item]
            else:
                layout.append(item)
        total = 0
        written: dict[tuple[str, int, str], int] = {}
        for names, members in layouts.items():
            counts = np.fromiter((m.batch.rows for m in members), dtype=np.int64)
            rows = int(counts.sum())
            spread = None if rows == len(members) else np.repeat(np.arange(len(members)), counts)

            def per_row(values: Any, kind: Any = None, spread: Any = spread) -> Any:
                array = pa.array(values, type=kind)
                return array if spread is None else array.take(pa.array(spread))

            if spread is None:
                row_index = np.zeros(rows, dtype=np.int32)
            else:
                starts = np.repeat(np.cumsum(counts) - counts, counts)
                row_index = (np.arange(rows) - starts).astype(np.int32)
            micros = (np.array([m.time for m in members]) * 1e6).astype(np.int64)
            features = pa.StructArray.from_arrays(_feature_columns(members), names=list(names))
            table = pa.table(
                {
                    "inference_id": per_row([m.inference_id for m in members], pa.string()),
                    "row": row_index,
                    "time": per_row(micros, pa.timestamp("us", tz="UTC")),
                    "config_version": per_row([m.config_version for m in members], pa.int32()),
                    "model_name": per_row([m.model_name for m in members], pa.string()),
                    "model_version": per_row([m.model_version for m in members], pa.int32()),
                    "kind": per_row([m.kind for m in members], pa.string()),
                    "features": features,
                    "prediction": _prediction_column(
                        list(itertools.chain.from_iterable(m.predictions for m in members))
                    ),
                }
            )
            sink = io.BytesIO()
            pq.write_table(table, sink, compression="zstd")
            name = f"{self.writer_id}-{next(self._seq):08d}.parquet"
            self.artifacts.put_bytes(
                f"{partition_key(endpoint, variant, hour)}/{name}", sink.getvalue()
            )
            total += rows
            versions = np.fromiter((m.config_version for m in members), dtype=np.int64)
            for version in np.unique(versions).tolist():
                key = (endpoint, version, variant)
                written[key] = written.get(key, 0) + int(counts[versions == version].sum())
        if self.on_written is not None:
            for (name_, version, variant_), count in written.items():
                self.on_written(name_, version, variant_, count)
        return total


def _feature_columns(members: list[Captured]) -> list[Any]:
    """The input columns of every request, stacked: one matrix concatenation when the
    requests were all-numeric (checking kept their float64 matrix), else per column."""
    import numpy as np
    import pyarrow as pa

    first = members[0].batch
    if all(m.batch.stacked is not None for m in members):
        matrix = np.concatenate([m.batch.stacked for m in members])
        return [
            pa.array(matrix[:, i].astype(first.arrays[i].dtype, copy=False))
            for i in range(len(first.names))
        ]
    return [
        pa.array(np.concatenate([m.batch.arrays[i] for m in members]))
        for i in range(len(first.names))
    ]


def _prediction_column(values: list[Any]) -> Any:
    """Numbers as float64 (null for NaN); anything else (labels, records) as JSON text."""
    import pyarrow as pa

    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        return pa.array(values, type=pa.float64())
    return pa.array(
        [orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY).decode() for v in values],
        type=pa.string(),
    )
