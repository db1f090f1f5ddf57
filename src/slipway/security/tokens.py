"""API tokens: created once, shown once, stored as a SHA-256 hash, revocable.

A token reads ``slw_<id>_<secret>``. The id finds the row without scanning; the secret is
32 random bytes, so a plain SHA-256 (not a slow password hash) is the right tool: nothing
to brute-force. Comparison is constant-time.

A token may expire (``expires_in`` at creation or rotation); past its expiry it is refused
with the same answer as an unknown token. Rotation gives a token a new secret and keeps
its id, name, role and history (audit entries, ``created_at``, ``last_used_at``): only the
hash changes, so the old secret stops matching in the same transaction that stores the new.

Creating, rotating, revoking and re-granting a token are audited (``tokens.create``,
``tokens.rotate``, ``tokens.revoke``, ``tokens.invoke``) in the same transaction, with the
actor the face names; never the secret or its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.workspace import (
    ALL_WORKSPACES,
    DEFAULT_WORKSPACE,
    check_grants,
    scoped_name,
    split_scoped,
    validate_scoped_name,
)
from slipway.security.audit import AuditLog, local_actor
from slipway.security.epoch import TokenEpoch
from slipway.security.resources import INVOKE_ALL, MAX_EXPIRES_IN, Role, Token
from slipway.security.tables import ApiTokenRow
from slipway.security.workspaces import missing_workspaces

_PREFIX = "slw"
# Writing last_used_at on every request would turn every read into a write.
_TOUCH_INTERVAL = timedelta(seconds=60)


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(f"role must be one of {allowed}", field="role") from None


def check_expires_in(expires_in: timedelta | None) -> timedelta | None:
    """``expires_in`` if it is a lifetime a token may have (positive, at most 10 years),
    else :class:`InvalidInput` naming it."""
    if expires_in is None:
        return None
    if not isinstance(expires_in, timedelta):
        raise InvalidInput(
            f"expires_in must be a timedelta, not {type(expires_in).__name__}", field="expires_in"
        )
    if expires_in <= timedelta(0):
        raise InvalidInput(f"expires_in must be positive, not {expires_in}", field="expires_in")
    if expires_in > MAX_EXPIRES_IN:
        raise InvalidInput(
            f"expires_in must be at most {MAX_EXPIRES_IN.days} days, not {expires_in}",
            field="expires_in",
        )
    return expires_in


def check_invoke(endpoints: Sequence[str]) -> list[str]:
    """``endpoints`` as a token's ``invoke`` list: endpoint names (``<workspace>/<name>``
    outside the default workspace) or ``"*"``, each once, sorted, the default workspace's
    by their bare names (as they are stored); anything else is an :class:`InvalidInput`
    naming ``invoke``."""
    if isinstance(endpoints, str) or not all(isinstance(e, str) for e in endpoints):
        raise InvalidInput("invoke must be a list of endpoint names", field="invoke")
    allowed = set()
    for endpoint in endpoints:
        if endpoint != INVOKE_ALL:
            endpoint = scoped_name(*split_scoped(validate_scoped_name(endpoint, field="invoke")))
        allowed.add(endpoint)
    return sorted(allowed)


_BY_ID = select(*ApiTokenRow.__table__.columns).where(ApiTokenRow.id == bindparam("id"))


def _stale(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at > _TOUCH_INTERVAL


def _expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenService:
    """Create, list, revoke and check API tokens."""

    def __init__(
        self, db: Database, audit: AuditLog | None = None, *, epoch: TokenEpoch | None = None
    ) -> None:
        self._db = db
        self._audit = audit or AuditLog(db)
        # Moved after every change a cached token could outlive (revoke, rotate, grants).
        self.epoch = epoch or TokenEpoch.for_database(db)

    @contextmanager
    def _changing(self) -> Iterator[Session]:
        """A write transaction; the planes' caches are told once it has committed."""
        with self._db.write() as session:
            yield session
        self.epoch.bump()

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

        ``created_by`` is who creates it, the audit entry's actor too (None: this
        process's user, :func:`~slipway.security.audit.local_actor`).
        ``expires_in``: its lifetime from now (at most 10 years); None, it never expires.
        ``invoke``: the endpoints it may invoke through the gateway (``"*"``: all).
        ``workspaces``: where its role holds (``"*"``: every workspace); None, the default
        workspace — every workspace for an admin, who manages the platform."""
        created_by = created_by or local_actor()
        validate_name(name)
        role = role if isinstance(role, Role) else parse_role(role)
        expires_in = check_expires_in(expires_in)
        endpoints = check_invoke(invoke)
        if workspaces is None:
            workspaces = [ALL_WORKSPACES if role is Role.ADMIN else DEFAULT_WORKSPACE]
        granted = check_grants(list(workspaces))
        with self._db.write() as session:
            unknown = missing_workspaces(session, granted)
            if unknown:
                raise InvalidInput(
                    f"workspaces: no workspace named {', '.join(map(repr, unknown))}",
                    field="workspaces",
                )
            clash = session.scalar(
                select(ApiTokenRow.id).where(
                    ApiTokenRow.name == name, ApiTokenRow.revoked_at.is_(None)
                )
            )
            if clash is not None:
                raise Conflict(f"an active token named {name!r} exists already")
            token_id = secrets.token_hex(8)
            secret = secrets.token_urlsafe(32)
            now = utcnow()
            row = ApiTokenRow(
                id=token_id,
                name=name,
                role=role.value,
                secret_hash=_hash(secret),
                created_at=now,
                created_by=created_by,
                expires_at=None if expires_in is None else now + expires_in,
                invoke=endpoints,
                workspaces=granted,
            )
            session.add(row)
            session.flush()
            token = Token.model_validate(row)
            self._audit.changed(
                created_by,
                "tokens.create",
                f"token/{token_id}",
                {
                    "name": name,
                    "role": role.value,
                    "expires_at": _iso(token.expires_at),
                    "invoke": endpoints,
                    "workspaces": granted,
                },
                session=session,
            )
            return token, f"{_PREFIX}_{token_id}_{secret}"

    def list(self, *, include_revoked: bool = True) -> Listing[Token]:
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at)
        if not include_revoked:
            query = query.where(ApiTokenRow.revoked_at.is_(None))
        with self._db.session() as session:
            return Listing(Token.model_validate(row) for row in session.scalars(query))

    def revoke(self, id_or_name: str, *, actor: str | None = None) -> Token:
        """Revoke by id, or by name when exactly one active token has it."""
        with self._changing() as session:
            row = _find(session, id_or_name)
            if row.revoked_at is not None:
                raise Conflict(f"token {row.id} is already revoked")
            row.revoked_at = utcnow()
            self._audit.changed(
                actor, "tokens.revoke", f"token/{row.id}", {"name": row.name}, session=session
            )
            return Token.model_validate(row)

    def set_invoke(
        self, id_or_name: str, endpoints: Sequence[str], *, actor: str | None = None
    ) -> Token:
        """Replace the endpoints the token (by id, or name of an active one) may invoke;
        the gateway applies it from the moment this returns
        (:mod:`slipway.security.epoch`)."""
        allowed = check_invoke(endpoints)
        with self._changing() as session:
            row = _find(session, id_or_name, lock=True)
            if row.revoked_at is not None:
                raise Conflict(f"token {row.id} is revoked; create a new one")
            row.invoke = allowed
            self._audit.changed(
                actor,
                "tokens.invoke",
                f"token/{row.id}",
                {"name": row.name, "invoke": allowed},
                session=session,
            )
            session.flush()
            return Token.model_validate(row)

    def rotate(
        self,
        id_or_name: str,
        *,
        expires_in: timedelta | None = None,
        actor: str | None = None,
    ) -> tuple[Token, str]:
        """A new secret for the token (by id, or by name of an active token), returned once
        as by :meth:`create`; the old secret is refused from the commit on.

        The token keeps its id, name and role, so grants and the audit trail still refer
        to it. ``expires_in`` sets a new lifetime from now; without it the token keeps its
        expiry, and an expired token needs one (a secret born expired is of no use)."""
        expires_in = check_expires_in(expires_in)
        with self._changing() as session:
            row = _find(session, id_or_name, lock=True)
            if row.revoked_at is not None:
                raise Conflict(f"token {row.id} is revoked; create a new one")
            now = utcnow()
            if expires_in is not None:
                row.expires_at = now + expires_in
            elif _expired(row.expires_at, now):
                raise InvalidInput(
                    f"token {row.id} expired at {row.expires_at:%Y-%m-%d %H:%M:%S}Z;"
                    " rotating it needs a new expires_in",
                    field="expires_in",
                )
            secret = secrets.token_urlsafe(32)
            row.secret_hash = _hash(secret)
            session.flush()
            token = Token.model_validate(row)
            self._audit.changed(
                actor,
                "tokens.rotate",
                f"token/{row.id}",
                {"name": row.name, "expires_at": _iso(token.expires_at)},
                session=session,
            )
            return token, f"{_PREFIX}_{row.id}_{secret}"

    def authenticate(self, presented: str) -> Token:
        """The active token ``presented`` stands for, else :class:`Unauthorized`."""
        prefix, _, rest = presented.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != _PREFIX or not token_id or not secret:
            raise Unauthorized("malformed API token")
        # Every request of every plane comes here: one plain SELECT on a pooled
        # connection (no ORM session, no validation of what the database holds) keeps it
        # a fraction of the cost of the request it guards.
        with self._db.engine.connect() as conn:
            row = conn.execute(_BY_ID, {"id": token_id}).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            raise Unauthorized("unknown API token")
        if row.revoked_at is not None:
            raise Unauthorized("this API token has been revoked")
        fields = row._asdict()
        del fields["secret_hash"]
        token = Token.model_construct(**{**fields, "role": Role(row.role)})
        now = utcnow()
        if _expired(token.expires_at, now):
            # The same answer as a wrong secret: a token's expiry is the admin's to read
            # (``tokens list``), not something a caller can probe for.
            raise Unauthorized("unknown API token")
        if not _stale(token.last_used_at, now):
            return token
        # Every request authenticates, so the check above stays a read; the stamp is a
        # write transaction of its own, at most once a minute per token. Written in the
        # read's transaction it would fail on SQLite at once ("database is locked")
        # whenever another connection committed in between. The UPDATE is conditional, so
        # requests racing here write it once.
        with self._db.write() as session:
            session.execute(
                update(ApiTokenRow)
                .where(
                    ApiTokenRow.id == token_id,
                    or_(
                        ApiTokenRow.last_used_at.is_(None),
                        ApiTokenRow.last_used_at < now - _TOUCH_INTERVAL,
                    ),
                )
                .values(last_used_at=now)
            )
        return token.model_copy(update={"last_used_at": now})


def _find(session: Session, id_or_name: str, *, lock: bool = False) -> ApiTokenRow:
    """The token with id ``id_or_name``, else the active one with that name; ``lock``
    takes its row lock on PostgreSQL (SQLite's write transaction holds the database)."""
    row = session.get(ApiTokenRow, id_or_name, with_for_update=lock or None)
    if row is not None:
        return row
    query = select(ApiTokenRow).where(
        ApiTokenRow.name == id_or_name, ApiTokenRow.revoked_at.is_(None)
    )
    found = session.scalars(query.with_for_update() if lock else query).first()
    if found is None:
        raise NotFound(f"no active token with id or name {id_or_name!r}")
    return found


# Role and Token are defined in slipway.security.resources and importable from here,
# where every caller has imported them from.
__all__ = ["Role", "Token", "TokenService", "check_expires_in", "check_invoke", "parse_role"]
