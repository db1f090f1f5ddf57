"""API tokens through the control plane: the methods of the embedded
:class:`~slipway.security.tokens.TokenService`, with its arguments and return types.
Every call needs an admin's token."""

from __future__ import annotations

from slipway.client.transport import Transport
from slipway.core.resource import Listing
from slipway.security.resources import CreatedToken, Role, Token
from slipway.security.tokens import parse_role


class RemoteTokens:
    """:class:`~slipway.security.tokens.TokenService` through the control plane.

    ``authenticate`` is left out: the server authenticates each request itself (a
    :class:`~slipway.client.Client` holding the secret is how a token is used)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def create(
        self, name: str, role: Role | str = Role.VIEWER, *, created_by: str = "sdk"
    ) -> tuple[Token, str]:
        """A new token and its secret string; the secret cannot be read back later.

        The server records the caller's token as ``created_by`` (a client cannot claim
        another creator), so ``created_by`` is not sent."""
        role = role if isinstance(role, Role) else parse_role(role)
        response = self.transport.request(
            "POST", "/tokens", json={"name": name, "role": role.value}
        )
        created = CreatedToken.model_validate_json(response.content)
        return Token.model_validate(created.model_dump(exclude={"token"})), created.token

    def list(self, *, include_revoked: bool = True) -> Listing[Token]:
        response = self.transport.request(
            "GET", "/tokens", params={"include_revoked": include_revoked}
        )
        return Listing(Token.model_validate(t) for t in response.json())

    def revoke(self, id_or_name: str) -> Token:
        """Revoke by id, or by name when exactly one active token has it."""
        response = self.transport.request("DELETE", f"/tokens/{id_or_name}")
        return Token.model_validate_json(response.content)
