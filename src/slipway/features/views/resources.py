"""What the feature-view service hands out."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from slipway.core.resource import Resource
from slipway.features.views.spec import FeatureViewSpec


class FeatureView(Resource):
    """One version of a feature view: its definition, the entity keys a request or an
    entity row must carry, and the columns it produces with their types."""

    table_fields: ClassVar[tuple[str, ...]] = ("name", "version", "entity_keys", "created_at")

    name: str
    version: int
    spec: FeatureViewSpec
    digest: str = Field(description="sha256 of the definition")
    entity_keys: list[str] = Field(description="record identifiers of the groups it reads")
    columns: dict[str, str] = Field(description="output column -> type, in order")
    created_by: str
    created_at: datetime
