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

COLUMNS = (
    "inference_id", "row", "time", "endpoint", "variant", "config_version", "model_name",
    "model_version", "kind", "features", "prediction",
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
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        for item in items:
            records = item.batch.records()
            when = datetime.fromtimestamp(item.time, UTC)
            for index, (features, prediction) in enumerate(
                zip(records, item.predictions, strict=False)
            ):
                columns["inference_id"].append(item.inference_id)
                columns["row"].append(index)
                columns["time"].append(when)
                columns["endpoint"].append(item.endpoint)
                columns["variant"].append(item.variant)
                columns["config_version"].append(item.config_version)
                columns["model_name"].append(item.model_name)
                columns["model_version"].append(item.model_version)
                columns["kind"].append(item.kind)
                columns["features"].append(
                    orjson.dumps(features, option=orjson.OPT_SERIALIZE_NUMPY).decode()
                )
                columns["prediction"].append(
                    orjson.dumps(prediction, option=orjson.OPT_SERIALIZE_NUMPY).decode()
                )
            if self.on_written is not None:
                self.on_written(item, len(records))
        table = pa.table(
            {
                **{c: columns[c] for c in COLUMNS if c != "time"},
                "time": pa.array(columns["time"], type=pa.timestamp("us", tz="UTC")),
            }
        )
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        name = f"{self.writer_id}-{next(self._seq):08d}.parquet"
        self.artifacts.put_bytes(
            f"{partition_key(endpoint, variant, hour)}/{name}", sink.getvalue()
        )
        return int(table.num_rows)
