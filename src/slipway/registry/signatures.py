"""Every model registered through Slipway has an input signature.

Serving validates requests against it and monitoring reads feature names and types from
it, so a model without one is refused — unless it was logged with an input example, in
which case the signature is inferred from the example and the model's prediction on it,
and written into the model's ``MLmodel`` file before the digest is taken.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from slipway.core.artifacts import ArtifactStore
from slipway.core.errors import InvalidInput


def read_mlmodel(artifacts: ArtifactStore, key: str) -> dict[str, Any]:
    data = yaml.safe_load(artifacts.get_bytes(f"{key}/MLmodel"))
    if not isinstance(data, dict):
        raise InvalidInput("the model's MLmodel file is not a mapping", field="source")
    return data


def ensure_signature(artifacts: ArtifactStore, key: str) -> dict[str, Any]:
    """The model's signature, inferring and saving it from the input example if needed."""
    meta = read_mlmodel(artifacts, key)
    signature = meta.get("signature") or {}
    if signature.get("inputs"):
        return dict(signature)
    if not meta.get("saved_input_example_info"):
        raise InvalidInput(
            "the model has no input signature and no input example to infer one from; log it"
            " with signature=... or input_example=...",
            field="signature",
        )
    from mlflow.models import Model, infer_signature  # heavy; only on this path
    from mlflow.pyfunc import load_model

    with tempfile.TemporaryDirectory(prefix="slipway-signature-") as tmp:
        local = Path(tmp) / "model"
        artifacts.get_dir(key, local)
        model = Model.load(str(local / "MLmodel"))
        example = model.load_input_example(str(local))
        prediction = load_model(str(local)).predict(example)
        model.signature = infer_signature(example, prediction)
        artifacts.put_bytes(f"{key}/MLmodel", model.to_yaml().encode())
    inferred = read_mlmodel(artifacts, key).get("signature") or {}
    return dict(inferred)
