"""Webhook alerts: an HTTP POST of JSON, in Slipway's shape or Slack's.

Slipway's shape (``format: json``) is ``{"alert": {...}}`` as
:meth:`~slipway.events.channels.base.Notification.as_dict` documents it. ``format: slack``
sends ``{"text", "blocks"}``, which Slack's incoming webhooks (and Mattermost's, which read
``text``) accept.

A 2xx answer is a delivery. Redirects are followed by hand, at most
``alerts.max_redirects`` hops, each hop checked by the URL guard before the request and
again when connecting. 408, 425, 429 and 5xx answers and network errors may be retried;
other 4xx answers and refused URLs may not.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field

from slipway import __version__
from slipway.core.settings import AlertSettings
from slipway.events.channels.base import DeliveryError, Notification, Sent
from slipway.events.urls import UnsafeUrl, UrlGuard, guarded_client

_RETRYABLE_STATUS = frozenset({408, 425, 429})
_ERROR_BODY_CHARS = 300


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="http(s) URL to POST to")
    format: Literal["json", "slack"] = Field(
        default="json", description="json: Slipway's alert shape; slack: text and blocks"
    )


def slack_body(notification: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` for notifications, ``blocks`` to read."""
    details = "\n".join(notification.details()) or "(no payload)"
    context = (
        f"rule *{notification.rule}* · event {notification.event_id or '-'} ·"
        f" {notification.time.isoformat()}"
    )
    return {
        "text": notification.title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{notification.title}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{details}```"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def body_of(config: WebhookConfig, notification: Notification) -> dict[str, Any]:
    if config.format == "slack":
        return slack_body(notification)
    return {"alert": notification.as_dict()}


class WebhookChannel:
    def __init__(self, config: WebhookConfig, settings: AlertSettings) -> None:
        self.config = config
        self.settings = settings
        self.guard = UrlGuard.of(settings)  # as the platform listens now, at each send

    def send(self, notification: Notification) -> Sent:
        content = orjson.dumps(body_of(self.config, notification))
        headers = {
            "content-type": "application/json",
            "user-agent": f"slipway/{__version__}",
        }
        url = self.config.url
        try:
            with guarded_client(self.guard, self.settings.timeout_seconds) as client:
                for _hop in range(self.settings.max_redirects + 1):
                    self.guard.check_url(url, field="config.url")
                    # Streamed: only the start of an answer is read, however long it is.
                    with client.stream("POST", url, content=content, headers=headers) as response:
                        if not response.is_redirect:
                            return _outcome(response.status_code, _start_of(response))
                        location = response.headers.get("location", "")
                        url = str(response.url.join(location))
        except UnsafeUrl as exc:
            raise DeliveryError(exc.message, retryable=False) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        raise DeliveryError(f"more than {self.settings.max_redirects} redirects", retryable=False)


def _start_of(response: httpx.Response) -> str:
    head = b""
    for chunk in response.iter_bytes():
        head += chunk
        if len(head) >= _ERROR_BODY_CHARS:
            break
    return head[:_ERROR_BODY_CHARS].decode("utf-8", "replace").strip()


def _outcome(status: int, text: str) -> Sent:
    if 200 <= status < 300:
        return Sent(status_code=status)
    raise DeliveryError(
        f"the webhook answered {status}" + (f": {text}" if text else ""),
        retryable=status >= 500 or status in _RETRYABLE_STATUS,
        status_code=status,
    )
