"""Ownership records of ``slipway apply`` over REST: which spec set made which resource.

``slipway plan`` and ``slipway apply`` against a remote control plane read and write these
through :class:`slipway.Client`, as they do the embedded table in process.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from slipway.api.auth import Principal, authorize, services_of, workspace_of
from slipway.apply.ownership import Ownership
from slipway.apply.resources import AppliedRecord, AppliedResource
from slipway.core.resource import Listing

_caller = authorize(scoped=True)
router = APIRouter(prefix="/applied", tags=["apply"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


def ownership(request: Request) -> Ownership:
    """The ownership records of the request's workspace."""
    return services_of(request).ownership.in_workspace(workspace_of(request))


@router.get("", response_model=list[AppliedResource])
def owned(
    request: Request, spec_set: Annotated[str | None, Query(max_length=63)] = None
) -> Listing[AppliedResource]:
    """Every resource a spec set applied (``spec_set`` to list one set's only)."""
    return ownership(request).owned(spec_set)


@router.put("/{kind}/{name}", response_model=AppliedResource)
def record(
    kind: str, name: str, body: AppliedRecord, request: Request, caller: Caller
) -> AppliedResource:
    """Record that ``body.spec_set`` applied ``kind``/``name`` with a spec of
    ``body.digest``."""
    return ownership(request).record(kind, name, body, actor=caller.name)


@router.delete("/{kind}/{name}", status_code=204)
def forget(kind: str, name: str, request: Request, caller: Caller) -> None:
    """Drop the record (the resource was pruned, or is handed back to hand management)."""
    ownership(request).forget(kind, name, actor=caller.name)
