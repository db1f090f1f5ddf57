"""API tokens: authentication and its last-used stamp."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from slipway.core.clock import utcnow
from slipway.core.db import Database
from slipway.core.errors import Unauthorized
from slipway.security import tokens as tokens_module
from slipway.security.tokens import TokenService
from tests.sqlite_writer import committing, repeat


def test_authenticate_stamps_last_use_at_most_once_a_minute(db: Database) -> None:
    tokens = TokenService(db)
    created, secret = tokens.create("ci", "viewer", created_by="test")
    assert created.last_used_at is None
    before = utcnow()
    first = tokens.authenticate(secret)
    assert first.last_used_at is not None and first.last_used_at >= before
    second = tokens.authenticate(secret)
    assert second.last_used_at == first.last_used_at
    [listed] = tokens.list()
    assert listed.last_used_at == first.last_used_at
    tokens.revoke("ci")
    with pytest.raises(Unauthorized, match="revoked"):
        tokens.authenticate(secret)
    with pytest.raises(Unauthorized, match="unknown"):
        tokens.authenticate(secret[:-2] + "xx")


def test_authenticate_while_another_connection_commits(
    sqlite_db: Database, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """authenticate() reads the token, then may stamp its last use: a stamp in the read's
    own transaction fails on SQLite when anyone else committed in between ("database is
    locked"). Here a second connection keeps clearing the stamp, so most calls write one
    while commits land. Between reading the token and stamping it authenticate() asks the
    time; a clock that waits for the writer's next commit makes one land there every time
    (left to chance, that window is a few microseconds wide)."""
    tokens = TokenService(sqlite_db)
    _, secret = tokens.create("ci", "viewer", created_by="test")
    stamped = 0

    def authenticate() -> None:
        nonlocal stamped
        start = utcnow() - timedelta(microseconds=1)
        used = tokens.authenticate(secret).last_used_at
        stamped += used is not None and used >= start

    with committing(sqlite_url, "UPDATE slipway_api_tokens SET last_used_at = NULL") as writer:

        def slow_clock() -> datetime:
            writer.next_commit()
            return utcnow()

        monkeypatch.setattr(tokens_module, "utcnow", slow_clock)
        calls, failures = repeat(
            authenticate, seconds=60, until=lambda: stamped >= 20 and writer.commits >= 20
        )
    assert failures == [], f"after {calls} calls and {writer.commits} commits: {failures[0]}"
    assert stamped >= 20 and writer.commits >= 20, (stamped, writer.commits)
