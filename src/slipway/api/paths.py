"""Server-side paths a remote caller names, confined to the data roots (no editor-as-shell).

A REST request that names a file or folder makes the *server* read or write it, with the
server's own permissions. So every such path a route accepts — batch job inputs and
outputs, baseline sources, the recorded training set a ``model_version`` baseline reads —
must lie under the artifact root or a root the admin declared in ``data.allowed_roots``
(:func:`slipway.core.roots.confine`). Routes call one function here before the service
runs, so a refusal is a 400 naming the field and nothing is written.

A request acting in a workspace is confined to that workspace's share of the artifact
root too: ``workspaces/<ws>/`` and MLflow's ``mlflow/workspaces/<ws>/`` for a workspace,
everything else (but those, and the folders holding them) for the default one. The roots
an admin declares in ``data.allowed_roots`` are the platform's, shared by every workspace.

In-process callers — the embedded SDK, the CLI without ``--url``, a training script on
the machine — are the machine's own users and already hold its files; they are not
confined, which is why this lives in the API layer and not in the services.
"""

from __future__ import annotations

from typing import Any

from slipway.batch.spec import BatchJobSpec
from slipway.core.roots import confine, keys_under
from slipway.core.settings import Settings
from slipway.core.workspace import DEFAULT_WORKSPACE, check_key_workspace
from slipway.monitoring.resources import BaselineCreate
from slipway.registry.models import parse_model_ref
from slipway.services import Services


def data_roots(settings: Settings) -> list[str]:
    """The artifact root, always, then the roots the admin declared."""
    return [settings.artifact_root, *settings.data.allowed_roots]


def confine_path(settings: Settings, uri: str, workspace: str, *, field: str) -> str:
    """``uri`` when it lies under the data roots and, under the artifact root, in
    ``workspace``'s share of it; ``InvalidInput`` naming ``field`` otherwise."""
    confine(uri, data_roots(settings), field=field)
    for key in keys_under(uri, settings.artifact_root):
        check_key_workspace(key, workspace, field=field, shown=uri)
    return uri


def confine_batch_job(
    settings: Settings, spec: BatchJobSpec, workspace: str = DEFAULT_WORKSPACE
) -> None:
    """Every path of a batch job spec: its files or training-set input, its files output."""
    if spec.input.files is not None:
        confine_path(settings, spec.input.files.path, workspace, field="input.files.path")
    if spec.input.training_set is not None:
        confine_path(
            settings,
            spec.input.training_set.entities,
            workspace,
            field="input.training_set.entities",
        )
    if spec.output.files is not None:
        confine_path(settings, spec.output.files.path, workspace, field="output.files.path")


def confine_baseline(services: Services, body: BaselineCreate, workspace: str) -> str | None:
    """Every path a baseline's source makes the server read; returns the body's model.

    A ``model_version`` source reads the entity file recorded in the version's lineage,
    which a REST registration may have set to anything: it is confined like a file named
    in the body, and the model returned is pinned to the version checked (``name:3``), so
    moving an alias meanwhile cannot swap in another version's lineage. Paths under the
    artifact root must lie in ``workspace``'s share, the model is ``workspace``'s."""
    settings = services.settings
    source: dict[str, Any] = body.source
    if len(source) != 1:
        return body.model  # the service refuses it, naming source
    kind, value = next(iter(source.items()))
    if kind == "file" and isinstance(value, str):
        confine_path(settings, value, workspace, field="source.file")
    elif kind == "training_set" and isinstance(value, dict):
        entities = value.get("entities")
        if isinstance(entities, str):
            confine_path(settings, entities, workspace, field="source.training_set.entities")
    elif kind == "model_version" and body.model is not None:
        name, ref = parse_model_ref(body.model)
        if ref is None:
            return body.model  # the service refuses it, naming model
        version = services.registry.in_workspace(workspace).get(name, ref)
        recorded = (version.lineage or {}).get("training_set") or {}
        entities = recorded.get("entities")
        if isinstance(entities, str):
            confine_path(settings, entities, workspace, field="source.model_version")
        return f"{name}:{version.version}"
    return body.model
