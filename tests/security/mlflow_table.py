"""Who may call each route of MLflow's tracking server behind Slipway's gate: the
permission matrix's table for MLflow, written out route by route from MLflow's own route
list (not read from :mod:`slipway.api.tracking.policy`, whose family rules would classify
a new route silently). Each row is ``METHOD TEMPLATE NEED``; the UI's ``/ajax-api/``
routes are the same handlers as ``/api/`` and share its row.

When MLflow adds, renames or drops a route, ``tests/tracking/test_gate.py`` fails until
the row is added or removed here: a person decides what a new MLflow surface may do.
"""

from __future__ import annotations

import re
import warnings

from tests.security.matrix import parse

# Reads need a viewer; writes an editor; the routes Slipway does not offer are refused to
# everyone; a route missing from MLflow's list here is a test failure, not a default.
MLFLOW = parse(
    """
    # Liveness: the only public route.
    GET     /health                                                                  public

    # The UI, its files, and what it reads (GraphQL's only mutations are searches).
    GET     /                                                                        viewer
    GET     /api/3.0/mlflow/server-info                                              viewer
    GET     /build/{filename}                                                        viewer
    GET     /get-artifact                                                            viewer
    GET     /graphql                                                                 viewer
    POST    /graphql                                                                 viewer
    GET     /model-versions/get-artifact                                             viewer
    GET     /static-files/{path}                                                     viewer
    GET     /version                                                                 viewer

    # Proxied artifacts: reads; writes only into the folder of an open run, logged model or
    # trace (the matrix writes into an open run's, so an allowed caller is not confined).
    GET     /api/2.0/mlflow-artifacts/artifacts                                      viewer
    DELETE  /api/2.0/mlflow-artifacts/artifacts/{artifact_path}                      editor
    GET     /api/2.0/mlflow-artifacts/artifacts/{artifact_path}                      viewer
    PUT     /api/2.0/mlflow-artifacts/artifacts/{artifact_path}                      editor

    POST    /api/2.0/mlflow-artifacts/mpu/abort/{artifact_path}                      editor
    POST    /api/2.0/mlflow-artifacts/mpu/complete/{artifact_path}                   editor
    POST    /api/2.0/mlflow-artifacts/mpu/create/{artifact_path}                     editor

    GET     /api/2.0/mlflow-artifacts/presigned/{artifact_path}                      viewer

    GET     /api/2.0/mlflow/artifacts/list                                           viewer
    POST    /api/2.0/mlflow/artifacts/presigned-download-url                         viewer
    POST    /api/2.0/mlflow/artifacts/presigned-upload-url                           editor

    POST    /api/2.0/mlflow/experiments/create                                       editor
    POST    /api/2.0/mlflow/experiments/delete                                       editor
    POST    /api/2.0/mlflow/experiments/delete-experiment-tag                        editor
    GET     /api/2.0/mlflow/experiments/get                                          viewer
    GET     /api/2.0/mlflow/experiments/get-by-name                                  viewer
    POST    /api/2.0/mlflow/experiments/restore                                      editor
    GET     /api/2.0/mlflow/experiments/search                                       viewer
    POST    /api/2.0/mlflow/experiments/search                                       viewer
    POST    /api/2.0/mlflow/experiments/search-datasets                              viewer
    POST    /api/2.0/mlflow/experiments/set-experiment-tag                           editor
    POST    /api/2.0/mlflow/experiments/update                                       editor

    GET     /api/2.0/mlflow/gateway-proxy                                            refused
    POST    /api/2.0/mlflow/gateway-proxy                                            refused

    GET     /api/2.0/mlflow/get-online-trace-details                                 viewer

    GET     /api/2.0/mlflow/get-trace-artifact                                       viewer

    POST    /api/2.0/mlflow/logged-models                                            editor
    POST    /api/2.0/mlflow/logged-models/search                                     viewer
    DELETE  /api/2.0/mlflow/logged-models/{model_id}                                 editor
    GET     /api/2.0/mlflow/logged-models/{model_id}                                 viewer
    PATCH   /api/2.0/mlflow/logged-models/{model_id}                                 editor
    GET     /api/2.0/mlflow/logged-models/{model_id}/artifacts/directories           viewer
    GET     /api/2.0/mlflow/logged-models/{model_id}/artifacts/files                 viewer
    POST    /api/2.0/mlflow/logged-models/{model_id}/params                          editor
    PATCH   /api/2.0/mlflow/logged-models/{model_id}/tags                            editor
    DELETE  /api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}                  editor

    GET     /api/2.0/mlflow/metrics/get-history                                      viewer
    GET     /api/2.0/mlflow/metrics/get-history-bulk                                 viewer
    GET     /api/2.0/mlflow/metrics/get-history-bulk-interval                        viewer

    POST    /api/2.0/mlflow/model-versions/create                                    editor
    DELETE  /api/2.0/mlflow/model-versions/delete                                    refused
    DELETE  /api/2.0/mlflow/model-versions/delete-tag                                editor
    GET     /api/2.0/mlflow/model-versions/get                                       viewer
    GET     /api/2.0/mlflow/model-versions/get-download-uri                          viewer
    GET     /api/2.0/mlflow/model-versions/search                                    viewer
    POST    /api/2.0/mlflow/model-versions/set-tag                                   editor
    POST    /api/2.0/mlflow/model-versions/transition-stage                          refused
    PATCH   /api/2.0/mlflow/model-versions/update                                    editor

    # The registry: new versions and aliases are Slipway's registration and alias move (an
    # alias decides what `model@alias` deployments serve: the deployer's); deletions,
    # renames and stages are refused; `slipway.*` tags are Slipway's own.
    DELETE  /api/2.0/mlflow/registered-models/alias                                  deployer
    GET     /api/2.0/mlflow/registered-models/alias                                  viewer
    POST    /api/2.0/mlflow/registered-models/alias                                  deployer
    POST    /api/2.0/mlflow/registered-models/create                                 editor
    DELETE  /api/2.0/mlflow/registered-models/delete                                 refused
    DELETE  /api/2.0/mlflow/registered-models/delete-tag                             editor
    GET     /api/2.0/mlflow/registered-models/get                                    viewer
    GET     /api/2.0/mlflow/registered-models/get-latest-versions                    viewer
    POST    /api/2.0/mlflow/registered-models/get-latest-versions                    viewer
    POST    /api/2.0/mlflow/registered-models/rename                                 refused
    GET     /api/2.0/mlflow/registered-models/search                                 viewer
    POST    /api/2.0/mlflow/registered-models/set-tag                                editor
    PATCH   /api/2.0/mlflow/registered-models/update                                 editor

    POST    /api/2.0/mlflow/runs/create                                              editor
    POST    /api/2.0/mlflow/runs/create-promptlab-run                                editor
    POST    /api/2.0/mlflow/runs/delete                                              editor
    POST    /api/2.0/mlflow/runs/delete-tag                                          editor
    GET     /api/2.0/mlflow/runs/get                                                 viewer
    POST    /api/2.0/mlflow/runs/log-batch                                           editor
    POST    /api/2.0/mlflow/runs/log-inputs                                          editor
    POST    /api/2.0/mlflow/runs/log-metric                                          editor
    POST    /api/2.0/mlflow/runs/log-model                                           editor
    POST    /api/2.0/mlflow/runs/log-parameter                                       editor
    POST    /api/2.0/mlflow/runs/outputs                                             editor
    POST    /api/2.0/mlflow/runs/restore                                             editor
    POST    /api/2.0/mlflow/runs/search                                              viewer
    POST    /api/2.0/mlflow/runs/set-tag                                             editor
    POST    /api/2.0/mlflow/runs/update                                              editor

    GET     /api/2.0/mlflow/traces                                                   viewer
    POST    /api/2.0/mlflow/traces                                                   editor
    POST    /api/2.0/mlflow/traces/delete-traces                                     editor
    POST    /api/2.0/mlflow/traces/link-prompts                                      editor
    POST    /api/2.0/mlflow/traces/link-to-run                                       editor
    PATCH   /api/2.0/mlflow/traces/{request_id}                                      editor
    GET     /api/2.0/mlflow/traces/{request_id}/info                                 viewer
    DELETE  /api/2.0/mlflow/traces/{request_id}/tags                                 editor
    PATCH   /api/2.0/mlflow/traces/{request_id}/tags                                 editor

    GET     /api/2.0/mlflow/unified-traces                                           viewer

    POST    /api/2.0/mlflow/upload-artifact                                          refused

    # Webhooks post anywhere: not offered (Slipway's alert channels instead).
    GET     /api/2.0/mlflow/webhooks                                                 refused
    POST    /api/2.0/mlflow/webhooks                                                 refused
    DELETE  /api/2.0/mlflow/webhooks/{webhook_id}                                    refused
    GET     /api/2.0/mlflow/webhooks/{webhook_id}                                    refused
    PATCH   /api/2.0/mlflow/webhooks/{webhook_id}                                    refused
    POST    /api/2.0/mlflow/webhooks/{webhook_id}/test                               refused

    # MLflow's own spelling (no slash after 2.0), a route of its server all the same.
    POST    /api/2.0mlflow/experiments/search-datasets                               viewer

    # MLflow's job runner, the assistant, MCP servers, prompt optimization, demo data,
    # server-side judges (issue detection included) and telemetry: code the server would
    # run or calls it would make, not offered.
    POST    /api/3.0/jobs/                                                           refused
    PATCH   /api/3.0/jobs/cancel/{job_id}                                            refused
    POST    /api/3.0/jobs/search                                                     refused
    GET     /api/3.0/jobs/{job_id}                                                   refused

    GET     /api/3.0/mlflow/assistant/config                                         refused
    PUT     /api/3.0/mlflow/assistant/config                                         refused
    POST    /api/3.0/mlflow/assistant/message                                        refused
    GET     /api/3.0/mlflow/assistant/providers                                      refused
    GET     /api/3.0/mlflow/assistant/providers/{provider}/health                    refused
    GET     /api/3.0/mlflow/assistant/providers/{provider}/models                    refused
    PATCH   /api/3.0/mlflow/assistant/sessions/{session_id}                          refused
    POST    /api/3.0/mlflow/assistant/sessions/{session_id}/permission               refused
    GET     /api/3.0/mlflow/assistant/sessions/{session_id}/stream                   refused
    POST    /api/3.0/mlflow/assistant/sessions/{session_id}/tool-result              refused
    POST    /api/3.0/mlflow/assistant/skills/install                                 refused

    POST    /api/3.0/mlflow/datasets/create                                          editor
    GET     /api/3.0/mlflow/datasets/search                                          viewer
    POST    /api/3.0/mlflow/datasets/search                                          viewer
    DELETE  /api/3.0/mlflow/datasets/{dataset_id}                                    editor
    GET     /api/3.0/mlflow/datasets/{dataset_id}                                    viewer
    POST    /api/3.0/mlflow/datasets/{dataset_id}/add-experiments                    editor
    GET     /api/3.0/mlflow/datasets/{dataset_id}/experiment-ids                     viewer
    DELETE  /api/3.0/mlflow/datasets/{dataset_id}/records                            editor
    GET     /api/3.0/mlflow/datasets/{dataset_id}/records                            viewer
    POST    /api/3.0/mlflow/datasets/{dataset_id}/records                            editor
    POST    /api/3.0/mlflow/datasets/{dataset_id}/remove-experiments                 editor
    PATCH   /api/3.0/mlflow/datasets/{dataset_id}/tags                               editor
    DELETE  /api/3.0/mlflow/datasets/{dataset_id}/tags/{key}                         editor

    POST    /api/3.0/mlflow/demo/delete                                              refused
    POST    /api/3.0/mlflow/demo/generate                                            refused

    POST    /api/3.0/mlflow/gateway/budgets/create                                   refused
    DELETE  /api/3.0/mlflow/gateway/budgets/delete                                   refused
    GET     /api/3.0/mlflow/gateway/budgets/get                                      refused
    GET     /api/3.0/mlflow/gateway/budgets/list                                     refused
    POST    /api/3.0/mlflow/gateway/budgets/update                                   refused
    GET     /api/3.0/mlflow/gateway/budgets/windows                                  refused
    POST    /api/3.0/mlflow/gateway/endpoints/bindings/create                        refused
    DELETE  /api/3.0/mlflow/gateway/endpoints/bindings/delete                        refused
    GET     /api/3.0/mlflow/gateway/endpoints/bindings/list                          refused
    POST    /api/3.0/mlflow/gateway/endpoints/create                                 refused
    DELETE  /api/3.0/mlflow/gateway/endpoints/delete                                 refused
    DELETE  /api/3.0/mlflow/gateway/endpoints/delete-tag                             refused
    GET     /api/3.0/mlflow/gateway/endpoints/get                                    refused
    GET     /api/3.0/mlflow/gateway/endpoints/list                                   refused
    POST    /api/3.0/mlflow/gateway/endpoints/models/attach                          refused
    POST    /api/3.0/mlflow/gateway/endpoints/models/detach                          refused
    POST    /api/3.0/mlflow/gateway/endpoints/set-tag                                refused
    POST    /api/3.0/mlflow/gateway/endpoints/update                                 refused
    POST    /api/3.0/mlflow/gateway/guardrails/add-to-endpoint                       refused
    POST    /api/3.0/mlflow/gateway/guardrails/create                                refused
    DELETE  /api/3.0/mlflow/gateway/guardrails/delete                                refused
    GET     /api/3.0/mlflow/gateway/guardrails/get                                   refused
    GET     /api/3.0/mlflow/gateway/guardrails/list                                  refused
    GET     /api/3.0/mlflow/gateway/guardrails/list-for-endpoint                     refused
    DELETE  /api/3.0/mlflow/gateway/guardrails/remove-from-endpoint                  refused
    PATCH   /api/3.0/mlflow/gateway/guardrails/update-config                         refused
    POST    /api/3.0/mlflow/gateway/model-definitions/create                         refused
    DELETE  /api/3.0/mlflow/gateway/model-definitions/delete                         refused
    GET     /api/3.0/mlflow/gateway/model-definitions/get                            refused
    GET     /api/3.0/mlflow/gateway/model-definitions/list                           refused
    POST    /api/3.0/mlflow/gateway/model-definitions/update                         refused
    GET     /api/3.0/mlflow/gateway/provider-config                                  refused
    GET     /api/3.0/mlflow/gateway/secrets/config                                   refused
    POST    /api/3.0/mlflow/gateway/secrets/create                                   refused
    DELETE  /api/3.0/mlflow/gateway/secrets/delete                                   refused
    GET     /api/3.0/mlflow/gateway/secrets/get                                      refused
    GET     /api/3.0/mlflow/gateway/secrets/list                                     refused
    POST    /api/3.0/mlflow/gateway/secrets/update                                   refused
    GET     /api/3.0/mlflow/gateway/supported-models                                 refused
    GET     /api/3.0/mlflow/gateway/supported-providers                              refused

    POST    /api/3.0/mlflow/genai/evaluate/invoke                                    refused

    GET     /api/3.0/mlflow/get-trace-artifact                                       viewer

    POST    /api/3.0/mlflow/issues                                                   editor
    POST    /api/3.0/mlflow/issues/invoke                                            refused
    POST    /api/3.0/mlflow/issues/search                                            viewer
    GET     /api/3.0/mlflow/issues/{issue_id}                                        viewer
    PATCH   /api/3.0/mlflow/issues/{issue_id}                                        editor

    PATCH   /api/3.0/mlflow/jobs/cancel/{job_id}                                     refused
    GET     /api/3.0/mlflow/jobs/{job_id}                                            refused

    POST    /api/3.0/mlflow/label-schemas/create                                     editor
    DELETE  /api/3.0/mlflow/label-schemas/delete                                     editor
    GET     /api/3.0/mlflow/label-schemas/get                                        viewer
    GET     /api/3.0/mlflow/label-schemas/get-by-name                                viewer
    GET     /api/3.0/mlflow/label-schemas/list                                       viewer
    PATCH   /api/3.0/mlflow/label-schemas/update                                     editor

    GET     /api/3.0/mlflow/mcp-servers                                              refused
    POST    /api/3.0/mlflow/mcp-servers                                              refused
    GET     /api/3.0/mlflow/mcp-servers/endpoints                                    refused
    DELETE  /api/3.0/mlflow/mcp-servers/{name}                                       refused
    GET     /api/3.0/mlflow/mcp-servers/{name}                                       refused
    PATCH   /api/3.0/mlflow/mcp-servers/{name}                                       refused
    POST    /api/3.0/mlflow/mcp-servers/{name}/aliases                               refused
    DELETE  /api/3.0/mlflow/mcp-servers/{name}/aliases/{alias}                       refused
    GET     /api/3.0/mlflow/mcp-servers/{name}/aliases/{alias}                       refused
    GET     /api/3.0/mlflow/mcp-servers/{name}/endpoints                             refused
    POST    /api/3.0/mlflow/mcp-servers/{name}/endpoints                             refused
    DELETE  /api/3.0/mlflow/mcp-servers/{name}/endpoints/{endpoint_id}               refused
    GET     /api/3.0/mlflow/mcp-servers/{name}/endpoints/{endpoint_id}               refused
    PATCH   /api/3.0/mlflow/mcp-servers/{name}/endpoints/{endpoint_id}               refused
    POST    /api/3.0/mlflow/mcp-servers/{name}/tags                                  refused
    DELETE  /api/3.0/mlflow/mcp-servers/{name}/tags/{key}                            refused
    GET     /api/3.0/mlflow/mcp-servers/{name}/versions                              refused
    POST    /api/3.0/mlflow/mcp-servers/{name}/versions                              refused
    DELETE  /api/3.0/mlflow/mcp-servers/{name}/versions/{version}                    refused
    GET     /api/3.0/mlflow/mcp-servers/{name}/versions/{version}                    refused
    PATCH   /api/3.0/mlflow/mcp-servers/{name}/versions/{version}                    refused
    POST    /api/3.0/mlflow/mcp-servers/{name}/versions/{version}/tags               refused
    DELETE  /api/3.0/mlflow/mcp-servers/{name}/versions/{version}/tags/{key}         refused

    POST    /api/3.0/mlflow/prompt-optimization/jobs                                 refused
    GET     /api/3.0/mlflow/prompt-optimization/jobs/search                          refused
    POST    /api/3.0/mlflow/prompt-optimization/jobs/search                          refused
    DELETE  /api/3.0/mlflow/prompt-optimization/jobs/{job_id}                        refused
    GET     /api/3.0/mlflow/prompt-optimization/jobs/{job_id}                        refused
    POST    /api/3.0/mlflow/prompt-optimization/jobs/{job_id}/cancel                 refused

    POST    /api/3.0/mlflow/review-queues/create                                     editor
    POST    /api/3.0/mlflow/review-queues/delete                                     editor
    GET     /api/3.0/mlflow/review-queues/get                                        viewer
    GET     /api/3.0/mlflow/review-queues/get-by-name                                viewer
    POST    /api/3.0/mlflow/review-queues/get-or-create-user                         editor
    POST    /api/3.0/mlflow/review-queues/items/add                                  editor
    GET     /api/3.0/mlflow/review-queues/items/list                                 viewer
    POST    /api/3.0/mlflow/review-queues/items/remove                               editor
    POST    /api/3.0/mlflow/review-queues/items/set-status                           editor
    GET     /api/3.0/mlflow/review-queues/list                                       viewer
    POST    /api/3.0/mlflow/review-queues/update                                     editor

    POST    /api/3.0/mlflow/scorer/invoke                                            refused

    DELETE  /api/3.0/mlflow/scorers/delete                                           refused
    GET     /api/3.0/mlflow/scorers/get                                              viewer
    GET     /api/3.0/mlflow/scorers/list                                             viewer
    PUT     /api/3.0/mlflow/scorers/online-config                                    refused
    GET     /api/3.0/mlflow/scorers/online-configs                                   viewer
    POST    /api/3.0/mlflow/scorers/register                                         refused
    GET     /api/3.0/mlflow/scorers/versions                                         viewer

    POST    /api/3.0/mlflow/traces                                                   editor
    GET     /api/3.0/mlflow/traces/batchGet                                          viewer
    POST    /api/3.0/mlflow/traces/batchGetInfos                                     viewer
    POST    /api/3.0/mlflow/traces/calculate-filter-correlation                      viewer
    POST    /api/3.0/mlflow/traces/delete-traces                                     editor
    GET     /api/3.0/mlflow/traces/get                                               viewer
    POST    /api/3.0/mlflow/traces/metrics                                           viewer
    POST    /api/3.0/mlflow/traces/search                                            viewer
    GET     /api/3.0/mlflow/traces/{trace_id}                                        viewer
    POST    /api/3.0/mlflow/traces/{trace_id}/assessments                            editor
    DELETE  /api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}            editor
    GET     /api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}            viewer
    PATCH   /api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}            editor
    DELETE  /api/3.0/mlflow/traces/{trace_id}/tags                                   editor
    PATCH   /api/3.0/mlflow/traces/{trace_id}/tags                                   editor

    GET     /api/3.0/mlflow/ui-telemetry                                             refused
    POST    /api/3.0/mlflow/ui-telemetry                                             refused

    # Workspaces are Slipway's to manage: listed, never changed.
    GET     /api/3.0/mlflow/workspaces                                               granted
    POST    /api/3.0/mlflow/workspaces                                               refused
    DELETE  /api/3.0/mlflow/workspaces/{workspace_name}                              refused
    GET     /api/3.0/mlflow/workspaces/{workspace_name}                              granted
    PATCH   /api/3.0/mlflow/workspaces/{workspace_name}                              refused

    # MLflow's AI gateway (provider keys, outbound calls): not offered.
    POST    /gateway/anthropic/v1/messages                                           refused
    POST    /gateway/gemini/v1beta/models/{endpoint_name}:generateContent            refused
    POST    /gateway/gemini/v1beta/models/{endpoint_name}:streamGenerateContent      refused
    POST    /gateway/mlflow/v1/chat/completions                                      refused
    GET     /gateway/mlflow/v1/models                                                refused
    POST    /gateway/openai/v1/chat/completions                                      refused
    POST    /gateway/openai/v1/embeddings                                            refused
    POST    /gateway/openai/v1/responses                                             refused
    POST    /gateway/openai/v1/responses/compact                                     refused
    POST    /gateway/proxy/{endpoint_name}/{path}                                    refused
    POST    /gateway/typesafe/v1/systemone                                           refused
    POST    /gateway/{endpoint_name}/mlflow/invocations                              refused

    POST    /v1/traces                                                               editor
    """
)
_PARAM = re.compile(r"<(?:[a-z]+:)?([^>]+)>|\{([^}:]+)(?::[^}]+)?\}")


def mlflow_routes() -> dict[tuple[str, str], str]:
    """Every route of MLflow's server as {(method, template): a path it is served at}:
    its REST handlers, its Flask app's routes and its FastAPI app's (nested routers
    included). Templates are :data:`MLFLOW`'s spelling (:func:`template`); the path is the
    ``/api/`` one where MLflow serves both, else the UI's ``/ajax-api/`` one."""
    # MLflow's server modules are heavy and warn on import: loaded only when asked.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.routing import iter_route_contexts
        from mlflow.server import app as flask_app
        from mlflow.server.fastapi_app import app as fastapi_app
        from mlflow.server.handlers import get_endpoints

    found: set[tuple[str, str]] = set()
    for path, _handler, methods in get_endpoints():  # type: ignore[no-untyped-call]
        found.update((method, path) for method in methods)
    for rule in flask_app.url_map.iter_rules():
        found.update((m, rule.rule) for m in rule.methods or () if m not in ("HEAD", "OPTIONS"))
    for route in iter_route_contexts(fastapi_app.routes):
        found.update((method, str(route.path)) for method in route.methods or ())
    routes: dict[tuple[str, str], str] = {}
    for method, path in sorted(found, key=lambda route: route[1].startswith("/ajax-api/")):
        routes.setdefault((method, template(path)), path)
    return routes


def template(path: str) -> str:
    """An MLflow route's path in the table's spelling: ``<path:x>``, ``<x>`` and
    ``{x:path}`` as ``{x}``, the UI's ``/ajax-api/`` as ``/api/``."""
    path = _PARAM.sub(lambda m: f"{{{m.group(1) or m.group(2)}}}", path)
    return "/api/" + path.removeprefix("/ajax-api/") if path.startswith("/ajax-api/") else path


def fill(path: str, values: dict[str, str]) -> str:
    """A concrete path for one of MLflow's: each parameter its value in ``values``, else
    ``x1``."""
    return _PARAM.sub(lambda m: values.get(m.group(1) or m.group(2), "x1"), path)


def audited_denial(method: str) -> bool:
    """Whether the gate writes an audit entry (``mlflow METHOD path``) when it refuses
    ``method``: every refused request is, reads included."""
    return True
