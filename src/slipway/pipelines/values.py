"""Step outputs in the artifact store: tables as Parquet, models as MLflow models, the
rest as JSON — each stored under the SHA-256 of its content, so a step that runs twice
(a retry after a crash) writes the same object again instead of a second, partial one.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from slipway.core.artifacts import ArtifactStore
from slipway.core.errors import InvalidInput

PREFIX = "pipelines/objects"
INLINE_JSON_BYTES = 64 * 1024


def _json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"step output is not JSON: {exc}", field="output") from None


def model_flavor(value: Any) -> str | None:
    module = type(value).__module__
    # LightGBM's own flavor for its Booster and its scikit-learn models alike: the sklearn
    # flavor's safe format (skops) does not trust LightGBM's types.
    if module.startswith("lightgbm") and (
        type(value).__name__ == "Booster" or hasattr(value, "booster_")
    ):
        return "lightgbm"
    if hasattr(value, "fit") and hasattr(value, "predict"):
        return "sklearn"
    return None


def save(artifacts: ArtifactStore, value: Any, prefix: str = PREFIX) -> dict[str, Any]:
    """Store a step's return value under ``prefix`` (content-addressed: its workspace's
    share of the objects); returns its descriptor (kind, key, digest)."""
    if isinstance(value, pd.DataFrame):
        value = pa.Table.from_pandas(value, preserve_index=False)
    if isinstance(value, pa.Table):
        sink = io.BytesIO()
        pq.write_table(value, sink)
        data = sink.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        key = f"{prefix}/{digest}.parquet"
        if not artifacts.exists(key):
            artifacts.put_bytes(key, data)
        return {"kind": "table", "key": key, "digest": digest, "rows": value.num_rows}
    flavor = model_flavor(value)
    if flavor is not None:
        return _save_model(artifacts, value, flavor, prefix)
    data = _json_bytes(value)
    digest = hashlib.sha256(data).hexdigest()
    key = f"{prefix}/{digest}.json"
    if not artifacts.exists(key):
        artifacts.put_bytes(key, data)
    descriptor: dict[str, Any] = {"kind": "json", "key": key, "digest": digest}
    if len(data) <= INLINE_JSON_BYTES:
        descriptor["value"] = value  # small results (metrics) readable without a fetch
    return descriptor


def _save_model(artifacts: ArtifactStore, model: Any, flavor: str, prefix: str) -> dict[str, Any]:
    import mlflow.lightgbm  # heavy; only for model outputs
    import mlflow.sklearn

    with tempfile.TemporaryDirectory(prefix="slipway-model-") as tmp:
        local = Path(tmp) / "model"
        saver = mlflow.lightgbm.save_model if flavor == "lightgbm" else mlflow.sklearn.save_model
        saver(model, str(local))
        digest = ArtifactStore(tmp).tree_digest("model")
        key = f"{prefix}/{digest}"
        if not artifacts.exists(f"{key}/MLmodel"):
            artifacts.put_dir(key, local)
    return {"kind": "model", "key": key, "digest": digest, "flavor": flavor}


def load(artifacts: ArtifactStore, descriptor: dict[str, Any], path: list[str]) -> Any:
    """The Python value of a stored output (a DataFrame, a model, or JSON), at ``path``."""
    kind = descriptor["kind"]
    if kind == "json":
        value: Any = descriptor.get("value")
        if "value" not in descriptor:
            value = json.loads(artifacts.get_bytes(descriptor["key"]))
        for part in path:
            try:
                value = value[part] if isinstance(value, dict) else value[int(part)]
            except (KeyError, IndexError, ValueError, TypeError):
                raise InvalidInput(f"step output has no item {part!r}", field="inputs") from None
        return value
    if path:
        raise InvalidInput(f"cannot index into a {kind} output", field="inputs")
    if kind == "table":
        return pq.read_table(io.BytesIO(artifacts.get_bytes(descriptor["key"]))).to_pandas()
    if kind == "model":
        import mlflow.lightgbm  # heavy; only for model inputs
        import mlflow.sklearn

        with tempfile.TemporaryDirectory(prefix="slipway-model-") as tmp:
            local = Path(tmp) / "model"
            artifacts.get_dir(descriptor["key"], local)
            loader = (
                mlflow.lightgbm.load_model
                if descriptor.get("flavor") == "lightgbm"
                else mlflow.sklearn.load_model
            )
            return loader(str(local))
    raise InvalidInput(f"unknown output kind {kind!r}", field="inputs")
