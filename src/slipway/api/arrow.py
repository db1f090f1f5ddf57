"""Tables in request and answer bodies as Arrow IPC streams, for every router that takes
or returns one (the feature store's tables, a feature view's training set).

A table body is bounded by ``server.max_table_bytes`` (:class:`~slipway.api.limits.RequestLimits`
picks that limit by the content type, so a route reading one must insist on it: a body of
another type gets 415 rather than being read under the other limit). A training set
answers with its rows as the stream and its definition, JSON, in one header, so the
remote client rebuilds the same :class:`~slipway.features.offline.training.TrainingSet`
as in process.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request, Response

from slipway.api.limits import whole_body
from slipway.core.arrowipc import ARROW_STREAM, to_ipc
from slipway.core.errors import UnsupportedMediaType
from slipway.features.offline.training import DEFINITION_HEADER, TrainingSet

__all__ = [
    "TABLE_ANSWER",
    "TABLE_BODY",
    "TRAINING_SET_ANSWER",
    "arrow_answer",
    "arrow_body",
    "training_set_answer",
]

_STREAM: dict[str, Any] = {ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}}

# ``openapi_extra`` of a route whose body is a table.
TABLE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "an Arrow IPC stream (at most the server's max_table_bytes)",
        "content": _STREAM,
    }
}

# ``responses`` of a route answering a table.
TABLE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "the table as an Arrow IPC stream", "content": _STREAM}
}

# ``responses`` of a route answering a training set (its body a table).
TRAINING_SET_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"the training set as an Arrow IPC stream; its definition (JSON)"
        f" in the {DEFINITION_HEADER} header",
        "content": _STREAM,
    },
    415: {"description": "The body is not an Arrow IPC stream"},
}


async def arrow_body(request: Request) -> bytes:
    """The request's body, an Arrow IPC stream (a dependency); 415 for another type."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != ARROW_STREAM:
        raise UnsupportedMediaType(f"send the table as {ARROW_STREAM}, not {kind or 'nothing'}")
    return await whole_body(request)  # bounded by RequestLimits


def arrow_answer(table: Any) -> Response:
    """``table`` as the answer's Arrow IPC stream."""
    return Response(memoryview(to_ipc(table)), media_type=ARROW_STREAM)


def training_set_answer(built: TrainingSet) -> Response:
    """A training set's rows as the stream, its definition in :data:`DEFINITION_HEADER`."""
    return Response(
        memoryview(to_ipc(built.data)),
        media_type=ARROW_STREAM,
        headers={DEFINITION_HEADER: json.dumps(built.definition.to_dict(), default=str)},
    )
