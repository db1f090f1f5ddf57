"""The feature store's service facade: what the SDK, REST API and CLI call.

It composes small parts — the definition repository, validation and ingestion, the online
and offline stores, point-in-time joins and materialization — and adds nothing of its own
but argument handling, events and audit.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from slipway.core.errors import InvalidInput
from slipway.core.events import EventLog
from slipway.core.resource import Listing
from slipway.core.settings import mask_url
from slipway.features.codec import encode_key
from slipway.features.definitions import FeatureGroup
from slipway.features.ingest import (
    STALE_AFTER_SECONDS,
    HorizonsFactory,
    Ingestor,
    no_horizons,
)
from slipway.features.materialize import materialize
from slipway.features.offline.delta import DeltaOfflineStore, SourcePosition
from slipway.features.offline.training import TrainingSet, build_training_set, run_query
from slipway.features.online.base import OnlineStore
from slipway.features.online.scoped import ScopedOnlineStore
from slipway.features.online_reads import (
    FeatureVector,
    OnlineRecord,
    key_values,
    online_features,
    read_records,
    ref_groups,
)
from slipway.features.profile import (
    SAMPLE_ROWS,
    GroupSummary,
    IngestProfile,
    profile_table,
    stored_profile,
)
from slipway.features.refs import FeatureRef, groups_of
from slipway.features.repository import GroupRepository
from slipway.features.resources import Ingest, Materialization, RecordDeletion, StoredGroup
from slipway.features.sources import file_chunks, memory_chunks
from slipway.features.validation import as_arrow
from slipway.security.audit import AuditLog

CACHE_SECONDS = 2.0


class FeatureStore:
    def __init__(
        self,
        repo: GroupRepository,
        offline: DeltaOfflineStore,
        online: OnlineStore,
        events: EventLog,
        audit: AuditLog,
        *,
        ingest_stale_after: float = STALE_AFTER_SECONDS,
        horizons: HorizonsFactory | None = None,
    ) -> None:
        """``horizons``: makes, for a workspace, what tells ingestion which groups' events
        the online store keeps for feature views' windows (and for how long); the
        assembled platform passes :class:`~slipway.features.views.horizons.HorizonCache`.
        Without it no group keeps events."""
        self.repo = repo
        self.offline = offline
        self.online = online
        self.events = events
        self.audit = audit
        self._horizons_factory = horizons
        self.horizons = (
            horizons(repo.database, repo.workspace) if horizons is not None else no_horizons
        )
        self._ingestor = Ingestor(
            repo, offline, online, stale_after=ingest_stale_after, horizons=self.horizons
        )
        self._cache: dict[str, FeatureGroup] = {}
        self._cache_at = float("-inf")
        self._cache_lock = threading.Lock()
        self._stale_after = ingest_stale_after
        self._workspaces: dict[str, FeatureStore] = {}

    @property
    def workspace(self) -> str:
        return self.repo.workspace

    def in_workspace(self, workspace: str) -> FeatureStore:
        """The feature store of ``workspace``: its groups, its offline tables (under the
        artifact root's ``workspaces/<workspace>/features``) and its share of the online
        store. The same object for the same workspace (its definitions cache included)."""
        if workspace == self.workspace:
            return self
        with self._cache_lock:
            store = self._workspaces.get(workspace)
            if store is None:
                store = FeatureStore(
                    self.repo.in_workspace(workspace),
                    self.offline.in_workspace(workspace),
                    ScopedOnlineStore(self.online, workspace),
                    self.events,
                    self.audit,
                    ingest_stale_after=self._stale_after,
                    horizons=self._horizons_factory,
                )
                self._workspaces[workspace] = store
            return store

    # -- definitions -------------------------------------------------------------------

    def create_group(
        self, spec: FeatureGroup | Mapping[str, Any], *, actor: str | None = None
    ) -> StoredGroup:
        """Store a new group's definition (audited as ``feature_group.create``)."""
        group = spec if isinstance(spec, FeatureGroup) else FeatureGroup.parse(spec)
        self._cache_at = float("-inf")
        return self.repo.create(group, actor=actor)

    def update_group(
        self, spec: FeatureGroup | Mapping[str, Any], *, actor: str | None = None
    ) -> tuple[StoredGroup, list[str]]:
        """Apply a compatible change (audited as ``feature_group.update``); the stored
        group and the names of the added features."""
        group = spec if isinstance(spec, FeatureGroup) else FeatureGroup.parse(spec)
        self._cache_at = float("-inf")
        return self.repo.update(group, actor=actor)

    def describe(self, name: str) -> StoredGroup:
        """The group's definition and the state of its stores (the offline table's
        version, the online record count)."""
        stored = self.repo.get(name)
        return stored.model_copy(
            update={
                "offline_version": self.offline.version(name) if stored.spec.offline else None,
                "online_records": self.online.count(name) if stored.spec.online else None,
            }
        )

    def list_groups(self) -> Listing[StoredGroup]:
        return Listing(self.repo.all())

    def delete_group(self, name: str, *, actor: str | None = None) -> None:
        """Delete the definition and the online records; offline history stays on disk
        (a Delta table is cheap to keep and may back trained models' lineage)."""
        self.repo.get(name)
        self.online.drop_group(name)
        self.repo.delete(name, actor=actor)
        self._cache_at = float("-inf")

    def _groups(self) -> dict[str, FeatureGroup]:
        return {g.spec.name: g.spec for g in self.repo.all()}

    def _serving_definitions(self, names: Iterable[str]) -> dict[str, FeatureGroup]:
        """Definitions for the read path, cached for a moment: re-reading and re-validating
        every definition on each online read cost most of a read's time. Definitions only
        change compatibly (new nullable features), so a read at most CACHE_SECONDS behind
        another process's change is still correct; an unknown name refreshes at once."""
        with self._cache_lock:
            stale = time.monotonic() - self._cache_at > CACHE_SECONDS
            if stale or any(name not in self._cache for name in names):
                self._cache = self._groups()
                self._cache_at = time.monotonic()
            return self._cache

    def _serving_group(self, name: str) -> FeatureGroup:
        group = self._serving_definitions([name]).get(name)
        if group is None:
            return self.repo.get(name).spec  # raises NotFound naming the group
        return group

    def _group(self, name: str) -> tuple[FeatureGroup, bool]:
        stored = self.repo.get(name)
        return stored.spec, stored.revision > 1

    # -- ingestion ---------------------------------------------------------------------

    def ingest(
        self,
        name: str,
        records: Any,
        *,
        timezone: str | None = None,
        source: str = "sdk",
        kind: str = "ingest",
        positions: Sequence[SourcePosition] = (),
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> Ingest:
        """Ingest a DataFrame, an Arrow table or a list of records, all or nothing;
        audited as ``feature_group.ingest`` once it is written.

        ``kind`` labels the ingestion record; ``positions`` are committed atomically with
        the offline rows (see :meth:`DeltaOfflineStore.append`). ``idempotency_key`` names
        the batch so that sending it again — after a timeout, an error or a crash —
        writes it once (see :mod:`slipway.features.ingest`)."""
        done = self._ingest(
            name,
            records,
            timezone=timezone,
            source=source,
            kind=kind,
            positions=positions,
            idempotency_key=idempotency_key,
        )
        self._audit_ingest(actor, done)
        return done

    def ingest_stream_batch(
        self,
        name: str,
        records: Any,
        *,
        source: str,
        positions: Sequence[SourcePosition] = (),
    ) -> Ingest:
        """One micro-batch of a running stream (:mod:`slipway.features.stream`), ingested
        as by :meth:`ingest` with kind ``stream``. Not audited batch by batch: the
        stream's start is (``feature_group.stream``), as one act of whoever started it."""
        return self._ingest(
            name, records, timezone=None, source=source, kind="stream", positions=positions
        )

    def _ingest(
        self,
        name: str,
        records: Any,
        *,
        timezone: str | None,
        source: str,
        kind: str,
        positions: Sequence[SourcePosition] = (),
        idempotency_key: str | None = None,
    ) -> Ingest:
        group, evolve = self._group(name)
        return self._ingestor.ingest(
            group,
            memory_chunks(records),
            source=source,
            kind=kind,
            timezone=timezone,
            evolve=evolve,
            in_memory=True,
            positions=positions,
            idempotency_key=_checked_key(idempotency_key),
        )

    def ingest_file(
        self,
        name: str,
        uri: str,
        *,
        format: str | None = None,
        timezone: str | None = None,
        on_progress: Callable[[int], None] | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> Ingest:
        """Ingest a Parquet or CSV file (any fsspec URI) in chunks with bounded memory;
        ``idempotency_key`` as in :meth:`ingest`; audited as ``feature_group.ingest``."""
        group, evolve = self._group(name)
        done = self._ingestor.ingest(
            group,
            file_chunks(uri, format=format),
            source=uri,
            timezone=timezone,
            evolve=evolve,
            on_progress=on_progress,
            idempotency_key=_checked_key(idempotency_key),
        )
        self._audit_ingest(actor, done)
        return done

    def _audit_ingest(self, actor: str | None, done: Ingest) -> None:
        """The ingestion is written (offline table, online store and its record) when this
        runs: there is no one transaction to share, so the entry follows it."""
        self.audit.changed(
            actor,
            "feature_group.ingest",
            self.repo.resource(done.group),
            {
                "ingest": done.id,
                "rows": done.rows,
                "offline_version": done.offline_version,
                "source": mask_url(done.source),
            },
        )

    def audit_stream(
        self, name: str, *, topic: str, group_id: str, actor: str | None = None
    ) -> None:
        """Record that a stream from Kafka ``topic`` (consumer group ``group_id``) into
        group ``name`` started: its micro-batches are not recorded one by one."""
        self.audit.changed(
            actor,
            "feature_group.stream",
            self.repo.resource(name),
            {"topic": topic, "consumer_group": group_id},
        )

    def ingests(self, name: str, limit: int = 50) -> Listing[Ingest]:
        """The group's latest ingestions, newest first."""
        self.repo.get(name)
        return Listing(self.repo.ingests(name, limit=limit))

    # -- what the console shows ----------------------------------------------------------

    def ingest_history(self, name: str, *, offset: int, limit: int) -> tuple[Listing[Ingest], int]:
        """One page of the group's ingestions, newest first, and how many there are in
        all (each with the offline Delta version it wrote)."""
        self.repo.get(name)
        items = Listing(self.repo.ingests(name, limit=limit, offset=offset))
        return items, self.repo.count_ingests(name)

    def ingest_actors(self, name: str, ingests: Sequence[Ingest]) -> dict[int, str]:
        """Who ran each of ``ingests`` (by ingestion id), from the audit log; streamed
        micro-batches have no entry of their own."""
        return self.repo.ingest_actors(name, ingests)

    def summaries(self, groups: Sequence[StoredGroup]) -> dict[str, GroupSummary]:
        """Freshness and record count of each of ``groups`` (a page of a list): one query
        for their ingestions, then each one's count — the online store's keys of an online
        group, else its offline table's rows from the Delta log."""
        activity = self.repo.activity([g.spec.name for g in groups])
        summaries = {}
        for stored in groups:
            name = stored.spec.name
            records: int | None
            if stored.spec.online:
                records, kind = self.online.count(name), "online"
            else:
                records, kind = self.offline.row_count(name), "offline"
            summaries[name] = GroupSummary(activity[name], records, kind)
        return summaries

    def offline_rows(self, name: str) -> int | None:
        """Rows in the group's offline table (``None`` before any is written)."""
        self.repo.get(name)
        return self.offline.row_count(name)

    def ingest_profile(
        self, name: str, ingest_id: int | None = None, *, sample: int = SAMPLE_ROWS
    ) -> IngestProfile | None:
        """The profile of an ingestion (default: the latest that wrote rows; ``None`` if
        there is none): per feature, values present and missing, and for numbers their
        mean, extremes and histogram, for strings and booleans their commonest values —
        from at most ``sample`` of its rows in the offline table, or, for an online-only
        group, the figures stored with it."""
        group = self.repo.get(name).spec
        if ingest_id is None:
            ingest = self.repo.latest_succeeded(name)
        else:
            ingest = self.repo.ingest(name, ingest_id)
        if ingest is None:
            return None
        if group.offline and ingest.offline_version is not None:
            rows = self.offline.ingest_rows(name, ingest.id, limit=sample)
            if rows.num_rows:
                return IngestProfile(ingest, rows.num_rows, profile_table(group, rows))
        return IngestProfile(ingest, 0, stored_profile(group, ingest))

    # -- online ------------------------------------------------------------------------

    def get_record(
        self, name: str, key: Mapping[str, Any] | Sequence[Any] | str | int
    ) -> OnlineRecord | None:
        row: Mapping[str, Any] | Sequence[Any] = [key] if isinstance(key, str | int) else key
        return read_records(self.online, self._serving_group(name), [row])[0]

    def get_records(
        self, name: str, keys: Sequence[Mapping[str, Any] | Sequence[Any]]
    ) -> list[OnlineRecord | None]:
        return read_records(self.online, self._serving_group(name), keys)

    def get_online_features(
        self,
        feature_refs: list[str],
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        full_feature_names: bool = False,
    ) -> list[FeatureVector]:
        names = ref_groups(tuple(feature_refs))
        groups = self._serving_definitions(names)
        for name in names:
            if name not in groups:
                self.repo.get(name)  # raises NotFound naming the group
        return online_features(
            self.online, groups, feature_refs, entity_rows, full_feature_names=full_feature_names
        )

    def entity_keys(self, feature_refs: list[str]) -> list[str]:
        """The record-identifier columns an entity row needs to read ``feature_refs``."""
        names = [FeatureRef.parse(ref).group for ref in feature_refs]
        groups = self._serving_definitions(names)
        keys: list[str] = []
        for name in dict.fromkeys(names):
            if name not in groups:
                self.repo.get(name)  # raises NotFound naming the group
            keys.extend(k for k in groups[name].key_columns if k not in keys)
        return keys

    def _known(self, refs: list[str]) -> dict[str, FeatureGroup]:
        """The definitions of the groups ``refs`` name, and only those: a training set of
        two groups reads two definitions, however many groups the store holds. An
        unknown group raises NotFound naming it."""
        parsed = [FeatureRef.parse(ref) for ref in refs]
        return {name: self.repo.get(name).spec for name in groups_of(parsed)}

    # -- offline -----------------------------------------------------------------------

    def training_set(
        self,
        entities: Any,
        feature_refs: list[str],
        *,
        timestamp_column: str = "event_timestamp",
        ttl: timedelta | None = None,
        versions: dict[str, int] | None = None,
        full_feature_names: bool = False,
        as_known_at: bool = False,
    ) -> TrainingSet:
        """Point-in-time-correct features for each entity row (DataFrame, Arrow, a file
        URI, or SQL over the feature groups). ``as_known_at``: only feature rows ingested
        at or before each row's timestamp count (no later correction leaks in)."""
        groups = self._known(feature_refs)
        if isinstance(entities, str):
            text = entities.strip()
            if text.lower().startswith(("select", "with")):
                # The entity query may read any group, not only the referenced ones.
                table = run_query(self.offline, list(self._groups()), text)
            else:
                table = pa.concat_tables(list(file_chunks(text)()))
        else:
            table = as_arrow(entities)
        return build_training_set(
            self.offline,
            groups,
            table,
            feature_refs,
            timestamp_column=timestamp_column,
            ttl=ttl,
            versions=versions,
            full_feature_names=full_feature_names,
            as_known_at=as_known_at,
        )

    def query(self, sql: str) -> pa.Table:
        """SQL over the feature groups' offline data (the Athena analog)."""
        return run_query(self.offline, list(self._groups()), sql)

    def read_offline(
        self, name: str, *, version: int | None = None, as_of: datetime | None = None
    ) -> pa.Table:
        """A group's offline rows, now or as of a Delta version or a time."""
        self.repo.get(name)
        return self.offline.dataset(name, version=version, as_of=as_of).to_table()

    def materialize(
        self,
        name: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        actor: str | None = None,
    ) -> Materialization:
        """Copy the latest offline record per key (in ``[start, end)`` of event time)
        into the online store; idempotent. Audited as ``feature_group.materialize``."""
        group, _ = self._group(name)
        read, applied = materialize(self.offline, self.online, group, start=start, end=end)
        done = Materialization(records=read, applied=applied)
        self.events.append(
            "feature_group.materialized", self.repo.resource(name), done.model_dump()
        )
        window = {"start": _iso(start), "end": _iso(end)}
        self.audit.changed(
            actor, "feature_group.materialize", self.repo.resource(name), done.model_dump() | window
        )
        return done

    def materialize_all(self, *, actor: str | None = None) -> dict[str, int]:
        """Materialize every group that is online and offline and has offline rows (after
        a restore, or to rebuild a lost online store); records read per group."""
        done = {}
        for stored in self.list_groups():
            spec = stored.spec
            if spec.online and spec.offline and self.offline.version(spec.name) is not None:
                done[spec.name] = self.materialize(spec.name, actor=actor).records
        return done

    def delete_records(
        self, name: str, keys: Sequence[Mapping[str, Any] | Sequence[Any]], *, actor: str
    ) -> RecordDeletion:
        """Delete records by key from the online and the offline store; audited."""
        group, _ = self._group(name)
        if not keys:
            raise InvalidInput("name at least one key", field="keys")
        typed = [key_values(group, k, field="keys") for k in keys]
        online = self.online.delete(name, [encode_key(k) for k in typed]) if group.online else 0
        offline = 0
        if group.offline and self.offline.version(name) is not None:
            offline = self.offline.delete(group, typed)
        deleted = RecordDeletion(
            keys=len(typed), online_deleted=online, offline_rows_deleted=offline
        )
        counts = deleted.model_dump()
        self.audit.record(
            actor=actor,
            action="feature_group.delete_records",
            resource=self.repo.resource(name),
            outcome="success",
            details=counts,
        )
        self.events.append("feature_group.records_deleted", self.repo.resource(name), counts)
        return deleted


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,254}")


def _checked_key(key: str | None) -> str | None:
    """A key is stored and compared as given, so it must be printable and bounded."""
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput(
            "idempotency key must be 1-255 characters: letters, digits and ._:/@+=-,"
            " starting with a letter or digit",
            field="idempotency_key",
        )
    return key
