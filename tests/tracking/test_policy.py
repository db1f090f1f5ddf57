"""Every route MLflow's server has is classified on purpose (none falls to the default)."""

from __future__ import annotations

import re
import warnings

import pytest

from slipway.api.tracking.policy import UNCLASSIFIED, Access, normalize, rule_for


def mlflow_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of MLflow's server: its REST handlers, its Flask
    app's own routes and the routers of its FastAPI app, placeholders filled in."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mlflow.server import app as flask_app
        from mlflow.server.fastapi_app import app as fastapi_app
        from mlflow.server.handlers import get_endpoints

    found: set[tuple[str, str]] = set()
    for path, _handler, methods in get_endpoints():
        found.update((method, path) for method in methods)
    for rule in flask_app.url_map.iter_rules():
        found.update((m, rule.rule) for m in rule.methods or () if m not in ("HEAD", "OPTIONS"))
    for route in fastapi_app.routes:
        router = getattr(route, "original_router", None)
        prefix = getattr(getattr(route, "include_context", None), "prefix", "")
        for inner in getattr(router, "routes", ()):
            for method in getattr(inner, "methods", None) or ():
                found.add((method, f"{prefix}{getattr(inner, 'path', '')}"))
    filled = {(method, re.sub(r"<[^>]+>|\{[^}]+\}", "x1", path)) for method, path in found}
    return sorted(filled)


def test_no_route_of_mlflows_server_is_left_to_the_default() -> None:
    routes = mlflow_routes()
    assert len(routes) > 200  # the whole surface, not an empty walk
    unclassified = [(m, p) for m, p in routes if rule_for(m, p) is UNCLASSIFIED]
    assert unclassified == []


@pytest.mark.parametrize(
    ("method", "path", "access"),
    [
        ("GET", "/health", Access.PUBLIC),
        ("GET", "/", Access.READ),
        ("POST", "/graphql", Access.READ),
        ("POST", "/api/2.0/mlflow/runs/search", Access.READ),
        ("POST", "/ajax-api/2.0/mlflow/runs/search", Access.READ),
        ("POST", "/api/2.0/mlflow/runs/log-metric", Access.WRITE),
        ("POST", "/api/2.0/mlflow/model-versions/create", Access.ROUTED),
        ("POST", "/ajax-api/2.0/mlflow/registered-models/alias", Access.ROUTED),
        ("DELETE", "/api/2.0/mlflow/registered-models/alias", Access.ROUTED),
        ("GET", "/api/2.0/mlflow/registered-models/alias", Access.READ),
        ("DELETE", "/api/2.0/mlflow/model-versions/delete", Access.REFUSED),
        ("POST", "/api/2.0/mlflow/model-versions/transition-stage", Access.REFUSED),
        ("POST", "/api/2.0/mlflow/registered-models/rename", Access.REFUSED),
        ("POST", "/api/2.0/mlflow/model-versions/set-tag", Access.TAGS),
        ("POST", "/api/2.0/mlflow/experiments/create", Access.EXPERIMENT),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/x", Access.ARTIFACT),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/x", Access.READ),
        ("POST", "/api/2.0/mlflow/webhooks", Access.REFUSED),
        ("GET", "/api/2.0/mlflow/webhooks", Access.REFUSED),
        ("POST", "/api/3.0/mlflow/gateway/secrets/create", Access.REFUSED),
        ("POST", "/gateway/openai/v1/chat/completions", Access.REFUSED),
        ("PUT", "/ajax-api/3.0/mlflow/assistant/config", Access.REFUSED),
        ("POST", "/api/3.0/mlflow/workspaces", Access.REFUSED),
        ("POST", "/api/9.9/anything/new", Access.REFUSED),
        ("POST", "/api/2.0/mlflow/brand-new-family/create", Access.REFUSED),
    ],
)
def test_rules(method: str, path: str, access: Access) -> None:
    assert rule_for(method, path).access is access


def test_the_uis_prefix_folds_into_the_apis() -> None:
    assert normalize("/ajax-api/2.0/mlflow/runs/get") == "/api/2.0/mlflow/runs/get"
    assert normalize("/api/2.0/mlflow/runs/get") == "/api/2.0/mlflow/runs/get"
