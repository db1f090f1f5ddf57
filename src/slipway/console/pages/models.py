"""The model registry in the console: models, versions side by side (metrics, parameters,
approval, aliases, where each is served), a version's lineage drawn as a graph, and the
Approve / Reject controls for approvers."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from slipway.console.charts import Node, dag
from slipway.console.dashboard import Serving, serving_of
from slipway.console.paging import paginate
from slipway.console.render import render
from slipway.console.routing import ConsoleRoute, Id, action, done, here
from slipway.console.session import services_of, viewer
from slipway.core.errors import InvalidInput
from slipway.registry.models import ApprovalStatus
from slipway.registry.resources import ModelVersion
from slipway.security.tokens import Role
from slipway.services import Services

router = APIRouter(route_class=ConsoleRoute)

# Comments longer than this are refused, as by the REST API's approval request.
MAX_COMMENT = 4000


def _services(request: Request) -> Services:
    return services_of(request).in_workspace(viewer(request).workspace)


def mlflow_run_url(services: Services, version: ModelVersion) -> str | None:
    """The version's training run in MLflow's UI, when a tracking server serves one."""
    base = services.tracking_uri
    if not version.run_id or not base.startswith(("http://", "https://")):
        return None
    experiment = version.lineage.get("experiment_id") or "0"
    return f"{base.rstrip('/')}/#/experiments/{experiment}/runs/{version.run_id}"


def _served(services: Services, name: str) -> dict[int, list[Serving]]:
    by_version: dict[int, list[Serving]] = {}
    for serving in serving_of(services.endpoints.list()).get(name, []):
        if serving.version is not None:
            by_version.setdefault(serving.version, []).append(serving)
    return by_version


@router.get("/models")
def models(request: Request, q: str = "") -> Response:
    services = _services(request)
    found = [m for m in services.registry.models() if q.lower() in m.name.lower()]
    return render(
        request,
        "models_list.html",
        title="Models",
        q=q,
        page=paginate(found, request),
        page_link=lambda number: here(request, "/models", q=q or None, page=number),
    )


@router.get("/models/{name}")
def model(request: Request, name: str) -> Response:
    services = _services(request)
    versions = list(reversed(services.registry.versions(name)))
    page = paginate(versions, request)
    metrics = sorted({k for v in page.items for k in v.metrics})
    params = sorted({k for v in page.items for k in v.params})
    return render(
        request,
        "models_model.html",
        title=f"Model {name}",
        name=name,
        page=page,
        page_link=lambda number: here(request, f"/models/{name}", page=number),
        metrics=metrics,
        params=params,
        served=_served(services, name),
        may_approve=viewer(request).may(Role.APPROVER),
    )


def lineage_nodes(version: ModelVersion, link_to: Any) -> list[Node]:
    """What the version was made from, as a graph: feature groups (with the Delta version
    read) → the training set (its data digest) → the training run (in a pipeline's
    execution) → the version."""
    lineage = version.lineage
    nodes: list[Node] = []
    inputs: list[str] = []
    training_set = lineage.get("training_set") or {}
    groups: dict[str, Any] = dict(training_set.get("group_versions") or {})
    for ref in training_set.get("feature_refs") or []:
        groups.setdefault(str(ref).partition(":")[0], None)
    for group, delta in sorted(groups.items()):
        label = f"group {group}"
        detail = f"Delta v{delta}" if delta is not None else "latest"
        nodes.append(Node(label, "feature group", (), link_to(f"/features/{group}"), detail))
        inputs.append(label)
    if lineage.get("data_digest") or inputs:
        digest = str(lineage.get("data_digest") or "")
        nodes.append(Node("training set", "data", tuple(inputs), "", digest[:12]))
        inputs = ["training set"]
    execution = lineage.get("pipeline_execution")
    if execution:
        step = lineage.get("pipeline_step") or ""
        nodes.append(
            Node(
                f"execution {str(execution)[:8]}",
                "pipeline",
                (),
                link_to(f"/pipelines/executions/{execution}"),
                f"{lineage.get('pipeline') or ''} {step}".strip(),
            )
        )
        inputs.append(f"execution {str(execution)[:8]}")
    if version.run_id:
        nodes.append(Node(f"run {version.run_id[:8]}", "run", tuple(inputs), "", "MLflow"))
        inputs = [f"run {version.run_id[:8]}"]
    status = version.approval_status.value
    nodes.append(Node(f"{version.name} v{version.version}", status, tuple(inputs)))
    return nodes


@router.get("/models/{name}/versions/{number}")
def model_version(request: Request, name: str, number: Id) -> Response:
    services = _services(request)
    version = services.registry.get(name, number)
    transitions = list(services.registry.transitions(name, number))
    graph = dag(
        f"Lineage of {name} version {number}",
        lineage_nodes(version, lambda path: here(request, path)),
        width=170,
    )
    return render(
        request,
        "models_version.html",
        title=f"{name} version {number}",
        name=name,
        version=version,
        transitions=list(reversed(transitions)),
        lineage_graph=graph,
        served=_served(services, name).get(number, []),
        run_url=mlflow_run_url(services, version),
        may_approve=viewer(request).may(Role.APPROVER),
    )


async def _set_approval(
    request: Request, name: str, number: int, status: ApprovalStatus
) -> Response:
    who, fields = await action(request, Role.APPROVER)
    comment = fields.get("comment", "").strip()
    if status is ApprovalStatus.REJECTED and not comment:
        raise InvalidInput("say why the version is rejected", field="comment")
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"a comment is at most {MAX_COMMENT} characters", field="comment")
    services = _services(request)
    settings = services.settings
    await anyio.to_thread.run_sync(
        lambda: services.registry.set_approval(
            name,
            number,
            status,
            actor=who.name,
            comment=comment,
            author_may_approve=settings.registry.allow_self_approval or not settings.server.auth,
        )
    )
    # Back to the page the control was on: the model's versions or the version itself.
    target = f"/models/{name}/versions/{number}"
    if fields.get("back") == "model":
        target = f"/models/{name}"
    return done(request, here(request, target), f"{name} version {number} is {status.value}")


@router.post("/models/{name}/versions/{number}/approve")
async def approve(request: Request, name: str, number: Id) -> Response:
    return await _set_approval(request, name, number, ApprovalStatus.APPROVED)


@router.post("/models/{name}/versions/{number}/reject")
async def reject(request: Request, name: str, number: Id) -> Response:
    return await _set_approval(request, name, number, ApprovalStatus.REJECTED)
