"""Pipeline triggers through the control plane: the methods of the embedded
:class:`~slipway.events.triggers.Triggers`, with their arguments and return types."""

from __future__ import annotations

from typing import Any

from slipway.client.transport import Transport, listing
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
from slipway.events.resources import Trigger, TriggerSpec


class RemoteTriggers:
    """``client.triggers``. Left out, being in-process only: ``process`` (the scheduler's
    reading of the event log, run by ``slipway up`` / ``slipway scheduler``). ``actor`` is
    accepted for the embedded signatures' sake and not sent: the server audits the
    token's holder."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def create(
        self,
        name: str,
        pipeline: str,
        event_type: str,
        *,
        filters: dict[str, Any] | None = None,
        parameter_mapping: dict[str, str] | None = None,
        debounce_seconds: float = 0.0,
        actor: str | None = None,
    ) -> Trigger:
        del actor  # the server's caller
        body = TriggerSpec.model_construct(
            name=name,
            pipeline=pipeline,
            event_type=event_type,
            filters=filters or {},
            parameter_mapping=parameter_mapping or {},
            debounce_seconds=debounce_seconds,
        )
        answer = self.transport.request("POST", "/triggers", json=body.model_dump(mode="json"))
        return Trigger.model_validate(answer.json())

    def update(self, spec: TriggerSpec | dict[str, Any], *, actor: str | None = None) -> Trigger:
        """Replace the definition of the trigger ``spec.name`` (``PUT /triggers/{name}``);
        its enabled state and firings stay. The spec is parsed here (the same errors as
        the embedded service's) to name the path; the server checks it again and the
        pipeline it names."""
        del actor  # the server's caller
        trigger = parse_spec(TriggerSpec, spec)
        name = validate_name(trigger.name, field="name")
        # Replacing with the same definition twice is the same as once: safe to resend.
        answer = self.transport.request(
            "PUT", f"/triggers/{name}", json=trigger.model_dump(mode="json")
        )
        return Trigger.model_validate(answer.json())

    def get(self, name: str) -> Trigger:
        return Trigger.model_validate(self.transport.request("GET", f"/triggers/{name}").json())

    def all(self) -> Listing[Trigger]:
        return listing(Trigger, self.transport.request("GET", "/triggers").json())

    def set_enabled(self, name: str, enabled: bool, *, actor: str | None = None) -> Trigger:
        del actor  # the server's caller
        action = "enable" if enabled else "disable"
        # Setting a flag twice is the same as once: safe to send again.
        response = self.transport.request("POST", f"/triggers/{name}/{action}", repeatable=True)
        return Trigger.model_validate(response.json())

    def delete(self, name: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        self.transport.request("DELETE", f"/triggers/{name}")


__all__ = ["RemoteTriggers"]
