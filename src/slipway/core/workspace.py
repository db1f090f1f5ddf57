"""Workspaces: the names every face and capability agree on.

A workspace is a team's share of one platform: its resources (feature groups, models,
pipelines, endpoints, monitors, alerts) belong to it, names are unique within it, and a
token holds its role in the workspaces it was granted. :data:`DEFAULT_WORKSPACE` always
exists and is where every request without a workspace goes, so a single team never names
one. Requests name theirs in :data:`WORKSPACE_HEADER` (the remote client and the CLI send
it); :data:`ALL_WORKSPACES` in a token's grants means every workspace, present and future.
"""

from __future__ import annotations

import re

from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name

DEFAULT_WORKSPACE = "default"
ALL_WORKSPACES = "*"
WORKSPACE_HEADER = "X-Slipway-Workspace"
# The workspace a process acts in (a pipeline step's, a client's): its environment variable.
WORKSPACE_ENV = "SLIPWAY_WORKSPACE"
# A workspace is MLflow's too (slipway.registry.mlflow_store), whose names are DNS labels:
# a resource name without '_', of at least two characters, not ending in '-', and none of
# the words MLflow's server routes by.
_DNS_LABEL = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
_RESERVED = frozenset({"workspaces", "api", "ajax-api", "static-files"})


def validate_workspace(value: object, *, field: str = "workspace") -> str:
    """``value`` if it names a workspace, else ``InvalidInput`` naming ``field``."""
    name = validate_name(value, field=field)
    if not _DNS_LABEL.fullmatch(name) or name in _RESERVED:
        raise InvalidInput(
            f"{field} {name!r} is not a workspace name: use lower-case letters, digits and"
            " inner '-', at least two characters, starting with a letter (a DNS label, as"
            " MLflow's workspaces); 'api', 'ajax-api', 'static-files' and 'workspaces' are"
            " taken",
            field=field,
        )
    return name


def check_grants(workspaces: object, *, field: str = "workspaces") -> list[str]:
    """``workspaces`` as a token's grants: workspace names or ``"*"``, each once, sorted,
    at least one; anything else is an ``InvalidInput`` naming ``field``."""
    if (
        isinstance(workspaces, str)
        or not isinstance(workspaces, list | tuple)
        or not all(isinstance(w, str) for w in workspaces)
    ):
        raise InvalidInput(f"{field} must be a list of workspace names", field=field)
    if not workspaces:
        raise InvalidInput(f"{field} must name at least one workspace (or '*')", field=field)
    for workspace in workspaces:
        if workspace != ALL_WORKSPACES:
            validate_workspace(workspace, field=field)
    return sorted(set(workspaces))


def scoped_name(workspace: str, name: str) -> str:
    """``name`` where every workspace shares one namespace (the online store's groups):
    the bare name in the default workspace, as before workspaces existed, and
    ``<workspace>/<name>`` in another. A resource name never holds ``/``, so a default
    workspace's name can never be another workspace's."""
    return name if workspace == DEFAULT_WORKSPACE else f"{workspace}/{name}"


def split_scoped(key: str) -> tuple[str, str]:
    """(workspace, name) of a :func:`scoped_name`: its inverse."""
    workspace, slash, name = key.partition("/")
    return (workspace, name) if slash else (DEFAULT_WORKSPACE, key)


def validate_scoped_name(value: object, *, field: str = "name") -> str:
    """``value`` if it is a name or a :func:`scoped_name`, else ``InvalidInput``."""
    if isinstance(value, str) and "/" in value:
        workspace, _, name = value.partition("/")
        validate_workspace(workspace, field=field)
        validate_name(name, field=field)
        return value
    return validate_name(value, field=field)


def scoped_resource(workspace: str, resource: str) -> str:
    """An event's or audit entry's resource (``feature-group/churn``) in ``workspace``:
    unchanged in the default workspace, ``workspaces/<workspace>/<resource>`` in another,
    so a reader (or a trigger) of the default workspace's resources never takes another
    workspace's for its own."""
    return resource if workspace == DEFAULT_WORKSPACE else f"workspaces/{workspace}/{resource}"


def workspace_root(root: str, workspace: str) -> str:
    """A capability's storage root (a path or URI) for ``workspace``: ``root`` itself for
    the default workspace, ``<root>/workspaces/<workspace>`` for another."""
    root = root.rstrip("/")
    return root if workspace == DEFAULT_WORKSPACE else f"{root}/workspaces/{workspace}"


def resource_workspace(resource: str) -> str:
    """The workspace an event's or audit entry's resource belongs to (the inverse of
    :func:`scoped_resource`)."""
    if resource.startswith("workspaces/"):
        return resource.split("/", 2)[1]
    return DEFAULT_WORKSPACE


def unscoped_resource(resource: str) -> tuple[str, str]:
    """(workspace, resource as that workspace names it): the inverse of
    :func:`scoped_resource`, so a workspace's rules and filters read its own names."""
    if resource.startswith("workspaces/"):
        _, workspace, rest = [*resource.split("/", 2), ""][:3]
        return workspace, rest
    return DEFAULT_WORKSPACE, resource


def key_workspace(key: str) -> str:
    """The workspace an artifact key (a path below the artifact root) belongs to:
    ``workspaces/<ws>/...`` and MLflow's ``mlflow/workspaces/<ws>/...`` are ``<ws>``'s,
    anything else the default workspace's, and the folders that hold other workspaces'
    (the root itself, ``mlflow``, ``workspaces``, ``mlflow/workspaces``)
    :data:`ALL_WORKSPACES`: naming one reaches every workspace's files."""
    parts = [part for part in key.split("/") if part]
    if parts[:1] == ["mlflow"]:
        parts = parts[1:]
        if not parts:
            return ALL_WORKSPACES
    elif not parts:
        return ALL_WORKSPACES
    if parts[0] != "workspaces":
        return DEFAULT_WORKSPACE
    return parts[1] if len(parts) >= 2 else ALL_WORKSPACES


def check_key_workspace(key: str, workspace: str, *, field: str, shown: str = "") -> None:
    """Refuse (``InvalidInput`` naming ``field``) a key of another workspace's share of
    the artifact root, or of a folder holding every workspace's, for a request acting in
    ``workspace``; ``shown`` is what the caller named (the key itself by default)."""
    owner = key_workspace(key)
    if owner == workspace:
        return
    where = (
        "holds every workspace's files" if owner == ALL_WORKSPACES else f"is workspace {owner!r}'s"
    )
    raise InvalidInput(
        f"{field}: {shown or key!r} {where}; this request acts in workspace {workspace!r}",
        field=field,
        details={"workspace": workspace, "owner": owner},
    )
