"""Kernel SHAP, the fallback for models without a tree explainer: exact for a linear
model when every coalition is evaluated, reproducible, with a bounded seeded background
taken from the version's input example — and no explainer without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from slipway.explain.base import OutputSpace, Unexplainable
from slipway.explain.build import explainer_of
from slipway.explain.kernel import KernelExplainer, KernelOptions, sample_background
from slipway.registry.predict import Batch, Column, LoadedModel
from tests.explain.models import FEATURES, data

WEIGHTS = np.array([2.0, -1.0, 0.5, 0.0, 3.0])


class Linear(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return model_input[list(FEATURES)].to_numpy() @ WEIGHTS + 1.0


def test_kernel_shap_of_a_linear_model_is_exact() -> None:
    """With 2^5 - 2 = 30 coalitions, every one is evaluated: for f(x) = w.x + b the
    Shapley values are w_i (x_i - mean of the background's x_i)."""
    background = data(rows=40, seed=3)
    x = data(rows=6, seed=4)
    explainer = KernelExplainer(
        lambda rows: rows @ WEIGHTS + 1.0,
        background,
        FEATURES,
        OutputSpace.PREDICTION,
        None,
        KernelOptions(nsamples=64),
    )
    explained = explainer.explain(x)
    np.testing.assert_allclose(
        explained.values, WEIGHTS * (x - background.mean(axis=0)), rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(explained.base, (background @ WEIGHTS + 1.0).mean(), atol=1e-12)
    np.testing.assert_allclose(explained.output(), x @ WEIGHTS + 1.0, atol=1e-9)


def test_sampled_coalitions_are_reproducible_and_add_up() -> None:
    """Fewer samples than coalitions: estimates, the same on every call, and still
    adding up to the output (Kernel SHAP constrains the fit to it)."""
    names = tuple(f"g{i}" for i in range(12))
    rng = np.random.default_rng(0)
    weights = rng.normal(size=12)

    def model(rows: np.ndarray) -> np.ndarray:
        return np.tanh(rows @ weights)

    background = rng.normal(size=(30, 12))
    x = rng.normal(size=(3, 12))
    options = KernelOptions(nsamples=200, seed=7)
    explainer = KernelExplainer(model, background, names, OutputSpace.PREDICTION, None, options)
    first = explainer.explain(x)
    np.random.seed(123)  # whatever the global generator holds
    second = explainer.explain(x)
    assert np.array_equal(first.values, second.values)
    np.testing.assert_allclose(first.output(), model(x), atol=1e-9)


def test_the_background_is_a_seeded_sample_of_at_most_n_rows() -> None:
    rows = data(rows=500)
    options = KernelOptions(background_rows=25, seed=5)
    sample = sample_background(rows, options)
    assert sample.shape == (25, len(FEATURES))
    assert np.array_equal(sample, sample_background(rows, options))
    assert not np.array_equal(sample, sample_background(rows, KernelOptions(25, seed=6)))
    assert all(any(np.array_equal(r, s) for r in rows) for s in sample)  # rows of the data
    assert sample_background(rows[:10], options).shape == (10, len(FEATURES))


def _loaded(tmp_path: Path, *, example: pd.DataFrame | None) -> LoadedModel:
    """A pyfunc saved like a registered version, loaded as the gateway loads it."""
    local = tmp_path / "model"
    x = pd.DataFrame(data(rows=20), columns=list(FEATURES))
    signature = mlflow.models.infer_signature(x, Linear().predict(None, x))
    mlflow.pyfunc.save_model(
        str(local), python_model=Linear(), signature=signature, input_example=example
    )
    pyfunc = mlflow.pyfunc.load_model(str(local))

    def predict(batch: Batch) -> Any:
        return pyfunc.predict(batch.dataframe())

    schema = [Column(name, "double") for name in FEATURES]
    return LoadedModel(
        "linear", 1, schema, predict, False, 0, 0.0, names=FEATURES, local=str(local)
    )


def test_a_pyfunc_is_explained_over_its_input_example(tmp_path: Path) -> None:
    example = pd.DataFrame(data(rows=300, seed=9), columns=list(FEATURES))
    model = _loaded(tmp_path, example=example)
    explainer = explainer_of(model, KernelOptions(background_rows=50))
    assert isinstance(explainer, KernelExplainer)
    assert explainer.output_space is OutputSpace.PREDICTION
    assert explainer_of(model, KernelOptions()) is explainer  # built once, kept on the model
    x = data(rows=4, seed=10)
    explained = explainer.explain(x)
    background = sample_background(example.to_numpy(), KernelOptions(background_rows=50))
    np.testing.assert_allclose(explained.values, WEIGHTS * (x - background.mean(axis=0)), atol=1e-9)


def test_without_an_input_example_there_is_no_explainer(tmp_path: Path) -> None:
    model = _loaded(tmp_path, example=None)
    with pytest.raises(Unexplainable, match="input example"):
        explainer_of(model, KernelOptions())
    with pytest.raises(Unexplainable, match="input example"):  # the refusal is kept too
        explainer_of(model, KernelOptions())


def test_non_numeric_signatures_are_refused() -> None:
    schema = [Column("city", "string"), Column("n", "long")]
    model = LoadedModel("echo", 1, schema, lambda batch: None, False, 0, 0.0)
    with pytest.raises(Unexplainable, match="non-numeric"):
        explainer_of(model, KernelOptions())
