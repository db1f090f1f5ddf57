"""Ground-truth uploads as bytes: JSON, JSON lines or CSV, turned into plain records.

Formats, by content type (REST) or file suffix (CLI):

- ``application/json`` (``.json``): ``{"records": [{"inference_id", "row", "label"}, ...]}``;
- ``application/x-ndjson`` (``.jsonl``, ``.ndjson``): one record object per line, blank
  lines ignored;
- ``text/csv`` (``.csv``): a header row naming ``inference_id``, ``label`` and optionally
  ``row``. CSV has no types, so a label that reads as a finite number is a number and
  ``true`` / ``false`` are booleans (as they would be in JSON); anything else is text.

Parsing only decodes (``orjson`` and the ``csv`` module: no pickle, no eval); the records
are then validated whole by :func:`slipway.monitoring.ground_truth.records_table`, so a bad
upload stores nothing. A parse error names the record and its line.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

import orjson

from slipway.core.errors import InvalidInput, UnsupportedMediaType

JSON = "application/json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
CONTENT_TYPES = (JSON, NDJSON, CSV)
SUFFIXES = {".json": JSON, ".jsonl": NDJSON, ".ndjson": NDJSON, ".csv": CSV}
CSV_COLUMNS = ("inference_id", "row", "label")
MAX_FILE_BYTES = 512 * 1024 * 1024
# Plain ASCII numbers only: Python's int() and float() also take "1_000", "nan" and
# non-ASCII digits, none of which a CSV label means as a number.
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _bad(message: str, problem: str) -> InvalidInput:
    return InvalidInput(message, field="records", details={"problems": [problem]})


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the upload is not UTF-8 text: {exc}", field="body") from None


def _json_document(body: bytes) -> list[Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(document, dict) or "records" not in document:
        raise InvalidInput('the body must be {"records": [...]}', field="body")
    unknown = sorted(set(document) - {"records"})
    if unknown:
        raise InvalidInput(
            f"unknown keys {unknown}; only records is read", field=unknown[0] or "body"
        )
    records = document["records"]
    if not isinstance(records, list):
        raise InvalidInput("records must be a list", field="records")
    return records


def _json_lines(body: bytes) -> list[Any]:
    records: list[Any] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            where = f"records[{len(records)}] (line {number})"
            raise _bad(f"{where}: not valid JSON: {exc}", f"{where}: not valid JSON") from None
    return records


def _csv_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if len(text) <= 18 and _INTEGER.fullmatch(text):  # an int64, exactly
        return int(text)
    if _DECIMAL.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else text
    return text


def _csv_row(text: str) -> Any:
    if len(text) <= 12 and _INTEGER.fullmatch(text.strip()):
        return int(text)
    return text  # left for validation to refuse, naming the record


def _csv(body: bytes) -> list[Any]:
    reader = csv.reader(io.StringIO(_text(body), newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise InvalidInput("the CSV upload is empty", field="body") from None
    except csv.Error as exc:
        raise InvalidInput(f"unreadable CSV header: {exc}", field="body") from None
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown or len(set(header)) != len(header) or not {"inference_id", "label"} <= set(header):
        raise InvalidInput(
            f"CSV columns must be inference_id, row (optional) and label; got {header}",
            field="body",
        )
    records: list[Any] = []
    try:
        for values in reader:
            if not values or values == [""]:
                continue
            where = f"records[{len(records)}] (line {reader.line_num})"
            if len(values) != len(header):
                raise _bad(
                    f"{where}: {len(values)} values for {len(header)} columns",
                    f"{where}: {len(values)} values for {len(header)} columns",
                )
            record = dict(zip(header, values, strict=True))
            parsed: dict[str, Any] = {
                "inference_id": record["inference_id"],
                "label": _csv_value(record["label"]) if record["label"] != "" else None,
            }
            if record.get("row", "") != "":
                parsed["row"] = _csv_row(record["row"])
            records.append(parsed)
    except csv.Error as exc:
        where = f"records[{len(records)}] (line {reader.line_num})"
        raise _bad(f"{where}: unreadable CSV: {exc}", f"{where}: unreadable CSV") from None
    return records


def parse(body: bytes, content_type: str) -> list[Any]:
    """The records of an upload of ``content_type`` (parameters such as ``charset`` are
    ignored); :class:`UnsupportedMediaType` for any other type."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON:
        return _json_document(body)
    if kind == NDJSON:
        return _json_lines(body)
    if kind == CSV:
        return _csv(body)
    raise UnsupportedMediaType(
        f"ground truth is sent as {', '.join(CONTENT_TYPES)}; got {kind or 'no content type'}"
    )


def content_type_of(path: Path) -> str:
    """The upload format a file's suffix names."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(f"{path.name}: name a .jsonl, .ndjson, .csv or .json file", field="file")
    return kind


def read_file(path: Path) -> list[Any]:
    """The records of a local upload file (at most :data:`MAX_FILE_BYTES`)."""
    kind = content_type_of(path)
    try:
        with path.open("rb") as handle:
            body = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", field="file") from None
    if len(body) > MAX_FILE_BYTES:
        raise InvalidInput(
            f"{path.name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it",
            field="file",
        )
    return parse(body, kind)
