"""API tokens through slipway.Client and in process: the same tests on both (the
``platform`` fixture). A token created on either side is used by a new Client, its role
is enforced, and once revoked, expired or rotated its old secret is refused.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from slipway.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from slipway.core.resource import Listing
from slipway.security.resources import Role, Token
from tests.client.conftest import SharedPlatform
from tests.waiting import eventually


@pytest.fixture
def tokens(platform: Any) -> Any:
    return platform.tokens


def _group(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "record_identifiers": [{"name": "k"}],
        "features": [{"name": "v", "type": "float"}],
    }


def test_create_use_list_and_revoke(
    tokens: Any, side: str, shared_platform: SharedPlatform
) -> None:
    name = f"ci-bot-{side}"
    token, secret = tokens.create(name, "editor")
    assert isinstance(token, Token)
    assert (token.name, token.role, token.active) == (name, Role.EDITOR, True)
    assert secret.startswith(f"slw_{token.id}_")
    with shared_platform.client(secret) as holder:
        group = f"made-by-token-{side}"
        assert holder.features.create_group(_group(group)).spec.name == group
    listed = tokens.list()
    assert isinstance(listed, Listing)
    [mine] = [t for t in listed if t.id == token.id]
    assert mine.last_used_at is not None  # the new client's calls were authenticated
    revoked = tokens.revoke(token.id)
    assert revoked.id == token.id and revoked.revoked_at is not None and not revoked.active
    assert token.id not in {t.id for t in tokens.list(include_revoked=False)}
    assert token.id in {t.id for t in tokens.list()}
    with shared_platform.client(secret) as holder, pytest.raises(Unauthorized) as refused:
        holder.features.list_groups()
    assert "revoked" in refused.value.message
    with pytest.raises(Conflict):
        tokens.revoke(token.id)


def test_revoke_by_name(tokens: Any, side: str, shared_platform: SharedPlatform) -> None:
    name = f"by-name-{side}"
    token, secret = tokens.create(name)
    assert token.role is Role.VIEWER  # the default role
    assert tokens.revoke(name).id == token.id
    with shared_platform.client(secret) as holder, pytest.raises(Unauthorized):
        holder.features.list_groups()
    with pytest.raises(NotFound):
        tokens.revoke(name)  # no active token has that name any more


def test_a_viewer_reads_but_cannot_write(
    tokens: Any, side: str, shared_platform: SharedPlatform
) -> None:
    _, secret = tokens.create(f"viewer-{side}", Role.VIEWER)
    with shared_platform.client(secret) as viewer:
        assert isinstance(viewer.features.list_groups(), Listing)
        with pytest.raises(Forbidden):
            viewer.features.create_group(_group(f"not-by-viewer-{side}"))
        with pytest.raises(Forbidden):
            viewer.tokens.list()  # tokens are an admin's
    with pytest.raises(NotFound):
        shared_platform.services.features.describe(f"not-by-viewer-{side}")  # nothing written


@pytest.mark.parametrize(
    ("name", "role", "field"),
    [("Bad Name", "viewer", "name"), ("good-name", "superuser", "role")],
    ids=["bad-name", "bad-role"],
)
def test_bad_input_names_the_field(
    tokens: Any, side: str, name: str, role: str, field: str
) -> None:
    before = len(tokens.list())
    with pytest.raises(InvalidInput) as bad:
        tokens.create(f"{name}-{side}" if field == "role" else name, role)
    assert bad.value.field == field
    assert len(tokens.list()) == before  # nothing written


def test_an_active_name_is_taken_once(tokens: Any, side: str) -> None:
    name = f"twice-{side}"
    tokens.create(name)
    with pytest.raises(Conflict) as clash:
        tokens.create(name)
    assert name in clash.value.message


def _refused(shared_platform: SharedPlatform, secret: str) -> str | None:
    """The 401's message when ``secret`` is refused over HTTP, else None."""
    with shared_platform.client(secret) as holder:
        try:
            holder.features.list_groups()
        except Unauthorized as refused:
            return refused.message
    return None


def _listed(tokens: Any, token_id: str) -> Token:
    [token] = [t for t in tokens.list() if t.id == token_id]
    return token


def test_a_token_with_an_expiry_is_listed_with_it(tokens: Any, side: str) -> None:
    token, _ = tokens.create(f"expiring-{side}", expires_in=timedelta(days=30))
    assert token.expires_at == token.created_at + timedelta(days=30)
    assert not token.expired
    assert _listed(tokens, token.id).expires_at == token.expires_at
    forever, _ = tokens.create(f"forever-{side}")
    assert forever.expires_at is None and not forever.expired


def test_an_expired_token_is_refused_like_an_unknown_one(
    tokens: Any, side: str, shared_platform: SharedPlatform
) -> None:
    token, secret = tokens.create(
        f"short-lived-{side}", "editor", expires_in=timedelta(seconds=0.3)
    )
    message = eventually(
        lambda: _refused(shared_platform, secret), what="the expired token refused (401)"
    )
    # The same answer as a secret that never existed: a caller cannot tell them apart.
    assert message == _refused(shared_platform, f"slw_{token.id}_not-the-secret")
    assert _listed(tokens, token.id).expired


def test_rotate_refuses_the_old_secret_at_once(
    tokens: Any, side: str, shared_platform: SharedPlatform
) -> None:
    name = f"rotated-{side}"
    token, old = tokens.create(name, "editor")
    assert _refused(shared_platform, old) is None  # works, and marks the token used
    used = _listed(tokens, token.id).last_used_at
    assert used is not None
    assert _refused(shared_platform, old) is None
    # Written at most once a minute: a second use right after does not write again.
    assert _listed(tokens, token.id).last_used_at == used

    rotated, new = tokens.rotate(name)  # by name; the id, name and role stay
    assert (rotated.id, rotated.name, rotated.role, rotated.created_at) == (
        token.id,
        name,
        Role.EDITOR,
        token.created_at,
    )
    assert new != old and new.startswith(f"slw_{token.id}_")
    assert _refused(shared_platform, old) is not None  # at once: no wait, no cache
    with shared_platform.client(new) as holder:
        group = f"after-rotation-{side}"
        assert holder.features.create_group(_group(group)).spec.name == group
    assert rotated.expires_at is None  # kept: it had none

    again, newest = tokens.rotate(token.id, expires_in=timedelta(hours=1))  # by id
    assert again.expires_at is not None and not again.expired
    assert _refused(shared_platform, new) is not None
    assert _refused(shared_platform, newest) is None

    tokens.revoke(token.id)
    with pytest.raises(Conflict):
        tokens.rotate(token.id)  # a revoked token stays revoked
    assert _refused(shared_platform, newest) is not None
    with pytest.raises(NotFound):
        tokens.rotate(f"no-such-token-{side}")


def test_rotation_is_audited_over_http(shared_platform: SharedPlatform) -> None:
    with shared_platform.client() as admin:
        token, _ = admin.tokens.create("audited-rotation")
        admin.tokens.rotate(token.id)
    entries = shared_platform.services.audit.list(action="POST /api/v1/tokens/{token_id}/rotate")
    assert [(e.actor, e.outcome) for e in entries if token.id in e.resource] == [
        ("shared-tests", "success")
    ]


def test_an_expired_token_is_rotated_only_with_a_new_expiry(
    tokens: Any, side: str, shared_platform: SharedPlatform
) -> None:
    token, _ = tokens.create(f"lapsed-{side}", expires_in=timedelta(seconds=0.2))
    eventually(lambda: _listed(tokens, token.id).expired, what="the token expired")
    with pytest.raises(InvalidInput) as bad:
        tokens.rotate(token.id)  # its new secret would be born expired
    assert bad.value.field == "expires_in"
    revived, secret = tokens.rotate(token.id, expires_in=timedelta(days=1))
    assert not revived.expired
    assert _refused(shared_platform, secret) is None


@pytest.mark.parametrize(
    "expires_in",
    [timedelta(0), timedelta(seconds=-5), timedelta(days=3651), 3600],
    ids=["zero", "negative", "over-ten-years", "not-a-timedelta"],
)
def test_a_bad_expiry_names_the_field(tokens: Any, side: str, expires_in: Any) -> None:
    before = len(tokens.list())
    with pytest.raises(InvalidInput) as bad:
        tokens.create(f"bad-expiry-{side}", expires_in=expires_in)
    assert bad.value.field == "expires_in"
    assert len(tokens.list()) == before  # nothing written
    token, _ = tokens.create(f"good-expiry-{side}-{uuid.uuid4().hex[:8]}")
    with pytest.raises(InvalidInput) as bad:
        tokens.rotate(token.id, expires_in=expires_in)
    assert bad.value.field == "expires_in"
    assert _listed(tokens, token.id).expires_at is None  # nothing written


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_invoke_grants_are_set_and_the_gateway_applies_them(
    tokens: Any, side: str, shared_platform: SharedPlatform
) -> None:
    """``slipway up``'s gateway asks for the platform's tokens: a grant per endpoint."""
    endpoint = f"granted-{side}"
    token, secret = tokens.create(f"svc-{side}", "viewer", invoke=[endpoint, endpoint])
    assert token.invoke == [endpoint]
    eventually(
        lambda: _answers(f"{shared_platform.gateway_url}/ping"),
        what="slipway up's gateway answered",
        timeout=120,
    )
    url = f"{shared_platform.gateway_url}/endpoints/{{}}/invocations"
    assert httpx.post(url.format(endpoint), json={}).status_code == 401
    headers = {"Authorization": f"Bearer {secret}"}
    other = httpx.post(url.format(f"other-{side}"), json={}, headers=headers)
    assert other.status_code == 403
    # Granted: past the token check, the gateway says the endpoint does not exist.
    assert httpx.post(url.format(endpoint), json={}, headers=headers).status_code == 404
    changed = tokens.set_invoke(token.id, ["*"])
    assert changed.invoke == ["*"]
    [listed] = [t for t in tokens.list() if t.id == token.id]
    assert listed.invoke == ["*"]
    eventually(
        lambda: (
            httpx.post(url.format(f"other-{side}"), json={}, headers=headers).status_code == 404
        ),
        what="the new grant served",
        timeout=10,
    )
    with pytest.raises(InvalidInput) as caught:
        tokens.set_invoke(token.id, ["Not A Name"])
    assert caught.value.field == "invoke"
    assert [t.invoke for t in tokens.list() if t.id == token.id] == [["*"]]
