"""E-mail alerts over SMTP: a plain-text message naming the rule and the resource.

The server, sender and credentials are the operator's (``alerts.smtp`` in the settings);
a channel only lists recipients, so no channel can carry or read a password. Replies
from the server decide retries: 4xx and network errors may be retried, 5xx may not.
"""

from __future__ import annotations

import json
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slipway.core.settings import SmtpSettings
from slipway.events.channels.base import DeliveryError, Notification, Sent

_ADDRESS = re.compile(r"[^@\s<>,;\"']+@[^@\s<>,;\"']+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_RECIPIENTS = 50


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: list[str] = Field(min_length=1, max_length=MAX_RECIPIENTS, description="recipients")

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not _ADDRESS.fullmatch(address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return list(dict.fromkeys(value))


def subject_of(notification: Notification) -> str:
    """One header line: control characters (a resource may hold any) become spaces."""
    n = notification
    subject = f"[Slipway {n.severity.upper()}] {n.rule}: {n.event_type} on {n.resource}"
    if n.test:
        subject = f"[Slipway] test notification for {n.resource}"
    return _CONTROL.sub(" ", subject)[:200]


def body_of(notification: Notification) -> str:
    lines = [
        notification.title,
        "",
        f"Rule:      {notification.rule}",
        f"Severity:  {notification.severity}",
        f"Event:     {notification.event_type} (id {notification.event_id or '-'})",
        f"Resource:  {notification.resource}",
        f"Time:      {notification.time.isoformat()}",
        f"Dedup key: {notification.dedup_key}",
    ]
    if notification.suppressed:
        lines.append(f"Suppressed since the last alert: {notification.suppressed}")
    lines += ["", "Payload:", json.dumps(notification.payload, indent=2, default=str)]
    if notification.test:
        lines += ["", "This is a test notification sent from Slipway."]
    return "\n".join(lines) + "\n"


def message_of(config: EmailConfig, smtp: SmtpSettings, notification: Notification) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = ", ".join(config.to)
    message["Subject"] = subject_of(notification)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
    message.set_content(body_of(notification))
    return message


class EmailChannel:
    def __init__(self, config: EmailConfig, smtp: SmtpSettings) -> None:
        self.config = config
        self.smtp = smtp

    def send(self, notification: Notification) -> Sent:
        smtp = self.smtp
        if not smtp.host:
            raise DeliveryError("alerts.smtp.host is not set in the settings", retryable=False)
        message = message_of(self.config, smtp, notification)
        client_class = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
        try:
            with client_class(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
                if smtp.starttls and not smtp.ssl:
                    client.starttls(context=ssl.create_default_context())
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
                refused = client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"the mail server refused every recipient: {_reasons(exc.recipients)}",
                retryable=all(400 <= code < 500 for code in codes),
            ) from None
        except smtplib.SMTPResponseException as exc:
            reason = _text(exc.smtp_error)
            raise DeliveryError(
                f"the mail server answered {exc.smtp_code} {reason}".strip(),
                retryable=exc.smtp_code < 500,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        # Some recipients accepted: retrying would mail them twice, so this is delivered.
        detail = f"refused: {_reasons(refused)}" if refused else ""
        return Sent(detail=detail)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _reasons(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address} ({code} {_text(reason)})" for address, (code, reason) in refused.items()
    )
