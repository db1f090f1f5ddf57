"""The model registry over REST: versions, approvals, aliases, comparison, lineage, model
cards."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from slipway.api.auth import Principal, authorize, services_of
from slipway.api.routes import MAX_ID, Int64
from slipway.registry import card
from slipway.registry.lineage import Lineage
from slipway.registry.models import ApprovalStatus, ModelVersion, Output

_caller = authorize()
router = APIRouter(prefix="/models", tags=["models"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


class VersionOut(BaseModel):
    name: str
    version: int
    run_id: str | None
    source: str
    approval_status: ApprovalStatus
    digest: str
    signature: dict[str, Any]
    lineage: dict[str, Any]
    description: str
    registered_by: str
    registered_at: datetime
    aliases: list[str]
    metrics: dict[str, float]
    params: dict[str, str]
    output: Output
    classes: list[Any] | None = Field(
        description="the class labels in the order of the probabilities (null for label)"
    )
    owner: str = ""
    intended_use: str = ""

    @classmethod
    def of(cls, version: ModelVersion) -> VersionOut:
        data = version.to_dict()
        data.pop("artifact_key")
        return cls(**data)


class RegisterIn(BaseModel):
    source: str = Field(
        description="runs:/<run id>/<path>, mlflow-artifacts:/… or a path in the artifact store"
    )
    description: str = ""
    lineage: dict[str, Any] = Field(default_factory=dict)
    output: Output = Field(
        default=Output.LABEL,
        description="what the version returns: label (the model's predict), probabilities"
        " (one per class) or both; probabilities need a classifier that can produce them",
    )
    owner: str = Field(default="", max_length=255, description="who answers for it (card)")
    intended_use: str = Field(
        default="", max_length=5000, description="what it is for, and not for (model card)"
    )


class ApprovalIn(BaseModel):
    status: ApprovalStatus
    comment: str = Field(default="", max_length=4000)


class AliasIn(BaseModel):
    version: int = Field(ge=1)


@router.get("")
def list_models(request: Request) -> list[dict[str, Any]]:
    return services_of(request).registry.models()


@router.get("/{name}/versions", response_model=list[VersionOut])
def list_versions(name: str, request: Request) -> list[VersionOut]:
    return [VersionOut.of(v) for v in services_of(request).registry.versions(name)]


@router.post("/{name}/versions", status_code=201, response_model=VersionOut)
def register(name: str, body: RegisterIn, request: Request, caller: Caller) -> VersionOut:
    known = set(Lineage.__dataclass_fields__)
    lineage = Lineage(**{k: v for k, v in body.lineage.items() if k in known})
    version = services_of(request).registry.register(
        name,
        body.source,
        actor=caller.name,
        description=body.description,
        lineage=lineage,
        output=body.output,
        owner=body.owner,
        intended_use=body.intended_use,
    )
    return VersionOut.of(version)


@router.get("/{name}/versions/{ref}", response_model=VersionOut)
def get_version(name: str, ref: str, request: Request) -> VersionOut:
    """A version by number or alias."""
    return VersionOut.of(services_of(request).registry.get(name, ref))


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
    built = card.build(services_of(request).registry, name, ref)
    if format == "markdown":
        return Response(card.markdown(built), media_type="text/markdown; charset=utf-8")
    return JSONResponse(built)


@router.get("/{name}/versions/{version}/approvals")
def approvals(name: str, version: Int64, request: Request) -> list[dict[str, Any]]:
    registry = services_of(request).registry
    registry.get(name, version)
    return [t.__dict__ for t in registry.transitions(name, version)]


@router.post("/{name}/versions/{version}/approval", response_model=VersionOut)
def set_approval(
    name: str, version: Int64, body: ApprovalIn, request: Request, caller: Caller
) -> VersionOut:
    updated = services_of(request).registry.set_approval(
        name, version, body.status, actor=caller.name, comment=body.comment
    )
    return VersionOut.of(updated)


@router.put("/{name}/aliases/{alias}", response_model=VersionOut)
def set_alias(name: str, alias: str, body: AliasIn, request: Request, caller: Caller) -> VersionOut:
    return VersionOut.of(
        services_of(request).registry.set_alias(name, alias, body.version, actor=caller.name)
    )


@router.delete("/{name}/aliases/{alias}", status_code=204)
def delete_alias(name: str, alias: str, request: Request, caller: Caller) -> None:
    services_of(request).registry.delete_alias(name, alias, actor=caller.name)


@router.get("/{name}/compare")
def compare(
    name: str, request: Request, versions: Annotated[list[str], Query(min_length=2)]
) -> dict[str, Any]:
    refs: list[int | str] = [int(v) if v.isdigit() else v for v in versions]
    return services_of(request).registry.compare(name, refs)


@router.get("/lineage/feature-groups/{group}")
def trained_on(
    group: str, request: Request, version: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None
) -> list[dict[str, Any]]:
    """Reverse lineage: model versions trained on a feature group (at a Delta version)."""
    return services_of(request).registry.trained_on(group, version)
