"""Reading a batch job's input in chunks with bounded memory.

Parquet files are split by row groups (a chunk is a run of row groups of about
``chunk_rows`` rows; reading it reads nothing else); a CSV or JSON-lines file is one chunk
read as a stream of blocks. A chunk is the unit of work, of retry and of resumption.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from slipway.batch.spec import format_of
from slipway.core.errors import InvalidInput

# Rows per block when streaming CSV and JSON lines (and when slicing a JSON file).
STREAM_ROWS = 100_000


def expand(path: str, given_format: str | None) -> list[tuple[str, str]]:
    """The files ``path`` names (a file, a folder or a glob), with their formats."""
    fs, root = fsspec.core.url_to_fs(path)
    if any(ch in root for ch in "*?["):
        found = sorted(fs.glob(root))
    elif fs.isdir(root):
        found = sorted(p for p in fs.find(root) if not p.rsplit("/", 1)[-1].startswith(("_", ".")))
    elif fs.exists(root):
        found = [root]
    else:
        raise InvalidInput(f"no input at {path!r}", field="input.files.path")
    if not found:
        raise InvalidInput(f"{path!r} matches no files", field="input.files.path")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    return [(f"{prefix}{p}", format_of(p, given_format)) for p in found]


def plan(files: list[tuple[str, str]], chunk_rows: int) -> list[dict[str, Any]]:
    """The chunks of ``files``: runs of Parquet row groups, or whole text files."""
    chunks: list[dict[str, Any]] = []
    for path, kind in files:
        if kind != "parquet":
            chunks.append({"path": path, "format": kind})
            continue
        with fsspec.open(path, "rb") as handle:
            metadata = pq.ParquetFile(handle).metadata
        groups: list[int] = []
        rows = 0
        for index in range(metadata.num_row_groups):
            groups.append(index)
            rows += metadata.row_group(index).num_rows
            if rows >= chunk_rows:
                chunks.append({"path": path, "format": kind, "row_groups": groups, "rows": rows})
                groups, rows = [], 0
        if groups:
            chunks.append({"path": path, "format": kind, "row_groups": groups, "rows": rows})
    return chunks


def schema_of(path: str, kind: str) -> pa.Schema:
    """The columns of an input file (read from the footer, or the first block)."""
    with fsspec.open(path, "rb") as handle:
        if kind == "parquet":
            return pq.ParquetFile(handle).schema_arrow
        for table in _text_tables(handle, kind):
            return table.schema
    return pa.schema([])


def read(chunk: dict[str, Any]) -> Iterator[pa.Table]:
    """The chunk's rows as tables of at most about ``STREAM_ROWS`` rows each."""
    with fsspec.open(chunk["path"], "rb") as handle:
        if chunk["format"] == "parquet":
            parquet = pq.ParquetFile(handle)
            for group in chunk["row_groups"]:
                yield parquet.read_row_group(group)
            return
        yield from _text_tables(handle, chunk["format"])


def _text_tables(handle: Any, kind: str) -> Iterator[pa.Table]:
    if kind == "csv":
        import pyarrow.csv as pacsv

        reader = pacsv.open_csv(handle, read_options=pacsv.ReadOptions(block_size=16 << 20))
        for batch in reader:
            yield pa.Table.from_batches([batch])
        return
    import pyarrow.json as pajson

    table = pajson.read_json(handle, read_options=pajson.ReadOptions(block_size=16 << 20))
    for start in range(0, table.num_rows, STREAM_ROWS):
        yield table.slice(start, STREAM_ROWS)
