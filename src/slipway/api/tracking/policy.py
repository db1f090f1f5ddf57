"""What each of MLflow's routes may do behind Slipway: who may call it, and whether
Slipway answers it instead of MLflow.

MLflow's server grows new surfaces with every release (an AI gateway holding provider
keys, webhooks that post anywhere, an assistant, MCP servers, job runners). Slipway's
tracking server offers the families of routes a training team needs — experiments, runs,
metrics, artifacts, logged models, traces and evaluation data, the model registry, the UI
— and refuses everything else, so a route MLflow adds in a new family is closed until it
is classified here (``tests/tracking/test_policy.py`` walks MLflow's own route list
and fails on any route this module does not name; ``tests/security/mlflow_table.py``
writes out what each route may do, and ``tests/tracking/test_gate.py`` fails on a route it
lacks, so a new route inside an offered family is looked at too).

Inside the offered families, reads need ``viewer`` and writes ``editor``; the registry's
writes that would let MLflow's registry disagree with Slipway's (new versions, aliases)
are answered by Slipway's registry service, and those Slipway's registry has no rule for
(deleting or renaming models and versions, stages) are refused. Artifact uploads must
land in a run's, logged model's or trace's own folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from slipway.security.resources import Role


class Access(StrEnum):
    PUBLIC = "public"  # no token: liveness only
    READ = "read"  # viewer
    WRITE = "write"  # editor
    TAGS = "tags"  # editor; Slipway's own ``slipway.*`` tags refused
    EXPERIMENT = "experiment"  # editor; the artifact location must be the store's
    ARTIFACT = "artifact"  # editor; only into a run's, logged model's or trace's folder
    ROUTED = "routed"  # editor; Slipway's registry service does it
    WORKSPACES = "workspaces"  # any token; answered with the workspaces it was granted
    REFUSED = "refused"  # nobody


@dataclass(frozen=True)
class Rule:
    access: Access
    # The Slipway operation a ROUTED rule stands for, or why a REFUSED one is refused.
    detail: str = ""

    @property
    def role(self) -> Role | None:
        """The least role the route needs; None for public and refused routes."""
        if self.access in (Access.PUBLIC, Access.REFUSED, Access.WORKSPACES):
            return None
        if self.access is Access.ROUTED and self.detail in ("set_alias", "delete_alias"):
            return Role.DEPLOYER  # an alias decides what `model@alias` deployments serve
        return Role.VIEWER if self.access is Access.READ else Role.EDITOR


READ = Rule(Access.READ)
WRITE = Rule(Access.WRITE)

_REGISTRY_ONLY = (
    "Slipway's registry keeps every version and alias it has approved or deployed: use"
    " Slipway's registry (`slipway models ...` or /api/v1/models) for this"
)
_NOT_OFFERED = "not offered by Slipway's tracking server"

# (method or "*", path pattern, rule); the first match wins. Paths are MLflow's with the
# UI's ``/ajax-api/`` prefix folded into ``/api/`` (the same handlers answer both).
_A2 = "/api/2.0/mlflow"
_A3 = "/api/3.0/mlflow"
_RULES: tuple[tuple[str, str, Rule], ...] = (
    ("GET", r"/health", Rule(Access.PUBLIC)),
    # The UI and what it reads.
    ("GET", r"/|/static-files/.*|/build/.*|/version", READ),
    ("GET", r"/get-artifact|/model-versions/get-artifact", READ),
    ("*", r"/graphql", READ),  # its only mutations are searches
    ("GET", rf"{_A3}/server-info", READ),
    # Surfaces Slipway does not offer: outbound calls, provider keys, code execution.
    (
        "*",
        rf"{_A2}/webhooks(/.*)?",
        Rule(Access.REFUSED, f"webhooks are {_NOT_OFFERED}; use Slipway's alert channels"),
    ),
    (
        "*",
        rf"{_A3}/gateway/.*|/gateway/.*",
        Rule(Access.REFUSED, f"MLflow's AI gateway is {_NOT_OFFERED}"),
    ),
    ("*", rf"{_A3}/assistant(/.*)?", Rule(Access.REFUSED, f"MLflow's assistant is {_NOT_OFFERED}")),
    (
        "*",
        rf"{_A3}/mcp-servers(/.*)?|{_A2}/mcp-servers(/.*)?",
        Rule(Access.REFUSED, f"MCP servers are {_NOT_OFFERED}"),
    ),
    ("*", r"/api/3\.0/jobs(/.*)?", Rule(Access.REFUSED, f"MLflow's job runner is {_NOT_OFFERED}")),
    (
        "*",
        rf"{_A3}/prompt-optimization/.*",
        Rule(Access.REFUSED, f"prompt optimization jobs are {_NOT_OFFERED}"),
    ),
    (
        "POST",
        rf"{_A3}/scorers/register",
        Rule(Access.REFUSED, f"registering scorer code is {_NOT_OFFERED}"),
    ),
    (
        "PUT",
        rf"{_A3}/scorers/online-config",
        Rule(Access.REFUSED, f"online scoring is {_NOT_OFFERED}"),
    ),
    ("DELETE", rf"{_A3}/scorers/delete", Rule(Access.REFUSED, f"scorers are {_NOT_OFFERED}")),
    ("GET", rf"{_A3}/workspaces(/[^/]+)?", Rule(Access.WORKSPACES)),
    ("*", rf"{_A3}/workspaces(/.*)?", Rule(Access.REFUSED, "workspaces are Slipway's to manage")),
    (
        "*",
        rf"{_A3}/jobs(/.*)?",
        Rule(Access.REFUSED, f"MLflow's job runner is {_NOT_OFFERED}"),
    ),
    (
        "*",
        rf"{_A2}/gateway-proxy",
        Rule(Access.REFUSED, f"MLflow's gateway proxy is {_NOT_OFFERED}"),
    ),
    (
        "*",
        # Issue detection too: a job on the server sending traces to an LLM provider.
        rf"{_A3}/(genai/evaluate|scorer|issues)/invoke",
        Rule(Access.REFUSED, f"running judges on the server is {_NOT_OFFERED}"),
    ),
    (
        "*",
        rf"{_A3}/demo/.*",
        Rule(Access.REFUSED, f"MLflow's demo data is {_NOT_OFFERED}"),
    ),
    (
        "*",
        rf"{_A3}/ui-telemetry",
        Rule(Access.REFUSED, "a self-hosted platform sends no telemetry"),
    ),
    (
        "POST",
        rf"{_A2}/upload-artifact",
        Rule(Access.REFUSED, f"uploads from the UI are {_NOT_OFFERED}"),
    ),
    ("GET", rf"({_A2}|{_A3})/get-trace-artifact", READ),
    # The model registry: Slipway's rules apply to MLflow's writes.
    ("POST", rf"{_A2}/model-versions/create", Rule(Access.ROUTED, "create_version")),
    ("POST", rf"{_A2}/registered-models/alias", Rule(Access.ROUTED, "set_alias")),
    ("DELETE", rf"{_A2}/registered-models/alias", Rule(Access.ROUTED, "delete_alias")),
    ("POST", rf"{_A2}/registered-models/rename", Rule(Access.REFUSED, _REGISTRY_ONLY)),
    ("DELETE", rf"{_A2}/registered-models/delete", Rule(Access.REFUSED, _REGISTRY_ONLY)),
    ("DELETE", rf"{_A2}/model-versions/delete", Rule(Access.REFUSED, _REGISTRY_ONLY)),
    (
        "POST",
        rf"{_A2}/model-versions/transition-stage",
        Rule(Access.REFUSED, f"{_REGISTRY_ONLY} (approval statuses replace stages)"),
    ),
    ("POST", rf"{_A2}/registered-models/set-tag|{_A2}/model-versions/set-tag", Rule(Access.TAGS)),
    (
        "DELETE",
        rf"{_A2}/registered-models/delete-tag|{_A2}/model-versions/delete-tag",
        Rule(Access.TAGS),
    ),
    ("POST", rf"{_A2}/registered-models/create", Rule(Access.TAGS)),
    ("POST", rf"{_A2}/registered-models/get-latest-versions", READ),
    # Experiments: an explicit artifact location must be the artifact store's.
    ("POST", rf"{_A2}/experiments/create", Rule(Access.EXPERIMENT)),
    # Proxied artifacts: reads, and writes confined to their owner's folder.
    ("GET", r"/api/2\.0/mlflow-artifacts/.*", READ),
    ("PUT|DELETE", r"/api/2\.0/mlflow-artifacts/artifacts/.*", Rule(Access.ARTIFACT)),
    ("POST", r"/api/2\.0/mlflow-artifacts/mpu/(create|complete|abort)/.*", Rule(Access.ARTIFACT)),
    ("POST", r"/v1/traces", WRITE),  # OpenTelemetry spans into an experiment
)

# The families of MLflow's REST API a team uses; inside them, reads by method or name.
_FAMILIES = re.compile(
    rf"({_A2}|{_A3}|/api/2\.0/preview/mlflow)/"
    r"(experiments|runs|metrics|artifacts|logged-models|traces|registered-models"
    r"|model-versions|datasets|issues|label-schemas|review-queues|scorers"
    r"|unified-traces|get-online-trace-details)(/.*)?"
    # MLflow's own route for dataset search lacks a slash: /api/2.0mlflow/...
    r"|/api/2\.0mlflow/experiments/search-datasets"
)
_READ_POSTS = re.compile(
    r".*/(search|search-datasets|batchGetInfos|calculate-filter-correlation|metrics"
    r"|presigned-download-url|get-latest-versions)"
)
_COMPILED = tuple(
    (frozenset(method.split("|")), re.compile(pattern), rule) for method, pattern, rule in _RULES
)


def normalize(path: str) -> str:
    """MLflow's path with the UI's ``/ajax-api/`` prefix folded into ``/api/``."""
    if path.startswith("/ajax-api/"):
        return "/api/" + path[len("/ajax-api/") :]
    return path


def rule_for(method: str, path: str) -> Rule:
    """The rule for one request; routes outside the offered families are refused."""
    method = "GET" if method == "HEAD" else method
    path = normalize(path)
    for methods, pattern, rule in _COMPILED:
        if ("*" in methods or method in methods) and pattern.fullmatch(path):
            return rule
    if _FAMILIES.fullmatch(path):
        if method == "GET" or (method == "POST" and _READ_POSTS.fullmatch(path)):
            return READ
        return WRITE
    return UNCLASSIFIED


# What a route outside every rule and family gets: refused (a test keeps MLflow's own
# routes out of it, so a new one is classified on purpose).
UNCLASSIFIED = Rule(Access.REFUSED, f"this route is {_NOT_OFFERED}")
