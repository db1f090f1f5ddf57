"""Feature groups' Delta tables in an archive: the version each is cut at, and its files.

The database snapshot is taken first and the files are copied after it, so a table may
have commits the snapshot knows nothing of. Copying them anyway is not harmless: their
rows carry ``_ingest_id`` values the restored database never issued, the next ingests
there would issue the same ids again, and ``_ingest_id`` breaks ties between rows of
equal event time (newest ingest wins) — the restored store would order data by accident.
So each table is cut at a version the snapshot can account for:

- ``before`` is the table's newest version listed *before* the snapshot began; those
  commits happened before it, whatever the database says.
- Each later commit is taken in order while it is proven to precede the snapshot: an
  append (``WRITE``) names its ingestion in ``_ingest_id`` (in the file statistics), and
  an ingestion's row is written before its commit and finished after it, so an ingestion
  the snapshot shows ``succeeded`` or ``failed`` committed before the snapshot. One that
  is absent started after it; one still ``running`` may have committed on either side.
  The cut stops before the first such append.
- Other commits (record deletions, optimize, vacuum) are never referenced by the database;
  they are kept while no unproven append precedes them, so a deletion is not undone.

The archive then holds each table as of its cut: log entries up to it (and
``_last_checkpoint`` only if it points at or below it) and every data file except those
added by the commits left out; files no kept version references (an append in flight)
are inert, as they are in the live table.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pyarrow.parquet as pq
from deltalake import DeltaTable

LOG = "_delta_log"
INGEST_ID = "_ingest_id"
PROVEN = frozenset({"succeeded", "failed"})
APPENDS = frozenset({"WRITE", "STREAMING UPDATE"})
_COMMIT = re.compile(r"^(\d{20})\.json$")
_VERSIONED = re.compile(r"^(\d{20})\.(?:json|crc|checkpoint(?:\.\d+\.\d+)?\.parquet)$")


@dataclass(frozen=True)
class Commit:
    """One Delta commit: its version, operation, the ingestion an append came from (when
    it can be read) and the data files it added (relative to the table)."""

    version: int
    operation: str
    ingest_id: int | None
    added: tuple[str, ...]

    @property
    def is_append(self) -> bool:
        return self.operation in APPENDS


def choose_cut(
    before: int | None, commits: Iterable[Commit], ingests: Mapping[int, str]
) -> int | None:
    """The version to cut a table at (``None``: the table began after the snapshot).

    ``before`` is its version listed before the snapshot; ``commits`` those after it in
    order; ``ingests`` maps ingestion ids to their state in the snapshot."""
    cut = before
    for commit in commits:
        if commit.is_append and (
            commit.ingest_id is None or ingests.get(commit.ingest_id) not in PROVEN
        ):
            break
        cut = commit.version
    return cut


class DeltaTables:
    """The Delta tables under the feature store's folder, read through an fsspec
    filesystem ``fs`` (local or object store) at path ``root``."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")

    def tables(self) -> list[str]:
        """Names of the folders under the root that hold a Delta log."""
        if not self.fs.exists(self.root):
            return []
        names = []
        for entry in self.fs.ls(self.root, detail=True):
            name = posixpath.basename(str(entry["name"]).rstrip("/"))
            if entry["type"] == "directory" and self.fs.exists(f"{self.root}/{name}/{LOG}"):
                names.append(name)
        return sorted(names)

    def path(self, table: str) -> str:
        return f"{self.root}/{table}"

    def uri(self, table: str) -> str:
        """The table's URI, as deltalake opens it."""
        return str(self.fs.unstrip_protocol(self.path(table)))

    def _log_names(self, table: str) -> list[str]:
        log = f"{self.path(table)}/{LOG}"
        return sorted(posixpath.basename(str(p)) for p in self.fs.ls(log, detail=False))

    def latest(self, table: str) -> int | None:
        """The newest committed version listed, ``None`` for no commit yet."""
        versions = [int(m.group(1)) for n in self._log_names(table) if (m := _COMMIT.match(n))]
        return max(versions) if versions else None

    def commits_after(self, table: str, version: int | None) -> list[Commit]:
        """Every commit newer than ``version``, oldest first."""
        found = sorted(int(m.group(1)) for n in self._log_names(table) if (m := _COMMIT.match(n)))
        start = -1 if version is None else version
        return [self._commit(table, v) for v in found if v > start]

    def _commit(self, table: str, version: int) -> Commit:
        body = self.fs.cat_file(f"{self.path(table)}/{LOG}/{version:020d}.json")
        operation = ""
        added: list[str] = []
        ids: set[int | None] = set()
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "commitInfo" in action:
                operation = str(action["commitInfo"].get("operation", ""))
            elif "add" in action:
                rel = unquote(str(action["add"]["path"]))
                added.append(rel)
                ids.add(self._ingest_id(table, rel, action["add"].get("stats")))
        ingest_id = ids.pop() if len(ids) == 1 else None
        return Commit(version, operation, ingest_id, tuple(added))

    def _ingest_id(self, table: str, rel: str, stats: str | None) -> int | None:
        """The ingestion that wrote a data file: from its statistics, else its first row."""
        if stats:
            parsed = json.loads(stats)
            low = parsed.get("minValues", {}).get(INGEST_ID)
            high = parsed.get("maxValues", {}).get(INGEST_ID)
            if low is not None and low == high:
                return int(low)
        try:
            with self.fs.open(f"{self.path(table)}/{rel}", "rb") as fh:
                column = pq.ParquetFile(fh).read_row_group(0, columns=[INGEST_ID]).column(0)
        except (OSError, KeyError, ValueError, IndexError):
            return None
        values = set(column.to_pylist())
        return int(values.pop()) if len(values) == 1 else None

    def log_files(self, table: str, cut: int) -> list[str]:
        """The log entries of the table as of ``cut``, relative to the table."""
        names = []
        for name in self._log_names(table):
            match = _VERSIONED.match(name)
            if match and int(match.group(1)) <= cut:
                names.append(f"{LOG}/{name}")
            elif name == "_last_checkpoint":
                pointer = json.loads(self.fs.cat_file(f"{self.path(table)}/{LOG}/{name}"))
                if int(pointer.get("version", cut + 1)) <= cut:
                    names.append(f"{LOG}/{name}")
        return names

    def referenced(self, table: str, version: int) -> set[str]:
        """The data files version ``version`` of the table reads, relative to the table."""
        files = DeltaTable(self.uri(table), version=version).file_uris()
        prefixes = (self.uri(table).rstrip("/") + "/", self.path(table) + "/")
        relative = set()
        for uri in files:
            for prefix in prefixes:
                if uri.startswith(prefix):
                    uri = uri[len(prefix) :]
                    break
            relative.add(unquote(uri))
        return relative

    def data_files(self, table: str, left_out: Iterable[Commit]) -> list[str]:
        """Every data file of the table but those ``left_out`` commits added."""
        skip = {rel for commit in left_out for rel in commit.added}
        base = self.path(table) + "/"
        files = []
        for found in self.fs.find(self.path(table)):
            rel = str(found)[len(base) :] if str(found).startswith(base) else ""
            if rel and not rel.startswith(f"{LOG}/") and rel not in skip:
                files.append(rel)
        return sorted(files)
