"""Invoking an endpoint from Python: one HTTP request to the gateway (the data plane).

The control plane never runs a model (DESIGN.md §3), so the embedded API and the remote
client both send invocations where every other caller does: the gateway's SageMaker-style
``POST /endpoints/{name}/invocations``. The gateway's errors have the control plane's
shape, so they come back as the same :class:`~slipway.core.errors.SlipwayError`
subclasses (a bad payload is an :class:`~slipway.core.errors.InvalidInput` naming the
field).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pandas as pd

from slipway.core.errors import BackendUnavailable, InvalidInput, error_from
from slipway.core.settings import ServingSettings
from slipway.core.workspace import DEFAULT_WORKSPACE, split_scoped, validate_scoped_name
from slipway.serving.resources import Prediction

# Addresses a server binds to that a client cannot connect to as such.
_ANY_ADDRESS = ("0.0.0.0", "::", "")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

Payload = Mapping[str, Any] | pd.DataFrame | str


def gateway_url(
    serving: ServingSettings, *, reached_at: str | None = None, scheme: str = "http"
) -> str:
    """The base URL of the gateway that ``serving`` describes, as a client reaches it
    (``scheme`` ``https`` when the platform serves TLS).

    A gateway listening on every interface is reached on loopback from its own machine;
    ``reached_at``, the host a remote caller reached the control plane at, replaces that
    (``slipway up`` runs both on one machine)."""
    host = serving.host
    if host in _ANY_ADDRESS:
        host = reached_at if reached_at and reached_at not in _LOOPBACK else "127.0.0.1"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}:{serving.port}"


def invocation_url(gateway: str, endpoint: str) -> str:
    """Where the invocations of ``endpoint`` (a scoped name: ``<workspace>/<name>``, or
    the bare name of the default workspace's) go on the gateway at ``gateway``."""
    workspace, name = split_scoped(endpoint)
    prefix = "" if workspace == DEFAULT_WORKSPACE else f"/workspaces/{workspace}"
    return f"{gateway.rstrip('/')}{prefix}/endpoints/{name}/invocations"


def encode(payload: Payload) -> tuple[bytes, str]:
    """The request body and its content type: a DataFrame goes as MLflow's
    ``dataframe_split``, a mapping as JSON (any of MLflow's formats), a string as CSV."""
    if isinstance(payload, pd.DataFrame):
        split = json.loads(payload.to_json(orient="split", index=False, date_format="iso"))
        body = {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
        return json.dumps(body).encode(), "application/json"
    if isinstance(payload, str):
        return payload.encode(), "text/csv"
    if isinstance(payload, Mapping):
        try:
            return json.dumps(dict(payload)).encode(), "application/json"
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"the payload is not JSON: {exc}", field="payload") from None
    raise InvalidInput(
        "give the payload as a DataFrame, a mapping in one of MLflow's JSON formats"
        f" (dataframe_split, dataframe_records, instances, inputs) or CSV text, not"
        f" {type(payload).__name__}",
        field="payload",
    )


def invoke(
    gateway: str | Callable[[], str],
    endpoint: str,
    payload: Payload,
    *,
    variant: str | None = None,
    target_model: str | None = None,
    inference_id: str | None = None,
    timeout: float = 60.0,
    token: str | None = None,
    verify: ssl.SSLContext | bool = True,
) -> Prediction:
    """Send ``payload`` to ``endpoint`` (a scoped name) on the gateway at ``gateway`` (a
    URL, or what looks it up once the payload is known to be good); decode the answer.

    ``variant`` pins a production variant (SageMaker's TargetVariant), ``target_model``
    picks the model of a multi-model endpoint, ``inference_id`` is captured with the
    request (send ground truth under it); ``token`` is the API token the gateway asks for
    with auth on (granted ``invoke`` on the endpoint); ``verify`` the certificate (file)
    an HTTPS gateway is trusted by. Not retried: a repeated invocation would be captured
    twice."""
    validate_scoped_name(endpoint, field="endpoint")
    content, content_type = encode(payload)
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for header, value in (
        ("X-Slipway-Target-Variant", variant),
        ("X-Slipway-Target-Model", target_model),
        ("X-Slipway-Inference-Id", inference_id),
    ):
        if value:
            headers[header] = value
    if callable(gateway):
        gateway = gateway()
    url = invocation_url(gateway, endpoint)
    try:
        response = httpx.post(url, content=content, headers=headers, timeout=timeout, verify=verify)
    except httpx.TransportError as exc:
        raise BackendUnavailable(f"the gateway at {gateway} did not answer: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise error_from(response.status_code, body)
    if not isinstance(body, dict) or "predictions" not in body:
        raise BackendUnavailable(f"the gateway at {gateway} answered without predictions")
    served = response.headers
    return Prediction(
        endpoint=split_scoped(endpoint)[1],
        predictions=list(body["predictions"]),
        classes=body.get("classes"),
        variant=served.get("x-slipway-variant", ""),
        model=served.get("x-slipway-model-version", ""),
        config_version=int(served.get("x-slipway-config-version", "0") or 0),
        inference_id=served.get("x-slipway-inference-id", ""),
    )


__all__ = ["Payload", "encode", "gateway_url", "invocation_url", "invoke"]
