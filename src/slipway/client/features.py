"""The feature store through the control plane: the methods of the embedded
:class:`~slipway.features.store.FeatureStore`, with its arguments and return types.

Tables travel as Arrow IPC streams (:mod:`slipway.core.arrowipc`): an ingest sends the
records as one table, a training set sends the entity table and receives the result —
typed, columnar, compressed — so the remote answer equals the in-process one type for type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from slipway.client.transport import Transport
from slipway.core.arrowipc import ARROW_STREAM, from_ipc, to_ipc
from slipway.core.errors import InvalidInput
from slipway.features.definitions import FeatureGroup
from slipway.features.offline.training import (
    DEFINITION_HEADER,
    TrainingSet,
    TrainingSetDefinition,
)
from slipway.features.repository import Ingest, StoredGroup
from slipway.features.validation import as_arrow


def _stored(document: Mapping[str, Any]) -> StoredGroup:
    return StoredGroup(
        spec=FeatureGroup.model_validate(document["definition"]),
        revision=int(document["revision"]),
        created_at=datetime.fromisoformat(document["created_at"]),
        updated_at=datetime.fromisoformat(document["updated_at"]),
    )


def _ingest(document: Mapping[str, Any]) -> Ingest:
    def moment(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    started = moment(document["started_at"])
    assert started is not None
    return Ingest(
        id=int(document["id"]),
        group=document["group"],
        kind=document["kind"],
        source=document["source"],
        state=document["state"],
        rows=int(document["rows"]),
        offline_version=document.get("offline_version"),
        online_applied=document.get("online_applied"),
        stats=dict(document.get("stats") or {}),
        started_at=started,
        finished_at=moment(document.get("finished_at")),
        error=document.get("error"),
        idempotency_key=document.get("idempotency_key"),
    )


class RemoteFeatureStore:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # -- groups ------------------------------------------------------------------------

    def create_group(self, spec: FeatureGroup | Mapping[str, Any]) -> StoredGroup:
        body = spec.model_dump(mode="json") if isinstance(spec, FeatureGroup) else dict(spec)
        return _stored(self.transport.request("POST", "/feature-groups", json=body).json())

    def describe(self, name: str) -> StoredGroup:
        return _stored(self.transport.request("GET", f"/feature-groups/{name}").json())

    def list_groups(self) -> list[StoredGroup]:
        return [_stored(g) for g in self.transport.request("GET", "/feature-groups").json()]

    # -- ingestion ---------------------------------------------------------------------

    def ingest(
        self,
        name: str,
        records: Any,
        *,
        timezone: str | None = None,
        idempotency_key: str | None = None,
    ) -> Ingest:
        """Ingest ``records`` (a DataFrame, an Arrow table, or a list of objects) as one
        ingestion. With ``idempotency_key`` the call is retried on a lost connection and
        the server writes it once."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.transport.request(
            "POST",
            f"/feature-groups/{name}/records/arrow",
            content=to_ipc(as_arrow(records)).to_pybytes(),
            params={"timezone": timezone} if timezone else None,
            headers={"Content-Type": ARROW_STREAM, **headers},
        )
        return _ingest(response.json())

    def ingests(self, name: str, limit: int = 50) -> list[Ingest]:
        response = self.transport.request(
            "GET", f"/feature-groups/{name}/ingests", params={"limit": limit}
        )
        return [_ingest(i) for i in response.json()]

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
    ) -> TrainingSet:
        """Point-in-time-correct features for each entity row (a DataFrame or an Arrow
        table): the embedded ``FeatureStore.training_set``, computed by the server."""
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
        }
        if ttl is not None:
            params["ttl_seconds"] = ttl.total_seconds()
        if versions is not None:
            params["versions"] = json.dumps(versions)
        response = self.transport.request(
            "POST",
            "/training-sets",
            repeatable=True,  # a read: nothing is written, sending it again is harmless
            content=to_ipc(as_arrow(entities)).to_pybytes(),
            params=params,
            headers={"Content-Type": ARROW_STREAM},
        )
        definition = json.loads(response.headers[DEFINITION_HEADER])
        return TrainingSet(
            data=from_ipc(response.content, field="response"),
            definition=TrainingSetDefinition(**definition),
        )
