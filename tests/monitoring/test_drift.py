"""Drift statistics against references: scipy's KS and chi-square, PSI worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from slipway.core.errors import InvalidInput
from slipway.monitoring.drift import (
    DriftRule,
    categorical_drift,
    chi_square,
    ks_against_cdf,
    ks_two_sample,
    numeric_drift,
    psi,
)
from slipway.monitoring.profile import SKETCH_POINTS, describe, sketch_cdf


@pytest.mark.parametrize(
    ("n", "m", "shift", "decimals"),
    [(20, 30, 0.0, 3), (50, 70, 0.5, 1), (300, 200, 0.2, 1), (1000, 1500, 0.1, 2), (5, 8, 3.0, 0)],
)
def test_ks_matches_scipy_ks_2samp(n: int, m: int, shift: float, decimals: int) -> None:
    rng = np.random.default_rng(n + m)
    a = np.round(rng.normal(size=n), decimals)  # rounding makes ties, the tricky case
    b = np.round(rng.normal(shift, size=m), decimals)
    statistic, p_value = ks_two_sample(a, b)
    reference = stats.ks_2samp(a, b, method="asymp")
    assert statistic == pytest.approx(reference.statistic, abs=1e-12)
    assert p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-12)


def test_ks_from_a_baseline_profile_equals_scipy_while_the_sketch_is_exact() -> None:
    rng = np.random.default_rng(7)
    baseline, current = rng.normal(size=1500), rng.normal(0.3, size=900)
    profile = describe(pa.array(baseline)).profile
    assert profile["numeric"]["sketch"]["kind"] == "exact"
    scores = numeric_drift(profile, np.sort(current))
    reference = stats.ks_2samp(baseline, current, method="asymp")
    assert scores["ks_statistic"] == pytest.approx(reference.statistic, abs=1e-12)
    assert scores["ks_p_value"] == pytest.approx(reference.pvalue, rel=1e-9)


def test_ks_from_a_quantile_sketch_is_within_its_resolution() -> None:
    rng = np.random.default_rng(8)
    baseline, current = rng.gamma(2.0, size=200_000), rng.gamma(2.2, size=50_000)
    profile = describe(pa.array(baseline)).profile
    assert profile["numeric"]["sketch"]["kind"] == "quantiles"
    points, cdf = sketch_cdf(profile["numeric"]["sketch"], baseline.size)
    statistic, _ = ks_against_cdf(points, cdf, baseline.size, np.sort(current))
    exact = stats.ks_2samp(baseline, current).statistic
    assert abs(statistic - exact) <= 1.0 / (SKETCH_POINTS - 1) + 1e-9


def test_psi_by_hand() -> None:
    # Two bins, 50/50 against 25/75: (0.25-0.5)ln(0.25/0.5) + (0.75-0.5)ln(0.75/0.5).
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert psi(np.array([50, 50]), np.array([25, 75])) == pytest.approx(expected)
    # Counts or fractions, the same thing.
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(expected)
    # Identical distributions: no drift.
    assert psi(np.array([10, 20, 30]), np.array([1, 2, 3])) == pytest.approx(0.0)
    # An empty bin counts as 1e-4, not as an infinite shift.
    floored = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert psi(np.array([1, 1]), np.array([0, 4])) == pytest.approx(floored)


def test_psi_of_a_numeric_column_uses_the_baseline_deciles() -> None:
    baseline = np.arange(1, 101, dtype=np.float64)  # deciles at 10, 20, ..., 90
    profile = describe(pa.array(baseline)).profile
    assert profile["numeric"]["histogram"]["edges"] == [10.0 * i for i in range(1, 10)]
    # Everything in the top decile: that bin holds 1.0 against 0.1, nine bins 1e-4 against 0.1.
    scores = numeric_drift(profile, np.full(50, 95.0))
    expected = (1.0 - 0.1) * math.log(1.0 / 0.1) + 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert scores["psi"] == pytest.approx(expected)
    assert scores["histogram"]["current"][-1] == 1.0


def test_chi_square_matches_scipy() -> None:
    baseline = np.array([400.0, 300.0, 200.0, 100.0])
    current = np.array([35.0, 30.0, 25.0, 10.0])
    statistic, p_value = chi_square(baseline, current)
    reference = stats.chisquare(current, baseline / baseline.sum() * current.sum())
    assert statistic == pytest.approx(reference.statistic)
    assert p_value == pytest.approx(reference.pvalue)


def test_categorical_drift_pools_new_values_as_other() -> None:
    baseline = pa.array(["a"] * 60 + ["b"] * 40)
    profile = describe(baseline).profile
    scores = categorical_drift(profile, {"a": 30, "b": 20, "z": 50})
    assert scores["histogram"]["categories"] == ["a", "b", "__other__"]
    assert scores["histogram"]["current"] == [0.3, 0.2, 0.5]
    expected = (
        (0.3 - 0.6) * math.log(0.3 / 0.6)
        + (0.2 - 0.4) * math.log(0.2 / 0.4)
        + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    )
    assert scores["psi"] == pytest.approx(expected)
    assert scores["chi2_p_value"] < 1e-6


def test_drift_rules_decide_per_method() -> None:
    scores = {"psi": 0.25, "ks_statistic": 0.05, "ks_p_value": 0.01, "chi2_p_value": 0.2}
    assert DriftRule("psi", 0.2).drifted(scores)
    assert not DriftRule("psi", 0.3).drifted(scores)
    assert not DriftRule("ks_statistic", 0.1).drifted(scores)
    assert DriftRule("ks_p_value", 0.05).drifted(scores)
    assert not DriftRule("chi2_p_value", 0.05).drifted(scores)
    with pytest.raises(InvalidInput) as caught:
        DriftRule.parse({"method": "wasserstein"}, "drift.temp")
    assert caught.value.field == "drift.temp.method"
    with pytest.raises(InvalidInput) as caught:
        DriftRule.parse({"method": "psi", "threshold": -1}, "drift.temp")
    assert caught.value.field == "drift.temp.threshold"
