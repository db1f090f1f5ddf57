"""The explain_global pipeline step: mean |SHAP| per feature, as computed by hand, in a
report register_model keeps."""

from __future__ import annotations

import warnings
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest

from slipway.core.errors import InvalidInput
from slipway.explain import shaplib
from slipway.pipelines.dsl import pipeline
from slipway.steps import explain_global, register_model
from tests.explain.models import FEATURES, binary_label, data


def _frame(rows: int = 800, seed: int = 0) -> pd.DataFrame:
    x = data(rows=rows, seed=seed)
    frame = pd.DataFrame(x, columns=list(FEATURES))
    frame["label"] = binary_label(x)
    return frame


def test_importance_is_mean_absolute_shap_computed_by_hand() -> None:
    frame = _frame()
    model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=15, verbose=-1)
    model.fit(frame[list(FEATURES)], frame["label"])
    result = explain_global(model, frame, label="label")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightGBM binary classifier")
        values = shaplib.shap().TreeExplainer(model).shap_values(frame[list(FEATURES)])
    by_hand = np.abs(np.asarray(values)).mean(axis=0)
    assert result["rows"] == len(frame)
    assert result["output_space"] == "raw"
    assert set(result["importance"]) == set(FEATURES)  # the label is not a feature
    for index, name in enumerate(FEATURES):
        assert result["importance"][name] == pytest.approx(by_hand[index], rel=1e-9)
    ranked = list(result["importance"].values())
    assert ranked == sorted(ranked, reverse=True)  # largest first
    assert next(iter(result["importance"])) == "f0"  # the strongest feature of the label


def test_max_rows_is_a_seeded_sample() -> None:
    frame = _frame()
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1)
    model.fit(frame[list(FEATURES)], frame["label"])
    first = explain_global(model, frame, label="label", max_rows=100, seed=3)
    assert first["rows"] == 100
    assert first == explain_global(model, frame, label="label", max_rows=100, seed=3)


def test_a_model_without_trees_is_explained_by_kernel_shap_on_its_probabilities() -> None:
    from sklearn.linear_model import LogisticRegression

    frame = _frame(rows=300)
    model = LogisticRegression().fit(frame[list(FEATURES)], frame["label"])
    result = explain_global(model, frame, label="label", max_rows=20)
    assert result["output_space"] == "probability"
    assert result["rows"] == 20
    assert next(iter(result["importance"])) == "f0"


def test_a_missing_label_column_names_the_field() -> None:
    frame = _frame(rows=50)
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1)
    model.fit(frame[list(FEATURES)], frame["label"])
    with pytest.raises(InvalidInput) as raised:
        explain_global(model, frame, label="delayed")
    assert raised.value.field == "label"


def test_in_a_pipeline_it_is_an_explanation_step_feeding_register_model() -> None:
    @pipeline(name="explained")
    def explained(rows: int = 10) -> None:
        data: Any = {"rows": rows}
        importance = explain_global(data, data, label="label")
        register_model(data, "model", reports={"importance": importance})

    graph = explained.graph()
    step = graph["steps"]["explain-global"]
    assert step["options"]["kind"] == "explanation"
    assert step["function"] == "slipway.steps.explain:explain_global"
    reports = graph["steps"]["register-model"]["inputs"]["reports"]
    assert reports == {"dict": {"importance": {"ref": "explain-global", "path": []}}}
