"""Which driver errors count as "the backend is away" (503, retry later) and which stay
what they are: real errors from real clients pointed at a port nobody listens on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy import text

from slipway.core.db.engine import Database
from slipway.core.errors import BackendUnavailable
from slipway.core.unavailable import as_unavailable
from tests.chaos.private import free_port


def test_a_database_nobody_answers_is_unavailable_not_an_error() -> None:
    db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    try:
        with pytest.raises(BackendUnavailable) as caught, db.session() as session:
            session.execute(text("SELECT 1"))
    finally:
        db.dispose()
    assert caught.value.details["backend"] == "database"
    assert caught.value.http_headers()["Retry-After"] == str(caught.value.retry_after)


def test_driver_errors_of_an_absent_server_translate() -> None:
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/x", connect_timeout=2)
    client = redis.Redis(port=free_port(), socket_connect_timeout=2)
    with pytest.raises(redis.ConnectionError) as unreachable:
        client.ping()
    client.close()
    for exc, backend in ((refused.value, "database"), (unreachable.value, "redis")):
        translated = as_unavailable(exc)
        assert translated is not None and translated.details["backend"] == backend


def test_genuine_errors_stay_what_they_are(tmp_path: Path) -> None:
    """A deadlock, a missing table or a plain bug is not a backend being away."""
    deadlock = psycopg.errors.DeadlockDetected("deadlock detected")
    with sqlite3.connect(tmp_path / "x.db") as conn, pytest.raises(sqlite3.OperationalError) as e:
        conn.execute("SELECT * FROM missing")
    for exc in (deadlock, e.value, ValueError("bug")):
        assert as_unavailable(exc) is None, exc
