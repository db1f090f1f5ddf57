"""API tokens (admin only): create shows the secret once; list never does."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from slipway.api.auth import Principal, authorize, services_of
from slipway.security.tokens import Role, Token

router = APIRouter(prefix="/tokens", tags=["tokens"])
Admin = Annotated[Principal, Depends(authorize(Role.ADMIN))]


class TokenCreate(BaseModel):
    name: str = Field(description="a resource name: lower-case letters, digits, - and _")
    role: Role = Role.VIEWER


class TokenOut(BaseModel):
    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: Token) -> TokenOut:
        return cls(**token.__dict__)


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown only in this response")


@router.post("", status_code=201, response_model=TokenCreated)
def create_token(body: TokenCreate, request: Request, admin: Admin) -> TokenCreated:
    token, secret = services_of(request).tokens.create(body.name, body.role, created_by=admin.name)
    return TokenCreated(**TokenOut.of(token).model_dump(), token=secret)


@router.get("", response_model=list[TokenOut])
def list_tokens(request: Request, _admin: Admin) -> list[TokenOut]:
    return [TokenOut.of(t) for t in services_of(request).tokens.list()]


@router.delete("/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, request: Request, _admin: Admin) -> TokenOut:
    return TokenOut.of(services_of(request).tokens.revoke(token_id))
