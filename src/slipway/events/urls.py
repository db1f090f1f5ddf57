"""Keeping webhook URLs from turning the platform against itself (SSRF).

Whoever may create an alert channel chooses a URL the control plane will POST to. Left
unchecked, that reaches what only the platform's own machine and network can: services
on loopback, the cloud's instance-metadata endpoint (credentials), the private network
behind the firewall. So a URL is refused when its scheme is not http(s) or when its host
is, or resolves to, an address in a private range (10/8, 172.16/12, 192.168/16,
fc00::/7), a link-local one (169.254/16 — with the metadata address 169.254.169.254 —
and fe80::/10), shared carrier-grade NAT space (100.64/10), a multicast, unspecified,
this-network or reserved address, or loopback. Loopback is the one exception by
circumstance: while the control plane itself listens on loopback (a developer's machine)
the receivers there are the developer's own, so it is allowed, except on the platform's
own ports. Anything else is allowed only when the operator names its host in
``alerts.allowed_hosts``. IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64)
are judged by the IPv4 address they reach.

The check runs when a channel is saved (a clear error naming the field) and again on every
send, at connection time: :class:`GuardedTransport` resolves the host once itself, checks
every address and connects only to a checked one, so DNS that changes between the check
and the connection (rebinding) gains nothing. Redirects are followed by the caller, one
hop at a time, each hop going through the same transport.
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
from slipway.core.settings import AlertSettings

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
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known NAT64 prefix
# Named ranges, by reason: explicit rather than ``is_private``, whose meaning changed
# between Python releases. Loopback and metadata are judged before these.
_RANGES: tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...] = (
    (
        "a private address",
        tuple(
            ipaddress.ip_network(n)
            for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")
        ),
    ),
    (
        "a link-local address",
        (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10")),
    ),
    ("a carrier-grade NAT (shared) address", (ipaddress.ip_network("100.64.0.0/10"),)),
)


class UnsafeUrl(InvalidInput):
    """A URL the guard refuses; sending to it again will not help."""


def _reached(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries and reaches (mapped, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress, *, loopback: bool = False) -> str | None:
    """Why connecting to ``address`` is refused, or ``None`` when it is fine; ``loopback``
    allows loopback addresses (the caller checks the port)."""
    address = _reached(address)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if loopback else "a loopback address"
    for reason, networks in _RANGES:
        if any(address in network for network in networks):
            return reason
    if address.is_unspecified or (address.version == 4 and address in _THIS_NETWORK):
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    return None


class UrlGuard:
    """Checks URLs and addresses against the rules above and the operator's allow-list.

    ``loopback``: whether loopback addresses are allowed (the control plane listens on
    loopback), except on ``own_ports`` — the platform's own servers.
    """

    def __init__(
        self,
        allowed_hosts: Iterable[str] = (),
        *,
        loopback: bool = False,
        own_ports: Iterable[int] = (),
    ) -> None:
        self.allowed = frozenset(_normal_host(h) for h in allowed_hosts)
        self.loopback = loopback
        self.own_ports = frozenset(own_ports)

    @classmethod
    def of(cls, settings: AlertSettings) -> UrlGuard:
        """The guard the alert settings ask for, as the platform runs now."""
        return cls(
            settings.allowed_hosts,
            loopback=settings.loopback_allowed,
            own_ports=settings.platform_ports,
        )

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
            parsed = ipaddress.ip_address(address.split("%", 1)[0])
            reason = refusal(parsed, loopback=self.loopback and port not in self.own_ports)
            if reason is None:
                continue
            why = ""
            if _reached(parsed).is_loopback:
                why = (
                    f", and port {port} is one of the platform's own servers"
                    if self.loopback
                    else ", allowed only while the control plane listens on loopback"
                )
            raise UnsafeUrl(
                f"{field}: {host!r} is {reason} ({address}){why}; an operator may allow the"
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
