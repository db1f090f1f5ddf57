"""A chunk's predictions as part files in a folder (Kafka: :mod:`.kafka`; the interface
both implement: :mod:`.delivery`).

A chunk's parts are named after it (``part-00007-0000.parquet``) and each is written to a
temporary name first, then renamed: a retried chunk removes its earlier parts and writes
them again, so the folder never holds a chunk twice or half of one.
"""

from __future__ import annotations

import json
from typing import Any

import fsspec
import orjson
import pyarrow as pa

from slipway.batch.delivery import Delivery

EXTENSIONS = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}


class FileSink:
    """Chunk ``chunk``'s parts in the folder ``path`` (a :class:`~.delivery.Sink`); with
    no chunk, only the job's manifest can be written."""

    def __init__(self, path: str, kind: str, chunk: int | None = None) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(path)
        self.kind = kind
        self.chunk = chunk
        self.fs.makedirs(self.root, exist_ok=True)

    def _prefix(self) -> str:
        assert self.chunk is not None, "a sink for the manifest writes no parts"
        return f"part-{self.chunk:05d}-"

    def begin(self) -> None:
        """Forget whatever an earlier, interrupted attempt at this chunk wrote."""
        for path in self.fs.glob(f"{self.root}/{self._prefix()}*"):
            self.fs.rm(path)
        for path in self.fs.glob(f"{self.root}/.tmp-{self._prefix()}*"):
            self.fs.rm(path)

    def write(self, piece: int, table: pa.Table, first_row: int = 0) -> None:
        name = f"{self._prefix()}{piece:04d}.{EXTENSIONS[self.kind]}"
        temporary = f"{self.root}/.tmp-{name}"
        with self.fs.open(temporary, "wb") as handle:
            _encode(table, self.kind, handle)
        self.fs.mv(temporary, f"{self.root}/{name}")

    def finish(self, rows: int) -> Delivery:
        """Every part was renamed into place as it was written (a failed write raised):
        the chunk is complete."""
        return Delivery(complete=True)

    def manifest(self, manifest: dict[str, Any]) -> None:
        with self.fs.open(f"{self.root}/_manifest.json", "wb") as handle:
            handle.write(json.dumps(manifest, indent=2, default=str).encode())


def _encode(table: pa.Table, kind: str, handle: Any) -> None:
    if kind == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, handle, compression="zstd")
    elif kind == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, handle)
    else:
        for record in table.to_pylist():
            handle.write(orjson.dumps(record, option=orjson.OPT_NAIVE_UTC) + b"\n")
