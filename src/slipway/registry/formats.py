"""Which serialization formats a platform agrees to load: ``registry.allowed_model_formats``.

Loading a pickle runs code: a scikit-learn model saved with (cloud)pickle, a LightGBM or
XGBoost model saved through its scikit-learn wrapper as a pickle, a pyfunc's
``python_model.pkl``, a PyTorch model. Native formats (a LightGBM or XGBoost booster's own
file, CatBoost's, ONNX) and skops (which refuses types it was not told to trust) load data,
not code. A team that wants only the latter says so, and every version is held to it at
registration and again before every load (gateway, batch, monitoring baselines):

.. code-block:: yaml

    registry:
      allowed_model_formats: ["*/native", "sklearn/skops"]

A workspace may narrow it for its own models (``slipway workspaces formats fraud
"*/native"``): a version must then be in a format both lists admit.

A format reads ``<flavor>/<serialization>``, for the flavor MLflow's pyfunc loader would
use (``python_function``'s ``loader_module``): ``sklearn/cloudpickle``, ``sklearn/pickle``,
``sklearn/skops``, ``lightgbm/native``, ``lightgbm/pickle``, ``xgboost/native``,
``catboost/native``, ``onnx/native``, ``pytorch/pickle``, ``pyfunc/cloudpickle`` (a
``python_model``), ``pyfunc/code`` (a loader module of the model's own code), and
``<flavor>/unknown`` otherwise. Entries are shell patterns (``*/native``); the default,
``["*"]``, loads everything, as MLflow does.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from slipway.core.errors import InvalidInput

ANY = "*"
_NATIVE_FLAVORS = {"catboost", "onnx"}


def loaded_format(meta: dict[str, Any]) -> str:
    """The ``flavor/serialization`` a pyfunc load of this ``MLmodel`` reads."""
    flavors: dict[str, Any] = meta.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    if "python_model" in pyfunc:
        return "pyfunc/cloudpickle"
    loader = str(pyfunc.get("loader_module") or "")
    flavor = loader.removeprefix("mlflow.") if loader.startswith("mlflow.") else ""
    if not flavor:
        if loader:
            return "pyfunc/code"
        flavor = next((name for name in flavors if name != "python_function"), "unknown")
    conf: dict[str, Any] = flavors.get(flavor) or {}
    if flavor == "sklearn":
        return f"sklearn/{conf.get('serialization_format') or 'cloudpickle'}"
    if flavor == "lightgbm":
        data = str(conf.get("data") or pyfunc.get("data") or "")
        return "lightgbm/native" if data.endswith((".lgb", ".txt")) else "lightgbm/pickle"
    if flavor == "xgboost":
        native = conf.get("model_format") in ("xgb", "json", "ubj", "deprecated")
        return "xgboost/native" if native else "xgboost/unknown"
    if flavor in _NATIVE_FLAVORS:
        return f"{flavor}/native"
    if flavor == "pytorch":
        return "pytorch/pickle"
    return f"{flavor}/unknown"


def check_format(
    meta: dict[str, Any],
    allowed: list[str],
    *,
    field: str = "source",
    policy: str = "registry.allowed_model_formats",
) -> str:
    """The model's format if ``allowed`` (patterns) admits it, else :class:`InvalidInput`
    naming ``field``: the format and what ``policy`` (the platform's setting, or a
    workspace's own list) allows."""
    found = loaded_format(meta)
    if any(fnmatchcase(found, pattern) for pattern in allowed):
        return found
    raise InvalidInput(
        f"{found} models are not loaded here ({policy}: {', '.join(allowed)}); save the"
        " model in an allowed format",
        field=field,
        details={"format": found, "policy": policy},
    )
