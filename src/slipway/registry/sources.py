"""Where a model version's files may come from: only Slipway's own artifact store.

A version's source is refused unless it names files inside the artifact root: a run's
artifacts (``runs:/<run id>/<path>``), MLflow's proxied artifacts
(``mlflow-artifacts:/<path>``, stored under ``<artifact root>/mlflow``), or a path or
``file://`` URI that resolves inside the root; on an object-store root, the location
MLflow reports for a run's artifacts must lie under the root. Everything else — other schemes, host
parts, ``..``, percent-encoding, NUL — is an :class:`InvalidInput` naming ``source``,
because a registered source is later read, hashed, loaded and served.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from slipway.core.artifacts import validate_key
from slipway.core.errors import InvalidInput

MLFLOW_PREFIX = "mlflow"
RUN_ID = re.compile(r"[0-9a-f]{32}")


def _refuse(source: str, why: str) -> InvalidInput:
    return InvalidInput(f"model source {source!r} is refused: {why}", field="source")


def check_source(source: str) -> tuple[str, str]:
    """Classify a source as ``("run", "<run id>/<path>")``, ``("key", "<artifact key>")``
    or ``("path", "<absolute path>")``; anything unsafe raises :class:`InvalidInput`."""
    if not isinstance(source, str) or not source:
        raise InvalidInput("source must be a non-empty string", field="source")
    if "%" in source or "\x00" in source or "\\" in source:
        raise _refuse(source, "percent-encoding, NUL and backslashes are not allowed")
    if source.startswith("runs:/"):
        rest = source[len("runs:/") :]
        run_id, _, path = rest.partition("/")
        if not RUN_ID.fullmatch(run_id):
            raise _refuse(source, "runs:/ needs a 32-character run id")
        return "run", f"{run_id}/{_key(source, path or 'model')}"
    if source.startswith("mlflow-artifacts:"):
        rest = source[len("mlflow-artifacts:") :]
        if rest.startswith("//"):
            raise _refuse(source, "mlflow-artifacts URIs must not name a host")
        return "key", f"{MLFLOW_PREFIX}/{_key(source, rest.lstrip('/'))}"
    if source.startswith("file://"):
        rest = source[len("file://") :]
        if not rest.startswith("/"):
            raise _refuse(source, "file URIs must not name a host")
        return "path", rest
    if "://" in source or source.startswith("//") or ":" in source.split("/", 1)[0]:
        raise _refuse(source, "only runs:/, mlflow-artifacts:/ and the artifact store's paths")
    if not source.startswith("/"):
        raise _refuse(source, "relative paths are not allowed")
    return "path", source


def _key(source: str, path: str) -> str:
    try:
        return validate_key(path, field="source")
    except InvalidInput:
        raise _refuse(source, "the path is not a clean relative path") from None


def key_for_uri(source: str, uri: str, artifact_root: str) -> str:
    """The artifact key of ``uri`` on an object-store root (``s3://bucket/prefix``): a
    location MLflow reports for a run or a logged model when the artifact root is a URI.
    It must lie under the root; the rest must be a clean key (no ``..``, no
    percent-encoding)."""
    root = artifact_root.rstrip("/") + "/"
    if not uri.startswith(root):
        raise _refuse(source, "it lies outside the artifact store")
    return _key(source, uri[len(root) :].rstrip("/"))


def key_for_path(source: str, path: str, artifact_root: str) -> str:
    """The artifact key of an absolute local ``path`` that must lie inside the root."""
    if "://" in artifact_root and not artifact_root.startswith("file://"):
        raise _refuse(source, "local paths need a local artifact root")
    root = Path(artifact_root.removeprefix("file://")).resolve()
    if any(part in ("..", ".") for part in Path(path).parts):
        raise _refuse(source, "'..' is not allowed")
    resolved = Path(os.path.realpath(path))
    if resolved != root and root not in resolved.parents:
        raise _refuse(source, "it lies outside the artifact store")
    return _key(source, resolved.relative_to(root).as_posix())
