"""Open the online store a URL names: ``sqlite:///path`` or ``redis[s]://host:port/db``."""

from __future__ import annotations

from slipway.core.errors import InvalidInput
from slipway.core.settings import mask_url
from slipway.features.online.base import OnlineStore
from slipway.features.online.sqlite import SQLiteOnlineStore


def open_online_store(url: str) -> OnlineStore:
    """The store for ``url``, chosen by its scheme.

    Raises :class:`InvalidInput` (field ``online_store.url``) for any other scheme or a
    malformed URL. Opening a Redis store does not connect; call ``ping()`` to check it.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return SQLiteOnlineStore.from_url(url)
    if scheme in {"redis", "rediss"}:
        # Imported here: Redis's client (and the tracing it pulls in) loads only in a
        # process whose store is Redis, not in every one on the SQLite default.
        from slipway.features.online.redis import RedisOnlineStore

        return RedisOnlineStore(url)
    raise InvalidInput(
        f"online store url {mask_url(url)!r} must be sqlite:///path or redis://host:port/db",
        field="online_store.url",
    )
