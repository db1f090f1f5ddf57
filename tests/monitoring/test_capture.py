"""Reading a window of captured traffic: only the files that can hold the window's rows are
scanned, whatever else the hour's partition holds.

A gateway writes a file a second, so a short window late in an hour shares its partition
with thousands of earlier files. Scanning those (with the window's filter, finding nothing)
made each monitor run's memory grow with the hour's file count, and a long-running worker's
RSS with it (``make soak``)."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slipway.core.artifacts import ArtifactStore
from slipway.monitoring import capture
from slipway.monitoring.capture import read_window
from slipway.serving.gateway.capture import partition_key

ENDPOINT = "ep"
HOUR = datetime(2024, 5, 1, 10, tzinfo=UTC)


def _write(store: ArtifactStore, name: str, seconds: list[float], *, row_group: int = 0) -> None:
    """A capture file of one row per offset in ``seconds`` (from :data:`HOUR`), ids
    ``<name>-<i>``; ``row_group`` rows per row group (0: one row group)."""
    rows = len(seconds)
    table = pa.table(
        {
            "inference_id": pa.array([f"{name}-{i}" for i in range(rows)], pa.string()),
            "row": pa.array([0] * rows, pa.int32()),
            "time": pa.array(
                [HOUR + timedelta(seconds=s) for s in seconds], pa.timestamp("us", tz="UTC")
            ),
            "config_version": pa.array([1] * rows, pa.int32()),
            "model_name": pa.array(["m"] * rows, pa.string()),
            "model_version": pa.array([1] * rows, pa.int32()),
            "kind": pa.array(["production"] * rows, pa.string()),
            "features": pa.StructArray.from_arrays(
                [pa.array([float(s) for s in seconds])], names=["a"]
            ),
            "prediction": pa.array([0.5] * rows, pa.float64()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group or None)
    store.put_bytes(f"{partition_key(ENDPOINT, 'main', HOUR)}/{name}.parquet", sink.getvalue())


def test_a_window_scans_only_the_files_that_can_hold_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    # An hour of flushes, one file a minute (10 rows, one each 6 s), all in one partition.
    for minute in range(60):
        _write(store, f"m{minute:02d}", [minute * 60 + 6 * i for i in range(10)])
    # Across the window's start: its filter keeps the rows from 30:00 on.
    _write(store, "across", [29 * 60 + 55, 29 * 60 + 58, 30 * 60 + 1, 30 * 60 + 4])
    # Two row groups, one before the window and one in it: scanned, and filtered.
    _write(store, "groups", [10 * 60, 10 * 60 + 1, 31 * 60, 31 * 60 + 1], row_group=2)
    scanned: list[str] = []
    dataset = capture.ds.dataset

    def spy(source: Any, **kwargs: Any) -> Any:
        scanned.extend(os.path.basename(path) for path in source)
        return dataset(source, **kwargs)

    monkeypatch.setattr(capture.ds, "dataset", spy)

    start, end = HOUR + timedelta(minutes=30), HOUR + timedelta(minutes=32)
    table = read_window(store, ENDPOINT, start, end)

    assert sorted(scanned) == ["across.parquet", "groups.parquet", "m30.parquet", "m31.parquet"]
    expected = (
        [f"m30-{i}" for i in range(10)]
        + [f"m31-{i}" for i in range(10)]
        + ["across-2", "across-3", "groups-2", "groups-3"]
    )
    assert sorted(table["inference_id"].to_pylist()) == sorted(expected)
    times = table["time"].to_pylist()
    assert all(start <= t < end for t in times)


def test_a_window_without_files_of_its_minutes_reads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    for minute in range(10):
        _write(store, f"m{minute:02d}", [minute * 60 + 6 * i for i in range(10)])
    scanned: list[str] = []
    dataset = capture.ds.dataset

    def spy(source: Any, **kwargs: Any) -> Any:
        scanned.extend(source)
        return dataset(source, **kwargs)

    monkeypatch.setattr(capture.ds, "dataset", spy)

    table = read_window(store, ENDPOINT, HOUR + timedelta(minutes=40), HOUR + timedelta(minutes=42))

    assert scanned == []
    assert table.num_rows == 0
