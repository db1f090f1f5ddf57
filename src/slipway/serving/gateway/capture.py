"""Data capture: sampled requests and responses, appended as Parquet to the artifact store.

The request path appends what it served to column buffers — one per endpoint, variant,
config, model and kind: an inference id, a time, the input matrix and the predictions, a
few list appends and no object per request. A background thread turns the buffers into
one Parquet file each every second, without per-request Python work (it shares the
interpreter lock with the request path). A full buffer drops the newest request and
counts the drop — capture never blocks or fails a request.

Layout (Hive-style, so DuckDB and pandas read it partitioned)::

    capture/endpoint=<name>/variant=<variant>/hour=<YYYY-MM-DDTHH>/<gateway>-<seq>.parquet

and ``workspaces/<ws>/capture/...`` for the endpoints of workspace ``<ws>``.
"""

from __future__ import annotations

import io
import itertools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from slipway.core.artifacts import ArtifactStore
from slipway.core.workspace import scoped_resource, split_scoped
from slipway.registry.predict import Batch, LoadedModel
from slipway.serving.spec import CaptureSpec

if TYPE_CHECKING:
    from slipway.serving.gateway.inference import Served

log = logging.getLogger("slipway.serving.capture")

CAPTURE_PREFIX = "capture"

# Columns: ``inference_id``, ``row`` (the row's index in its request), ``time`` (the
# request's one time: an enrichment's windows end at it), ``config_version``,
# ``model_name``, ``model_version``, ``kind`` (production | shadow), ``features`` (a
# struct: the model's input columns, after enrichment; for an endpoint enriched by a
# feature view, the request's columns and every column of the view — see Captured) and
# ``prediction``
# (float64, or JSON text for non-numeric outputs). ``endpoint`` and ``variant`` are the
# partition keys (in the path), as ``hour`` is.
#
# A version returning probabilities (slipway.registry.outputs) adds ``probabilities``
# (list<float64> per row, in the order of its classes) and, returning both, ``label`` (the
# served label, encoded as ``prediction`` is). Its ``prediction`` is then the row's score
# when the model is a binary classifier — the positive (second) class's probability, the
# float that model-quality monitors threshold and rank for ROC AUC, joined with ground
# truth by (inference id, row) — else the label (both) or the probabilities (JSON text).
COLUMNS = (
    "inference_id", "row", "time", "config_version", "model_name", "model_version", "kind",
    "features", "prediction",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Captured:
    """What a request is captured with when it is not the model's input batch: an
    endpoint enriched by a feature view records the entity keys, the request fields and
    the other request columns the model read, and every output column of the view — all
    that the skew monitor needs to recompute the view offline for the same keys, fields
    and time. Column by column: a list (typed on writing by ``types``: float, int,
    string, bool, or None to infer), a numpy array, or an Arrow array."""

    names: tuple[str, ...]
    values: tuple[Any, ...]
    types: tuple[str | None, ...]


class _Columns:
    """What one (endpoint, variant, config, model, kind) served since the last flush."""

    __slots__ = (
        "batches",
        "ids",
        "inputs",
        "labelled",
        "predictions",
        "probabilities",
        "rows",
        "times",
    )

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.times: list[int] = []  # microseconds since the epoch
        self.rows: list[int] = []
        self.inputs: list[Any] = []  # each request's float64 matrix, Batch or Captured
        self.predictions: list[list[Any]] = []  # what was served (the labels, with both)
        self.probabilities: list[Any] = []  # each request's (rows, classes) matrix, or None
        self.labelled = False  # the predictions are labels served beside probabilities
        self.batches = 0


Key = tuple[str, str, int, str, int, str, tuple[str, ...]]


def capture_folder(endpoint: str) -> str:
    """Where the captures of ``endpoint`` (a scoped name) lie below the artifact root: in
    its workspace's share (``workspaces/<ws>/capture/endpoint=<name>`` outside the
    default workspace), so a workspace's captures are only its requests' to read."""
    workspace, name = split_scoped(endpoint)
    return scoped_resource(workspace, f"{CAPTURE_PREFIX}/endpoint={name}")


def partition_key(endpoint: str, variant: str, hour: datetime) -> str:
    return f"{capture_folder(endpoint)}/variant={variant}/hour={hour:%Y-%m-%dT%H}"


_DTYPES = {"long": "int64", "integer": "int32", "float": "float32", "double": "float64"}


def sampled(spec: CaptureSpec) -> bool:
    """Whether this request falls in the endpoint's capture sample (no draw at 100%)."""
    return spec.enabled and (
        spec.sampling_percent >= 100 or random.random() * 100 < spec.sampling_percent
    )


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
        self._columns: dict[Key, _Columns] = {}
        self._types: dict[Key, tuple[str, ...] | None] = {}
        self._pending = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._seq = itertools.count()
        self.dropped = 0
        self.written_rows = 0

    def offer(
        self,
        *,
        endpoint: str,
        variant: str,
        config_version: int,
        model: LoadedModel,
        kind: str,
        batch: Batch,
        predictions: list[Any],
        inference_id: str,
        time_us: int,
        labels: list[Any] | None = None,
        probabilities: Any = None,
        captured: Captured | None = None,
    ) -> bool:
        """Buffer one served request; False (and counted) when the buffer is full.
        ``time_us``: the request's time (microseconds since the epoch), the one its
        enrichment read at. ``labels`` and ``probabilities`` (a matrix) come from a
        version returning them; ``captured``, the columns recorded instead of ``batch``."""
        if self._pending >= self.capacity:
            self.dropped += 1
            return False
        if captured is not None:
            names = captured.names
        else:
            names = model.names if model.schema is not None else tuple(batch.names)
        key = (endpoint, variant, config_version, model.name, model.version, kind, names)
        with self._lock:
            columns = self._columns.get(key)
            if columns is None:
                columns = self._columns[key] = _Columns()
                self._types[key] = (
                    tuple(_DTYPES.get(c.type, "") for c in model.schema)
                    if model.schema and captured is None
                    else None
                )
            columns.ids.append(inference_id)
            columns.times.append(time_us)
            columns.rows.append(batch.rows)
            if captured is not None:
                columns.inputs.append(captured)
            else:
                columns.inputs.append(batch.stacked if batch.stacked is not None else batch)
            columns.predictions.append(predictions if labels is None else labels)
            columns.probabilities.append(probabilities)
            columns.labelled = labels is not None
            self._pending += 1
        return True

    def offer_served(self, endpoint: str, served: Served, kind: str) -> bool:
        """:meth:`offer` what one request to ``endpoint`` was served."""
        return self.offer(
            endpoint=endpoint,
            variant=served.variant.name,
            config_version=served.config.version,
            model=served.model,
            kind=kind,
            batch=served.batch,
            predictions=served.predictions,
            inference_id=served.inference_id,
            time_us=served.at_us,
            labels=served.labels,
            probabilities=served.probabilities,
            captured=served.captured,
        )

    def pending(self) -> int:
        return self._pending

    def flush(self) -> int:
        """Write everything buffered; returns the number of rows written."""
        with self._write_lock:
            with self._lock:
                taken, self._columns = self._columns, {}
                types = dict(self._types)
                self._pending = 0
            total = 0
            for key, columns in taken.items():
                endpoint, variant, version = key[0], key[1], key[2]
                try:
                    rows = self._write(key, columns, types.get(key))
                except Exception:  # a failed write loses this file, never the gateway
                    log.exception("writing captured data for %s/%s failed", endpoint, variant)
                    self.dropped += len(columns.ids)
                    continue
                total += rows
                if self.on_written is not None:
                    self.on_written(endpoint, version, variant, rows)
            self.written_rows += total
            return total

    def _write(self, key: Key, columns: _Columns, types: tuple[str, ...] | None) -> int:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        endpoint, variant, version, model_name, model_version, kind, names = key
        counts = np.asarray(columns.rows, dtype=np.int64)
        rows = int(counts.sum())
        spread = None if rows == len(counts) else np.repeat(np.arange(len(counts)), counts)

        def per_row(values: Any, kind_: Any) -> Any:
            array = pa.array(values, type=kind_)
            return array if spread is None else array.take(pa.array(spread))

        if spread is None:
            row_index = np.zeros(rows, dtype=np.int32)
        else:
            starts = np.repeat(np.cumsum(counts) - counts, counts)
            row_index = (np.arange(rows) - starts).astype(np.int32)
        micros = np.asarray(columns.times, dtype=np.int64)
        hour = datetime.fromtimestamp(columns.times[0] // 3_600_000_000 * 3600, UTC)
        table = pa.table(
            {
                "inference_id": per_row(columns.ids, pa.string()),
                "row": row_index,
                "time": per_row(micros, pa.timestamp("us", tz="UTC")),
                "config_version": pa.array(np.full(rows, version, dtype=np.int32)),
                "model_name": pa.array([model_name] * rows, pa.string()),
                "model_version": pa.array(np.full(rows, model_version, dtype=np.int32)),
                "kind": pa.array([kind] * rows, pa.string()),
                "features": pa.StructArray.from_arrays(
                    _features(columns.inputs, len(names), types), names=list(names)
                ),
                **_prediction_columns(columns),
            }
        )
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        name = f"{self.writer_id}-{next(self._seq):08d}.parquet"
        self.artifacts.put_bytes(
            f"{partition_key(endpoint, variant, hour)}/{name}", sink.getvalue()
        )
        return rows


def _features(inputs: list[Any], width: int, types: tuple[str, ...] | None) -> list[Any]:
    """The input columns of every request, stacked: one matrix concatenation when the
    requests were all-numeric (their float64 matrices), else column by column."""
    import numpy as np
    import pyarrow as pa

    if all(isinstance(i, Captured) for i in inputs):
        return [
            _captured_column([i.values[c] for i in inputs], inputs[0].types[c])
            for c in range(width)
        ]
    if all(isinstance(i, np.ndarray) for i in inputs):
        matrix = np.concatenate(inputs)
        return [
            pa.array(
                matrix[:, i].astype(types[i] or "float64", copy=False) if types else matrix[:, i]
            )
            for i in range(width)
        ]
    batches = [i if isinstance(i, Batch) else None for i in inputs]
    if any(b is None for b in batches):  # a mix: rebuild matrices' columns as arrays
        arrays = [
            [i[:, c] for c in range(width)] if isinstance(i, np.ndarray) else i.arrays
            for i in inputs
        ]
    else:
        arrays = [b.arrays for b in batches if b is not None]
    return [pa.array(np.concatenate([a[c] for a in arrays])) for c in range(width)]


_ARROW_TYPES = {"float": "float64", "int": "int64", "string": "string", "bool": "bool_"}


def _captured_column(parts: list[Any], kind: str | None) -> Any:
    """One captured column of every request, concatenated: Arrow arrays of one type
    (an all-null one takes the others' type) or numpy arrays at once; otherwise the
    values typed by ``kind`` (float, int, string, bool; None infers). Values that will
    not take one type (a key sent as text by one request and a number by another)
    become text rather than lose the file."""
    import numpy as np
    import pyarrow as pa

    if all(isinstance(p, pa.Array) for p in parts):
        types = {p.type for p in parts} - {pa.null()}
        if len(types) <= 1:
            target = types.pop() if types else pa.null()
            return pa.concat_arrays([p if p.type == target else p.cast(target) for p in parts])
    if all(isinstance(p, np.ndarray) for p in parts):
        try:
            return pa.array(np.concatenate(parts))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # object arrays of mixed values: typed below
    values = list(
        itertools.chain.from_iterable(
            p.to_pylist()
            if isinstance(p, pa.Array)
            else p.tolist()
            if isinstance(p, np.ndarray)
            else p
            for p in parts
        )
    )
    target = getattr(pa, _ARROW_TYPES[kind])() if kind in _ARROW_TYPES else None
    try:
        return pa.array(values, type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        pass
    if target is not None:
        try:  # numbers sent as text (CSV): Arrow's cast parses them
            return pa.array([None if v is None else str(v) for v in values]).cast(target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _prediction_columns(columns: _Columns) -> dict[str, Any]:
    """``prediction``, and for a version returning probabilities ``probabilities`` (and
    ``label``); see the column notes at the top."""
    import numpy as np
    import pyarrow as pa

    served = list(itertools.chain.from_iterable(columns.predictions))
    matrices = columns.probabilities
    if not matrices or matrices[0] is None or any(m is None for m in matrices):
        return {"prediction": _prediction_column(served)}
    matrix = np.concatenate(matrices).astype(np.float64, copy=False)
    width = matrix.shape[1]
    out: dict[str, Any] = {}
    if width == 2:  # NaN becomes null, as in _prediction_column
        out["prediction"] = pa.array(np.ascontiguousarray(matrix[:, 1]), from_pandas=True)
    else:
        out["prediction"] = _prediction_column(served)
    if columns.labelled:
        out["label"] = _prediction_column(served)
    out["probabilities"] = pa.ListArray.from_arrays(
        pa.array(np.arange(0, matrix.size + 1, width, dtype=np.int32)), pa.array(matrix.ravel())
    )
    return out


def _prediction_column(values: list[Any]) -> Any:
    """Numbers as float64 (null for NaN); anything else (labels, records) as JSON text."""
    import pyarrow as pa

    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        return pa.array(values, type=pa.float64())
    return pa.array(
        [orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY).decode() for v in values],
        type=pa.string(),
    )
