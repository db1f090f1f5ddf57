"""The audit log in the console: who changed what, newest first, filtered by actor,
action, resource and time, paged backwards by entry id (``before=``) so a page stays put
while new entries arrive.

Reading it takes the auditor's role (or admin's) in the page's workspace, as the REST API
asks (``GET /api/v1/audit``); a viewer gets a 403 page. The page shows that workspace's
entries; "every workspace you can read" shows those of each workspace the token holds a
role in, which is exactly what the REST API answers the same token.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from slipway.console.render import render
from slipway.console.routing import ConsoleRoute, here
from slipway.console.session import require, services_of
from slipway.core.errors import InvalidInput
from slipway.core.workspace import ALL_WORKSPACES
from slipway.security.resources import AuditEntry
from slipway.security.tokens import Role

router = APIRouter(route_class=ConsoleRoute)

PAGE_SIZE = 50
# Longer filters cannot match: the log keeps actions and actors to 255 characters and
# resources to 1,024.
MAX_FILTER = 1024
SCOPES = ("workspace", "all")


def moment(raw: str, field: str) -> datetime | None:
    """An ISO 8601 date or date-time from the form (``2026-12-07``, ``2026-12-07T10:30``,
    ``…+02:00``); one without an offset is UTC, as every time the console shows."""
    if not raw.strip():
        return None
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(
            f"{field} must be an ISO date-time such as 2026-12-07T10:30 (UTC)", field=field
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def as_field(value: datetime | None) -> str:
    """A time as a ``datetime-local`` field shows it (UTC, to the second)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else ""


def _text(raw: str, field: str) -> str | None:
    value = raw.strip()
    if len(value) > MAX_FILTER:
        raise InvalidInput(f"{field} is too long to match anything", field=field)
    return value or None


@router.get("/audit")
def audit(
    request: Request,
    actor: str = "",
    action: str = "",
    resource: str = "",
    since: Annotated[str, Query(alias="from")] = "",
    until: Annotated[str, Query(alias="to")] = "",
    scope: str = "workspace",
    before: str = "",
) -> Response:
    who = require(request, Role.AUDITOR)
    filters = {
        "actor": actor.strip(),
        "action": action.strip(),
        "resource": resource.strip(),
        "from": since.strip(),
        "to": until.strip(),
        "scope": scope if scope in SCOPES else "workspace",
    }
    error = ""
    entries: list[AuditEntry] = []
    older: str | None = None
    start, end = None, None
    try:
        if scope not in SCOPES:
            raise InvalidInput("scope must be workspace or all", field="scope")
        if before and (not before.isdigit() or not 1 <= int(before) <= 2**63 - 1):
            raise InvalidInput("before must be an entry id", field="before")
        start, end = moment(since, "from"), moment(until, "to")
        if start is not None and end is not None and start >= end:
            raise InvalidInput("the time range ends before it starts", field="to")
        workspaces = (
            list(who.grants) if scope == "all" else [who.workspace]
        )  # the REST API's rule: only what the token holds a role in
        found = services_of(request).audit.list(
            limit=PAGE_SIZE + 1,
            before=int(before) if before else None,
            actor=_text(actor, "actor"),
            action=_text(action, "action"),
            resource=_text(resource, "resource"),
            since=start,
            until=end,
            workspaces=workspaces,
        )
        entries = list(found[:PAGE_SIZE])
        if len(found) > PAGE_SIZE:
            older = here(request, "/audit", **_query(filters), before=entries[-1].id)
    except InvalidInput as refused:
        error = refused.message
    filtered = any(filters[k] for k in ("actor", "action", "resource", "from", "to"))
    return render(
        request,
        "audit_list.html",
        title="Audit log",
        status_code=400 if error else 200,
        error=error,
        filters=filters,
        since_field=as_field(start) if start else filters["from"],
        until_field=as_field(end) if end else filters["to"],
        entries=entries,
        older=older,
        newest=here(request, "/audit", **_query(filters)) if before else None,
        filtered=filtered,
        every_workspace=ALL_WORKSPACES in who.grants,
        command=_command(filters),
    )


def _query(filters: dict[str, str]) -> dict[str, str | None]:
    """The filters as a link's query (empty ones, and the default scope, left out)."""
    query: dict[str, str | None] = {k: (v or None) for k, v in filters.items()}
    if query["scope"] == "workspace":
        query["scope"] = None
    return query


def _command(filters: dict[str, str]) -> str:
    """The CLI command showing the same entries (it filters by actor and action)."""
    parts = ["slipway audit"]
    for key in ("actor", "action"):
        if filters[key]:
            parts.append(f"--{key} {shlex.quote(filters[key])}")
    return " ".join(parts)
