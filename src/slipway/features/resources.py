"""The feature store's resources: what :class:`~slipway.features.store.FeatureStore`
returns, what the REST API sends and accepts, what the remote client decodes and what the
CLI prints — each modelled once here.

A group's definition itself is :class:`~slipway.features.definitions.FeatureGroup` (the
create and update body); :class:`StoredGroup` is that definition as stored, with its
revision and storage state. Online records and feature vectors stay the plain dataclasses
of :mod:`slipway.features.online_reads` (built per key on the serving hot path, where a
validating model would cost a large share of a read); the answers that carry them over
REST (:class:`RecordLookup`, :class:`OnlineFeatures`) are resources describing them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    computed_field,
)

from slipway.core.resource import Resource
from slipway.features.definitions import FeatureGroup
from slipway.features.online_reads import FeatureVector, OnlineRecord

# Bounds of one JSON request: larger tables go as Arrow IPC (api/routes/tables.py).
MAX_RECORDS = 10_000
MAX_QUERY_ROWS = 10_000

# A record identifier as a client writes it: a mapping of key columns, a tuple of their
# values, or the one value of a single-column identifier.
Key = dict[str, Any] | list[Any] | str | int


def _iso_only(value: object) -> object:
    """A time in a request is ISO 8601 text, as the OpenAPI document says: pydantic would
    also take a number as Unix seconds, which the document does not offer."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
    raise ValueError("give an ISO 8601 time, e.g. 2024-01-01T00:00:00Z")


# A time in a request body or a query: ISO 8601 text only.
IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]


class StoredGroup(Resource):
    """A feature group's definition as stored: its revision (1, then one more per
    compatible update) and, from ``describe``, the state of its stores.

    Sent as ``definition`` (the API's name since its first version); ``spec`` in Python."""

    model_config = ConfigDict(serialize_by_alias=True)
    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "keys",
        "event_time",
        "feature_count",
        "online",
        "offline",
        "ttl",
        "revision",
        "updated_at",
    )

    spec: FeatureGroup = Field(
        validation_alias=AliasChoices("spec", "definition"), serialization_alias="definition"
    )
    revision: int
    created_at: datetime
    updated_at: datetime
    offline_version: int | None = Field(
        default=None, description="the offline Delta table's version (describe only)"
    )
    online_records: int | None = Field(
        default=None, description="records in the online store (describe only)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def name(self) -> str:
        return self.spec.name

    # Columns of the summary table (not sent: they are read off the definition).
    @property
    def keys(self) -> str:
        return ", ".join(self.spec.key_columns)

    @property
    def event_time(self) -> str:
        return self.spec.event_time

    @property
    def feature_count(self) -> int:
        return len(self.spec.features)

    @property
    def online(self) -> bool:
        return self.spec.online

    @property
    def offline(self) -> bool:
        return self.spec.offline

    @property
    def ttl(self) -> timedelta | None:
        return self.spec.ttl


class Ingest(Resource):
    """One ingestion (or materialization, or streamed micro-batch) into a group: its state,
    row count, the offline version it wrote and its statistics.

    The issue calls it ``Ingestion``; both names are exported."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "group",
        "kind",
        "state",
        "rows",
        "offline_version",
        "started_at",
        "source",
    )

    id: int
    # ``group_name`` in the table: ``group`` is an SQL keyword.
    group: str = Field(validation_alias=AliasChoices("group", "group_name"))
    kind: str
    source: str
    state: str
    rows: int
    offline_version: int | None = None
    online_applied: int | None = None
    stats: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    idempotency_key: str | None = None


Ingestion = Ingest


class RecordLookup(Resource):
    """GetRecord / BatchGetRecord: the online record of each key asked for, in order
    (``null`` where there is none)."""

    records: list[OnlineRecord | None]


class OnlineFeatures(Resource):
    """One feature vector per entity row, assembled across groups."""

    vectors: list[FeatureVector]


class QueryResult(Resource):
    """The first ``limit`` rows of an SQL query over the offline data, as JSON (the
    remote client's ``query`` receives the whole table as Arrow instead)."""

    model_config = ConfigDict(serialize_by_alias=True)

    # ``columns`` on the wire; a Resource's ``columns()`` names its table's columns.
    column_names: list[str] = Field(
        validation_alias=AliasChoices("column_names", "columns"), serialization_alias="columns"
    )
    rows: list[dict[str, Any]]
    truncated: bool


class Materialization(Resource):
    """Offline records read by a materialization, and how many the online store took
    (an older record than the online one is not applied)."""

    records: int
    applied: int


class RecordDeletion(Resource):
    """What deleting records by key removed from each store."""

    keys: int
    online_deleted: int
    offline_rows_deleted: int


# -- request bodies (unknown fields are errors naming them) ---------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PutRecords(_Request):
    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)
    timezone: str | None = None


class Lookup(_Request):
    keys: list[Key] = Field(min_length=1, max_length=MAX_RECORDS)


class OnlineFeaturesRequest(_Request):
    feature_refs: list[str] = Field(min_length=1)
    entity_rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)
    full_feature_names: StrictBool = False


class MaterializeRequest(_Request):
    start: IsoTime | None = None
    end: IsoTime | None = None


class QueryRequest(_Request):
    sql: str = Field(min_length=1, max_length=100_000)
    limit: int = Field(default=1000, ge=1, le=MAX_QUERY_ROWS)


class TableQuery(_Request):
    """SQL whose whole result comes back as an Arrow IPC stream."""

    sql: str = Field(min_length=1, max_length=100_000)


def key_list(value: Key) -> dict[str, Any] | list[Any]:
    """A key as the store reads it: a single value becomes a one-element tuple."""
    return [value] if isinstance(value, str | int) else value


__all__ = [
    "Ingest",
    "Ingestion",
    "IsoTime",
    "Key",
    "Lookup",
    "Materialization",
    "MaterializeRequest",
    "OnlineFeatures",
    "OnlineFeaturesRequest",
    "PutRecords",
    "QueryRequest",
    "QueryResult",
    "RecordDeletion",
    "RecordLookup",
    "StoredGroup",
    "TableQuery",
    "key_list",
]
