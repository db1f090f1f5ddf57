"""Request bodies → a checked, typed batch of rows; predictions → JSON-ready values.

The gateway accepts MLflow's JSON formats (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``), ``text/csv`` with a header row, and Open Inference Protocol
tensors. Every body becomes the same columnar :class:`Frame`, which is checked against the
model's signature once: missing and extra columns, types, nulls in required columns, NaN
and infinities, empty and oversized batches — each a 4xx naming the field.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slipway.core.errors import InvalidInput, PayloadTooLarge
from slipway.registry.outputs import Scores
from slipway.registry.predict import INTEGRAL, NUMERIC, Batch, Column

JSON_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


@dataclass
class Frame:
    """Rows as columns: name → values, in the order the request gave them."""

    columns: dict[str, list[Any]]
    rows: int
    positional: bool = False  # columns named 0..k-1 (instances/inputs given as lists)


# -- parsing --------------------------------------------------------------------------------


def _records(records: Any, field: str) -> Frame:
    if not isinstance(records, list):
        raise InvalidInput(f"{field} must be a list", field=field)
    if records and all(isinstance(r, dict) for r in records):
        names: dict[str, None] = {}
        for record in records:
            names.update(dict.fromkeys(record))
        return Frame({n: [r.get(n) for r in records] for n in names}, len(records))
    if records and all(isinstance(r, list) for r in records):
        width = len(records[0])
        if any(len(r) != width for r in records):
            raise InvalidInput(f"{field}: every row must have {width} values", field=field)
        columns = {str(i): [r[i] for r in records] for i in range(width)}
        return Frame(columns, len(records), positional=True)
    if all(not isinstance(r, list | dict) for r in records):
        return Frame({"0": list(records)}, len(records), positional=True)
    raise InvalidInput(f"{field} mixes rows of different shapes", field=field)


def parse_json(body: Any) -> Frame:
    """One of MLflow's four JSON request formats."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    keys = [k for k in body if k in JSON_FORMATS]
    unknown = sorted(set(body) - set(JSON_FORMATS) - {"params"})
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(unknown)}; send one of {', '.join(JSON_FORMATS)}",
            field=unknown[0] or "body",  # a key named "" is named by its container
        )
    if len(keys) != 1:
        raise InvalidInput(f"send exactly one of {', '.join(JSON_FORMATS)}", field="body")
    if body.get("params") not in (None, {}):  # absent, null or {}: no params
        raise InvalidInput("inference params are not supported", field="params")
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise InvalidInput("dataframe_split must be an object", field=key)
        columns, data = value.get("columns"), value.get("data")
        if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
            raise InvalidInput("dataframe_split.data must be a list of rows", field=f"{key}.data")
        if columns is None:
            return _records(data, f"{key}.data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput(
                "dataframe_split.columns must be a list of names", field=f"{key}.columns"
            )
        for index, row in enumerate(data):
            if len(row) != len(columns):
                raise InvalidInput(
                    f"dataframe_split.data[{index}] has {len(row)} values for"
                    f" {len(columns)} columns",
                    field=f"{key}.data",
                )
        return Frame({c: [r[i] for r in data] for i, c in enumerate(columns)}, len(data))
    if key == "dataframe_records":
        if isinstance(value, list) and not all(isinstance(r, dict) for r in value):
            raise InvalidInput("dataframe_records must be a list of objects", field=key)
        return _records(value, key)
    if key == "inputs" and isinstance(value, dict):
        lists = {str(k): v if isinstance(v, list) else [v] for k, v in value.items()}
        lengths = {len(v) for v in lists.values()}
        if len(lengths) > 1:
            raise InvalidInput("inputs: every column must have the same length", field=key)
        return Frame(lists, lengths.pop() if lengths else 0)
    return _records(value, key)


def parse_csv(text: str) -> Frame:
    """CSV with a header row; values stay strings until the schema types them."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("the CSV body is empty", field="body") from None
    except csv.Error as exc:
        raise InvalidInput(f"unreadable CSV: {exc}", field="body") from None
    rows = []
    try:
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InvalidInput(
                    f"CSV line {number} has {len(row)} values for {len(header)} columns",
                    field="body",
                )
            rows.append(row)
    except csv.Error as exc:
        raise InvalidInput(f"unreadable CSV: {exc}", field="body") from None
    return Frame({name: [r[i] for r in rows] for i, name in enumerate(header)}, len(rows))


_OIP_TYPES = {
    "BOOL": "boolean", "UINT8": "long", "UINT16": "long", "UINT32": "long", "UINT64": "long",
    "INT8": "long", "INT16": "long", "INT32": "long", "INT64": "long", "FP16": "double",
    "FP32": "double", "FP64": "double", "BYTES": "string",
}  # fmt: skip


_NUMPY = {
    "BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
    "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip


_INTEGER_RANGES = {
    name: (int(np.iinfo(code).min), int(np.iinfo(code).max))
    for name, code in _NUMPY.items()
    if name.startswith(("INT", "UINT"))
}
_FLOATS: dict[str, type[np.floating[Any]]] = {
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
_NUMBERS = frozenset({int, float})
_NONE = type(None)


def check_tensor(datatype: str, data: list[Any], where: str, name: str = "") -> None:
    """JSON values of a tensor against its declared ``datatype``: numbers (no booleans or
    strings) for numeric types, integers within the type's range, floats that fit the type
    without becoming infinite, booleans for BOOL, strings for BYTES; nulls are left to the
    signature check, which knows whether the column is required. Otherwise a 400 naming
    ``<where>.data`` — a value is never wrapped, clipped or passed on as something else.

    Vectorised for the hot path: the set of the values' types, and ``min``/``max`` (or
    one numpy pass for integral floats) run in C, never a Python loop over the values.
    """
    field = f"{where}.data"
    kinds = set(map(type, data))
    label = f"{where} ({name!r})" if name else where
    values = data
    if _NONE in kinds:
        kinds.discard(_NONE)
        values = [v for v in data if v is not None]
    if not values:
        return
    allowed: frozenset[type]
    if datatype == "BYTES":
        allowed, expected = frozenset({str}), "strings"
    elif datatype == "BOOL":
        allowed, expected = frozenset({bool}), "true or false"
    elif datatype in _INTEGER_RANGES:
        allowed, expected = _NUMBERS, "integers"
    else:
        allowed, expected = _NUMBERS, "numbers"
    if not kinds <= allowed:
        index, bad = next(
            (i, v) for i, v in enumerate(data) if v is not None and type(v) not in allowed
        )
        raise InvalidInput(
            f"{label} is {datatype}: expected {expected}, got {type(bad).__name__}"
            f" {_short(bad)} at index {index}",
            field=field,
            details={"index": index},
        )
    if datatype in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[datatype]
        if float in kinds:
            try:
                array = np.array(values, dtype=np.float64)
            except OverflowError:  # an int past any float: out of range, found below
                array = np.zeros(0)
            fractional = ~np.isfinite(array) | (array != np.trunc(array))
            if fractional.any():
                index = int(np.argmax(fractional))
                raise InvalidInput(
                    f"{label} is {datatype}: {values[index]!r} is not an integer",
                    field=field,
                    details={"index": index},
                )
        smallest, largest = min(values), max(values)
        if smallest < low or largest > high:
            bad = smallest if smallest < low else largest
            raise InvalidInput(
                f"{label} is {datatype}: {_short(bad)} is out of its range [{low}, {high}]",
                field=field,
            )
    elif datatype in _FLOATS:
        smallest, largest = min(values), max(values)
        kind = _FLOATS[datatype]
        for bound in (smallest, largest):
            try:
                value = float(bound)
                # NaN and infinities are values of the type (binary data can carry them);
                # the signature check refuses them. A finite value must stay finite.
                with np.errstate(over="ignore"):
                    fits = not math.isfinite(value) or bool(np.isfinite(kind(value)))
            except OverflowError:  # an int past any float
                fits = False
            if not fits:
                limit = float(np.finfo(kind).max)
                raise InvalidInput(
                    f"{label} is {datatype}: {_short(bound)} is out of its range"
                    f" [{-limit:g}, {limit:g}]",
                    field=field,
                )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def attach_binary(body: Any, blob: bytes) -> None:
    """Fill ``data`` of inputs sent with the binary tensor extension (tritonclient's
    default): each declares ``parameters.binary_data_size`` and the bytes follow the
    JSON header in input order."""
    offset = 0
    for index, tensor in enumerate(body.get("inputs") or []):
        if not isinstance(tensor, dict):
            continue
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        where = f"inputs[{index}]"
        if not isinstance(size, int) or size < 0 or offset + size > len(blob):
            raise InvalidInput(f"{where}.binary_data_size overruns the body", field=where)
        chunk = blob[offset : offset + size]
        offset += size
        datatype = tensor.get("datatype")
        if datatype == "BYTES":
            values, position = [], 0
            while position + 4 <= len(chunk):
                length = int.from_bytes(chunk[position : position + 4], "little")
                values.append(chunk[position + 4 : position + 4 + length].decode())
                position += 4 + length
            tensor["data"] = values
        elif datatype in _NUMPY:
            tensor["data"] = np.frombuffer(chunk, dtype=_NUMPY[datatype]).tolist()
        else:
            raise InvalidInput(f"{where}.datatype {datatype!r} is unknown", field=where)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if data and isinstance(data[0], list):
        return [v for row in data for v in _flatten(row)]
    return data


def parse_oip(body: Any, schema: list[Column] | None) -> Frame:
    """Open Inference Protocol V2 ``inputs``: one tensor per column, or one [n, k] tensor."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise InvalidInput("the body must be an object with an inputs list", field="inputs")
    if not isinstance(body.get("id", ""), str):  # echoed back as the response's id
        raise InvalidInput("id must be a string", field="id")
    tensors = body["inputs"]
    if not tensors:
        raise InvalidInput("inputs is empty", field="inputs")
    columns: dict[str, list[Any]] = {}
    shapes = []
    for index, tensor in enumerate(tensors):
        where = f"inputs[{index}]"
        if not isinstance(tensor, dict):
            raise InvalidInput(f"{where} must be an object", field=where)
        name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{where}.name must be a string", field=f"{where}.name")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise InvalidInput(f"{where}.shape must be a list of sizes", field=f"{where}.shape")
        if datatype not in _OIP_TYPES:
            raise InvalidInput(
                f"{where}.datatype {datatype!r} is not an Open Inference Protocol type",
                field=f"{where}.datatype",
            )
        data = _flatten(tensor.get("data"))
        if math.prod(shape) != len(data):
            raise InvalidInput(
                f"{where} has {len(data)} values but its shape {shape} needs {math.prod(shape)}",
                field=f"{where}.data",
            )
        if datatype == "BYTES":
            data = [v.decode() if isinstance(v, bytes) else v for v in data]
        check_tensor(datatype, data, where, name)
        shapes.append(shape)
        columns[name] = data
    names = [c.name for c in schema] if schema else []
    if len(tensors) == 1 and len(shapes[0]) == 2 and (not names or tensors[0]["name"] not in names):
        rows, width = shapes[0]
        flat = next(iter(columns.values()))
        return Frame({str(i): flat[i::width] for i in range(width)}, rows, positional=True)
    lengths = {len(v) for v in columns.values()}
    for index, shape in enumerate(shapes):
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InvalidInput(
                f"inputs[{index}] must have shape [rows] or [rows, 1] when sent per column",
                field=f"inputs[{index}].shape",
            )
    if len(lengths) != 1:
        raise InvalidInput("every input tensor must have the same number of rows", field="inputs")
    return Frame(columns, lengths.pop())


# -- checking against the signature -------------------------------------------------------


def _bad(column: str, row: int, message: str) -> InvalidInput:
    return InvalidInput(
        f"column {column!r}, row {row}: {message}", field=column, details={"row": row}
    )


def _typed(column: Column, values: list[Any], from_text: bool) -> np.ndarray:
    kind = column.type
    if kind in NUMERIC:
        out = np.empty(len(values), dtype=np.float64)
        for row, value in enumerate(values):
            if from_text and isinstance(value, str):
                if value == "":
                    value = None
                else:
                    try:
                        value = float(value)
                    except ValueError:
                        raise _bad(column.name, row, f"{value!r} is not a number") from None
            if value is None:
                if column.required:
                    raise _bad(column.name, row, "null in a required column")
                out[row] = math.nan
                continue
            if type(value) is not float and type(value) is not int:
                raise _bad(column.name, row, f"expected a number, got {type(value).__name__}")
            if not math.isfinite(value):
                raise _bad(column.name, row, "NaN or infinite values are not accepted")
            if kind in INTEGRAL and type(value) is float and not value.is_integer():
                raise _bad(column.name, row, f"expected an integer, got {value}")
            out[row] = value
        if kind in INTEGRAL and not np.isnan(out).any():
            return out.astype(np.int64 if kind == "long" else np.int32)
        if kind == "float":
            return out.astype(np.float32)
        return out
    if kind == "boolean":
        boolean = np.empty(len(values), dtype=bool)
        for row, value in enumerate(values):
            if (
                from_text
                and isinstance(value, str)
                and value.lower() in ("true", "false", "1", "0")
            ):
                value = value.lower() in ("true", "1")
            if not isinstance(value, bool):
                raise _bad(column.name, row, f"expected true or false, got {value!r}")
            boolean[row] = value
        return boolean
    for row, value in enumerate(values):
        if value is None:
            if column.required:
                raise _bad(column.name, row, "null in a required column")
        elif not isinstance(value, str):
            raise _bad(column.name, row, f"expected a string, got {type(value).__name__}")
    return np.array(values, dtype=object)


_NUMBER_TYPES = frozenset({int, float})


def _all_numbers(schema: list[Column], columns: dict[str, list[Any]], rows: int) -> Batch | None:
    """The common case in one pass: every column numeric, every value a finite number.

    Returns None whenever anything is off, and the per-value path then finds and names it.
    """
    if not all(c.type in NUMERIC for c in schema):
        return None
    values = [columns.get(c.name) for c in schema]
    if any(v is None for v in values):
        return None
    if not set(map(type, itertools.chain.from_iterable(values))) <= _NUMBER_TYPES:  # type: ignore[arg-type]
        return None
    matrix = np.array(values, dtype=np.float64).T
    if not np.isfinite(matrix).all():
        return None
    arrays = []
    for index, column in enumerate(schema):
        array = matrix[:, index]
        if column.type in INTEGRAL:
            if not (array == np.floor(array)).all():
                return None
            array = array.astype(np.int64 if column.type == "long" else np.int32)
        elif column.type == "float":
            array = array.astype(np.float32)
        arrays.append(array)
    return Batch([c.name for c in schema], arrays, rows, np.ascontiguousarray(matrix))


def check(
    frame: Frame,
    schema: list[Column] | None,
    *,
    max_rows: int,
    from_text: bool = False,
    allowed_extra: Sequence[str] = (),
) -> Batch:
    """``frame`` typed and ordered by ``schema``, or a 4xx naming what is wrong."""
    if frame.rows == 0:
        raise InvalidInput("the request has no rows", field="inputs")
    if frame.rows > max_rows:
        raise PayloadTooLarge(
            f"the request has {frame.rows} rows; this endpoint takes at most {max_rows}",
            details={"field": "inputs", "rows": frame.rows, "max_rows": max_rows},
        )
    if schema is None:
        names = list(frame.columns)
        return Batch(names, [np.asarray(frame.columns[n], dtype=object) for n in names], frame.rows)
    columns = frame.columns
    if frame.positional:
        if len(columns) != len(schema):
            raise InvalidInput(
                f"rows have {len(columns)} values; the model takes {len(schema)}:"
                f" {', '.join(c.name for c in schema)}",
                field="inputs",
            )
        columns = {c.name: columns[str(i)] for i, c in enumerate(schema)}
    known = {c.name for c in schema}
    extra = [n for n in columns if n not in known and n not in allowed_extra]
    if extra:
        raise InvalidInput(
            f"unexpected column(s) {', '.join(extra)}; the model takes"
            f" {', '.join(c.name for c in schema)}",
            field=extra[0] or "inputs",
        )
    missing = [c.name for c in schema if c.name not in columns and c.required]
    if missing:
        raise InvalidInput(f"missing column(s) {', '.join(missing)}", field=missing[0])
    if not from_text:
        fast = _all_numbers(schema, columns, frame.rows)
        if fast is not None:
            return fast
    arrays = []
    for column in schema:
        values = columns.get(column.name)
        if values is None:
            values = [None] * frame.rows
        arrays.append(_typed(column, values, from_text))
    return Batch([c.name for c in schema], arrays, frame.rows)


# -- predictions out ----------------------------------------------------------------------


@dataclass
class Answer:
    """What a request is answered with, and what capture keeps of it."""

    predictions: list[Any]  # per row: the label, the probabilities, or both in an object
    labels: list[Any] | None = None  # the labels, when the version returns both
    probabilities: np.ndarray | None = None  # (rows, classes), when it returns them


def answer(raw: Any) -> Answer:
    """The JSON answer of what the model returned: values as they are for ``label``; for
    probabilities (:class:`Scores`) one list per row over the classes, and with ``both``
    ``{"label": …, "probabilities": […]}`` per row."""
    if not isinstance(raw, Scores):
        return Answer(jsonable(raw))
    probabilities = jsonable(raw.probabilities)
    if raw.labels is None:
        return Answer(probabilities, None, raw.probabilities)
    labels = jsonable(raw.labels)
    rows = [
        {"label": label, "probabilities": row}
        for label, row in zip(labels, probabilities, strict=True)
    ]
    return Answer(rows, labels, raw.probabilities)


def jsonable(prediction: Any) -> list[Any]:
    """A model's output as JSON values; NaN and infinities become null, never an error."""
    if hasattr(prediction, "to_dict") and hasattr(prediction, "columns"):  # DataFrame
        records = prediction.to_dict(orient="records")
        return [{k: _clean(v) for k, v in r.items()} for r in records]
    if hasattr(prediction, "to_numpy"):  # Series
        prediction = prediction.to_numpy()
    if isinstance(prediction, np.ndarray):
        if prediction.dtype.kind == "f":
            if np.isfinite(prediction).all():
                return prediction.tolist()  # type: ignore[no-any-return]
            return _clean(prediction.tolist())  # type: ignore[no-any-return]
        return _clean(prediction.tolist())  # type: ignore[no-any-return]
    if isinstance(prediction, list | tuple):
        return [_clean(v) for v in prediction]
    return [_clean(prediction)]


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def numeric_summary(prediction: Any) -> tuple[float, int]:
    """Sum and count of finite numeric predictions (for the prediction-mean alarm); of a
    binary classifier's probabilities, its scores (else its labels)."""
    if isinstance(prediction, Scores):
        score = prediction.score()
        prediction = score if score is not None else prediction.labels
    if (
        isinstance(prediction, np.ndarray)
        and prediction.dtype.kind in "fiu"
        and prediction.ndim == 1
    ):
        finite = prediction[np.isfinite(prediction)] if prediction.dtype.kind == "f" else prediction
        return float(finite.sum()), int(finite.size)
    return 0.0, 0


def invocation_type(headers: dict[str, str]) -> str:
    """The request's content type if invocations (and explain) accept it, else a 415
    naming ``content-type``: MLflow's JSON formats or CSV."""
    from slipway.core.errors import UnsupportedMediaType

    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/json", "text/csv"):
        raise UnsupportedMediaType(
            f"content type {ctype or '(none)'!r} is not accepted; send application/json"
            " (MLflow's formats) or text/csv",
            details={"field": "content-type"},
        )
    return ctype
