"""One Delta Lake table per feature group: ACID appends, versions, time travel, deletes.

Every row carries two bookkeeping columns: ``_ingest_id`` (the ingestion that wrote it)
and ``_ingested_at``. When two rows of a key share an event time, the later ingestion wins
everywhere — in point-in-time joins and in materialization — so results never depend on
file order.

An append may also record how far an external source (a Kafka partition) is now written,
as a Delta application transaction in the same commit as the rows, so rows and position
are durable together and a writer that replays the source can skip what is already there
(the way Spark's streaming writes to Delta are idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from slipway.core.clock import utcnow
from slipway.core.errors import InsufficientStorage, InvalidInput, NotFound, is_out_of_space
from slipway.core.workspace import DEFAULT_WORKSPACE, workspace_root
from slipway.features.definitions import FeatureGroup
from slipway.features.validation import TIMESTAMP, group_schema

# Commit metadata key naming the ingestion a commit wrote.
INGEST_ID_KEY = "slipway.ingest_id"

BOOKKEEPING = [
    pa.field("_ingest_id", pa.int64(), False),
    pa.field("_ingested_at", TIMESTAMP, False),
]


@dataclass(frozen=True)
class SourcePosition:
    """The last position of ``source`` (e.g. an offset of a Kafka partition) whose records
    a commit includes."""

    source: str
    position: int


def offline_schema(group: FeatureGroup) -> pa.Schema:
    schema = group_schema(group)
    # Delta's writer treats non-nullable fields strictly; nullability is enforced by
    # validation before anything reaches the table.
    fields = [f.with_nullable(True) for f in schema] + BOOKKEEPING
    return pa.schema(fields)


def offline_root(artifact_root: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    """Where ``workspace``'s offline tables live: ``<artifact root>/features`` for the
    default workspace (as before workspaces), ``<artifact root>/workspaces/<ws>/features``
    for another — beside it, never inside a group's table."""
    return f"{workspace_root(artifact_root, workspace)}/features"


class DeltaOfflineStore:
    def __init__(
        self,
        root: str,
        *,
        storage_options: dict[str, str] | None = None,
        artifact_root: str | None = None,
    ) -> None:
        self.root = root.rstrip("/")
        self.storage_options = storage_options
        # Set when the store is a workspace's under the platform's artifact root, where
        # the other workspaces' stores are found (in_workspace).
        self.artifact_root = artifact_root

    @classmethod
    def for_artifacts(
        cls,
        artifact_root: str,
        workspace: str = DEFAULT_WORKSPACE,
        *,
        storage_options: dict[str, str] | None = None,
    ) -> DeltaOfflineStore:
        """The offline store of ``workspace`` under the platform's artifact root."""
        return cls(
            offline_root(artifact_root, workspace),
            storage_options=storage_options,
            artifact_root=artifact_root,
        )

    def in_workspace(self, workspace: str) -> DeltaOfflineStore:
        """The offline store of ``workspace`` beside this one (same artifact root)."""
        if self.artifact_root is None:
            raise RuntimeError("an offline store keeps workspaces only when made for_artifacts")
        return DeltaOfflineStore.for_artifacts(
            self.artifact_root, workspace, storage_options=self.storage_options
        )

    def uri(self, group: str) -> str:
        return f"{self.root}/{group}"

    def _table(self, group: str, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(
                self.uri(group), version=version, storage_options=self.storage_options
            )
        except TableNotFoundError:
            raise NotFound(f"feature group {group!r} has no offline data yet") from None
        except Exception as exc:
            if version is not None and "version" in str(exc).lower():
                raise NotFound(f"feature group {group!r} has no version {version}") from None
            raise

    def append(
        self,
        group: FeatureGroup,
        batches: Iterable[pa.RecordBatch],
        *,
        ingest_id: int,
        evolve: bool = False,
        positions: Sequence[SourcePosition] = (),
    ) -> int:
        """Append every batch in one Delta commit; returns the new table version.

        ``positions`` are recorded in the same commit: after it, :meth:`position` returns
        them, and if the commit fails, neither the rows nor the positions are there."""
        schema = offline_schema(group)
        ingested_at = utcnow()

        def stamped() -> Iterable[pa.RecordBatch]:
            for batch in batches:
                n = batch.num_rows
                yield pa.RecordBatch.from_arrays(
                    [
                        *(batch.column(i) for i in range(batch.num_columns)),
                        pa.array([ingest_id] * n, pa.int64()),
                        pa.array([ingested_at] * n, TIMESTAMP),
                    ],
                    schema=schema,
                )

        reader = pa.RecordBatchReader.from_batches(schema, stamped())
        uri = self.uri(group.name)
        # Written through a loaded table, which then knows the version its commit got;
        # the table's latest version may already be another writer's, committed since.
        try:
            table: DeltaTable | None = self._table(group.name)
        except NotFound:
            table = None  # this append creates the table
        if table is not None and table.version() < 0:
            table = None  # another writer is creating it: its log has no commit yet
        try:
            write_deltalake(
                uri if table is None else table,
                reader,
                mode="append",
                schema_mode="merge" if evolve else None,
                storage_options=self.storage_options,
                commit_properties=CommitProperties(
                    # Names the ingestion in the table's history, so a retry that finds its
                    # rows already committed can record which version holds them.
                    custom_metadata={INGEST_ID_KEY: str(ingest_id)},
                    app_transactions=[Transaction(p.source, p.position) for p in positions] or None,
                ),
            )
        except Exception as exc:
            # delta-rs reports a full disk as a DeltaError, or an OSError without errno,
            # whose text carries the OS error; either way no commit happened (data files
            # written before it are in no version: invisible, and reclaimed by vacuum).
            if not is_out_of_space(exc):
                raise
            raise InsufficientStorage(
                f"no space left to write feature group {group.name!r} to its offline table"
                f" {uri}: the disk or quota is full; the table is unchanged (still at its"
                " previous version)",
                path=uri,
                details={"feature_group": group.name},
            ) from None
        if table is not None:
            return int(table.version())
        return self._version_of(group.name, ingest_id)

    def _version_of(self, group: str, ingest_id: int) -> int:
        """The version whose commit holds ``ingest_id``'s rows: the first version that has
        them (a scan from version 0, so for an append that created the table, or a check
        that :meth:`committed_version` could not settle otherwise).
        Not from :meth:`DeltaTable.history`, whose numbering is off by the commits that
        land while it reads (seen as version -1 when two writers create the table)."""
        for version in range(self.current_version(group) + 1):
            if self._holds(group, version, ingest_id):
                return version
        raise NotFound(f"feature group {group!r} has no commit of ingestion {ingest_id}")

    def committed_version(self, group: str, ingest_id: int) -> int | None:
        """The version whose commit wrote ``ingest_id``'s rows, ``None`` if none did.

        A commit is atomic, so any row stamped with the id means all of them are there:
        a retry of an ingestion whose process died after its commit must not append the
        batch again. The files' min/max statistics of ``_ingest_id`` keep the scan small."""
        try:
            table = self._table(group)
        except NotFound:
            return None
        rows = table.to_pyarrow_dataset().count_rows(filter=pds.field("_ingest_id") == ingest_id)
        if not rows:
            return None
        for entry in table.history(200):
            if entry.get(INGEST_ID_KEY) == str(ingest_id) and "version" in entry:
                # history() can misnumber versions while another writer commits: trust
                # its number only if that version is the first to hold the rows.
                candidate = int(entry["version"])
                if self._holds(group, candidate, ingest_id) and (
                    candidate == 0 or not self._holds(group, candidate - 1, ingest_id)
                ):
                    return candidate
                return self._version_of(group, ingest_id)
        return int(table.version())  # committed long ago: the rows are readable here

    def _holds(self, group: str, version: int, ingest_id: int) -> bool:
        """Whether ``version`` of the table has rows of ``ingest_id``."""
        dataset = self._table(group, version).to_pyarrow_dataset()
        return bool(dataset.count_rows(filter=pds.field("_ingest_id") == ingest_id))

    def position(self, group: str, source: str) -> int | None:
        """The last position of ``source`` an append recorded, ``None`` if none did."""
        try:
            table = self._table(group)
        except NotFound:
            return None
        version = table.transaction_version(source)
        return None if version is None else int(version)

    def version(self, group: str) -> int | None:
        try:
            return int(self._table(group).version())
        except NotFound:
            return None

    def dataset(
        self, group: str, *, version: int | None = None, as_of: datetime | None = None
    ) -> pds.Dataset:
        """The group's rows as an Arrow dataset, optionally as of a version or a time."""
        if version is not None and as_of is not None:
            raise InvalidInput("give a version or a time, not both", field="as_of")
        table = self._table(group, version)
        if as_of is not None:
            if as_of.tzinfo is None:
                raise InvalidInput("as_of needs a time zone", field="as_of")
            try:
                table.load_as_version(as_of)
            except Exception:
                raise NotFound(f"feature group {group!r} has no data as of {as_of}") from None
        return table.to_pyarrow_dataset()

    def current_version(self, group: str, version: int | None = None) -> int:
        return int(self._table(group, version).version())

    def delete(self, group: FeatureGroup, keys: Sequence[Sequence[Any]]) -> int:
        """Delete every row of the given record identifiers; returns rows deleted."""
        if not keys:
            return 0
        predicate = " OR ".join(
            "("
            + " AND ".join(
                f"{column} = {_literal(value)}"
                for column, value in zip(group.key_columns, key, strict=True)
            )
            + ")"
            for key in keys
        )
        metrics = self._table(group.name).delete(predicate)
        return int(metrics.get("num_deleted_rows", 0))

    def row_count(self, group: str) -> int | None:
        """Rows in the table now (``None`` before its first write), from the log's file
        statistics: no data file is opened unless a file lacks them."""
        try:
            table = self._table(group)
        except NotFound:
            return None
        counts = pa.table(table.get_add_actions()).column("num_records")
        if counts.null_count:
            return int(table.to_pyarrow_dataset().count_rows())
        return int(pc.sum(counts).as_py() or 0)

    def ingest_rows(self, group: str, ingest_id: int, *, limit: int) -> pa.Table:
        """At most ``limit`` of the rows ``ingest_id`` wrote that the table still holds
        (the files' statistics of ``_ingest_id`` skip every other ingestion's files)."""
        try:
            dataset = self._table(group).to_pyarrow_dataset()
        except NotFound:
            return pa.table({})  # no offline data: no rows
        return dataset.head(limit, filter=pds.field("_ingest_id") == ingest_id)

    def history(self, group: str, limit: int = 20) -> list[dict[str, Any]]:
        try:
            return list(self._table(group).history(limit))
        except NotFound:
            return []


def _literal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(
            f"record identifier value {value!r} must be a string or an integer", field="keys"
        )
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"
