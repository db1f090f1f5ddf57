"""API tokens through slipway.Client and in process: the same tests on both (the
``platform`` fixture). A token created on either side is used by a new Client, its role
is enforced, and once revoked it is refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from slipway.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from slipway.core.resource import Listing
from slipway.security.resources import Role, Token
from tests.client.conftest import SharedPlatform


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
