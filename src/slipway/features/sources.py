"""Where ingested records come from: in-memory data, or a Parquet / CSV file anywhere.

Files are read as a stream of record batches through fsspec, so a file larger than memory
is ingested with bounded memory; readers can be opened again for a second pass (validate
everything first, then write).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from slipway.core.errors import InvalidInput, NotFound
from slipway.features.validation import as_arrow

CHUNK_ROWS = 128 * 1024
_SCHEMES = {"file", "s3", "gs", "gcs", "az", "abfs", "memory", "http", "https"}


def _check_uri(uri: str) -> None:
    if "\x00" in uri:
        raise InvalidInput("path contains a NUL byte", field="path")
    scheme = uri.split("://", 1)[0] if "://" in uri else "file"
    if scheme not in _SCHEMES:
        raise InvalidInput(f"unsupported URI scheme {scheme!r}", field="path")


def file_chunks(uri: str, *, format: str | None = None) -> Callable[[], Iterator[pa.Table]]:
    """A re-openable stream of tables read from a Parquet or CSV file."""
    _check_uri(uri)
    kind = format or ("csv" if uri.lower().endswith((".csv", ".csv.gz")) else "parquet")
    if kind not in {"csv", "parquet"}:
        raise InvalidInput("format must be csv or parquet", field="format")
    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        raise NotFound(f"no file at {uri!r}")

    def open_stream() -> Iterator[pa.Table]:
        with fs.open(path, "rb", compression="infer") as handle:
            if kind == "parquet":
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=CHUNK_ROWS):
                    yield pa.Table.from_batches([batch])
            else:
                # Small blocks: pyarrow reads several ahead, so this bounds memory.
                options = pacsv.ReadOptions(block_size=2 * 1024 * 1024)
                reader = pacsv.open_csv(handle, read_options=options)
                for batch in reader:
                    yield pa.Table.from_batches([batch])

    return open_stream


def memory_chunks(data: Any) -> Callable[[], Iterator[pa.Table]]:
    table = as_arrow(data)

    def open_stream() -> Iterator[pa.Table]:
        for start in range(0, max(table.num_rows, 1), CHUNK_ROWS):
            yield table.slice(start, CHUNK_ROWS)

    return open_stream
