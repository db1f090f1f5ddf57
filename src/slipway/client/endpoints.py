"""Serving endpoints through the control plane, and invocations through the gateway: the
methods of the embedded :class:`~slipway.serving.service.Endpoints`, with its arguments
and return types.

Writes (create, update, rollback, delete) go to the control plane, which stores a config
and returns at once; :meth:`RemoteEndpoints.wait` follows the rollout. :meth:`invoke`
goes where every client's invocations go, the gateway (the data plane): its URL is the
``url`` the control plane reports for the endpoint, looked up once per endpoint.

Left out, as in-process only: ``resolve`` and ``finish_delete`` (the service's and the
deployment controller's helpers). ``actor`` is accepted for the embedded signature's sake
and ignored: the server records the token's holder.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from slipway.client.transport import Transport
from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.waiting import wait_until_final
from slipway.serving import invoke as invocations
from slipway.serving.resources import Deployment, Endpoint, EndpointStats, Prediction
from slipway.serving.service import SETTLED, settled
from slipway.serving.spec import EndpointSpec


def _body(spec: EndpointSpec | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(spec, EndpointSpec):
        return spec.model_dump(mode="json")
    return dict(spec)


class RemoteEndpoints:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        # endpoint -> the gateway serving it, as the control plane reported it
        self._gateways: dict[str, str] = {}

    # -- writes --------------------------------------------------------------------------

    def create(
        self, spec: EndpointSpec | Mapping[str, Any], *, actor: str | None = None
    ) -> Endpoint:
        """Store ``spec`` as config 1 of a new endpoint (status Creating)."""
        response = self.transport.request("POST", "/endpoints", json=_body(spec))
        return self._seen(Endpoint.model_validate(response.json()))

    def update(
        self, name: str, spec: EndpointSpec | Mapping[str, Any], *, actor: str | None = None
    ) -> Endpoint:
        """Store ``spec`` as the next config and roll it out with the strategy of its
        ``deployment`` (all at once, canary or linear)."""
        validate_name(name, field="endpoint")
        response = self.transport.request("PUT", f"/endpoints/{name}", json=_body(spec))
        return self._seen(Endpoint.model_validate(response.json()))

    def rollback(
        self, name: str, *, to_version: int | None = None, actor: str | None = None
    ) -> Endpoint:
        """Deploy an earlier config again (the one before the active one by default)."""
        validate_name(name, field="endpoint")
        response = self.transport.request(
            "POST", f"/endpoints/{name}/rollback", json={"to_version": to_version}
        )
        return self._seen(Endpoint.model_validate(response.json()))

    def delete(self, name: str, *, actor: str | None = None) -> None:
        validate_name(name, field="endpoint")
        self.transport.request("DELETE", f"/endpoints/{name}")
        self._gateways.pop(name, None)

    # -- reads ---------------------------------------------------------------------------

    def describe(self, name: str) -> Endpoint:
        validate_name(name, field="endpoint")
        response = self.transport.request("GET", f"/endpoints/{name}")
        return self._seen(Endpoint.model_validate(response.json()))

    def list(self) -> Listing[Endpoint]:
        response = self.transport.request("GET", "/endpoints")
        return Listing(self._seen(Endpoint.model_validate(e)) for e in response.json())

    def history(self, name: str) -> Listing[Deployment]:
        validate_name(name, field="endpoint")
        response = self.transport.request("GET", f"/endpoints/{name}/history")
        return Listing(Deployment.model_validate(d) for d in response.json())

    def config(self, name: str, version: int) -> EndpointSpec:
        validate_name(name, field="endpoint")
        response = self.transport.request("GET", f"/endpoints/{name}/configs/{version}")
        return EndpointSpec.model_validate(response.json())

    def stats(
        self, name: str, *, since: datetime | None = None, config_version: int | None = None
    ) -> EndpointStats:
        """Requests, errors, latency percentiles (within 1%) and prediction mean per
        variant, summed over every gateway worker, since ``since`` (with a time zone) and
        for ``config_version`` when given; no variants without traffic."""
        validate_name(name, field="endpoint")
        params: dict[str, Any] = {}
        if since is not None:
            if since.tzinfo is None:  # as the embedded service says (the server: query.since)
                raise InvalidInput("since needs a time zone (e.g. Z or +02:00)", field="since")
            params["since"] = since.isoformat()
        if config_version is not None:
            params["config_version"] = config_version
        response = self.transport.request("GET", f"/endpoints/{name}/stats", params=params)
        return EndpointStats.model_validate(response.json())

    def wait(self, name: str, timeout: float = 600.0, interval: float = 1.0) -> Endpoint:
        """Poll until no rollout is under way (InService, Failed or Deleting);
        ``TimeoutError`` after ``timeout`` seconds. A rolled-back or failed update leaves
        the endpoint InService: ``latest.outcome`` says how the newest config ended."""
        return wait_until_final(
            lambda: self.describe(name),
            settled,
            SETTLED,
            what=f"endpoint {name}",
            timeout=timeout,
            interval=interval,
        )

    # -- the data plane ------------------------------------------------------------------

    def invoke(
        self,
        name: str,
        payload: invocations.Payload,
        *,
        variant: str | None = None,
        target_model: str | None = None,
        inference_id: str | None = None,
        timeout: float = 60.0,
    ) -> Prediction:
        """Predict with the endpoint: ``payload`` (a DataFrame, a mapping in one of
        MLflow's JSON formats, or CSV text) goes to the gateway's invocations."""
        return invocations.invoke(
            lambda: self._gateway(name),
            name,
            payload,
            variant=variant,
            target_model=target_model,
            inference_id=inference_id,
            timeout=timeout,
            token=self.transport.token,
        )

    def _gateway(self, name: str) -> str:
        if name not in self._gateways:
            self.describe(name)  # NotFound for an unknown endpoint, as the gateway says
        return self._gateways[name]

    def _seen(self, endpoint: Endpoint) -> Endpoint:
        """Remember which gateway serves ``endpoint`` (the control plane reports its
        invocation URL as this client reaches it)."""
        suffix = f"/endpoints/{endpoint.name}/invocations"
        if endpoint.url.endswith(suffix):
            self._gateways[endpoint.name] = endpoint.url.removesuffix(suffix)
        return endpoint


__all__ = ["RemoteEndpoints"]
