"""Reading an endpoint's captured traffic for a time window.

Capture files live under ``capture/endpoint=<name>/variant=<variant>/hour=<hour>/`` (see
:mod:`slipway.serving.gateway.capture`); the hour partition in the path lets a window read
only the files that can hold its rows. Rows are then kept when their ``time`` falls in
``[start, end)`` and — unless asked otherwise — when they were served as ``production``
(shadow predictions are logged but never answered, so they are not the endpoint's
behaviour).

The result is flat: the model's input columns (the ``features`` struct, expanded),
``prediction``, and the identifying columns ``inference_id``, ``row``, ``time``,
``variant``, ``model_version``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from slipway.core.artifacts import ArtifactStore
from slipway.serving.gateway.capture import CAPTURE_PREFIX

IDENTITY = ("inference_id", "row", "time", "variant", "model_version")
_HOUR = "%Y-%m-%dT%H"


def _files(
    artifacts: ArtifactStore, endpoint: str, start: datetime, end: datetime, variant: str | None
) -> list[tuple[str, str]]:
    """(key, variant) of every capture file whose hour overlaps the window."""
    prefix = f"{CAPTURE_PREFIX}/endpoint={endpoint}"
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    found = []
    for key in artifacts.list(prefix):
        parts = key.split("/")
        if len(parts) != 5 or not parts[4].endswith(".parquet"):
            continue
        file_variant = parts[2].removeprefix("variant=")
        if variant is not None and file_variant != variant:
            continue
        try:
            hour = datetime.strptime(parts[3].removeprefix("hour="), _HOUR).replace(tzinfo=UTC)
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
) -> pa.Table:
    """The captured rows of ``endpoint`` with ``start <= time < end`` (empty table when
    nothing was captured)."""
    tables = []
    for key, file_variant in _files(artifacts, endpoint, start, end, variant):
        with artifacts.open(key) as handle:
            table = pq.read_table(handle)
        keep = pc.and_(
            pc.greater_equal(table["time"], pa.scalar(start, pa.timestamp("us", tz="UTC"))),
            pc.less(table["time"], pa.scalar(end, pa.timestamp("us", tz="UTC"))),
        )
        if not include_shadow:
            keep = pc.and_(keep, pc.equal(table["kind"], "production"))
        table = table.filter(keep)
        if table.num_rows:
            tables.append(_flatten(table, file_variant))
    if not tables:
        return pa.table({name: pa.array([], pa.string()) for name in ("inference_id",)})
    return pa.concat_tables(tables, promote_options="permissive")


def _flatten(table: pa.Table, variant: str) -> pa.Table:
    features = table["features"].combine_chunks()
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        field.name: features.field(i) for i, field in enumerate(features.type)
    }
    prediction = table["prediction"]
    if pa.types.is_string(prediction.type):
        # Non-numeric predictions are captured as JSON text: a label "yes" is "\"yes\"".
        prediction = pc.replace_substring_regex(prediction, pattern=r'^"(.*)"$', replacement=r"\1")
    columns["prediction"] = prediction
    columns["inference_id"] = table["inference_id"]
    columns["row"] = table["row"]
    columns["time"] = table["time"]
    columns["variant"] = pa.array([variant] * table.num_rows, pa.string())
    columns["model_version"] = table["model_version"]
    return pa.table(columns)
