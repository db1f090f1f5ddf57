"""Listening sockets for Slipway's HTTP servers (MLflow's tracking server, the gateway)."""

from __future__ import annotations

import socket


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` only, whose accepted connections have Nagle's
    algorithm off.

    ``proto=IPPROTO_TCP`` is what asyncio checks before it sets ``TCP_NODELAY`` on accepted
    connections (uvicorn's own ``bind_socket`` passes 0); ``TCP_NODELAY`` on the listener
    itself is copied to accepted connections by Linux, a second guard.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
