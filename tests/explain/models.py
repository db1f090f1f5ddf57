"""Small fitted models and data shared by the explanation tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import lightgbm
import numpy as np
import xgboost

FEATURES = ("f0", "f1", "f2", "f3", "f4")


def data(rows: int = 1500, seed: int = 0, *, missing: float = 0.0) -> np.ndarray:
    """Normal features; a share ``missing`` of values NaN (both boosters learn a way)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    if missing:
        x[rng.random(x.shape) < missing] = np.nan
    return x


def binary_label(x: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = np.nan_to_num(x)
    logit = 1.5 * clean[:, 0] - clean[:, 1] * clean[:, 2] + 0.5 * rng.normal(size=len(x))
    return (logit > 0).astype(int)


def regression_target(x: np.ndarray) -> np.ndarray:
    clean = np.nan_to_num(x)
    return 3 * clean[:, 0] + np.sin(clean[:, 1]) + clean[:, 2] * clean[:, 3]


def three_classes(x: np.ndarray) -> np.ndarray:
    clean = np.nan_to_num(x)
    return np.digitize(clean[:, 0] + 0.5 * clean[:, 4], [-0.5, 0.5])


def xgboost_raw(booster: xgboost.Booster, x: np.ndarray) -> np.ndarray:
    """XGBoost's raw output computed exactly: the float64 sum of the leaves each row
    reaches (``pred_leaf``), plus the base margin. XGBoost's own ``output_margin`` adds
    the same float32 leaf values in float32, which is only good to ~1e-6."""
    leaves = booster.predict(xgboost.DMatrix(x), pred_leaf=True).astype(int)
    model = json.loads(booster.save_raw("json"))["learner"]
    trees = model["gradient_booster"]["model"]["trees"]
    values = [np.asarray(t["split_conditions"], dtype=np.float32).astype(np.float64) for t in trees]
    total = np.zeros(len(x))
    for index, tree in enumerate(values):
        total += tree[leaves[:, index]]
    score = float(str(model["learner_model_param"]["base_score"]).strip("[]"))
    objective = model["objective"]["name"]
    base = np.log(score / (1 - score)) if objective == "binary:logistic" else score
    return total + base


def fitted(kind: str) -> tuple[Any, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """(model, data, the model's raw output): the output an explanation must add up to."""
    if kind == "lightgbm-binary":
        x = data(missing=0.05)
        booster = lightgbm.train(
            {"objective": "binary", "verbose": -1, "num_leaves": 15},
            lightgbm.Dataset(x, binary_label(x)),
            num_boost_round=40,
        )
        return booster, x, lambda z: booster.predict(z, raw_score=True)
    if kind == "lightgbm-regressor":
        x = data(missing=0.05)
        booster = lightgbm.train(
            {"objective": "regression", "verbose": -1, "num_leaves": 15},
            lightgbm.Dataset(x, regression_target(x)),
            num_boost_round=40,
        )
        return booster, x, lambda z: booster.predict(z, raw_score=True)
    if kind == "lgbm-classifier":
        x = data()
        model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=15, verbose=-1)
        model.fit(x, binary_label(x))
        return model, x, lambda z: model.predict(z, raw_score=True)
    if kind == "xgboost-binary":
        x = data(missing=0.05)
        booster = xgboost.train(
            {"objective": "binary:logistic", "max_depth": 4},
            xgboost.DMatrix(x, label=binary_label(x)),
            num_boost_round=40,
        )
        return booster, x, lambda z: xgboost_raw(booster, z)
    if kind == "xgboost-regressor":
        x = data(missing=0.05)
        booster = xgboost.train(
            {"objective": "reg:squarederror", "max_depth": 4},
            xgboost.DMatrix(x, label=regression_target(x)),
            num_boost_round=40,
        )
        return booster, x, lambda z: xgboost_raw(booster, z)
    if kind == "xgb-classifier":
        x = data()
        model = xgboost.XGBClassifier(n_estimators=30, max_depth=4)
        model.fit(x, binary_label(x))
        return model, x, lambda z: xgboost_raw(model.get_booster(), z)
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeRegressor

    x = data(rows=600)
    if kind == "gradient-boosting-classifier":
        gbc = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0)
        gbc.fit(x, binary_label(x))
        return gbc, x, gbc.decision_function
    if kind == "gradient-boosting-regressor":
        gbr = GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0)
        gbr.fit(x, regression_target(x))
        return gbr, x, gbr.predict
    if kind == "random-forest-classifier":
        forest = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0)
        forest.fit(x, binary_label(x))
        return forest, x, lambda z: forest.predict_proba(z)[:, 1]
    if kind == "extra-trees-regressor":
        extra = ExtraTreesRegressor(n_estimators=10, max_depth=6, random_state=0)
        extra.fit(x, regression_target(x))
        return extra, x, extra.predict
    if kind == "decision-tree-regressor":
        tree = DecisionTreeRegressor(max_depth=6, random_state=0).fit(x, regression_target(x))
        return tree, x, tree.predict
    raise ValueError(kind)
