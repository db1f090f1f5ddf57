"""HTTPS for the planes Slipway serves: one server context from ``tls.cert_file`` and
``tls.key_file`` (TLS 1.2 or later), checked before a server starts so a wrong path or
a key that does not match its certificate is a clear error naming the setting, not a
server that dies on its first connection."""

from __future__ import annotations

import ssl
from pathlib import Path

from slipway.core.errors import InvalidInput
from slipway.core.settings import TlsSettings


def server_context(tls: TlsSettings) -> ssl.SSLContext | None:
    """The context to serve with, or None when TLS is not configured."""
    if tls.cert_file is None or tls.key_file is None:
        return None
    for field, path in (("tls.cert_file", tls.cert_file), ("tls.key_file", tls.key_file)):
        if not Path(path).is_file():
            raise InvalidInput(f"{field}: no file at {path}", field=field)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidInput(
            f"tls.cert_file and tls.key_file do not load as a PEM certificate and its key: {exc}",
            field="tls.cert_file",
        ) from None
    return context


def client_verify(tls: TlsSettings) -> ssl.SSLContext | bool:
    """What Slipway's own HTTP calls to its planes verify them against: the platform's
    certificate when it serves TLS (often self-signed), else the system's trust store."""
    if tls.cert_file is None:
        return True
    return ssl.create_default_context(cafile=tls.cert_file)
