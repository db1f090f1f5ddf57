"""Alert channels: each kind's config model, checking a config, and opening a channel.

Kinds: ``webhook`` (:mod:`.webhook`), ``email`` (:mod:`.email`), ``log`` (:mod:`.log`).
A config is checked in full when a channel is saved — errors name ``config.<field>`` — and
parsed again before each send, so a row changed behind the service's back cannot bypass
the checks.
"""

from __future__ import annotations

from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel

from slipway.core.errors import InvalidInput
from slipway.core.settings import AlertSettings
from slipway.core.specs import parse_spec
from slipway.events.channels.base import Channel, DeliveryError, Notification, Sent
from slipway.events.channels.email import EmailChannel, EmailConfig
from slipway.events.channels.log import LogChannel, LogConfig
from slipway.events.channels.webhook import WebhookChannel, WebhookConfig
from slipway.events.urls import UrlGuard

__all__ = [
    "KINDS",
    "Channel",
    "ChannelKind",
    "DeliveryError",
    "Notification",
    "Sent",
    "check_config",
    "open_channel",
    "redacted",
]

ChannelKind = Literal["webhook", "email", "log"]
KINDS: tuple[str, ...] = get_args(ChannelKind)
_MODELS: dict[str, type[BaseModel]] = {
    "webhook": WebhookConfig,
    "email": EmailConfig,
    "log": LogConfig,
}


def _parse(kind: str, config: Any) -> BaseModel:
    model = _MODELS.get(kind)
    if model is None:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    try:
        return parse_spec(model, config if config is not None else {})
    except InvalidInput as exc:
        field = f"config.{exc.field}" if exc.field and exc.field != "body" else "config"
        errors = [{**e, "field": f"config.{e['field']}"} for e in exc.details.get("errors", [])]
        raise InvalidInput(
            f"config.{exc.message}", field=field, details={"errors": errors}
        ) from None


def normalized(kind: str, config: Any) -> dict[str, Any]:
    """The config as it would be stored, defaults filled in, without the checks that need
    the platform's settings (the URL guard, the SMTP server): what ``slipway plan``
    compares with a live channel."""
    return _parse(kind, config).model_dump(mode="json")


def check_config(kind: str, config: Any, settings: AlertSettings) -> dict[str, Any]:
    """The config in its stored form, or :class:`InvalidInput` naming the field. Webhook
    URLs go through the SSRF guard; e-mail needs an SMTP server in the settings."""
    parsed = _parse(kind, config)
    if isinstance(parsed, WebhookConfig):
        UrlGuard.of(settings).check_url(parsed.url, field="config.url")
    if isinstance(parsed, EmailConfig) and not settings.smtp.host:
        raise InvalidInput(
            "e-mail channels need an SMTP server: set alerts.smtp.host in the settings",
            field="kind",
        )
    return parsed.model_dump(mode="json")


def open_channel(kind: str, config: dict[str, Any], settings: AlertSettings) -> Channel:
    """A channel ready to send. The URL guard runs again at send time, not here."""
    parsed = _parse(kind, config)
    if isinstance(parsed, WebhookConfig):
        return WebhookChannel(parsed, settings)
    if isinstance(parsed, EmailConfig):
        return EmailChannel(parsed, settings.smtp)
    assert isinstance(parsed, LogConfig)
    return LogChannel(parsed)


def redacted(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config as shown to people: a webhook URL's path and query often are its secret
    (Slack's are), so only its scheme and host are shown."""
    if kind != "webhook" or not isinstance(config.get("url"), str):
        return dict(config)
    try:
        parts = urlsplit(config["url"])
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return {**config, "url": "***"}
    if ":" in host:
        host = f"[{host}]"
    hidden = "/***" if parts.path.strip("/") or parts.query else ""
    return {**config, "url": f"{parts.scheme}://{host}{port}{hidden}"}
