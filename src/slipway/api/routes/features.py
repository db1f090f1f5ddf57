"""Feature groups over REST: definitions, small-batch ingestion (PutRecord), lookups,
online feature vectors, materialization, record deletion and SQL over offline data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field

from slipway.api.auth import READ_ONLY, Principal, authorize, services_of
from slipway.features.repository import Ingest, StoredGroup
from slipway.security.tokens import Role

_caller = authorize()  # one object, so FastAPI resolves it once per request
router = APIRouter(tags=["features"], dependencies=[Depends(_caller)])
reads = APIRouter(tags=["features"], dependencies=[Depends(authorize(Role.VIEWER))])

MAX_RECORDS = 10_000
MAX_QUERY_ROWS = 10_000
Key = dict[str, Any] | list[Any] | str | int


class GroupOut(BaseModel):
    definition: dict[str, Any]
    revision: int
    created_at: datetime
    updated_at: datetime
    offline_version: int | None = None
    online_records: int | None = None

    @classmethod
    def of(cls, stored: StoredGroup, **extra: Any) -> GroupOut:
        return cls(
            definition=stored.spec.model_dump(mode="json"),
            revision=stored.revision,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            **extra,
        )


class IngestOut(BaseModel):
    id: int
    group: str
    kind: str
    source: str
    state: str
    rows: int
    offline_version: int | None
    online_applied: int | None
    stats: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    idempotency_key: str | None = None

    @classmethod
    def of(cls, ingest: Ingest) -> IngestOut:
        return cls(**ingest.__dict__)


class PutRecords(BaseModel):
    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)
    timezone: str | None = None


class Lookup(BaseModel):
    keys: list[Key] = Field(min_length=1, max_length=MAX_RECORDS)


class OnlineFeaturesIn(BaseModel):
    feature_refs: list[str] = Field(min_length=1)
    entity_rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)
    full_feature_names: bool = False


class MaterializeIn(BaseModel):
    start: datetime | None = None
    end: datetime | None = None


class QueryIn(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000)
    limit: int = Field(default=1000, ge=1, le=MAX_QUERY_ROWS)


def _key(value: Key) -> dict[str, Any] | list[Any]:
    return [value] if isinstance(value, str | int) else value


@router.post("/feature-groups", status_code=201, response_model=GroupOut)
def create_group(body: dict[str, Any], request: Request) -> GroupOut:
    return GroupOut.of(services_of(request).features.create_group(body))


@router.get("/feature-groups", response_model=list[GroupOut])
def list_groups(request: Request) -> list[GroupOut]:
    return [GroupOut.of(g) for g in services_of(request).features.list_groups()]


@router.get("/feature-groups/{name}", response_model=GroupOut)
def describe_group(name: str, request: Request) -> GroupOut:
    features = services_of(request).features
    stored = features.describe(name)
    return GroupOut.of(
        stored,
        offline_version=features.offline.version(name) if stored.spec.offline else None,
        online_records=features.online.count(name) if stored.spec.online else None,
    )


@router.put("/feature-groups/{name}", response_model=GroupOut)
def update_group(name: str, body: dict[str, Any], request: Request) -> GroupOut:
    stored, _ = services_of(request).features.update_group(body | {"name": name})
    return GroupOut.of(stored)


@router.delete("/feature-groups/{name}", status_code=204)
def delete_group(name: str, request: Request) -> None:
    services_of(request).features.delete_group(name)


@router.post("/feature-groups/{name}/records", status_code=201, response_model=IngestOut)
def put_records(
    name: str,
    body: PutRecords,
    request: Request,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> IngestOut:
    """PutRecord for a batch. With an ``Idempotency-Key`` header, sending the same batch
    again (after a timeout or a crash) writes it once and answers with the same ingestion."""
    ingest = services_of(request).features.ingest(
        name, body.records, timezone=body.timezone, source="rest", idempotency_key=idempotency_key
    )
    return IngestOut.of(ingest)


@router.post("/feature-groups/{name}/records/delete")
def delete_records(
    name: str, body: Lookup, request: Request, principal: Annotated[Principal, Depends(_caller)]
) -> dict[str, int]:
    keys = [_key(k) for k in body.keys]
    return services_of(request).features.delete_records(name, keys, actor=principal.name)


@router.get("/feature-groups/{name}/ingests", response_model=list[IngestOut])
def list_ingests(
    name: str, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[IngestOut]:
    return [IngestOut.of(i) for i in services_of(request).features.ingests(name, limit)]


@router.post("/feature-groups/{name}/materialize")
def materialize(name: str, body: MaterializeIn, request: Request) -> dict[str, int]:
    return services_of(request).features.materialize(name, start=body.start, end=body.end)


@reads.post("/feature-groups/{name}/lookup", openapi_extra=READ_ONLY)
def lookup(name: str, body: Lookup, request: Request) -> dict[str, Any]:
    """GetRecord / BatchGetRecord: the online record of each key (null when absent)."""
    records = services_of(request).features.get_records(name, [_key(k) for k in body.keys])
    return {
        "records": [
            None
            if r is None
            else {"key": r.key, "event_time": r.event_time, "values": r.values, "stale": r.stale}
            for r in records
        ]
    }


@reads.post("/online-features", openapi_extra=READ_ONLY)
def online_features(body: OnlineFeaturesIn, request: Request) -> dict[str, Any]:
    """Feature vectors for entity rows, assembled across groups."""
    vectors = services_of(request).features.get_online_features(
        body.feature_refs, body.entity_rows, full_feature_names=body.full_feature_names
    )
    return {
        "vectors": [{"values": v.values, "missing": v.missing, "stale": v.stale} for v in vectors]
    }


@reads.post("/feature-groups/query", openapi_extra=READ_ONLY)
def query(body: QueryIn, request: Request) -> dict[str, Any]:
    """Read-only SQL over the groups' offline data; each group is a table of its name."""
    table = services_of(request).features.query(body.sql)
    truncated = table.num_rows > body.limit
    rows = table.slice(0, body.limit).to_pylist()
    return {"columns": table.column_names, "rows": rows, "truncated": truncated}
