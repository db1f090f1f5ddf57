"""Models as an evaluation sees them: labels and, for classifiers, positive-class scores.

A candidate arrives as the fitted object a training step returned; a reference (the
champion) is a registered version, loaded with its native MLflow flavor — scikit-learn,
LightGBM or XGBoost — so its ``predict_proba`` is there, and only after its files match
the digest recorded at registration. Other flavors go through pyfunc: a pyfunc whose
output is a probability per row is taken as scores (labels are scores >= 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from slipway.core.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from slipway.services import Services

# MLflow flavors whose native loader returns an estimator with predict_proba.
NATIVE_FLAVORS = ("sklearn", "lightgbm", "xgboost")


@dataclass(frozen=True)
class Predictor:
    """A model and the name it goes by in a comparison (``candidate``, ``name:3``)."""

    model: Any
    ref: str

    def predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels and, for a binary classifier, the positive class's scores (else None)."""
        raw = self.model.predict(features)
        labels = np.asarray(raw.iloc[:, 0] if isinstance(raw, pd.DataFrame) else raw).ravel()
        proba = getattr(self.model, "predict_proba", None)
        if proba is not None:
            matrix = np.asarray(proba(features))
            if matrix.ndim == 2 and matrix.shape[1] == 2:
                return labels, matrix[:, 1].astype(np.float64)
            return labels, None
        if labels.dtype.kind == "f" and labels.size and _probabilities(labels):
            return (labels >= 0.5).astype(np.int64), labels.astype(np.float64)
        return labels, None


def _probabilities(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    whole = np.all(np.equal(np.mod(finite, 1), 0))
    return bool(finite.size and finite.min() >= 0 and finite.max() <= 1 and not whole)


def resolve_reference(services: Services, reference: str) -> tuple[str, int] | None:
    """The registered version ``reference`` names, or None when it names nothing yet.

    - ``name@alias`` or ``name:3`` — a registry version (an alias not set yet: None);
    - ``endpoint:NAME`` — the version the endpoint's active config serves in its heaviest
      variant (``endpoint:NAME/VARIANT`` for another variant); an endpoint that does not
      exist yet: None.
    """
    from slipway.registry.models import parse_model_ref

    if reference.startswith("endpoint:"):
        endpoint, _, variant = reference.removeprefix("endpoint:").partition("/")
        try:
            described = services.endpoints.describe(endpoint)
        except NotFound:
            return None
        if described.active is None:
            return None
        spec = described.active.spec
        variants = [v for v in spec.variants if not variant or v.name == variant]
        if not variants:
            raise InvalidInput(
                f"endpoint {endpoint!r} has no variant {variant!r}", field="reference"
            )
        chosen = max(variants, key=lambda v: v.weight)
        assert chosen.version is not None  # resolved when the config was stored
        return chosen.model_name, chosen.version
    name, ref = parse_model_ref(reference, field="reference")
    if ref is None:
        raise InvalidInput(f"reference {reference!r} names no version or alias", field="reference")
    if isinstance(ref, int):
        return name, services.registry.resolve(name, ref)  # a missing version is an error
    try:
        return name, services.registry.resolve(name, ref)
    except NotFound:  # the alias is not set yet (no champion before the first one)
        return None


def load_registered(services: Services, name: str, version: int) -> Predictor:
    """The version's model with its native flavor (digest checked before loading)."""
    registered = services.registry.get(name, version)
    mlmodel = Path(services.registry.local_dir(registered.artifact_key)) / "MLmodel"
    flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
    flavor = next((f for f in NATIVE_FLAVORS if f in flavors), None)
    if flavor is None:
        model = services.registry.load(name, version)
    else:
        import importlib

        loader = importlib.import_module(f"mlflow.{flavor}").load_model
        model = services.registry.load(name, version, loader=loader)
    return Predictor(model, f"{name}:{version}")
