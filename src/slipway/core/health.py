"""Reachability checks for every configured backend.

Used by ``slipway doctor`` and ``GET /api/v1/health``. Each check returns a
:class:`Check` rather than raising, so one unreachable backend never hides the others.
Backends that are not configured (no Kafka, no Ray) are reported as such, not as failures.
"""

from __future__ import annotations

import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from slipway.core.artifacts import ArtifactStore
from slipway.core.db.engine import Database
from slipway.core.db.migrate import current_revision, head_revision
from slipway.core.settings import Settings, mask_url

Status = Literal["ok", "unreachable", "not configured"]
TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Check:
    backend: str
    target: str
    status: Status
    detail: str
    latency_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.status != "unreachable"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _timed(backend: str, target: str, probe: Callable[[], str]) -> Check:
    started = time.perf_counter()
    try:
        detail = probe()
    except Exception as exc:  # a check reports every failure, whatever raised it
        return Check(backend, target, "unreachable", f"{type(exc).__name__}: {exc}".strip())
    elapsed = (time.perf_counter() - started) * 1000
    return Check(backend, target, "ok", detail, round(elapsed, 1))


def check_database(settings: Settings) -> Check:
    def probe() -> str:
        db = Database(settings.database_url)
        try:
            db.ping()
            revision = current_revision(db)
        finally:
            db.dispose()
        head = head_revision()
        if revision is None:
            return f"reachable; schema not created yet (will migrate to {head})"
        return f"schema {revision}" + ("" if revision == head else f", behind {head}")

    return _timed("database", mask_url(settings.database_url), probe)


def check_artifacts(settings: Settings) -> Check:
    def probe() -> str:
        store = ArtifactStore(settings.artifact_root)
        key = f"_doctor/{uuid.uuid4().hex}"
        store.put_bytes(key, b"ok")
        try:
            if store.get_bytes(key) != b"ok":
                raise RuntimeError("read back different bytes than written")
        finally:
            store.delete(key)
        return "read and write ok"

    return _timed("artifacts", settings.artifact_root, probe)


def check_online_store(settings: Settings) -> Check:
    url = settings.online_store_url

    def probe() -> str:
        if url.startswith("sqlite"):
            db = Database(url)
            try:
                db.ping()
            finally:
                db.dispose()
            return "sqlite ok"
        # Imported here: Redis's client (a fifth of a second to load, with the tracing it
        # pulls in) is needed only where the online store is Redis, and the control plane
        # imports this module for its health routes whatever the store.
        import redis

        client = redis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
        )
        try:
            client.ping()
            version = client.info("server").get("redis_version", "?")
        finally:
            client.close()
        return f"redis {version}"

    return _timed("online store", mask_url(url), probe)


def check_kafka(settings: Settings) -> Check:
    servers = settings.kafka.bootstrap_servers
    if not servers:
        return Check("kafka", "-", "not configured", "set kafka.bootstrap_servers to use Kafka")

    def probe() -> str:
        host, port = _host_port(servers.split(",")[0], default_port=9092)
        count = kafka_api_versions(host, port)
        return f"broker answered ApiVersions ({count} APIs)"

    return _timed("kafka", servers, probe)


def check_ray(settings: Settings) -> Check:
    address = settings.ray.address
    if not address:
        return Check("ray", "-", "not configured", "work runs in local worker processes")

    def probe() -> str:
        host, port = _host_port(address, default_port=10001)
        with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS):
            return f"{host}:{port} accepts connections"

    return _timed("ray", address, probe)


def check_all(settings: Settings) -> list[Check]:
    """Every backend's check, in a stable order."""
    return [
        check_database(settings),
        check_artifacts(settings),
        check_online_store(settings),
        check_kafka(settings),
        check_ray(settings),
    ]


def kafka_api_versions(host: str, port: int) -> int:
    """Send Kafka's ApiVersions (v0) request and return how many APIs the broker lists.

    A TCP connect alone would also succeed against something that is not Kafka; a real
    protocol round trip proves a broker is answering.
    """
    client_id = b"slipway-doctor"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as sock:
        sock.settimeout(TIMEOUT_SECONDS)
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exactly(sock, 4))[0]
        reply = _recv_exactly(sock, size)
    correlation, error, count = struct.unpack(">ihi", reply[:10])
    if correlation != 1 or error != 0:
        raise RuntimeError(f"unexpected ApiVersions reply (error code {error})")
    return int(count)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-reply")
        data += chunk
    return data


def _host_port(address: str, *, default_port: int) -> tuple[str, int]:
    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    return parsed.hostname or "127.0.0.1", parsed.port or default_port
