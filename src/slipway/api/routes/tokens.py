"""API tokens (admin only): create and rotate show the secret once; list never does."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from slipway.api.auth import Principal, authorize, services_of
from slipway.security.resources import (
    CreatedToken,
    Role,
    Token,
    TokenCreate,
    TokenInvoke,
    TokenRotate,
)

router = APIRouter(prefix="/tokens", tags=["tokens"])
# Tokens reach every workspace they are granted: only an admin of every workspace
# hands them out.
Admin = Annotated[Principal, Depends(authorize(Role.ADMIN, platform=True))]


def _lifetime(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


@router.post("", status_code=201)
def create_token(body: TokenCreate, request: Request, admin: Admin) -> CreatedToken:
    """A new token, created by the caller; its secret (``token``) is in this answer only."""
    token, secret = services_of(request).tokens.create(
        body.name,
        body.role,
        created_by=admin.name,
        expires_in=_lifetime(body.expires_in),
        invoke=body.invoke,
        workspaces=body.workspaces,
    )
    return CreatedToken(**token.model_dump(), token=secret)


@router.put("/{token_id}/invoke")
def set_token_invoke(token_id: str, body: TokenInvoke, request: Request, admin: Admin) -> Token:
    """Replace the endpoints the token may invoke through the gateway (``"*"``: all;
    empty: none). Gateway workers apply it from the moment this returns."""
    return services_of(request).tokens.set_invoke(token_id, body.endpoints, actor=admin.name)


@router.get("")
def list_tokens(request: Request, _admin: Admin, include_revoked: bool = True) -> list[Token]:
    return services_of(request).tokens.list(include_revoked=include_revoked)


@router.delete("/{token_id}")
def revoke_token(token_id: str, request: Request, admin: Admin) -> Token:
    """Revoke by id, or by name when exactly one active token has it."""
    return services_of(request).tokens.revoke(token_id, actor=admin.name)


@router.post("/{token_id}/rotate")
def rotate_token(
    token_id: str, request: Request, admin: Admin, body: TokenRotate | None = None
) -> CreatedToken:
    """A new secret (``token``, in this answer only) for the token with this id (or the
    active one with this name); the old secret is refused from now on. The token keeps its
    id, name and role; ``expires_in`` gives it a new lifetime, else it keeps its expiry."""
    token, secret = services_of(request).tokens.rotate(
        token_id, expires_in=_lifetime(body.expires_in if body else None), actor=admin.name
    )
    return CreatedToken(**token.model_dump(), token=secret)
