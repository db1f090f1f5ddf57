"""API tokens through the control plane: the methods of the embedded
:class:`~slipway.security.tokens.TokenService`, with its arguments and return types.
Every call needs an admin's token."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx

from slipway.client.transport import Transport
from slipway.core.errors import InvalidInput
from slipway.core.resource import Listing
from slipway.core.workspace import check_grants
from slipway.security.resources import CreatedToken, Role, Token
from slipway.security.tokens import check_invoke, parse_role


def _seconds(expires_in: timedelta | None) -> dict[str, Any]:
    """The body field for ``expires_in`` (seconds, as the REST API takes it); its bounds
    are the server's to check, so the answer is the embedded service's."""
    if expires_in is None:
        return {}
    if not isinstance(expires_in, timedelta):
        raise InvalidInput(
            f"expires_in must be a timedelta, not {type(expires_in).__name__}", field="expires_in"
        )
    return {"expires_in": expires_in.total_seconds()}


def _created(response: httpx.Response) -> tuple[Token, str]:
    created = CreatedToken.model_validate_json(response.content)
    return Token.model_validate(created.model_dump(exclude={"token"})), created.token


class RemoteTokens:
    """:class:`~slipway.security.tokens.TokenService` through the control plane.

    ``authenticate`` is left out: the server authenticates each request itself (a
    :class:`~slipway.client.Client` holding the secret is how a token is used)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def create(
        self,
        name: str,
        role: Role | str = Role.VIEWER,
        *,
        created_by: str | None = None,
        expires_in: timedelta | None = None,
        invoke: Sequence[str] = (),
        workspaces: Sequence[str] | None = None,
    ) -> tuple[Token, str]:
        """A new token and its secret string; the secret cannot be read back later.

        ``expires_in``: its lifetime from now (at most 10 years); None, it never expires.
        ``invoke``: the endpoints it may invoke through the gateway (``"*"``: all).
        ``workspaces``: where its role holds (``"*"``: all; None: the server's default).
        The server records the caller's token as ``created_by`` (a client cannot claim
        another creator), so ``created_by`` is not sent."""
        role = role if isinstance(role, Role) else parse_role(role)
        body = {
            "name": name,
            "role": role.value,
            "invoke": check_invoke(invoke),
            **_seconds(expires_in),
        }
        if workspaces is not None:
            body["workspaces"] = check_grants(list(workspaces))
        return _created(self.transport.request("POST", "/tokens", json=body))

    def set_invoke(
        self, id_or_name: str, endpoints: Sequence[str], *, actor: str | None = None
    ) -> Token:
        """Replace the endpoints the token may invoke through the gateway."""
        del actor  # the server's caller
        response = self.transport.request(
            "PUT",
            f"/tokens/{id_or_name}/invoke",
            json={"endpoints": check_invoke(endpoints)},
            repeatable=True,
        )
        return Token.model_validate_json(response.content)

    def list(self, *, include_revoked: bool = True) -> Listing[Token]:
        response = self.transport.request(
            "GET", "/tokens", params={"include_revoked": include_revoked}
        )
        return Listing(Token.model_validate(t) for t in response.json())

    def revoke(self, id_or_name: str, *, actor: str | None = None) -> Token:
        """Revoke by id, or by name when exactly one active token has it."""
        del actor  # the server's caller
        response = self.transport.request("DELETE", f"/tokens/{id_or_name}")
        return Token.model_validate_json(response.content)

    def rotate(
        self,
        id_or_name: str,
        *,
        expires_in: timedelta | None = None,
        actor: str | None = None,
    ) -> tuple[Token, str]:
        """A new secret for the token, returned once; the old one is refused from now on.
        ``expires_in`` sets a new lifetime from now, else the token keeps its expiry."""
        del actor  # the server's caller
        response = self.transport.request(
            "POST", f"/tokens/{id_or_name}/rotate", json=_seconds(expires_in)
        )
        return _created(response)
