"""Ground truth: the real outcome of a prediction, sent later by its inference id.

A record is ``{"inference_id": ..., "row": 0, "label": ...}`` — ``row`` is the row's
index in its request (0 for a one-row request), ``label`` a number, a boolean or a string.
An upload is validated whole and written as one Parquet file, atomically, under
``monitoring/ground-truth/endpoint=<name>/day=<YYYY-MM-DD>/`` (the day it was received):
a bad record rejects the upload and writes nothing. Sending the same inference again later
corrects it — the newest label wins.

Labels are kept twice, as text (``label``) and, when numeric or boolean, as a number
(``label_number``), so classification can compare labels of either kind and regression
reads numbers without parsing.
"""

from __future__ import annotations

import io
import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.core.workspace import scoped_resource, split_scoped

PREFIX = "monitoring/ground-truth"
MAX_RECORDS = 1_000_000
MAX_ID = 128
MAX_ERRORS = 20


def _label(value: Any) -> tuple[str, float | None] | None:
    if isinstance(value, bool):
        return ("true" if value else "false"), float(value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        number = float(value)
        return (str(int(number)) if number.is_integer() else repr(number)), number
    if isinstance(value, str) and 0 < len(value) <= 1024:
        return value, None
    return None


def as_records(records: Any) -> list[Any]:
    """The records of an upload given as a list of objects, or as a table — a pandas
    DataFrame or an Arrow table (what an Arrow IPC upload decodes to) — of the columns
    ``inference_id``, ``row`` (optional) and ``label``."""
    if isinstance(records, list):
        return records
    if isinstance(records, pa.RecordBatch):
        records = pa.Table.from_batches([records])
    elif isinstance(records, pd.DataFrame):
        try:  # through Arrow, so numbers, booleans and text keep their types
            records = pa.Table.from_pandas(records, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(f"the records do not convert: {exc}", field="records") from None
    if isinstance(records, pa.Table):
        rows: list[Any] = records.to_pylist()
        return rows
    raise InvalidInput(
        "records must be a list of objects, a pandas DataFrame or an Arrow table",
        field="records",
    )


def records_table(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Validate ground-truth records and return them as a table; every problem is listed
    (up to a few) in one :class:`InvalidInput`."""
    ids: list[str] = []
    rows: list[int] = []
    labels: list[str] = []
    numbers: list[float | None] = []
    problems: list[str] = []
    for index, record in enumerate(records):
        if index >= MAX_RECORDS:
            raise InvalidInput(f"at most {MAX_RECORDS} records per upload", field="records")
        where = f"records[{index}]"
        if not isinstance(record, Mapping):
            problems.append(f"{where}: must be an object")
            continue
        unknown = set(record) - {"inference_id", "row", "label"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
            continue
        inference_id = record.get("inference_id")
        if not isinstance(inference_id, str) or not 0 < len(inference_id) <= MAX_ID:
            problems.append(f"{where}.inference_id: must be a string of 1-{MAX_ID} characters")
            continue
        row = record.get("row", 0)
        if not isinstance(row, int) or isinstance(row, bool) or not 0 <= row < 2**31:
            problems.append(f"{where}.row: must be a non-negative integer")
            continue
        label = _label(record.get("label"))
        if label is None:
            problems.append(f"{where}.label: must be a finite number, a boolean or a string")
            continue
        ids.append(inference_id)
        rows.append(row)
        labels.append(label[0])
        numbers.append(label[1])
        if len(problems) >= MAX_ERRORS:
            break
    if problems:
        raise InvalidInput(
            f"{len(problems)} bad ground-truth record(s): " + "; ".join(problems[:MAX_ERRORS]),
            field="records",
            details={"problems": problems[:MAX_ERRORS]},
        )
    if not ids:
        raise InvalidInput("no ground-truth records given", field="records")
    return pa.table(
        {
            "inference_id": pa.array(ids, pa.string()),
            "row": pa.array(rows, pa.int32()),
            "label": pa.array(labels, pa.string()),
            "label_number": pa.array(numbers, pa.float64()),
        }
    )


def folder(endpoint: str) -> str:
    """Where the labels of ``endpoint`` (a scoped name) lie below the artifact root: in
    its workspace's share, beside its captures."""
    workspace, name = split_scoped(endpoint)
    return scoped_resource(workspace, f"{PREFIX}/endpoint={name}")


def write(artifacts: ArtifactStore, endpoint: str, table: pa.Table) -> str:
    """Store one validated upload for ``endpoint`` (a scoped name); returns its key."""
    received = utcnow()
    table = table.append_column(
        "received_at",
        pa.array([received] * table.num_rows, pa.timestamp("us", tz="UTC")),
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    name = f"{received:%H%M%S}-{uuid.uuid4().hex}.parquet"
    key = f"{folder(endpoint)}/day={received:%Y-%m-%d}/{name}"
    artifacts.put_bytes(key, sink.getvalue())
    return key


def read(artifacts: ArtifactStore, endpoint: str, since: datetime) -> pa.Table:
    """Labels of ``endpoint`` (a scoped name) received on or after ``since``'s day, the
    newest per (inference id, row)."""
    prefix = folder(endpoint)
    first_day = since.astimezone(UTC).strftime("%Y-%m-%d")
    tables = []
    for key in artifacts.list(prefix):
        day = key[len(prefix) + 1 :].split("/")[0].removeprefix("day=")
        if day < first_day or not key.endswith(".parquet"):
            continue
        with artifacts.open(key) as handle:
            tables.append(pq.read_table(handle))
    if not tables:
        return pa.table(
            {
                "inference_id": pa.array([], pa.string()),
                "row": pa.array([], pa.int32()),
                "label": pa.array([], pa.string()),
                "label_number": pa.array([], pa.float64()),
            }
        )
    table = pa.concat_tables(tables)
    # Newest wins: a later upload corrects an earlier label of the same prediction row.
    con = duckdb.connect()
    con.register("uploads", table)
    newest = con.sql(
        "SELECT inference_id, row, label, label_number FROM uploads QUALIFY row_number() "
        "OVER (PARTITION BY inference_id, row ORDER BY received_at DESC) = 1"
    )
    return newest.to_arrow_table()
