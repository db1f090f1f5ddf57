"""Every model registered through Slipway has an input signature.

Serving validates requests against it and monitoring reads feature names and types from
it, so a model without one is refused — unless it was logged with an input example, in
which case the signature is inferred from the example and the model's prediction on it
(in a child process: :mod:`slipway.registry.probe`), and written into the model's
``MLmodel`` file before the digest is taken.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from slipway.core.artifacts import ArtifactStore
from slipway.core.errors import InvalidInput

_PARTS = ("inputs", "outputs", "params")


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
    from slipway.registry import probe

    with tempfile.TemporaryDirectory(prefix="slipway-signature-") as tmp:
        local = Path(tmp) / "model"
        artifacts.get_dir(key, local)
        # The model's own code runs to predict on its example: in a child, never here.
        answer = probe.run("signature", str(local), field="signature")
    # Only the signature is taken from the child's answer, and only as text: the rest of
    # the MLmodel file stays what was logged.
    text = answer.get("mlmodel")
    updated = yaml.safe_load(text) if isinstance(text, str) else None
    inferred = updated.get("signature") if isinstance(updated, dict) else None
    if not isinstance(inferred, dict) or not isinstance(inferred.get("inputs"), str):
        raise InvalidInput(
            "no signature could be inferred from the input example", field="signature"
        )
    signature = {k: v for k, v in inferred.items() if k in _PARTS and isinstance(v, str)}
    artifacts.put_bytes(
        f"{key}/MLmodel", yaml.safe_dump(meta | {"signature": signature}, sort_keys=False).encode()
    )
    return dict(read_mlmodel(artifacts, key).get("signature") or {})
