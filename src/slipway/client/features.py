"""The feature store through the control plane: the methods of the embedded
:class:`~slipway.features.store.FeatureStore`, with its arguments and return types.

Tables travel as Arrow IPC streams (:mod:`slipway.core.arrowipc`): an ingest sends the
records as one table, a training set sends the entity table and receives the result —
typed, columnar, compressed — so the remote answer equals the in-process one type for type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from slipway.client.tables import fetch_training_set
from slipway.client.transport import Transport
from slipway.core.arrowipc import ARROW_STREAM, IpcChunks, from_ipc
from slipway.core.errors import InvalidInput
from slipway.core.resource import Listing
from slipway.features.definitions import FeatureGroup
from slipway.features.offline.training import TrainingSet
from slipway.features.online_reads import FeatureVector, OnlineRecord
from slipway.features.resources import (
    Ingest,
    Materialization,
    OnlineFeatures,
    RecordDeletion,
    RecordLookup,
    StoredGroup,
)
from slipway.features.sources import file_chunks
from slipway.features.validation import as_arrow

KeyLike = Mapping[str, Any] | Sequence[Any] | str | int


def _key(key: KeyLike) -> Any:
    """A key as JSON: a mapping, a list of values, or one value."""
    if isinstance(key, str | int):
        return key
    return dict(key) if isinstance(key, Mapping) else list(key)


class RemoteFeatureStore:
    """:class:`~slipway.features.store.FeatureStore` through the control plane.

    Left out, as they only make sense in process: ``ingest``'s ``source``, ``kind`` and
    ``positions`` (the stream ingestor's bookkeeping), ``entity_keys`` (the gateway's
    enrichment helper) and the store's parts (``repo``, ``offline``, ``online``).
    Every change's ``actor`` (accepted for the embedded signatures' sake) is the token's
    holder, whatever the caller passes: the server audits who it authenticated."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # -- groups ------------------------------------------------------------------------

    def create_group(
        self, spec: FeatureGroup | Mapping[str, Any], *, actor: str | None = None
    ) -> StoredGroup:
        del actor  # the server's caller
        # Validated here as in process, so a bad definition raises the same error before
        # anything is sent (the server checks it again).
        group = spec if isinstance(spec, FeatureGroup) else FeatureGroup.parse(spec)
        response = self.transport.request(
            "POST", "/feature-groups", json=group.model_dump(mode="json")
        )
        return StoredGroup.model_validate_json(response.content)

    def update_group(
        self, spec: FeatureGroup | Mapping[str, Any], *, actor: str | None = None
    ) -> tuple[StoredGroup, list[str]]:
        """Apply a compatible change; the stored group and the names of added features."""
        del actor  # the server's caller
        group = spec if isinstance(spec, FeatureGroup) else FeatureGroup.parse(spec)
        before = {f.name for f in self.describe(group.name).spec.features}
        response = self.transport.request(
            "PUT", f"/feature-groups/{group.name}", json=group.model_dump(mode="json")
        )
        stored = StoredGroup.model_validate_json(response.content)
        return stored, [f.name for f in stored.spec.features if f.name not in before]

    def describe(self, name: str) -> StoredGroup:
        response = self.transport.request("GET", f"/feature-groups/{name}")
        return StoredGroup.model_validate_json(response.content)

    def list_groups(self) -> Listing[StoredGroup]:
        response = self.transport.request("GET", "/feature-groups")
        return Listing(StoredGroup.model_validate(g) for g in response.json())

    def delete_group(self, name: str, *, actor: str | None = None) -> None:
        """Delete the definition and the online records; offline history stays."""
        del actor  # the server's caller
        self.transport.request("DELETE", f"/feature-groups/{name}")

    # -- ingestion ---------------------------------------------------------------------

    def ingest(
        self,
        name: str,
        records: Any,
        *,
        timezone: str | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> Ingest:
        """Ingest ``records`` (a DataFrame, an Arrow table, or a list of objects) as one
        ingestion. With ``idempotency_key`` the call is retried on a lost connection and
        the server writes it once."""
        del actor  # the server's caller
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.transport.request(
            "POST",
            f"/feature-groups/{name}/records/arrow",
            content=IpcChunks(as_arrow(records)),
            params={"timezone": timezone} if timezone else None,
            headers={"Content-Type": ARROW_STREAM, **headers},
        )
        return Ingest.model_validate_json(response.content)

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
        """Ingest a Parquet or CSV file the client can read (a path or any fsspec URI):
        read here (``on_progress`` counts the rows read), sent as one table, written
        all or nothing by the server."""
        del actor  # the server's caller
        chunks = []
        for chunk in file_chunks(uri, format=format)():
            chunks.append(chunk)
            if on_progress is not None:
                on_progress(chunk.num_rows)
        if not chunks:
            raise InvalidInput(f"{uri!r} holds no rows", field="path")
        table = pa.concat_tables(chunks, promote_options="permissive")
        return self.ingest(name, table, timezone=timezone, idempotency_key=idempotency_key)

    def ingests(self, name: str, limit: int = 50) -> Listing[Ingest]:
        """The group's latest ingestions, newest first."""
        response = self.transport.request(
            "GET", f"/feature-groups/{name}/ingests", params={"limit": limit}
        )
        return Listing(Ingest.model_validate(i) for i in response.json())

    # -- online ------------------------------------------------------------------------

    def get_record(self, name: str, key: KeyLike) -> OnlineRecord | None:
        return self.get_records(name, [key])[0]

    def get_records(self, name: str, keys: Sequence[KeyLike]) -> list[OnlineRecord | None]:
        response = self.transport.request(
            "POST",
            f"/feature-groups/{name}/lookup",
            repeatable=True,  # a read
            json={"keys": [_key(k) for k in keys]},
        )
        return RecordLookup.model_validate_json(response.content).records

    def get_online_features(
        self,
        feature_refs: list[str],
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        full_feature_names: bool = False,
    ) -> list[FeatureVector]:
        response = self.transport.request(
            "POST",
            "/online-features",
            repeatable=True,  # a read
            json={
                "feature_refs": list(feature_refs),
                "entity_rows": [dict(row) for row in entity_rows],
                "full_feature_names": full_feature_names,
            },
        )
        return OnlineFeatures.model_validate_json(response.content).vectors

    def materialize(
        self,
        name: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        actor: str | None = None,
    ) -> Materialization:
        """Copy the latest offline record per key into the online store (idempotent)."""
        del actor  # the server's caller
        body = {
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
        }
        response = self.transport.request(
            "POST", f"/feature-groups/{name}/materialize", json=body, repeatable=True
        )
        return Materialization.model_validate_json(response.content)

    def materialize_all(self, *, actor: str | None = None) -> dict[str, int]:
        """Materialize every group that is online and offline and has offline rows; the
        offline records read, per group."""
        del actor  # the server's caller
        done: dict[str, int] = {}
        for stored in self.list_groups():
            has_rows = (
                stored.online
                and stored.offline
                and (self.describe(stored.name).offline_version is not None)
            )
            if has_rows:
                done[stored.name] = self.materialize(stored.name).records
        return done

    def delete_records(
        self, name: str, keys: Sequence[Mapping[str, Any] | Sequence[Any]], *, actor: str
    ) -> RecordDeletion:
        """Delete records by key from both stores; audited under the token's holder."""
        del actor  # the server's caller
        if not keys:
            raise InvalidInput("name at least one key", field="keys")
        response = self.transport.request(
            "POST",
            f"/feature-groups/{name}/records/delete",
            repeatable=True,  # deleting the same keys again deletes nothing more
            json={"keys": [_key(k) for k in keys]},
        )
        return RecordDeletion.model_validate_json(response.content)

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
        """Point-in-time-correct features for each entity row (a DataFrame or an Arrow
        table): the embedded ``FeatureStore.training_set``, computed by the server.
        ``as_known_at``: only feature rows ingested by each row's timestamp count."""
        if isinstance(entities, str):
            raise InvalidInput(
                "the remote client sends the entity rows themselves: give a DataFrame or an"
                " Arrow table (read a file or query with FeatureStore.query first)",
                field="entities",
            )
        params: dict[str, Any] = {
            "feature_refs": list(feature_refs),
            "timestamp_column": timestamp_column,
            "full_feature_names": full_feature_names,
            "as_known_at": as_known_at,
        }
        if ttl is not None:
            params["ttl_seconds"] = ttl.total_seconds()
        if versions is not None:
            params["versions"] = json.dumps(versions)
        return fetch_training_set(self.transport, "/training-sets", as_arrow(entities), params)

    def query(self, sql: str) -> pa.Table:
        """SQL over the feature groups' offline data; the whole result, as Arrow."""
        response = self.transport.request(
            "POST", "/feature-groups/query/arrow", json={"sql": sql}, repeatable=True
        )
        return from_ipc(response.content, field="response")

    def read_offline(
        self, name: str, *, version: int | None = None, as_of: datetime | None = None
    ) -> pa.Table:
        """A group's offline rows, now or as of a Delta version or a time."""
        params: dict[str, Any] = {}
        if version is not None:
            params["version"] = version
        if as_of is not None:
            params["as_of"] = as_of.isoformat()
        response = self.transport.request("GET", f"/feature-groups/{name}/offline", params=params)
        return from_ipc(response.content, field="response")
