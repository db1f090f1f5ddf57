"""Keeping webhook URLs from turning the platform against itself (SSRF).

Whoever may create an alert channel chooses a URL the control plane will POST to. Left
unchecked, that reaches what only the platform's own machine can: services on loopback,
the cloud's instance-metadata endpoint (credentials), link-local devices. So a URL is
refused when its scheme is not http(s) or when its host is, or resolves to, a loopback,
link-local, metadata, unspecified, multicast or reserved address — unless the operator
names the host in ``alerts.allowed_hosts``. Private ranges (10/8, 192.168/16, ...) stay
allowed: on a self-hosted platform the chat server is often one of them.

The check runs when a channel is saved (a clear error naming the field) and again on every
send, at connection time: :class:`GuardedTransport` resolves the host itself, checks every
address and connects to a checked one, so DNS that changes between the check and the
connection (rebinding) gains nothing. Redirects are followed by the caller, one hop at a
time, each hop going through the same transport.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from slipway.core.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance-metadata services by name and by address (AWS, GCP, Azure, Alibaba, AWS ECS).
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # connecting to 0.x reaches this host


class UnsafeUrl(InvalidInput):
    """A URL the guard refuses; sending to it again will not help."""


def refusal(address: IPAddress) -> str | None:
    """Why connecting to ``address`` is refused, or ``None`` when it is fine."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or (address.version == 4 and address in _THIS_NETWORK):
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    return None


class UrlGuard:
    """Checks URLs and addresses against the rules above and the operator's allow-list."""

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        self.allowed = frozenset(_normal_host(h) for h in allowed_hosts)

    def allows(self, host: str) -> bool:
        return _normal_host(host) in self.allowed

    def check_url(self, url: str, *, field: str) -> str:
        """``url`` if it may be sent to; else :class:`UnsafeUrl` naming ``field``."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError:
            raise UnsafeUrl(f"{field}: not a valid URL", field=field) from None
        if parts.scheme not in ("http", "https"):
            raise UnsafeUrl(f"{field}: the scheme must be http or https", field=field)
        if not host:
            raise UnsafeUrl(f"{field}: the URL names no host", field=field)
        default = 443 if parts.scheme == "https" else 80
        self.addresses(host, port or default, field=field)
        return url

    def addresses(self, host: str, port: int, *, field: str = "url") -> list[str]:
        """Every address ``host`` resolves to, all checked (allowed hosts are not)."""
        name = _normal_host(host)
        if name in METADATA_HOSTS and not self.allows(name):
            raise UnsafeUrl(f"{field}: {host!r} is a cloud metadata service", field=field)
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise UnsafeUrl(f"{field}: the host {host!r} does not resolve", field=field) from None
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if self.allows(name):
            return found
        for address in found:
            reason = refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                raise UnsafeUrl(
                    f"{field}: {host!r} is {reason} ({address}); an operator may allow the"
                    " host in alerts.allowed_hosts",
                    field=field,
                    details={"host": host, "address": address},
                )
        return found


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


class _GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses the guard accepts, resolving names itself."""

    def __init__(self, guard: UrlGuard) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        # Every address was checked; try them in order, as socket.create_connection would.
        # TLS still verifies against the URL's host name: httpcore passes the origin's
        # host as the server name, not the address connected to.
        failure: Exception | None = None
        for address in self._guard.addresses(host, port):
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} has no address")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise UnsafeUrl("unix sockets are not allowed", field="url")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose every connection is checked.

    httpx offers no way to pass a network backend, so the pool it builds is replaced by an
    equivalent one (same TLS defaults, no environment proxies) that has one.
    """

    def __init__(self, guard: UrlGuard) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=10,
            network_backend=_GuardedBackend(guard),
        )


def guarded_client(guard: UrlGuard, timeout: float) -> httpx.Client:
    """An HTTP client that never follows redirects itself and connects only where allowed."""
    return httpx.Client(
        transport=GuardedTransport(guard),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
