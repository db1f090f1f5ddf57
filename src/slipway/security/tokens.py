"""API tokens: created once, shown once, stored as a SHA-256 hash, revocable.

A token reads ``slw_<id>_<secret>``. The id finds the row without scanning; the secret is
32 random bytes, so a plain SHA-256 (not a slow password hash) is the right tool: nothing
to brute-force. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.security.resources import Role, Token
from slipway.security.tables import ApiTokenRow

_PREFIX = "slw"
# Writing last_used_at on every request would turn every read into a write.
_TOUCH_INTERVAL = timedelta(seconds=60)


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(f"role must be one of {allowed}", field="role") from None


def _stale(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at > _TOUCH_INTERVAL


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenService:
    """Create, list, revoke and check API tokens."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self, name: str, role: Role | str = Role.VIEWER, *, created_by: str = "sdk"
    ) -> tuple[Token, str]:
        """A new token and its secret string; the secret cannot be read back later."""
        validate_name(name)
        role = role if isinstance(role, Role) else parse_role(role)
        with self._db.write() as session:
            clash = session.scalar(
                select(ApiTokenRow.id).where(
                    ApiTokenRow.name == name, ApiTokenRow.revoked_at.is_(None)
                )
            )
            if clash is not None:
                raise Conflict(f"an active token named {name!r} exists already")
            token_id = secrets.token_hex(8)
            secret = secrets.token_urlsafe(32)
            row = ApiTokenRow(
                id=token_id,
                name=name,
                role=role.value,
                secret_hash=_hash(secret),
                created_at=utcnow(),
                created_by=created_by,
            )
            session.add(row)
            session.flush()
            return Token.model_validate(row), f"{_PREFIX}_{token_id}_{secret}"

    def list(self, *, include_revoked: bool = True) -> Listing[Token]:
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at)
        if not include_revoked:
            query = query.where(ApiTokenRow.revoked_at.is_(None))
        with self._db.session() as session:
            return Listing(Token.model_validate(row) for row in session.scalars(query))

    def revoke(self, id_or_name: str) -> Token:
        """Revoke by id, or by name when exactly one active token has it."""
        with self._db.write() as session:
            row = session.get(ApiTokenRow, id_or_name)
            if row is None:
                rows = session.scalars(
                    select(ApiTokenRow).where(
                        ApiTokenRow.name == id_or_name, ApiTokenRow.revoked_at.is_(None)
                    )
                ).all()
                if not rows:
                    raise NotFound(f"no active token with id or name {id_or_name!r}")
                row = rows[0]
            if row.revoked_at is not None:
                raise Conflict(f"token {row.id} is already revoked")
            row.revoked_at = utcnow()
            return Token.model_validate(row)

    def authenticate(self, presented: str) -> Token:
        """The active token ``presented`` stands for, else :class:`Unauthorized`."""
        prefix, _, rest = presented.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != _PREFIX or not token_id or not secret:
            raise Unauthorized("malformed API token")
        with self._db.session() as session:
            row = session.get(ApiTokenRow, token_id)
            if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
                raise Unauthorized("unknown API token")
            if row.revoked_at is not None:
                raise Unauthorized("this API token has been revoked")
            token = Token.model_validate(row)
        now = utcnow()
        if not _stale(token.last_used_at, now):
            return token
        # Every request authenticates, so the check above stays a read; the stamp is a
        # write transaction of its own. Written in the read's transaction it would fail on
        # SQLite at once ("database is locked") whenever another connection committed in
        # between. Requests racing here check again in the write transaction.
        with self._db.write() as session:
            row = session.get(ApiTokenRow, token_id)
            if row is not None and _stale(row.last_used_at, now):
                row.last_used_at = now
        return token.model_copy(update={"last_used_at": now})


# Role and Token are defined in slipway.security.resources and importable from here,
# where every caller has imported them from.
__all__ = ["Role", "Token", "TokenService", "parse_role"]
