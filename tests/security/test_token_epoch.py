"""Cached tokens and the token epoch: a plane keeps the tokens it verified, and still refuses
a revoked or rotated secret — or honours a new grant — from the moment the change returns.

Two :class:`Services` on one database stand for two processes (the control plane where
an admin revokes, a gateway or tracking worker that caches), on each engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.core.errors import Unauthorized
from slipway.core.settings import load_settings
from slipway.security.verified import RECHECK_SECONDS, TRUSTED_SECONDS, VerifiedTokens
from slipway.services import Services
from tests.waiting import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def planes(tmp_path: Path, database_url: str) -> Iterator[tuple[Services, Services]]:
    """The admin's process and a caching plane's, on one database and one home."""
    settings = load_settings(home=tmp_path / "home", database={"url": database_url})
    admin, plane = Services.open(settings), Services.open(settings)
    yield admin, plane
    plane.tokens.epoch.close()
    admin.close()
    plane.close()


def cache_of(plane: Services, clock: Clock) -> VerifiedTokens:
    return VerifiedTokens(plane.tokens.authenticate, epoch=plane.tokens.epoch.current, clock=clock)


def test_a_revocation_a_rotation_and_a_grant_reach_a_cache_at_once(
    planes: tuple[Services, Services],
) -> None:
    admin, plane = planes
    clock = Clock()
    cache = cache_of(plane, clock)
    eventually(lambda: plane.tokens.epoch.current() is not None, what="the epoch is known")
    token, secret = admin.tokens.create("svc", "viewer", created_by="test")
    other, other_secret = admin.tokens.create("svc-2", "viewer", created_by="test")

    assert cache.verify(secret).id == token.id
    clock.now += TRUSTED_SECONDS / 2  # far past the 1 s recheck: the epoch has not moved
    assert cache.cached(secret) is not None

    admin.tokens.set_invoke(token.id, ["churn"], actor="test")
    # The change returned: the cache must not answer from before it.
    assert cache.cached(secret) is None
    assert cache.verify(secret).may_invoke("churn")

    new_secret = admin.tokens.rotate(token.id, actor="test")[1]
    assert cache.cached(secret) is None
    with pytest.raises(Unauthorized):
        cache.verify(secret)
    assert cache.verify(new_secret).id == token.id

    cache.verify(other_secret)
    admin.tokens.revoke(other.id, actor="test")
    assert cache.cached(other_secret) is None
    with pytest.raises(Unauthorized):
        cache.verify(other_secret)


def test_on_postgresql_a_change_made_on_another_machine_is_heard(
    tmp_path: Path, postgres_url: str
) -> None:
    """Another machine: another home, so no shared marker file; the NOTIFY carries it."""
    admin = Services.open(load_settings(home=tmp_path / "a", database={"url": postgres_url}))
    plane = Services.open(load_settings(home=tmp_path / "b", database={"url": postgres_url}))
    try:
        cache = cache_of(plane, Clock())
        eventually(lambda: plane.tokens.epoch.current() is not None, what="the listener is on")
        token, secret = admin.tokens.create("svc", "viewer", created_by="test")
        cache.verify(secret)
        admin.tokens.revoke(token.id, actor="test")
        eventually(lambda: cache.cached(secret) is None, what="the revocation is heard")
        with pytest.raises(Unauthorized):
            cache.verify(secret)
    finally:
        plane.tokens.epoch.close()
        admin.close()
        plane.close()


def test_entries_expire_after_the_trusted_time_and_without_an_epoch_after_a_second(
    tmp_path: Path,
) -> None:
    settings = load_settings(home=tmp_path / "home")
    services = Services.open(settings)
    try:
        _, secret = services.tokens.create("svc", "viewer", created_by="test")
        clock = Clock()
        trusted = cache_of(services, clock)
        trusted.verify(secret)
        clock.now += TRUSTED_SECONDS + 0.1
        assert trusted.cached(secret) is None

        blind = VerifiedTokens(services.tokens.authenticate, clock=clock)  # no epoch
        blind.verify(secret)
        clock.now += RECHECK_SECONDS / 2
        assert blind.cached(secret) is not None
        clock.now += RECHECK_SECONDS
        assert blind.cached(secret) is None
    finally:
        services.close()
