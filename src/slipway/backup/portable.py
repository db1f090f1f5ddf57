"""The settings an archive keeps: everything but secrets.

Passwords, tokens and secrets in any area (``kafka.sasl_password``,
``alerts.smtp.password`` …) are dropped, not masked, and so is the password of every URL
(``postgresql://u:pw@h/db`` becomes ``postgresql://u@h/db``). What the platform needs to
authenticate its own users survives in the database: API tokens are stored as SHA-256
hashes, so restored tokens keep working and no secret is in the archive. A restore never
applies these settings (the target machine's own decide where things go); it keeps them
beside the restored home for the operator to compare.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from slipway.core.settings import Settings

_SECRET_WORDS = ("password", "secret", "token")


def without_password(url: str) -> str:
    """``url`` with any password removed from its user info; other text unchanged."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return url
    if not has_password:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{parts.username}@{host}" if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def portable_settings(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with every secret dropped."""
    scrubbed: dict[str, Any] = _scrub(settings.model_dump(mode="json"))
    return scrubbed


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _scrub(item)
            for key, item in value.items()
            if not any(word in key.lower() for word in _SECRET_WORDS)
        }
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, str):
        return without_password(value)
    return value
