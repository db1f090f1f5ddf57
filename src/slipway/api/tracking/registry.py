"""MLflow's registry writes answered by Slipway's registry service, in MLflow's format.

``mlflow.register_model`` and ``MlflowClient.set_registered_model_alias`` keep working
against Slipway's tracking server, but the version is registered by
:meth:`~slipway.registry.service.Registry.register` (source confined, model code
checked, digest and lineage recorded, approval pending, audited) and aliases move through
:meth:`~slipway.registry.service.Registry.set_alias`, so MLflow's registry and Slipway's
never disagree. The answers are the bodies MLflow's own handlers would send.
"""

from __future__ import annotations

import json
from typing import Any

from slipway.core.errors import InvalidInput
from slipway.registry.service import Registry

# Tags whose keys Slipway writes (approval status, files, output, card): nobody else may.
RESERVED_TAG_PREFIX = "slipway."


def text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    return value


def check_tag_keys(body: dict[str, Any]) -> None:
    """Refuse a write of Slipway's own tags: a ``key`` field, or ``tags`` entries."""
    keys: list[object] = []
    if "key" in body:
        keys.append(body["key"])
    tags = body.get("tags")
    if isinstance(tags, list):
        keys.extend(tag.get("key") for tag in tags if isinstance(tag, dict))
    for key in keys:
        if isinstance(key, str) and key.lower().startswith(RESERVED_TAG_PREFIX):
            raise InvalidInput(
                f"tag {key!r} is Slipway's: tags starting with {RESERVED_TAG_PREFIX!r} are"
                " written by Slipway's registry only",
                field="key",
            )


def _version_json(registry: Registry, name: str, version: int) -> dict[str, Any]:
    from mlflow.utils.proto_json_utils import message_to_json

    with registry.mlflow.scope():
        found = registry.mlflow.client.get_model_version(name, str(version))
    proto = found.to_proto()  # type: ignore[no-untyped-call]  # MLflow is untyped
    model_version: dict[str, Any] = json.loads(message_to_json(proto))
    return {"model_version": model_version}


def _source(registry: Registry, source: str, model_id: str) -> tuple[str, str | None]:
    """The source Slipway registers and the run it came from: a logged model
    (``models:/m-...``, or its id) becomes the folder MLflow keeps its files in and the run
    that logged it; anything else is checked as given."""
    if source.startswith("models:/"):
        reference = source[len("models:/") :].strip("/")
        if not reference.startswith("m-") or "/" in reference:
            raise InvalidInput(
                f"source {source!r}: register a run's or a logged model's files, not another"
                " registered version",
                field="source",
            )
        model_id = model_id or reference
    if not model_id:
        return source, None
    from mlflow.exceptions import MlflowException

    try:
        with registry.mlflow.scope():  # another workspace's logged model is not found
            logged = registry.mlflow.client.get_logged_model(model_id)
    except MlflowException:
        raise InvalidInput(f"logged model {model_id!r} does not exist", field="model_id") from None
    return str(logged.artifact_location), logged.source_run_id or None


def create_version(registry: Registry, body: dict[str, Any], actor: str) -> dict[str, Any]:
    """``POST /api/2.0/mlflow/model-versions/create``, as Slipway's registration."""
    name = text_field(body, "name")
    check_tag_keys(body)
    source, logged_by = _source(
        registry,
        text_field(body, "source"),
        text_field(body, "model_id", required=False),
    )
    registered = registry.register(
        name,
        source,
        actor=actor,
        description=text_field(body, "description", required=False),
        run_id=text_field(body, "run_id", required=False) or logged_by,
    )
    for tag in body.get("tags") or ():
        if isinstance(tag, dict) and isinstance(tag.get("key"), str):
            registry.mlflow.set_tag(name, registered.version, tag["key"], str(tag.get("value", "")))
    return _version_json(registry, name, registered.version)


def _version_number(body: dict[str, Any]) -> int:
    version = body.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if isinstance(version, str) and version.isdigit():
        return int(version)
    raise InvalidInput("version must be a version number", field="version")


def set_alias(registry: Registry, body: dict[str, Any], actor: str) -> dict[str, Any]:
    """``POST /api/2.0/mlflow/registered-models/alias``, as Slipway's alias move."""
    registry.set_alias(
        text_field(body, "name"), text_field(body, "alias"), _version_number(body), actor=actor
    )
    return {}


def delete_alias(registry: Registry, body: dict[str, Any], actor: str) -> dict[str, Any]:
    """``DELETE /api/2.0/mlflow/registered-models/alias``, as Slipway's alias removal."""
    registry.delete_alias(text_field(body, "name"), text_field(body, "alias"), actor=actor)
    return {}


ROUTED = {"create_version": create_version, "set_alias": set_alias, "delete_alias": delete_alias}
