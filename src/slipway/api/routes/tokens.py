"""API tokens (admin only): create shows the secret once; list never does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from slipway.api.auth import Principal, authorize, services_of
from slipway.security.resources import CreatedToken, Role, Token, TokenCreate

router = APIRouter(prefix="/tokens", tags=["tokens"])
Admin = Annotated[Principal, Depends(authorize(Role.ADMIN))]


@router.post("", status_code=201)
def create_token(body: TokenCreate, request: Request, admin: Admin) -> CreatedToken:
    """A new token, created by the caller; its secret (``token``) is in this answer only."""
    token, secret = services_of(request).tokens.create(body.name, body.role, created_by=admin.name)
    return CreatedToken(**token.model_dump(), token=secret)


@router.get("")
def list_tokens(request: Request, _admin: Admin, include_revoked: bool = True) -> list[Token]:
    return services_of(request).tokens.list(include_revoked=include_revoked)


@router.delete("/{token_id}")
def revoke_token(token_id: str, request: Request, _admin: Admin) -> Token:
    """Revoke by id, or by name when exactly one active token has it."""
    return services_of(request).tokens.revoke(token_id)
