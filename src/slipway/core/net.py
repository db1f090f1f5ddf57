"""Listening sockets for Slipway's HTTP servers (MLflow's tracking server, the gateway),
and the name a request's ``Host`` header gives (the control plane's and the gateway's
check against DNS rebinding)."""

from __future__ import annotations

import socket


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` only, whose accepted connections have Nagle's
    algorithm off.

    ``proto=IPPROTO_TCP`` is what asyncio checks before it sets ``TCP_NODELAY`` on accepted
    connections (uvicorn's own ``bind_socket`` passes 0); ``TCP_NODELAY`` on the listener
    itself is copied to accepted connections by Linux, a second guard.

    With ``reuse_port`` several processes each bind their own socket to the same port and
    the kernel spreads new connections evenly between them (``SO_REUSEPORT``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (another process may take it before you do:
    for local tools and tests, not for servers that must own their port)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def host_name(value: bytes) -> str:
    """The name in a ``Host`` header: lower-case, without its port, the brackets of an IPv6
    literal or a trailing dot. A value that is not a plain name comes back unchanged (and
    so matches nothing)."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):  # [::1]:8420
        name, bracket, port = text[1:].partition("]")
        return name if bracket and (not port or port[1:].isdigit()) else text
    name, colon, port = text.partition(":")
    if colon and not port.isdigit():
        return text
    return name[:-1] if name.endswith(".") else name
