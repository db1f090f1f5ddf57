"""Alert channels and rules as spec documents."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from slipway.apply.kinds.base import Kind, Live, Platform, Reference, dump
from slipway.events.channels import normalized, redacted
from slipway.events.resources import ChannelCreate
from slipway.events.rules import RuleSpec


class AlertChannelKind(Kind):
    """``kind: AlertChannel`` — name, kind and config. A webhook's URL path is shown by
    the platform as ``/***`` (it is often the secret), so plan compares what both sides
    show, and the ownership digest (taken of the whole config) catches a changed path."""

    name = "AlertChannel"
    model = ChannelCreate
    renamed = {"type": "kind"}  # noqa: RUF012 (a class constant)
    hidden = True

    def desired(self, spec: BaseModel, platform: Platform) -> dict[str, Any]:
        assert isinstance(spec, ChannelCreate)
        config = normalized(spec.kind, spec.config)
        return {"name": spec.name, "kind": spec.kind, "config": redacted(spec.kind, config)}

    def full(self, spec: BaseModel) -> dict[str, Any]:
        assert isinstance(spec, ChannelCreate)
        return {"name": spec.name, "kind": spec.kind, "config": normalized(spec.kind, spec.config)}

    def check_update(self, live: Live, spec: BaseModel) -> str | None:
        assert isinstance(spec, ChannelCreate)
        if live.spec["kind"] != spec.kind:
            return f"a channel's kind cannot change ({live.spec['kind']} → {spec.kind})"
        return None

    def live_all(self, platform: Platform) -> dict[str, Live]:
        return {
            c.name: Live({"name": c.name, "kind": c.kind, "config": c.config})
            for c in platform.alerts.channels()
        }

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        assert isinstance(spec, ChannelCreate)
        platform.alerts.create_channel(spec.name, spec.kind, spec.config, actor=actor)

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        assert isinstance(spec, ChannelCreate)
        platform.alerts.update_channel(spec.name, spec.config, actor=actor)

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        platform.alerts.delete_channel(name, actor=actor)


class AlertRuleKind(Kind):
    """``kind: AlertRule`` — the fields of an alert rule; an update keeps its counts."""

    name = "AlertRule"
    model = RuleSpec

    def references(self, spec: BaseModel) -> list[Reference]:
        assert isinstance(spec, RuleSpec)
        return [
            Reference(("channels", i), "AlertChannel", channel)
            for i, channel in enumerate(spec.channels)
        ]

    def live_all(self, platform: Platform) -> dict[str, Live]:
        fields = RuleSpec.model_fields
        return {
            r.name: Live({f: v for f, v in dump(r).items() if f in fields})
            for r in platform.alerts.rules()
        }

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.alerts.create_rule(spec, actor=actor)

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        assert isinstance(spec, RuleSpec)
        platform.alerts.update_rule(spec.name, spec, actor=actor)

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        platform.alerts.delete_rule(name, actor=actor)
