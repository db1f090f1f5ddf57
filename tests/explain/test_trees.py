"""Tree explanations: exact SHAP values that add up to the model's raw output, equal to
``shap.TreeExplainer``'s and to the libraries' own ``pred_contrib``."""

from __future__ import annotations

import warnings
from typing import Any

import lightgbm
import numpy as np
import pytest
import xgboost

from slipway.explain import shaplib
from slipway.explain.base import OutputSpace
from slipway.explain.build import tree_explainer
from slipway.explain.native import NativeExplainer
from slipway.explain.sklearn_trees import SklearnTreeExplainer
from slipway.explain.treeshap import ForestExplainer
from tests.explain.models import FEATURES, data, fitted, three_classes

BOOSTERS = [
    "lightgbm-binary",
    "lightgbm-regressor",
    "lgbm-classifier",
    "xgboost-binary",
    "xgboost-regressor",
    "xgb-classifier",
]
SKLEARN = [
    "gradient-boosting-classifier",
    "gradient-boosting-regressor",
    "random-forest-classifier",
    "extra-trees-regressor",
    "decision-tree-regressor",
]


@pytest.fixture(scope="module", params=BOOSTERS + SKLEARN)
def case(request: pytest.FixtureRequest) -> tuple[str, Any, np.ndarray, Any]:
    model, x, raw = fitted(request.param)
    return request.param, model, x, raw


def test_additivity_base_plus_attributions_is_the_raw_output(case: tuple[Any, ...]) -> None:
    """Local accuracy, row by row: base value + attributions = the model's raw output
    (log-odds for the binary classifiers, the prediction for regressors; a forest of
    classification trees is explained in probability space)."""
    kind, model, x, raw = case
    explainer = tree_explainer(model, FEATURES)
    assert explainer is not None
    explained = explainer.explain(x)
    assert explained.values.shape == (len(x), len(FEATURES))
    expected = np.asarray(raw(x), dtype=np.float64)
    # XGBoost's base margin is a float32 (base_score through the link), known to ~1e-7.
    atol = 1e-6 if kind.startswith("xgb") else 1e-12
    np.testing.assert_allclose(explained.output(), expected, rtol=1e-6, atol=atol)
    space = OutputSpace.PROBABILITY if kind == "random-forest-classifier" else OutputSpace.RAW
    assert explained.output_space is space
    if "binary" in kind or "classifier" in kind:
        assert explained.classes == [1] * len(x)  # the positive class
    else:
        assert explained.classes is None


@pytest.mark.parametrize("kind", BOOSTERS)
def test_booster_attributions_are_compiled_and_equal_the_library_own(kind: str) -> None:
    model, x, _ = fitted(kind)
    explainer = tree_explainer(model, FEATURES)
    assert isinstance(explainer, ForestExplainer)  # numba is installed with shap
    booster = model.booster_ if kind == "lgbm-classifier" else model
    if kind == "xgb-classifier":
        booster = model.get_booster()
    own = NativeExplainer(booster, FEATURES, None).contributions(x)
    ours = explainer.contributions(x)
    # LightGBM computes in float64: equal to rounding. XGBoost adds float32 values in
    # float32: its own output is only that close.
    tolerance = 2e-5 if kind.startswith("xgb") else 1e-9
    np.testing.assert_allclose(ours, own[:, :, :-1], rtol=0, atol=tolerance)
    np.testing.assert_allclose(explainer.base, own[0, :, -1], rtol=0, atol=tolerance)


def _shap_values(model: Any, x: np.ndarray, *, internal: bool = False) -> np.ndarray:
    explainer = shaplib.shap().TreeExplainer(model)
    if internal:
        # SHAP's own C++ Tree SHAP on the parsed trees, in float64, rather than its
        # shortcut to XGBoost's float32 pred_contribs.
        explainer.model.model_type = "internal"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightGBM binary classifier")
        values = np.asarray(explainer.shap_values(x, check_additivity=False))
    return values[:, :, 1] if values.ndim == 3 else values


def test_attributions_equal_shap_tree_explainer(case: tuple[Any, ...]) -> None:
    kind, model, x, _ = case
    explainer = tree_explainer(model, FEATURES)
    assert explainer is not None
    ours = explainer.explain(x).values
    if kind.startswith("xgb"):
        np.testing.assert_allclose(ours, _shap_values(model, x, internal=True), rtol=0, atol=1e-6)
        np.testing.assert_allclose(ours, _shap_values(model, x), rtol=0, atol=2e-5)
    else:
        np.testing.assert_allclose(ours, _shap_values(model, x), rtol=0, atol=1e-9)
    if kind in SKLEARN:
        assert isinstance(explainer, SklearnTreeExplainer)


def test_a_multiclass_booster_explains_each_row_s_highest_class() -> None:
    x = data(missing=0.05)
    booster = lightgbm.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 7},
        lightgbm.Dataset(x, three_classes(x)),
        num_boost_round=20,
    )
    explainer = tree_explainer(booster, FEATURES)
    assert explainer is not None
    explained = explainer.explain(x)
    raw = booster.predict(x, raw_score=True)
    chosen = raw.argmax(axis=1)
    assert explained.class_per_row
    assert explained.classes == chosen.tolist()
    np.testing.assert_allclose(explained.output(), raw[np.arange(len(x)), chosen], atol=1e-12)


def test_xgboost_best_iteration_is_the_trees_its_predict_uses() -> None:
    x = data()
    y = (np.nan_to_num(x[:, 0]) > 0).astype(int)
    model = xgboost.XGBClassifier(n_estimators=60, max_depth=3, early_stopping_rounds=3)
    model.fit(x[:1000], y[:1000], eval_set=[(x[1000:], y[1000:])], verbose=False)
    assert model.best_iteration < 59  # it stopped early: fewer trees than it holds
    explainer = tree_explainer(model, FEATURES)
    assert explainer is not None
    margin = model.predict(x, output_margin=True)
    np.testing.assert_allclose(explainer.explain(x).output(), margin, rtol=1e-5, atol=1e-5)


def test_an_unsupported_ensemble_falls_back_to_the_library_own_output() -> None:
    x = data()
    y = np.nan_to_num(x[:, 0])
    dart = xgboost.train(
        {"booster": "dart", "max_depth": 3, "rate_drop": 0.1},
        xgboost.DMatrix(x, label=y),
        num_boost_round=10,
    )
    explainer = tree_explainer(dart, FEATURES)
    assert isinstance(explainer, NativeExplainer)
    explained = explainer.explain(x)
    margin = dart.predict(xgboost.DMatrix(x), output_margin=True)
    np.testing.assert_allclose(explained.output(), margin, rtol=1e-5, atol=1e-5)


def test_other_models_have_no_tree_explainer() -> None:
    from sklearn.linear_model import LinearRegression

    x = data()
    assert tree_explainer(LinearRegression().fit(x, x[:, 0]), FEATURES) is None


def test_large_batches_split_across_threads_give_the_same_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from slipway.explain import treeshap

    model, x, _ = fitted("lightgbm-binary")
    explainer = tree_explainer(model, FEATURES)
    assert isinstance(explainer, ForestExplainer)
    whole = explainer.explain(x).values
    monkeypatch.setattr(treeshap, "PARALLEL_ROWS", 10)
    monkeypatch.setattr(explainer, "_threads", 3)
    assert np.array_equal(explainer.explain(x).values, whole)
