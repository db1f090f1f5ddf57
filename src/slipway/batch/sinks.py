"""Where a chunk's predictions go: part files in a folder (Kafka: :mod:`.kafka`).

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

EXTENSIONS = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}


class FileSink:
    def __init__(self, path: str, kind: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(path)
        self.kind = kind
        self.fs.makedirs(self.root, exist_ok=True)

    def _prefix(self, chunk: int) -> str:
        return f"part-{chunk:05d}-"

    def begin(self, chunk: int) -> None:
        """Forget whatever an earlier, interrupted attempt at ``chunk`` wrote."""
        for path in self.fs.glob(f"{self.root}/{self._prefix(chunk)}*"):
            self.fs.rm(path)
        for path in self.fs.glob(f"{self.root}/.tmp-{self._prefix(chunk)}*"):
            self.fs.rm(path)

    def write(self, chunk: int, piece: int, table: pa.Table) -> str:
        name = f"{self._prefix(chunk)}{piece:04d}.{EXTENSIONS[self.kind]}"
        temporary = f"{self.root}/.tmp-{name}"
        with self.fs.open(temporary, "wb") as handle:
            _encode(table, self.kind, handle)
        self.fs.mv(temporary, f"{self.root}/{name}")
        return name

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
