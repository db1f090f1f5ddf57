"""Champion/challenger comparison: figures equal scikit-learn's on the same rows, the rule
decides in the metric's direction, and bad input is refused naming the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from slipway.core.errors import InvalidInput
from slipway.evaluation.compare import Rule, compare, score
from slipway.evaluation.predictors import Predictor


def _data(seed: int, rows: int = 400, noise: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    signal = frame["a"] + 0.5 * frame["b"] + rng.normal(scale=noise, size=rows)
    return frame.assign(label=(signal > 0).astype(int))


def _fit(frame: pd.DataFrame, *, shuffle: bool = False) -> LogisticRegression:
    labels = frame["label"].to_numpy()
    if shuffle:
        labels = np.random.default_rng(9).permutation(labels)
    return LogisticRegression().fit(frame[["a", "b"]], labels)


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    train = _data(1)
    return {
        "good": Predictor(_fit(train), "good"),
        "shuffled": Predictor(_fit(train, shuffle=True), "shuffled"),
        "holdout": _data(2),
    }


def test_the_figures_are_scikit_learns_on_the_same_rows(models: dict[str, Any]) -> None:
    holdout = models["holdout"]
    result = compare(models["good"], models["shuffled"], holdout, "label", Rule("roc_auc"))
    features, truth = holdout[["a", "b"]], holdout["label"]
    for side in ("good", "shuffled"):
        figures = result.candidate if side == "good" else result.reference
        assert figures is not None and figures["model"] == side
        proba = models[side].model.predict_proba(features)[:, 1]
        assert figures["roc_auc"] == pytest.approx(roc_auc_score(truth, proba), abs=1e-12)
        assert figures["log_loss"] == pytest.approx(log_loss(truth, proba), abs=1e-9)
    assert result.rows == len(holdout)
    assert result.passed and result.improvement is not None and result.improvement > 0.2
    assert "good beats shuffled on roc_auc" in result.reason


def test_a_worse_candidate_fails_and_the_reason_gives_both_figures(
    models: dict[str, Any],
) -> None:
    result = compare(models["shuffled"], models["good"], models["holdout"], "label", Rule())
    assert not result.passed
    assert result.improvement is not None and result.improvement < 0
    assert result.reference is not None
    assert f"{result.candidate['roc_auc']:.4f} vs {result.reference['roc_auc']:.4f}" in (
        result.reason
    )
    assert "does not beat" in result.reason


def test_direction_follows_the_metric_and_min_improvement_can_tolerate_regression(
    models: dict[str, Any],
) -> None:
    holdout = models["holdout"]
    # log loss: lower is better, so the good model "improves" by a positive amount.
    lower = compare(models["good"], models["shuffled"], holdout, "label", Rule("log_loss"))
    assert lower.direction == "minimize" and lower.passed
    assert lower.improvement == pytest.approx(
        lower.reference["log_loss"] - lower.candidate["log_loss"]  # type: ignore[index]
    )
    same = compare(models["good"], models["good"], holdout, "label", Rule("roc_auc"))
    assert same.improvement == 0 and same.passed  # a tie is not worse
    strict = Rule("roc_auc", min_improvement=0.01)
    assert not compare(models["good"], models["good"], holdout, "label", strict).passed
    tolerant = Rule("roc_auc", min_improvement=-0.5)  # a regression of up to 0.5 allowed
    assert compare(models["shuffled"], models["good"], holdout, "label", tolerant).passed
    # Forced the other way round, maximizing log loss prefers the worse model.
    reverse = compare(
        models["shuffled"], models["good"], holdout, "label", Rule("log_loss", "maximize")
    )
    assert reverse.passed


def test_no_reference_passes_and_says_so(models: dict[str, Any]) -> None:
    result = compare(models["shuffled"], None, models["holdout"], "label", Rule())
    assert result.passed and result.reference is None and result.improvement is None
    assert "first" in result.reason


def test_regressors_are_compared_on_regression_metrics() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(size=300)})
    frame["y"] = 3 * frame["a"] + rng.normal(scale=0.1, size=300)
    good = Predictor(LinearRegression().fit(frame[["a"]], frame["y"]), "good")
    flat = Predictor(LinearRegression().fit(frame[["a"]], rng.permutation(frame["y"])), "flat")
    result = compare(good, flat, frame, "y", Rule("rmse"))
    assert result.passed and result.direction == "minimize"
    assert set(result.candidate) >= {"mae", "rmse", "r2"}
    with pytest.raises(InvalidInput) as caught:
        compare(good, flat, frame, "y", Rule("roc_auc"))
    assert caught.value.field == "metric"


class _Probabilities:
    """A pyfunc-like model whose predict returns the positive class's probability."""

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-3 * features["a"].to_numpy())))


def test_a_pyfunc_returning_probabilities_is_scored_from_them(models: dict[str, Any]) -> None:
    holdout = models["holdout"]
    figures = score(Predictor(_Probabilities(), "pyfunc"), holdout, "label")
    expected = roc_auc_score(holdout["label"], holdout["a"])  # monotone in a
    assert figures["roc_auc"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("rule", "label", "field"),
    [
        (lambda: Rule("auc_typo"), "label", "metric"),
        (lambda: Rule("roc_auc", "upwards"), "label", "direction"),
        (lambda: Rule("roc_auc", min_improvement=float("nan")), "label", "min_improvement"),
        (lambda: Rule("rmse"), "label", "metric"),  # a regression metric for a classifier
        (lambda: Rule("roc_auc"), "missing", "label"),
    ],
)
def test_bad_input_names_the_field(
    models: dict[str, Any], rule: Any, label: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        compare(models["good"], models["shuffled"], models["holdout"], label, rule())
    assert caught.value.field == field


def test_empty_data_is_refused(models: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        compare(models["good"], None, models["holdout"].iloc[:0], "label", Rule())
    assert caught.value.field == "data"
