"""What a model version returns: class labels, class probabilities, or both.

A version declares its ``output`` when it is registered, and keeps it as the MLflow
model-version tag ``slipway.output`` (beside ``slipway.classes``, the class labels as
JSON), so users' ``mlflow`` clients see it and no table changed. A version without the
tag (registered before it existed) returns labels.

- ``label`` (the default): what the model's ``predict`` returns, unchanged. For a
  scikit-learn-API classifier that is a class label per row; note that a raw LightGBM or
  XGBoost ``Booster`` with a binary objective already returns the positive class's
  probability from ``predict``.
- ``probabilities``: per row, one probability per class, in the order of the version's
  ``classes`` (scikit-learn's ``classes_`` order).
- ``both``: per row, the label (as ``label`` would serve it) and the probabilities.

The shape, in every face: a row's probabilities are one list over ``classes``; a binary
classifier's *positive class* is the second of its classes and its probability is the
row's *score* (what ROC AUC and model-quality monitors read). Serving answers
``[[p0, p1], …]`` for ``probabilities`` and ``[{"label": c, "probabilities": [p0, p1]},
…]`` for ``both``, and lists ``classes`` beside (see :mod:`slipway.serving.gateway.app`
for each protocol); batch jobs write a column per class (:func:`predictions_table
<slipway.registry.predict.predictions_table>`).

Where probabilities come from:

- scikit-learn models, and LightGBM's and XGBoost's scikit-learn API (``LGBMClassifier``,
  ``XGBClassifier``) logged with their MLflow flavor: ``predict_proba``; labels are
  ``predict``.
- a raw LightGBM ``Booster`` (``objective`` ``binary``, ``multiclass``,
  ``multiclassova``) or XGBoost ``Booster`` (``binary:logistic``, ``multi:softprob``):
  ``predict``; a binary objective's ``p`` becomes ``[1 - p, p]`` over classes ``[0, 1]``,
  exactly as ``LGBMClassifier`` and ``XGBClassifier`` compute it; labels are the most
  probable class.
- any other model (MLflow pyfunc): what it returns, passed through as it is — when its
  signature says it returns probabilities: a float tensor of shape ``[-1, k]`` (classes
  ``0 … k-1``) or two or more float columns (the column names are the classes). A pyfunc
  returns one output, so it cannot declare ``both``.

A model that cannot produce probabilities (a regressor, a classifier without
``predict_proba``, a pyfunc whose signature shows none) is refused at registration with a
400 naming ``output``, and nothing is registered.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from slipway.core.errors import InvalidInput
from slipway.registry.models import Output

if TYPE_CHECKING:
    from slipway.registry.predict import Batch

OUTPUT_TAG = "slipway.output"
CLASSES_TAG = "slipway.classes"
CLASSES_TAG_LIMIT = 100_000  # MLflow's limit on a model-version tag's value

NATIVE_FLAVORS = ("sklearn", "lightgbm", "xgboost")
_LIGHTGBM_BINARY = frozenset({"binary"})
_LIGHTGBM_MULTICLASS = frozenset({"multiclass", "multiclassova"})
_FLOAT_TENSORS = frozenset({"float64", "float32", "float16"})


@dataclass(frozen=True)
class Scores:
    """What a version serving probabilities returned for a batch of rows."""

    probabilities: np.ndarray  # (rows, classes), in the order of the version's classes
    labels: np.ndarray | None = None  # per row, when the output is ``both``

    def score(self) -> np.ndarray | None:
        """The positive class's probability per row, for a binary classifier."""
        if self.probabilities.ndim == 2 and self.probabilities.shape[1] == 2:
            return self.probabilities[:, 1]
        return None


def _cannot(why: str) -> InvalidInput:
    return InvalidInput(
        f"this model cannot return probabilities: {why}; register it with output=label",
        field="output",
    )


def native_flavor(meta: dict[str, Any]) -> str | None:
    """The MLflow flavor whose own loader gives the fitted model (None: pyfunc only)."""
    flavors = meta.get("flavors") or {}
    return next((f for f in NATIVE_FLAVORS if f in flavors), None)


def load_native(flavor: str, local: str) -> Any:
    """The model in ``local`` loaded with ``mlflow.<flavor>`` (heavy: imported here)."""
    return importlib.import_module(f"mlflow.{flavor}").load_model(local)


def _plain(values: Any) -> list[Any]:
    """Class labels as JSON-ready Python values, in their order."""
    return list(np.asarray(values).tolist())


def binary(positive: np.ndarray) -> np.ndarray:
    """``[1 - p, p]`` per row — LightGBM's and XGBoost's own ``predict_proba`` formula,
    in the booster's own dtype, so the numbers are theirs to the last bit."""
    positive = np.asarray(positive)
    return np.vstack((1.0 - positive, positive)).transpose()


def _quiet(method: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def call(x: Any) -> Any:
        with warnings.catch_warnings():
            # Fitted on a DataFrame, predicting on its array: same values, one warning.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return method(x)

    return call


class Classifier:
    """A native model's class probabilities (and labels) for a batch of rows."""

    def __init__(
        self,
        classes: list[Any],
        probabilities: Callable[[Batch], np.ndarray],
        labels: Callable[[Batch], Any] | None = None,
    ) -> None:
        self.classes = classes
        self._probabilities = probabilities
        self._labels = labels  # None: the most probable class
        self._class_array = np.asarray(classes)

    def scores(self, batch: Batch, *, labels: bool) -> Scores:
        probabilities = np.asarray(self._probabilities(batch))
        if not labels:
            return Scores(probabilities)
        if self._labels is not None:
            return Scores(probabilities, np.asarray(self._labels(batch)))
        return Scores(probabilities, self._class_array[np.argmax(probabilities, axis=1)])


def classifier_of(
    flavor: str,
    model: Any,
    *,
    numeric: bool = True,
    booster_rows: Callable[[Batch], np.ndarray] | None = None,
) -> Classifier:
    """How ``model`` (loaded with ``mlflow.<flavor>``) gives probabilities; raises
    :class:`InvalidInput` naming ``output`` when it cannot. ``numeric``: the signature is
    all numbers, so rows go in as a float64 matrix (else as a DataFrame).
    ``booster_rows``: a faster ``predict`` of a one-output LightGBM booster."""
    if flavor == "lightgbm":
        import lightgbm

        if isinstance(model, lightgbm.Booster):
            return _lightgbm_booster(model, numeric, booster_rows)
    if flavor == "xgboost":
        import xgboost

        if isinstance(model, xgboost.Booster):
            return _xgboost_booster(model, numeric)
    proba = getattr(model, "predict_proba", None)
    classes = getattr(model, "classes_", None)
    if proba is None or classes is None:
        raise _cannot(f"{type(model).__name__} has no predict_proba")
    if flavor == "lightgbm" and booster_rows is not None and numeric:
        # A binary LGBMClassifier: its booster gives p, and predict_proba is [1 - p, p];
        # its predict is the class of the larger, as the Classifier's default labels are.
        fast = booster_rows
        return Classifier(_plain(classes), lambda batch: binary(fast(batch)))
    frame = flavor == "xgboost" or not numeric  # XGBoost's scikit-learn API wants names

    def rows(batch: Batch) -> Any:
        return batch.dataframe() if frame else batch.matrix()

    quiet_proba, quiet_predict = _quiet(proba), _quiet(model.predict)
    return Classifier(
        _plain(classes),
        lambda batch: quiet_proba(rows(batch)),
        lambda batch: quiet_predict(rows(batch)),
    )


def _lightgbm_booster(
    booster: Any, numeric: bool, rows: Callable[[Batch], np.ndarray] | None
) -> Classifier:
    objective = str((booster.params or {}).get("objective", "")).split(" ")[0]

    def predict(batch: Batch) -> np.ndarray:
        if rows is not None and numeric:
            return rows(batch)
        return np.asarray(booster.predict(batch.matrix() if numeric else batch.dataframe()))

    if objective in _LIGHTGBM_BINARY:
        return Classifier([0, 1], lambda batch: binary(predict(batch)))
    if objective in _LIGHTGBM_MULTICLASS:
        count = int(booster.num_model_per_iteration())
        return Classifier(list(range(count)), predict)
    raise _cannot(
        f"a LightGBM booster with objective {objective or '(unknown)'!r} returns no class"
        " probabilities (binary, multiclass and multiclassova do)"
    )


def _xgboost_booster(booster: Any, numeric: bool) -> Classifier:
    import xgboost

    learner = json.loads(booster.save_config())["learner"]
    objective = str(learner["objective"]["name"])

    def predict(batch: Batch) -> np.ndarray:
        if numeric:
            matrix = xgboost.DMatrix(batch.matrix(), feature_names=batch.names)
        else:
            matrix = xgboost.DMatrix(batch.dataframe(), enable_categorical=True)
        return np.asarray(booster.predict(matrix))

    if objective == "binary:logistic":
        return Classifier([0, 1], lambda batch: binary(predict(batch)))
    if objective == "multi:softprob":
        count = int(learner["learner_model_param"]["num_class"])
        return Classifier(list(range(count)), predict)
    raise _cannot(
        f"an XGBoost booster with objective {objective!r} returns no class probabilities"
        " (binary:logistic and multi:softprob do)"
    )


def _signature_part(signature: dict[str, Any], part: str) -> list[dict[str, Any]]:
    value = signature.get(part)
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or [])


def pyfunc_classes(signature: dict[str, Any]) -> list[Any]:
    """The classes a pyfunc's signature says it returns probabilities of, or a refusal."""
    outputs = _signature_part(signature, "outputs")
    if len(outputs) == 1 and outputs[0].get("type") == "tensor":
        spec = outputs[0].get("tensor-spec") or {}
        shape = spec.get("shape") or []
        if spec.get("dtype") in _FLOAT_TENSORS and len(shape) == 2 and int(shape[1]) >= 2:
            return list(range(int(shape[1])))
    elif len(outputs) >= 2 and all(
        o.get("type") in ("double", "float") and o.get("name") for o in outputs
    ):
        return [str(o["name"]) for o in outputs]
    raise _cannot(
        "its signature's outputs are not class probabilities (a float tensor of shape"
        " [-1, k], or one float column per class); only scikit-learn, LightGBM and XGBoost"
        " classifiers' probabilities are computed"
    )


def pass_through(raw: Any, classes: list[Any]) -> np.ndarray:
    """A pyfunc's probabilities as it returned them, checked to have one per class."""
    if hasattr(raw, "columns") and hasattr(raw, "to_numpy"):  # DataFrame
        names = [str(c) for c in raw.columns]
        wanted = [str(c) for c in classes]
        if sorted(names) == sorted(wanted):
            raw = raw[[raw.columns[names.index(c)] for c in wanted]]
        raw = raw.to_numpy()
    values = np.asarray(raw)
    if values.ndim != 2 or values.shape[1] != len(classes):
        raise ValueError(
            f"the model returned shape {list(values.shape)}, not one probability per class"
            f" ({len(classes)}) per row"
        )
    return values.astype(np.float64, copy=False)


def declared_classes(local: str, meta: dict[str, Any], output: Output) -> list[Any] | None:
    """The classes of the model in ``local`` when it is declared to return probabilities
    (None for ``label``); a model that cannot is refused (:class:`InvalidInput`, field
    ``output``). Loads native models: only registrations that declare scores pay."""
    if output is Output.LABEL:
        return None
    flavor = native_flavor(meta)
    if flavor is None:
        if output is Output.BOTH:
            raise InvalidInput(
                "a pyfunc model returns one output, so it cannot declare both labels and"
                " probabilities; declare output=probabilities (or label)",
                field="output",
            )
        return pyfunc_classes(meta.get("signature") or {})
    try:
        model = load_native(flavor, local)
    except Exception as exc:  # the user's files: whatever their loader raises
        raise InvalidInput(
            f"the model could not be loaded to check that it returns probabilities:"
            f" {type(exc).__name__}: {exc}",
            field="output",
        ) from None
    return classifier_of(flavor, model).classes


def checked_classes(value: Any) -> list[Any]:
    """Classes a child process reported (:mod:`slipway.registry.probe`), checked to be
    what a model's classes are: a non-empty list of distinct labels, each a string, a
    number or a boolean."""
    if not isinstance(value, list) or not value:
        raise InvalidInput("the model reported no classes", field="output")
    for label in value:
        if not isinstance(label, bool | int | float | str):
            raise InvalidInput(
                f"the model reported a class {label!r} that is not a label", field="output"
            )
    if len({json.dumps(label) for label in value}) != len(value):
        raise InvalidInput("the model reported the same class twice", field="output")
    return value


def classes_tag(classes: list[Any] | None) -> str | None:
    """The classes as the ``slipway.classes`` tag (None: too many to keep in a tag)."""
    if classes is None:
        return None
    text = json.dumps(classes)
    return text if len(text) <= CLASSES_TAG_LIMIT else None


def read_tags(tags: dict[str, str]) -> tuple[Output, list[Any] | None]:
    """A version's output and classes from its MLflow tags (no tag: labels)."""
    raw = tags.get(OUTPUT_TAG)
    output = Output.LABEL if raw is None else Output.parse(raw)
    classes = None
    if output is not Output.LABEL and tags.get(CLASSES_TAG):
        try:
            parsed = json.loads(tags[CLASSES_TAG])
        except ValueError:
            parsed = None
        classes = parsed if isinstance(parsed, list) else None
    return output, classes


def _column_type(classes: list[Any]) -> str:
    if all(isinstance(c, bool) for c in classes):
        return "boolean"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "long"
    if all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes):
        return "double"
    return "string"


def described_signature(
    signature: dict[str, Any], output: Output, classes: list[Any] | None
) -> dict[str, Any]:
    """The signature as the version serves it: for probabilities, the outputs are
    ``label`` (``both`` only) and one ``probability_<class>`` column per class."""
    if output is Output.LABEL:
        return signature
    columns: list[dict[str, Any]] = []
    if output is Output.BOTH:
        columns.append({"type": _column_type(classes or []), "name": "label", "required": True})
    if classes is None:
        columns.append({"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, -1]}})
    else:
        columns += [
            {"type": "double", "name": f"probability_{c}", "required": True} for c in classes
        ]
    return {**signature, "outputs": json.dumps(columns)}
