"""Feature groups over REST: definitions, small-batch ingestion (PutRecord), lookups,
online feature vectors, materialization, record deletion and SQL over offline data.

Bodies and answers are the feature store's own models (:mod:`slipway.features.resources`
and the :class:`~slipway.features.definitions.FeatureGroup` definition), so the OpenAPI
document describes each one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request

from slipway.api.auth import READ_ONLY, Principal, authorize, feature_store
from slipway.core.errors import InvalidInput
from slipway.features.definitions import FeatureGroup
from slipway.features.resources import (
    Ingest,
    Lookup,
    Materialization,
    MaterializeRequest,
    OnlineFeatures,
    OnlineFeaturesRequest,
    PutRecords,
    QueryRequest,
    QueryResult,
    RecordDeletion,
    RecordLookup,
    StoredGroup,
    key_list,
)
from slipway.security.tokens import Role

_caller = authorize(scoped=True)  # one object, so FastAPI resolves it once per request
router = APIRouter(tags=["features"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]
reads = APIRouter(tags=["features"], dependencies=[Depends(authorize(Role.VIEWER, scoped=True))])


@router.post("/feature-groups", status_code=201)
def create_group(body: FeatureGroup, request: Request, caller: Caller) -> StoredGroup:
    return feature_store(request).create_group(body, actor=caller.name)


@router.get("/feature-groups")
def list_groups(request: Request) -> list[StoredGroup]:
    return feature_store(request).list_groups()


@router.get("/feature-groups/{name}")
def describe_group(name: str, request: Request) -> StoredGroup:
    """The definition, its revision, the offline table's version and the online count."""
    return feature_store(request).describe(name)


@router.put("/feature-groups/{name}")
def update_group(name: str, body: FeatureGroup, request: Request, caller: Caller) -> StoredGroup:
    """Apply a compatible change (new nullable features, metadata, TTL, flags)."""
    if body.name != name:
        raise InvalidInput(
            f"the definition names {body.name!r}, the path {name!r}: a group cannot be renamed",
            field="name",
        )
    stored, _ = feature_store(request).update_group(body, actor=caller.name)
    return stored


@router.delete("/feature-groups/{name}", status_code=204)
def delete_group(name: str, request: Request, caller: Caller) -> None:
    feature_store(request).delete_group(name, actor=caller.name)


@router.post("/feature-groups/{name}/records", status_code=201)
def put_records(
    name: str,
    body: PutRecords,
    request: Request,
    caller: Caller,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Ingest:
    """PutRecord for a batch. With an ``Idempotency-Key`` header, sending the same batch
    again (after a timeout or a crash) writes it once and answers with the same ingestion."""
    return feature_store(request).ingest(
        name,
        body.records,
        timezone=body.timezone,
        source="rest",
        idempotency_key=idempotency_key,
        actor=caller.name,
    )


@router.post("/feature-groups/{name}/records/delete")
def delete_records(name: str, body: Lookup, request: Request, principal: Caller) -> RecordDeletion:
    keys = [key_list(k) for k in body.keys]
    return feature_store(request).delete_records(name, keys, actor=principal.name)


@router.get("/feature-groups/{name}/ingests")
def list_ingests(
    name: str, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[Ingest]:
    return feature_store(request).ingests(name, limit)


@router.post("/feature-groups/{name}/materialize")
def materialize(
    name: str, body: MaterializeRequest, request: Request, caller: Caller
) -> Materialization:
    return feature_store(request).materialize(
        name, start=body.start, end=body.end, actor=caller.name
    )


@reads.post("/feature-groups/{name}/lookup", openapi_extra=READ_ONLY)
def lookup(name: str, body: Lookup, request: Request) -> RecordLookup:
    """GetRecord / BatchGetRecord: the online record of each key (null when absent)."""
    records = feature_store(request).get_records(name, [key_list(k) for k in body.keys])
    return RecordLookup(records=records)


@reads.post("/online-features", openapi_extra=READ_ONLY)
def online_features(body: OnlineFeaturesRequest, request: Request) -> OnlineFeatures:
    """Feature vectors for entity rows, assembled across groups."""
    vectors = feature_store(request).get_online_features(
        body.feature_refs, body.entity_rows, full_feature_names=body.full_feature_names
    )
    return OnlineFeatures(vectors=vectors)


@reads.post("/feature-groups/query", openapi_extra=READ_ONLY)
def query(body: QueryRequest, request: Request) -> QueryResult:
    """Read-only SQL over the groups' offline data; each group is a table of its name.
    At most ``limit`` rows as JSON; ``/feature-groups/query/arrow`` sends the whole table."""
    table = feature_store(request).query(body.sql)
    return QueryResult(
        column_names=table.column_names,
        rows=table.slice(0, body.limit).to_pylist(),
        truncated=table.num_rows > body.limit,
    )
