"""Secrets hidden from what settings show: passwords in URLs and values under secret
keys, for ``slipway config show`` and logs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

_SECRET_KEYS = ("password", "secret", "token")


def mask_url(url: str) -> str:
    """Hide the password of a URL (``postgresql://u:***@h/db``); other text is unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = parts.username or ""
    masked = f"{userinfo}:***@{netloc[-1]}"
    return urlunsplit((parts.scheme, masked, parts.path, parts.query, parts.fragment))


def mask_secrets(value: Any, key: str = "") -> Any:
    """Plain data (a settings dump) with the values under secret keys replaced by ``***``
    and the passwords in URLs hidden."""
    if isinstance(value, dict):
        return {k: mask_secrets(v, k) for k, v in value.items()}
    if isinstance(value, str):
        if any(word in key.lower() for word in _SECRET_KEYS):
            return "***"
        return mask_url(value)
    return value
