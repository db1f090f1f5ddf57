"""What the feature-view service hands out."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from slipway.core.resource import Resource
from slipway.features.resources import MAX_RECORDS, IsoTime
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


class ViewOnlineRequest(BaseModel):
    """``POST /feature-views/{name}/online``: entity rows (keys and request fields), the
    read's time (now when left out) and the view version (the latest when left out)."""

    model_config = ConfigDict(extra="forbid")

    entity_rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)
    at: IsoTime | None = None
    version: int | None = Field(default=None, ge=1, le=2**31)


class ViewRows(Resource):
    """A feature view's columns for each entity row, in the rows' order."""

    table_fields: ClassVar[tuple[str, ...]] = ("view", "version", "rows")

    view: str
    version: int
    rows: list[dict[str, Any]]
