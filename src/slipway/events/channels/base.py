"""What every alert channel promises, and the notification they all render.

A channel is one small backend (webhook, e-mail, log) with one method, ``send``. The
service decides when to send and whether to retry; a channel only delivers once or says
why it could not, and whether trying again might help.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# How many payload fields, and how much of each, a human-readable summary shows.
_SUMMARY_FIELDS = 8
_SUMMARY_VALUE_CHARS = 120


@dataclass(frozen=True)
class Notification:
    """One alert as channels see it. ``suppressed`` counts the similar events the
    cool-down absorbed since the previous notification for the same rule and key."""

    rule: str
    severity: str
    event_type: str
    resource: str
    payload: dict[str, Any]
    time: datetime
    dedup_key: str
    suppressed: int = 0
    alert_id: int | None = None
    event_id: int | None = None
    test: bool = False

    @property
    def title(self) -> str:
        return f"[{self.severity.upper()}] {self.rule}: {self.event_type} on {self.resource}"

    def details(self) -> list[str]:
        """A few ``key: value`` lines from the payload, each kept short."""
        lines = []
        for key, value in list(self.payload.items())[:_SUMMARY_FIELDS]:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            if len(text) > _SUMMARY_VALUE_CHARS:
                text = text[: _SUMMARY_VALUE_CHARS - 1] + "…"
            lines.append(f"{key}: {text}")
        if len(self.payload) > _SUMMARY_FIELDS:
            lines.append(f"(and {len(self.payload) - _SUMMARY_FIELDS} more fields)")
        if self.suppressed:
            lines.append(f"{self.suppressed} similar event(s) suppressed since the last alert")
        return lines

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON shape of an alert (the ``alert`` of a webhook body)."""
        return {
            "id": self.alert_id,
            "rule": self.rule,
            "severity": self.severity,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "resource": self.resource,
            "payload": self.payload,
            "time": self.time.isoformat(),
            "dedup_key": self.dedup_key,
            "suppressed": self.suppressed,
            "summary": self.title,
            "test": self.test,
        }


@dataclass(frozen=True)
class Sent:
    """A delivery that succeeded: the receiver's status code (webhooks) and a note."""

    status_code: int | None = None
    detail: str = ""


class DeliveryError(Exception):
    """A delivery that failed. ``retryable`` is False when trying again cannot help (a URL
    the guard refuses, a 4xx answer, a recipient the mail server rejects)."""

    def __init__(
        self, message: str, *, retryable: bool = True, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code


class Channel(Protocol):
    def send(self, notification: Notification) -> Sent:
        """Deliver ``notification`` once, or raise :class:`DeliveryError`. Every network
        call has a timeout from the settings, so this never blocks indefinitely."""
        ...
