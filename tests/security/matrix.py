"""The permission matrix's vocabulary, shared by the three planes' tests and the generated
``docs/permissions.md``: what a route needs (:class:`Need`), who calls it (:class:`Caller`)
and what that caller must get (:func:`expected`).

The expectations are written here and in the tables (:mod:`tests.security.tables`,
:mod:`tests.security.mlflow_table`), not read from the declarations the code checks
(``authorize``, ``needs``, ``READ_ONLY``, the tracking policy, ``Role.allows``): a
mistake in those is then a difference the matrix reports, not one it copies.

A new kind of caller is a new :class:`Kind`, a :class:`Caller` in the planes' caller
lists, and a branch in :func:`expected`; the tables need not change unless a route treats
it specially (as the workspace listing does a token of another workspace).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from slipway.security.resources import Role

DENIED = (401, 403)


class Need(StrEnum):
    """The least a caller needs for a route."""

    PUBLIC = "public"  # nothing: no token needed, any token ignored
    TOKEN = "token"  # any valid token, whatever its role (the gateway's metrics)
    GRANTED = "granted"  # any valid token, of any workspace (what it was granted)
    VIEWER = "viewer"  # any role: reads
    EDITOR = "editor"
    APPROVER = "approver"
    DEPLOYER = "deployer"
    AUDITOR = "auditor"
    ADMIN = "admin"
    INVOKE = "invoke"  # the gateway: a grant of invoke on the route's endpoint (admins: all)
    REFUSED = "refused"  # nobody: a surface Slipway does not offer (MLflow's)


class Kind(StrEnum):
    ANONYMOUS = "anonymous"  # no Authorization header
    BAD_TOKEN = "bad-token"  # a well-formed token the platform never issued
    ROLE = "role"  # a valid token of a role
    # An admin's token granted another workspace only: nothing of the default one is its.
    OTHER_WORKSPACE = "other-workspace"


# The workspace the other-workspace caller's token is granted (the planes create it).
OTHER_WORKSPACE = "elsewhere"


@dataclass(frozen=True)
class Caller:
    kind: Kind
    role: Role | None = None
    # A grant of invoke on the endpoint the route names (the gateway's second axis).
    invoke: bool = False

    @property
    def label(self) -> str:
        if self.kind is Kind.OTHER_WORKSPACE:
            return "admin of another workspace"
        if self.kind is not Kind.ROLE:
            return {Kind.ANONYMOUS: "no token", Kind.BAD_TOKEN: "bad token"}[self.kind]
        assert self.role is not None
        return f"{self.role} + invoke" if self.invoke else str(self.role)

    @property
    def token_name(self) -> str:
        """The name its token is created under (what the audit log calls it)."""
        assert self.role is not None
        if self.kind is Kind.OTHER_WORKSPACE:
            return f"matrix-{OTHER_WORKSPACE}-{self.role}"
        return f"matrix-{self.role}{'-invoke' if self.invoke else ''}"

    @property
    def workspaces(self) -> list[str] | None:
        """The workspaces its token is granted (None: the default for its role)."""
        return [OTHER_WORKSPACE] if self.kind is Kind.OTHER_WORKSPACE else None

    @property
    def has_token(self) -> bool:
        return self.kind in (Kind.ROLE, Kind.OTHER_WORKSPACE)


# No token, a bad token, and a valid token of each role: every plane's callers.
CALLERS = (
    Caller(Kind.ANONYMOUS),
    Caller(Kind.BAD_TOKEN),
    *(Caller(Kind.ROLE, role) for role in Role),
    Caller(Kind.OTHER_WORKSPACE, Role.ADMIN),
)
BAD_SECRET = "slw_nosuchtoken_nosuchsecret"
ROLE_NEEDS = frozenset(
    {Need.VIEWER, Need.EDITOR, Need.APPROVER, Need.DEPLOYER, Need.AUDITOR, Need.ADMIN}
)


def may(role: Role, need: Need) -> bool:
    """docs/security.md's rule, restated: every role reads; each change belongs to its
    own role; admin does everything."""
    if need in (Need.VIEWER, Need.TOKEN, Need.GRANTED):
        return True
    if need is Need.INVOKE:
        return role is Role.ADMIN
    return role is Role.ADMIN or (need in ROLE_NEEDS and role.value == need.value)


def expected(need: Need, caller: Caller) -> int | None:
    """The status ``caller`` must get from a route needing ``need``: 401, 403, or None for
    allowed (anything but 401 and 403: a made-up resource is a 404, an empty body a 4xx)."""
    if need is Need.PUBLIC:
        return None
    if caller.kind in (Kind.ANONYMOUS, Kind.BAD_TOKEN):
        return 401
    assert caller.role is not None
    if caller.kind is Kind.OTHER_WORKSPACE:
        # Its role holds elsewhere: here it may only list the workspaces it was granted.
        return None if need is Need.GRANTED else 403
    if need is Need.REFUSED:
        return 403
    if need is Need.INVOKE and caller.invoke:
        return None
    return None if may(caller.role, need) else 403


def headers_for(
    callers: Iterable[Caller], create: Callable[[Caller, Role], str]
) -> dict[Caller, dict[str, str]]:
    """Each caller's request headers; ``create(caller, role)`` makes a role caller's token
    (named :attr:`Caller.token_name`) and returns its secret."""
    headers: dict[Caller, dict[str, str]] = {}
    for caller in callers:
        if caller.has_token:
            assert caller.role is not None
            headers[caller] = {"Authorization": f"Bearer {create(caller, caller.role)}"}
        elif caller.kind is Kind.BAD_TOKEN:
            headers[caller] = {"Authorization": f"Bearer {BAD_SECRET}"}
        else:
            headers[caller] = {}
    return headers


def actor(caller: Caller) -> str:
    """Who the audit log names for a denial of ``caller``."""
    return caller.token_name if caller.has_token else "unauthenticated"


def parse(table: str) -> dict[tuple[str, str], Need]:
    """``METHOD PATH NEED`` lines (``#`` starts a comment) as {(method, path): need}; a
    row given twice is an error, so the table cannot disagree with itself."""
    rows: dict[tuple[str, str], Need] = {}
    for line in table.splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        method, path, need = text.split()
        assert (method, path) not in rows, f"{method} {path} is in the table twice"
        rows[(method, path)] = Need(need)
    return rows
