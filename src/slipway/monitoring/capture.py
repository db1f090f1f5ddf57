"""Reading an endpoint's captured traffic for a time window.

Capture files live under ``capture/endpoint=<name>/variant=<variant>/hour=<hour>/`` (see
:mod:`slipway.serving.gateway.capture`); the hour partition in the path narrows a window to
the files of its hours, and each file's ``time`` statistics (its footer) narrow it further
to the files that can hold its rows: a short window late in an hour scans its own files,
not the thousands the gateways wrote earlier that hour. Rows are then kept when their
``time`` falls in ``[start, end)`` and — unless asked otherwise — when they were served as
``production`` (shadow predictions are logged but never answered, so they are not the
endpoint's behaviour).

The result is flat: the model's input columns (the ``features`` struct, expanded),
``prediction``, and the identifying columns ``inference_id``, ``row``, ``time``,
``variant``, ``model_version``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from slipway.core.artifacts import ArtifactStore
from slipway.serving.gateway.capture import capture_folder

IDENTITY = ("inference_id", "row", "time", "variant", "model_version")
_HOUR = "%Y-%m-%dT%H"


def _files(
    artifacts: ArtifactStore, endpoint: str, start: datetime, end: datetime, variant: str | None
) -> list[tuple[str, str]]:
    """(key, variant) of every capture file of ``endpoint`` (a scoped name) whose hour
    overlaps the window."""
    prefix = capture_folder(endpoint)
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    found = []
    for key in artifacts.list(prefix):
        parts = key[len(prefix) + 1 :].split("/")  # variant=<v>/hour=<h>/<file>
        if len(parts) != 3 or not parts[2].endswith(".parquet"):
            continue
        file_variant = parts[0].removeprefix("variant=")
        if variant is not None and file_variant != variant:
            continue
        try:
            hour = datetime.strptime(parts[1].removeprefix("hour="), _HOUR).replace(tzinfo=UTC)
        except ValueError:
            continue
        if first <= hour < end and hour + timedelta(hours=1) > start:
            found.append((key, file_variant))
    return found


def read_window(
    artifacts: ArtifactStore,
    endpoint: str,
    start: datetime,
    end: datetime,
    *,
    variant: str | None = None,
    include_shadow: bool = False,
    identity: bool = True,
    models: bool = False,
) -> pa.Table:
    """The captured rows of ``endpoint`` with ``start <= time < end`` (empty table when
    nothing was captured). ``identity=False`` leaves out the inference ids and rows (a
    data-quality run does not need them, and they are a good part of the decoding);
    ``models=True`` adds ``model_name``, which with ``model_version`` says which
    registered version served each row."""
    by_variant: dict[str, list[str]] = {}
    for key, file_variant in _files(artifacts, endpoint, start, end, variant):
        by_variant.setdefault(file_variant, []).append(key)
    columns = ["time", "kind", "features", "prediction", "model_version"]
    if identity:
        columns += ["inference_id", "row"]
    if models:
        columns.append("model_name")
    when = pa.timestamp("us", tz="UTC")
    keep = (ds.field("time") >= pa.scalar(start, when)) & (ds.field("time") < pa.scalar(end, when))
    if not include_shadow:
        keep = keep & (ds.field("kind") == "production")
    tables = []
    for file_variant, keys in sorted(by_variant.items()):
        filesystem, paths = artifacts.locate(keys)
        wanted = "production" if not include_shadow else None
        inside, edges = _split(paths, filesystem, start, end, wanted)
        # One scan per group: pyarrow reads them on all cores. Files wholly inside the
        # window (by their statistics) need no filter, which is most of them; files wholly
        # outside it are not scanned at all (see _split).
        for group, where in ((inside, None), (edges, keep)):
            if not group:
                continue
            scanned = ds.dataset(group, format="parquet", filesystem=filesystem).to_table(
                columns=columns, filter=where
            )
            if scanned.num_rows:
                tables.append(_flatten(scanned, file_variant, identity, models))
    if not tables:
        return pa.table({name: pa.array([], pa.string()) for name in ("inference_id",)})
    return pa.concat_tables(tables, promote_options="permissive")


def _split(
    paths: list[str], filesystem: Any, start: datetime, end: datetime, kind: str | None
) -> tuple[list[str], list[str]]:
    """Paths whose every row is in ``[start, end)`` (and of ``kind``), and the paths that
    may hold some rows of the window. Files none of whose rows can be in the window (by
    their ``time`` statistics), and files without rows, are in neither: scanning them with
    the window's filter finds nothing, yet costs memory and time that grow with the hour's
    file count (a two-minute window at the end of an hour of gateway traffic would scan
    thousands of files; the allocations of that scan are kept by the allocator, and a
    worker's memory grew with every run — see soak/)."""
    inside: list[str] = []
    edges: list[str] = []
    for path in paths:
        if filesystem is None:
            metadata = pq.ParquetFile(path).metadata
        else:
            with filesystem.open(path, "rb") as handle:
                metadata = pq.ParquetFile(handle).metadata
        names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
        whole = True  # every row in the window (and of kind): scanned without a filter
        overlaps = False  # some row may be in the window: scanned at all
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            if row_group.num_rows == 0:
                continue
            time_stats = row_group.column(names.index("time")).statistics
            kind_stats = row_group.column(names.index("kind")).statistics
            if time_stats is None or not time_stats.has_min_max:
                whole, overlaps = False, True
                break
            if time_stats.max < start or time_stats.min >= end:
                whole = False  # none of this row group's rows is in the window
                continue
            overlaps = True
            if not (start <= time_stats.min and time_stats.max < end) or (
                kind is not None
                and (
                    kind_stats is None
                    or not kind_stats.has_min_max
                    or kind_stats.min != kind
                    or kind_stats.max != kind
                )
            ):
                whole = False
        if overlaps:
            (inside if whole else edges).append(path)
    return inside, edges


def _flatten(table: pa.Table, variant: str, identity: bool, models: bool) -> pa.Table:
    features = table["features"]
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        field.name: pc.struct_field(features, [i]) for i, field in enumerate(features.type)
    }
    prediction = table["prediction"]
    if pa.types.is_string(prediction.type):
        # Non-numeric predictions are captured as JSON text: a label "yes" is "\"yes\"".
        prediction = pc.replace_substring_regex(prediction, pattern=r'^"(.*)"$', replacement=r"\1")
    columns["prediction"] = prediction
    if identity:
        columns["inference_id"] = table["inference_id"]
        columns["row"] = table["row"]
    columns["time"] = table["time"]
    columns["variant"] = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(table.num_rows, dtype=np.int8)), pa.array([variant])
    )
    columns["model_version"] = table["model_version"]
    if models:
        columns["model_name"] = table["model_name"]
    return pa.table(columns)
