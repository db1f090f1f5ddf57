"""Tables over REST as Arrow IPC streams: ingesting a DataFrame-sized table into a feature
group, point-in-time training sets, SQL results and a group's offline rows. JSON rows cost
more to build and parse than the work itself at these sizes and lose types; the remote
client (slipway.client) uses these.

Bodies are bounded by ``server.max_table_bytes`` (not ``max_body_bytes``, which bounds
JSON); a body of another content type gets 415.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from slipway.api.arrow import (
    TABLE_ANSWER,
    TABLE_BODY,
    TRAINING_SET_ANSWER,
    arrow_answer,
    arrow_body,
    training_set_answer,
)
from slipway.api.auth import READ_ONLY, Principal, authorize, feature_store
from slipway.core.arrowipc import from_ipc
from slipway.core.errors import InvalidInput
from slipway.features.resources import Ingest, IsoTime, TableQuery
from slipway.security.tokens import Role

_editor = authorize(Role.EDITOR, scoped=True)  # one object, so FastAPI resolves it once per request
writes = APIRouter(tags=["features"], dependencies=[Depends(_editor)])
Editor = Annotated[Principal, Depends(_editor)]
reads = APIRouter(tags=["features"], dependencies=[Depends(authorize(Role.VIEWER, scoped=True))])


@writes.post(
    "/feature-groups/{name}/records/arrow",
    status_code=201,
    openapi_extra=TABLE_BODY,
    responses={415: {"description": "The body is not an Arrow IPC stream"}},
)
def ingest_table(
    name: str,
    request: Request,
    body: Annotated[bytes, Depends(arrow_body)],
    caller: Editor,
    timezone: str | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Ingest:
    """Ingest a table of records (any number of rows) as one ingestion, validated whole;
    with an ``Idempotency-Key``, sending it again writes it once."""
    return feature_store(request).ingest(
        name,
        from_ipc(body, field="body"),
        timezone=timezone,
        source="rest",
        idempotency_key=idempotency_key,
        actor=caller.name,
    )


def _versions(text: str | None) -> dict[str, int] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInput("versions must be a JSON object", field="versions") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        raise InvalidInput('versions must map groups to versions: {"group": 3}', field="versions")
    return value


@reads.post(
    "/training-sets",
    openapi_extra=TABLE_BODY | READ_ONLY,
    response_class=Response,
    responses=TRAINING_SET_ANSWER,
)
def training_set(
    request: Request,
    body: Annotated[bytes, Depends(arrow_body)],
    feature_refs: Annotated[list[str], Query(min_length=1, max_length=10_000)],
    timestamp_column: str = "event_timestamp",
    ttl_seconds: Annotated[float | None, Query(gt=0)] = None,
    versions: Annotated[str | None, Query(description='JSON: {"group": version}')] = None,
    full_feature_names: bool = False,
    as_known_at: Annotated[
        bool, Query(description="only feature rows ingested by each row's time count")
    ] = False,
) -> Response:
    """Point-in-time-correct features for each entity row of the body (the entity table):
    the same as ``FeatureStore.training_set`` in process."""
    built = feature_store(request).training_set(
        from_ipc(body, field="entities"),
        feature_refs,
        timestamp_column=timestamp_column,
        ttl=timedelta(seconds=ttl_seconds) if ttl_seconds is not None else None,
        versions=_versions(versions),
        full_feature_names=full_feature_names,
        as_known_at=as_known_at,
    )
    return training_set_answer(built)


@reads.post(
    "/feature-groups/query/arrow",
    openapi_extra=READ_ONLY,
    response_class=Response,
    responses=TABLE_ANSWER,
)
def query_table(body: TableQuery, request: Request) -> Response:
    """Read-only SQL over the groups' offline data, the whole result as Arrow: the same
    as ``FeatureStore.query`` in process."""
    return arrow_answer(feature_store(request).query(body.sql))


@reads.get("/feature-groups/{name}/offline", response_class=Response, responses=TABLE_ANSWER)
def read_offline(
    name: str,
    request: Request,
    version: Annotated[int | None, Query(ge=0)] = None,
    as_of: Annotated[IsoTime | None, Query(description="ISO 8601 time")] = None,
) -> Response:
    """A group's offline rows, now or as of a Delta version or a time."""
    return arrow_answer(feature_store(request).read_offline(name, version=version, as_of=as_of))
