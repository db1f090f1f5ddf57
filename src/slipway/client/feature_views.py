"""Feature views through the control plane: the methods of the embedded
:class:`~slipway.features.views.service.FeatureViews`, with their arguments and return
types."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slipway.client.transport import Transport, listing
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
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

    def delete(self, name: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        validate_name(name, field="name")
        self.transport.request("DELETE", f"/feature-views/{name}")


__all__ = ["RemoteFeatureViews"]
