"""Feature views through the control plane: the methods of the embedded
:class:`~slipway.features.views.service.FeatureViews`, with their arguments and return
types. A training set sends the entity rows as an Arrow IPC stream and gets back the
embedded :class:`~slipway.features.offline.training.TrainingSet`, data and definition
(which names the view's version and digest, for a model's lineage)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slipway.client.tables import fetch_training_set
from slipway.client.transport import Transport, listing
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
from slipway.features.offline.training import TrainingSet
from slipway.features.validation import as_arrow
from slipway.features.views.resources import FeatureView, ViewRows
from slipway.features.views.spec import FeatureViewSpec


class RemoteFeatureViews:
    """``client.feature_views``. ``actor`` is accepted for the embedded signatures' sake
    and not sent: the server audits the token's holder."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def apply(
        self, spec: FeatureViewSpec | Mapping[str, Any], *, actor: str | None = None
    ) -> FeatureView:
        del actor  # the server's caller
        parsed = parse_spec(FeatureViewSpec, spec)  # bad input fails here, as embedded
        # The same definition again is the same version: safe to send again.
        answer = self.transport.request(
            "PUT", f"/feature-views/{parsed.name}", json=parsed.model_dump(mode="json")
        )
        return FeatureView.model_validate(answer.json())

    def get(self, name: str, version: int | None = None) -> FeatureView:
        validate_name(name, field="name")
        params = {"version": version} if version is not None else None
        answer = self.transport.request("GET", f"/feature-views/{name}", params=params)
        return FeatureView.model_validate(answer.json())

    def list(self) -> Listing[FeatureView]:
        return listing(FeatureView, self.transport.request("GET", "/feature-views").json())

    def versions(self, name: str) -> Listing[FeatureView]:
        validate_name(name, field="name")
        answer = self.transport.request("GET", f"/feature-views/{name}/versions")
        return listing(FeatureView, answer.json())

    def get_online(
        self,
        name: str,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        version: int | None = None,
        at: datetime | None = None,
    ) -> builtins.list[dict[str, Any]]:
        validate_name(name, field="name")
        body: dict[str, Any] = {"entity_rows": [dict(row) for row in entity_rows]}
        if version is not None:
            body["version"] = version
        if at is not None:
            body["at"] = at.isoformat()
        # A read: safe to send again.
        answer = self.transport.request(
            "POST", f"/feature-views/{name}/online", json=body, repeatable=True
        )
        return list(ViewRows.model_validate(answer.json()).rows)

    def training_set(
        self,
        name: str,
        entities: Any,
        *,
        version: int | None = None,
        timestamp_column: str = "event_timestamp",
        as_known_at: bool = False,
    ) -> TrainingSet:
        """The view's columns for each entity row (a DataFrame, an Arrow table or a list
        of objects: keys, the timestamp, the request fields) as of the row's timestamp,
        computed by the server."""
        validate_name(name, field="name")
        table = as_arrow(entities)  # the embedded call's error for anything else
        params: dict[str, Any] = {"timestamp_column": timestamp_column, "as_known_at": as_known_at}
        if version is not None:
            params["version"] = version
        return fetch_training_set(
            self.transport, f"/feature-views/{name}/training-set", table, params
        )

    def delete(self, name: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        validate_name(name, field="name")
        self.transport.request("DELETE", f"/feature-views/{name}")


__all__ = ["RemoteFeatureViews"]
