"""Token expiry, rotation and the last-used stamp on each engine (the service itself; the
faces are tested in tests/client/test_remote_tokens.py and tests/cli)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from slipway.core.clock import utcnow
from slipway.core.db import Database
from slipway.core.errors import Conflict, InvalidInput, Unauthorized
from slipway.security.tables import ApiTokenRow
from slipway.security.tokens import TokenService


def _set(db: Database, token_id: str, **values: object) -> None:
    """Move a token's stored times, as the clock would have, without waiting for it."""
    with db.write() as session:
        session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(**values))


def test_an_expired_token_is_refused_as_unknown(db: Database) -> None:
    tokens = TokenService(db)
    token, secret = tokens.create("ci", "editor", created_by="test", expires_in=timedelta(hours=1))
    assert token.expires_at == token.created_at + timedelta(hours=1)
    assert tokens.authenticate(secret).id == token.id
    _set(db, token.id, expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(Unauthorized) as expired:
        tokens.authenticate(secret)
    with pytest.raises(Unauthorized) as unknown:
        tokens.authenticate(secret[:-2] + "xx")
    assert expired.value.message == unknown.value.message


def test_last_use_is_written_again_only_after_a_minute(db: Database) -> None:
    tokens = TokenService(db)
    token, secret = tokens.create("ci", created_by="test")
    first = tokens.authenticate(secret).last_used_at
    assert first is not None
    assert tokens.authenticate(secret).last_used_at == first
    long_ago = utcnow() - timedelta(minutes=2)
    _set(db, token.id, last_used_at=long_ago)
    later = tokens.authenticate(secret).last_used_at
    assert later is not None and later > long_ago
    [listed] = tokens.list()
    assert listed.last_used_at == later


def test_rotate_keeps_the_token_and_replaces_its_secret(db: Database) -> None:
    tokens = TokenService(db)
    token, old = tokens.create("ci", "editor", created_by="test")
    rotated, new = tokens.rotate("ci")
    assert (rotated.id, rotated.name, rotated.role) == (token.id, token.name, token.role)
    with pytest.raises(Unauthorized):
        tokens.authenticate(old)
    assert tokens.authenticate(new).id == token.id
    _set(db, token.id, expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(InvalidInput) as lapsed:
        tokens.rotate(token.id)
    assert lapsed.value.field == "expires_in"
    with pytest.raises(Unauthorized):
        tokens.authenticate(new)  # the refused rotation changed nothing
    revived, newest = tokens.rotate(token.id, expires_in=timedelta(days=1))
    assert revived.expires_at is not None and not revived.expired
    assert tokens.authenticate(newest).id == token.id
    tokens.revoke(token.id)
    with pytest.raises(Conflict):
        tokens.rotate(token.id)


@pytest.mark.parametrize(
    "expires_in", [timedelta(0), timedelta(microseconds=-1), timedelta(days=3651), 60]
)
def test_bad_lifetimes_are_refused_naming_the_field(db: Database, expires_in: object) -> None:
    tokens = TokenService(db)
    with pytest.raises(InvalidInput) as bad:
        tokens.create("ci", expires_in=expires_in)  # type: ignore[arg-type]
    assert bad.value.field == "expires_in"
    assert list(tokens.list()) == []
