"""``POST /online-features``: the feature server on the data plane.

``{"feature_refs", "entity_rows", "full_feature_names"}`` →
``{"vectors": [{"values", "missing", "stale"}]}``, the same contract as the control plane's
``POST /api/v1/online-features``, served by the gateway's workers for other services that
read features at request time (the gateway's workers scale out; the control plane does
not sit on anyone's request path).
"""

from __future__ import annotations

import orjson

from slipway.core.errors import InvalidInput
from slipway.core.settings import ServingSettings
from slipway.core.workspace import DEFAULT_WORKSPACE
from slipway.features.store import FeatureStore
from slipway.serving.gateway.asgi import Receive, Scope, Send, load_json, read_body, respond

MAX_ENTITY_ROWS = 10_000  # per online-features request


class OnlineFeatures:
    """The online-features route of one worker, over its feature store."""

    def __init__(self, features: FeatureStore, limits: ServingSettings) -> None:
        self.features = features
        self.limits = limits

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, workspace: str = DEFAULT_WORKSPACE
    ) -> None:
        """Answer one request, reading ``workspace``'s feature groups."""
        body = load_json(
            await read_body(scope, receive, self.limits.max_body_bytes),
            self.limits.max_json_depth,
        )
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        unknown = set(body) - {"feature_refs", "entity_rows", "full_feature_names"}
        if unknown:
            raise InvalidInput(
                f"unknown field(s) {sorted(unknown)}", field=sorted(unknown)[0] or "body"
            )
        refs = body.get("feature_refs")
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise InvalidInput(
                "feature_refs must be a non-empty list of group:feature", field="feature_refs"
            )
        rows = body.get("entity_rows")
        limit = MAX_ENTITY_ROWS
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise InvalidInput(
                "entity_rows must be a non-empty list of objects", field="entity_rows"
            )
        if len(rows) > limit:
            raise InvalidInput(f"at most {limit} entity rows per request", field="entity_rows")
        full = body.get("full_feature_names", False)
        if not isinstance(full, bool):
            raise InvalidInput(
                "full_feature_names must be true or false", field="full_feature_names"
            )
        features = self.features.in_workspace(workspace)
        vectors = features.get_online_features(refs, rows, full_feature_names=full)
        payload = {
            "vectors": [
                {"values": v.values, "missing": v.missing, "stale": v.stale} for v in vectors
            ]
        }
        await respond(send, 200, orjson.dumps(payload))
