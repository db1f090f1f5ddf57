"""The remote Python client: a shared Slipway's control plane, used like the embedded
platform.

    import slipway
    client = slipway.Client("https://slipway.example.com", token="...")
    built = client.features.training_set(entities, ["weather:*", "planes:seats"])

:func:`connect` returns the remote client when ``SLIPWAY_URL`` is set (with
``SLIPWAY_TOKEN``), and the embedded platform otherwise, so the same code runs on a laptop
and against a server. Each capability is an attribute with the embedded service's
methods, arguments and return types; errors are the same
:class:`~slipway.core.errors.SlipwayError` subclasses with the same messages.
"""

from __future__ import annotations

import os
from typing import Any

from slipway.client.features import RemoteFeatureStore
from slipway.client.transport import Transport


class Client:
    """A control plane at ``url`` (``http(s)://host:port``), as ``token``'s holder."""

    def __init__(
        self, url: str, *, token: str | None = None, timeout: float = 60.0, retries: int = 3
    ) -> None:
        self.transport = Transport(url, token=token, timeout=timeout, retries=retries)
        self.features = RemoteFeatureStore(self.transport)

    @property
    def url(self) -> str:
        return self.transport.url

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def connect(url: str | None = None, *, token: str | None = None) -> Any:
    """The platform to use: a :class:`Client` of ``url`` (or ``SLIPWAY_URL``) when one is
    given, else the embedded platform opened from settings (``SLIPWAY_*``)."""
    url = url or os.environ.get("SLIPWAY_URL")
    if url:
        return Client(url, token=token or os.environ.get("SLIPWAY_TOKEN"))
    from slipway.core.settings import load_settings
    from slipway.services import Services

    return Services.open(load_settings())


__all__ = ["Client", "connect"]
