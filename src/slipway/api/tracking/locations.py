"""Where MLflow's clients may write through Slipway's tracking server.

Artifact uploads through the server's proxy (``/api/2.0/mlflow-artifacts/artifacts/<path>``)
land under ``<artifact root>/mlflow/<path>``: without a check, any editor could overwrite
the files of any run or model, registered ones included, or fill the store anywhere. An
upload is accepted only into the artifact folder of an owner still being written: a run
that has not finished, a logged model not yet finalized, or a trace. The owner is found
from the path and its own artifact location must be exactly the path's prefix.

An experiment's artifact location, when a client gives one, must lie in the store MLflow
serves (``mlflow-artifacts:/...``): a location anywhere else is where the server would
read and write on the client's behalf (MLflow's path-traversal CVEs began there).
"""

from __future__ import annotations

import re
from typing import Any

from slipway.core.errors import Forbidden, InvalidInput
from slipway.registry.mlflow_store import MlflowStore
from slipway.registry.sources import RUN_ID

_PROXY = "mlflow-artifacts:"
_CLEAN_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_TERMINATED = frozenset({"FINISHED", "FAILED", "KILLED"})


def _strip_proxy(uri: str) -> str | None:
    if not uri.startswith(_PROXY):
        return None
    rest = uri[len(_PROXY) :]
    if rest.startswith("//"):  # a host part: not this server's store
        return None
    return rest.strip("/")


def check_experiment_location(body: dict[str, Any]) -> None:
    """Refuse an ``experiments/create`` whose ``artifact_location`` is not in the store."""
    location = body.get("artifact_location")
    if location in (None, ""):
        return
    if not isinstance(location, str):
        raise InvalidInput("artifact_location must be a string", field="artifact_location")
    rest = _strip_proxy(location)
    if rest is None or not all(_CLEAN_SEGMENT.fullmatch(part) for part in rest.split("/")):
        raise InvalidInput(
            f"artifact_location {location!r} is refused: leave it out, or give a clean"
            " mlflow-artifacts:/<path> (the artifact store this server keeps)",
            field="artifact_location",
        )
    if any(part in (".", "..") for part in rest.split("/")):
        raise InvalidInput(f"artifact_location {location!r} is refused", field="artifact_location")


def _owner(parts: list[str]) -> tuple[str, str, int] | None:
    """(kind, id, index of its ``artifacts`` segment) of the first owner the path names."""
    for index, part in enumerate(parts):
        if part != "artifacts" or index == 0 or index == len(parts) - 1:
            continue
        owner = parts[index - 1]
        parent = parts[index - 2] if index >= 2 else ""
        if parent == "models" and owner.startswith("m-"):
            return "model", owner, index
        if parent == "traces" and owner.startswith("tr-"):
            return "trace", owner, index
        if RUN_ID.fullmatch(owner):
            return "run", owner, index
    return None


def _refuse(path: str, why: str) -> Forbidden:
    return Forbidden(f"artifact upload to {path!r} refused: {why}")


def check_artifact_write(store: MlflowStore, path: str) -> None:
    """Allow a write to ``path`` (relative to the proxied store) only inside the artifact
    folder of a run, logged model or trace that is still being written."""
    from mlflow.exceptions import MlflowException

    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise _refuse(path, "the path is not a clean relative path")
    found = _owner(parts)
    if found is None:
        raise _refuse(path, "it lies in no run's, logged model's or trace's artifact folder")
    kind, owner_id, index = found
    prefix = "/".join(parts[: index + 1])
    client = store.client
    try:
        with store.scope():  # another workspace's run, model or trace is not found
            location, open_ = _location(client, kind, owner_id)
    except MlflowException:
        raise _refuse(path, f"{kind} {owner_id} does not exist") from None
    if _strip_proxy(str(location or "")) != prefix:
        raise _refuse(path, f"it is not the artifact folder of {kind} {owner_id}")
    if not open_:
        raise _refuse(path, f"{kind} {owner_id} is finished: its artifacts are final")


def _location(client: Any, kind: str, owner_id: str) -> tuple[str, bool]:
    """(artifact location, still being written) of a run, logged model or trace."""
    if kind == "run":
        run = client.get_run(owner_id)
        return str(run.info.artifact_uri or ""), (
            run.info.status not in _TERMINATED and run.info.lifecycle_stage == "active"
        )
    if kind == "model":
        model = client.get_logged_model(owner_id)
        return str(model.artifact_location or ""), str(model.status) == "PENDING"
    info = client._tracking_client.store.get_trace_info(owner_id)
    return str(info.tags.get("mlflow.artifactLocation", "")), True
