"""Alert channels, rules and fired alerts through the control plane: the methods of the
embedded :class:`~slipway.events.alerts.Alerts`, with their arguments and return types.

The ``actor`` arguments of the embedded methods are accepted and not sent: the server
records the token's holder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slipway.client.transport import Transport
from slipway.core.resource import Listing
from slipway.events.resources import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertRule,
    ChannelTest,
    RuleUpdate,
)
from slipway.events.rules import RuleSpec


def _body(spec: RuleSpec | Mapping[str, Any]) -> Any:
    if isinstance(spec, RuleUpdate):
        return spec.model_dump(mode="json", exclude_unset=True)
    if isinstance(spec, RuleSpec):
        return spec.model_dump(mode="json")
    return dict(spec)


class RemoteAlerts:
    """:class:`~slipway.events.alerts.Alerts` over HTTP.

    Left out, as it only makes sense in process: ``process`` (the scheduler turns events
    into alerts and delivers them).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # -- channels ----------------------------------------------------------------------

    def create_channel(
        self, name: str, kind: str, config: dict[str, Any] | None, *, actor: str = ""
    ) -> AlertChannel:
        body = {"name": name, "kind": kind, "config": config or {}}
        response = self.transport.request("POST", "/alerts/channels", json=body)
        return AlertChannel.model_validate(response.json())

    def update_channel(
        self, name: str, config: dict[str, Any] | None, *, actor: str | None = None
    ) -> AlertChannel:
        response = self.transport.request(
            "PUT", f"/alerts/channels/{name}", json={"config": config or {}}
        )
        return AlertChannel.model_validate(response.json())

    def channel(self, name: str) -> AlertChannel:
        response = self.transport.request("GET", f"/alerts/channels/{name}")
        return AlertChannel.model_validate(response.json())

    def channels(self) -> Listing[AlertChannel]:
        response = self.transport.request("GET", "/alerts/channels")
        return Listing(AlertChannel.model_validate(c) for c in response.json())

    def delete_channel(self, name: str, *, actor: str | None = None) -> None:
        self.transport.request("DELETE", f"/alerts/channels/{name}")

    def test(self, name: str, *, actor: str | None = None) -> ChannelTest:
        """Send a test notification now, once (never retried: it would send twice)."""
        response = self.transport.request("POST", f"/alerts/channels/{name}/test")
        return ChannelTest.model_validate(response.json())

    # -- rules -------------------------------------------------------------------------

    def create_rule(self, spec: RuleSpec | Mapping[str, Any], *, actor: str = "") -> AlertRule:
        response = self.transport.request("POST", "/alerts/rules", json=_body(spec))
        return AlertRule.model_validate(response.json())

    def update_rule(
        self, name: str, spec: RuleSpec | Mapping[str, Any], *, actor: str | None = None
    ) -> AlertRule:
        response = self.transport.request("PUT", f"/alerts/rules/{name}", json=_body(spec))
        return AlertRule.model_validate(response.json())

    def set_rule_enabled(self, name: str, enabled: bool, *, actor: str | None = None) -> AlertRule:
        action = "enable" if enabled else "disable"
        # Idempotent: enabling twice leaves it enabled, so a lost answer may be retried.
        response = self.transport.request("POST", f"/alerts/rules/{name}/{action}", repeatable=True)
        return AlertRule.model_validate(response.json())

    def rule(self, name: str) -> AlertRule:
        response = self.transport.request("GET", f"/alerts/rules/{name}")
        return AlertRule.model_validate(response.json())

    def rules(self) -> Listing[AlertRule]:
        response = self.transport.request("GET", "/alerts/rules")
        return Listing(AlertRule.model_validate(r) for r in response.json())

    def delete_rule(self, name: str, *, actor: str | None = None) -> None:
        self.transport.request("DELETE", f"/alerts/rules/{name}")

    # -- fired alerts ------------------------------------------------------------------

    def fired(self, *, rule: str | None = None, limit: int = 50) -> Listing[Alert]:
        """Fired alerts, newest first, each with its deliveries."""
        params: dict[str, Any] = {"limit": limit}
        if rule is not None:
            params["rule"] = rule
        response = self.transport.request("GET", "/alerts/fired", params=params)
        return Listing(Alert.model_validate(a) for a in response.json())

    def alert(self, alert_id: int) -> Alert:
        response = self.transport.request("GET", f"/alerts/fired/{alert_id}")
        return Alert.model_validate(response.json())

    def deliveries_of(self, alert_ids: list[int]) -> dict[int, list[AlertDelivery]]:
        """Each alert's deliveries, in channel order of the rule (one request per alert;
        :meth:`fired` and :meth:`alert` carry them already)."""
        return {a: list(self.alert(a).deliveries) for a in alert_ids}


__all__ = ["RemoteAlerts"]
