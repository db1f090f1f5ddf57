"""The model registry over REST: versions, approvals, aliases, comparison, lineage, model
cards, and promotion between platforms (export on the source, import on the target:
:mod:`slipway.registry.transfer`)."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from slipway.api.auth import Principal, authorize, needs, services_of, workspace_of
from slipway.api.limits import whole_body
from slipway.api.routes import MAX_ID, Int64
from slipway.core.errors import UnsupportedMediaType
from slipway.registry import card
from slipway.registry.archive import MEDIA_TYPE, SHA256_HEADER
from slipway.registry.resources import (
    AliasRequest,
    ApprovalRequest,
    Comparison,
    ImportedVersion,
    ModelInput,
    ModelVersion,
    RegisteredModel,
    RegisterRequest,
    Transition,
)
from slipway.registry.service import Registry
from slipway.security.resources import Role

_caller = authorize(scoped=True)
router = APIRouter(prefix="/models", tags=["models"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


def registry(request: Request) -> Registry:
    """The registry of the request's workspace."""
    return services_of(request).registry.in_workspace(workspace_of(request))


@router.get("")
def list_models(request: Request) -> list[RegisteredModel]:
    return registry(request).models()


@router.get("/{name}/versions")
def list_versions(name: str, request: Request) -> list[ModelVersion]:
    return registry(request).versions(name)


@router.post("/{name}/versions", status_code=201)
def register(name: str, body: RegisterRequest, request: Request, caller: Caller) -> ModelVersion:
    return registry(request).register(
        name,
        body.source,
        actor=caller.name,
        description=body.description,
        lineage=body.lineage,
        output=body.output,
        owner=body.owner,
        intended_use=body.intended_use,
    )


@router.get("/{name}/versions/{ref}")
def get_version(name: str, ref: str, request: Request) -> ModelVersion:
    """A version by number or alias."""
    return registry(request).get(name, ref)


@router.get("/{name}/versions/{ref}/deployable")
def check_deployable(
    name: str,
    ref: str,
    request: Request,
    environment: Annotated[str, Query(max_length=63, description="e.g. production")],
) -> ModelVersion:
    """The version when the environment's policy lets it be deployed (production: Approved
    only; Rejected nowhere), else 403 saying why."""
    return registry(request).check_deployable(name, ref, environment)


@router.post("/{name}/versions/{ref}/verify")
def verify(name: str, ref: str, request: Request) -> ModelVersion:
    """Check the version's files against the digest recorded at registration: the version
    when they match, else 409 ``model_tampered`` naming the files that changed. A POST:
    a mismatch is recorded as an event."""
    return registry(request).verify(name, ref)


@router.get(
    "/{name}/versions/{ref}/card",
    responses={200: {"content": {"text/markdown": {}, "application/json": {}}}},
)
def model_card(
    name: str,
    ref: str,
    request: Request,
    format: Annotated[
        Literal["json", "markdown"], Query(description="json (default) or markdown")
    ] = "json",
) -> Response:
    """The version's model card, written from what the platform recorded: owner and
    intended use (given at registration), training data lineage with Delta versions,
    parameters, evaluation metrics and the gate's comparison, bias and global importance,
    and the approval history (see :mod:`slipway.registry.card`)."""
    built = card.build(registry(request), name, ref)
    if format == "markdown":
        return Response(card.markdown(built), media_type="text/markdown; charset=utf-8")
    return JSONResponse(built)


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_ARCHIVE_TYPES = frozenset({MEDIA_TYPE, "application/x-gzip", "application/octet-stream"})


@router.get(
    "/{name}/versions/{ref}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The version's archive: manifest.json and model/ (a gzipped tar)",
            "content": {MEDIA_TYPE: _BINARY},
            "headers": {SHA256_HEADER: {"description": "the archive's SHA-256 (hex)"}},
        },
        409: {"description": "The version's files no longer match its digest"},
    },
)
def export_version(name: str, ref: str, request: Request) -> Response:
    """The version as another Slipway imports it (``slipway models promote``): its files,
    checked against its digest as they are packed, with its metrics, lineage, card fields
    and approval history; the archive's SHA-256 in a header, for the importer to check."""
    exported = registry(request).export_version(
        name, ref, platform=str(request.base_url).rstrip("/")
    )
    filename = f"{name}-v{exported.manifest.version}.tar.gz"
    return Response(
        exported.data,
        media_type=MEDIA_TYPE,
        headers={
            SHA256_HEADER: exported.sha256,
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


@router.post(
    "/{name}/imports",
    status_code=201,
    responses={
        200: {"model": ImportedVersion, "description": "Promoted before: that version"},
        409: {"description": "The archive or its files do not match their digests"},
        415: {"description": "The body is not a gzipped tar"},
    },
    openapi_extra={"requestBody": {"required": True, "content": {MEDIA_TYPE: _BINARY}}},
)
async def import_version(
    name: str,
    request: Request,
    response: Response,
    caller: Caller,
    sha256: Annotated[
        str, Query(max_length=64, description="the archive's SHA-256, as its export gave it")
    ],
) -> ImportedVersion:
    """Register a version exported by another Slipway (the body: its archive) as a version
    of ``name`` here. Refused whole unless the body matches ``sha256`` and the files the
    digest the source recorded (409 ``model_tampered``); an archive member that is not a
    plain file under ``model/`` is a 400 naming ``archive``. The same source version
    imported again answers 200 with the version it became."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _ARCHIVE_TYPES:
        raise UnsupportedMediaType(
            f"a model archive is sent as {MEDIA_TYPE} (a gzipped tar), not {media!r}"
        )
    data = await whole_body(request)  # bounded by RequestLimits, not copied again
    settings = services_of(request).settings
    workspace = workspace_of(request)
    role = caller.role_in(workspace)
    may_approve = not settings.server.auth or (role is not None and role.allows(Role.APPROVER))
    target = registry(request)
    result = await anyio.to_thread.run_sync(
        lambda: target.import_version(
            name, data, sha256=sha256, actor=caller.name, may_approve=may_approve
        )
    )
    if not result.created:
        response.status_code = 200
    return result


@router.get("/{name}/versions/{version}/approvals")
def approvals(name: str, version: Int64, request: Request) -> list[Transition]:
    return registry(request).transitions(name, version)


@router.post("/{name}/versions/{version}/approval", openapi_extra=needs(Role.APPROVER))
def set_approval(
    name: str, version: Int64, body: ApprovalRequest, request: Request, caller: Caller
) -> ModelVersion:
    services = services_of(request)
    return registry(request).set_approval(
        name,
        version,
        body.status,
        actor=caller.name,
        comment=body.comment,
        # With auth off every caller is the same local ``anonymous``: no one else could.
        author_may_approve=(
            services.settings.registry.allow_self_approval or not services.settings.server.auth
        ),
    )


@router.put("/{name}/aliases/{alias}", openapi_extra=needs(Role.DEPLOYER))
def set_alias(
    name: str, alias: str, body: AliasRequest, request: Request, caller: Caller
) -> ModelVersion:
    return registry(request).set_alias(name, alias, body.version, actor=caller.name)


@router.delete("/{name}/aliases/{alias}", status_code=204, openapi_extra=needs(Role.DEPLOYER))
def delete_alias(name: str, alias: str, request: Request, caller: Caller) -> None:
    registry(request).delete_alias(name, alias, actor=caller.name)


@router.get("/{name}/compare")
def compare(
    name: str,
    request: Request,
    versions: Annotated[
        list[str], Query(description="two or more version numbers or aliases")
    ] = [],  # noqa: B006 (FastAPI copies defaults; fewer than two is the service's error)
) -> Comparison:
    refs: list[int | str] = [int(v) if v.isdigit() else v for v in versions]
    return registry(request).compare(name, refs)


@router.get("/lineage/feature-groups/{group}")
def trained_on(
    group: str, request: Request, version: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None
) -> list[ModelInput]:
    """Reverse lineage: model versions trained on a feature group (at a Delta version)."""
    return registry(request).trained_on(group, version)
