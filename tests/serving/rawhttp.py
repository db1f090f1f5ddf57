"""Reading HTTP/1.1 responses off a raw socket, for tests that pipeline requests by hand
(a client library would hide the order and the framing they check)."""

from __future__ import annotations

import socket


def read_responses(sock: socket.socket, count: int, *, timeout: float = 10.0) -> list[bytes]:
    """Up to ``count`` whole responses (head and ``content-length`` body) in the order they
    arrive; fewer if the server closes the connection first."""
    data = b""
    responses: list[bytes] = []
    sock.settimeout(timeout)
    while len(responses) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        while b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            if len(rest) < length:
                break
            responses.append(head + b"\r\n\r\n" + rest[:length])
            data = rest[length:]
    return responses
