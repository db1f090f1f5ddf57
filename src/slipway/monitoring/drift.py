"""Drift between a baseline profile and current data, per column.

Numbers get the Population Stability Index over the baseline's drift bins and the
two-sample Kolmogorov-Smirnov statistic against the baseline's CDF sketch; categories get
PSI and Pearson's chi-square goodness of fit against the baseline's frequencies (its most
common values, the rest pooled as ``__other__``).

PSI is ``sum((c - b) * ln(c / b))`` over bins, ``b`` and ``c`` the baseline's and the
current fractions, each floored at :data:`EPSILON` so an empty bin counts as a small one
rather than an infinite shift. Rule of thumb: below 0.1 stable, 0.1-0.2 moderate, above 0.2
a significant shift — hence the default threshold.

The KS p-value is the asymptotic one (``scipy.stats.kstwo`` at ``n·m / (n + m)``, as
``scipy.stats.ks_2samp(method="asymp")``), switching to Kolmogorov's limit distribution
(``kstwobign``) past an effective size of :data:`LARGE_SAMPLE`. On the large windows a
monitor sees, any difference at all is "significant", which is why the default decision
uses PSI, and a monitor may choose the KS statistic (the largest CDF gap) over its p-value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from slipway.core.errors import InvalidInput
from slipway.monitoring.profile import Bins, sketch_cdf

EPSILON = 1e-4
LARGE_SAMPLE = 10_000
OTHER = "__other__"

Method = Literal["psi", "ks_statistic", "ks_p_value", "chi2_p_value"]
METHODS: tuple[str, ...] = ("psi", "ks_statistic", "ks_p_value", "chi2_p_value")
NUMERIC_METHODS = ("psi", "ks_statistic", "ks_p_value")
CATEGORICAL_METHODS = ("psi", "chi2_p_value")


@dataclass(frozen=True)
class DriftRule:
    """When a column counts as drifted: its ``method`` score crosses ``threshold`` (at or
    above it for PSI and the KS statistic, below it for p-values)."""

    method: Method = "psi"
    threshold: float = 0.2

    def drifted(self, scores: dict[str, Any]) -> bool:
        score = scores.get(self.method)
        if score is None:
            return False
        if self.method.endswith("p_value"):
            return bool(score < self.threshold)
        return bool(score >= self.threshold)

    @classmethod
    def parse(cls, value: dict[str, Any], field: str) -> DriftRule:
        method = value.get("method", "psi")
        if method not in METHODS:
            raise InvalidInput(
                f"method must be one of {', '.join(METHODS)}", field=f"{field}.method"
            )
        threshold = value.get(
            "threshold", 0.2 if method == "psi" else 0.1 if method == "ks_statistic" else 0.05
        )
        if not isinstance(threshold, int | float) or isinstance(threshold, bool) or threshold < 0:
            raise InvalidInput(
                "threshold must be a non-negative number", field=f"{field}.threshold"
            )
        return cls(method, float(threshold))


def _stats() -> Any:
    """``scipy.stats``, imported on first use: it takes about half a second to load, and
    only the code that scores drift needs it, not every process that imports this module
    through the platform's services (the control plane, the gateway, ``slipway up``)."""
    from scipy import stats  # type: ignore[import-untyped]

    return stats


def _fractions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    fractions = counts / total if total else np.zeros(counts.size)
    return np.maximum(fractions, EPSILON)


def psi(baseline: np.ndarray, current: np.ndarray) -> float:
    """PSI between two histograms over the same bins (counts or fractions)."""
    b = _fractions(np.asarray(baseline, dtype=np.float64))
    c = _fractions(np.asarray(current, dtype=np.float64))
    return float(np.sum((c - b) * np.log(c / b)))


def ks_against_cdf(
    points: np.ndarray, cdf: np.ndarray, baseline_count: int, current_sorted: np.ndarray
) -> tuple[float, float]:
    """KS statistic and asymptotic p-value of sorted current values against a step CDF
    (``cdf[i]`` is F at ``points[i]``, right-continuous)."""
    m = current_sorted.size
    if m == 0 or points.size == 0:
        return 0.0, 1.0
    # Both CDFs are step functions. Between two baseline points q[j] <= x < q[j+1] the
    # baseline's F is constant (its value at the last copy of q[j]) while the current one
    # only rises, from F_c(q[j]) to F_c just below q[j+1]: the largest gap on that interval
    # is at one of its two ends. So two searches per baseline point give the exact
    # supremum — no work per current value beyond the sort it came with.
    unique = np.unique(points)
    baseline_f = cdf[np.searchsorted(points, unique, side="right") - 1]
    at = np.searchsorted(current_sorted, unique, side="right") / m  # F_c(q[j])
    below = np.searchsorted(current_sorted, unique, side="left") / m  # F_c just below q[j]
    ends = np.append(below[1:], 1.0)  # F_c just below q[j+1] (1.0 past the last point)
    statistic = float(
        max(
            below[0],  # before the first point the baseline's F is 0
            np.max(np.abs(baseline_f - at)),
            np.max(np.abs(baseline_f - ends)),
        )
    )
    effective = round(baseline_count * m / (baseline_count + m))
    if effective > LARGE_SAMPLE:  # the limit distribution: same to many digits, 1000x faster
        p_value = float(_stats().kstwobign.sf(statistic * np.sqrt(effective)))
    else:
        p_value = float(_stats().kstwo.sf(statistic, max(effective, 1)))
    return statistic, min(max(p_value, 0.0), 1.0)


def ks_two_sample(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """KS between two raw samples (what a baseline with an exact sketch computes)."""
    first = np.sort(np.asarray(a, dtype=np.float64))
    points = first
    cdf = np.arange(1, first.size + 1, dtype=np.float64) / max(first.size, 1)
    return ks_against_cdf(points, cdf, first.size, np.sort(np.asarray(b, dtype=np.float64)))


def chi_square(baseline_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's goodness of fit of current counts to the baseline's proportions."""
    observed = np.asarray(current_counts, dtype=np.float64)
    total = observed.sum()
    if total == 0 or observed.size < 2:
        return 0.0, 1.0
    expected = _fractions(np.asarray(baseline_counts, dtype=np.float64)) * total
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(_stats().chi2.sf(statistic, observed.size - 1))


def numeric_drift(baseline: dict[str, Any], current_sorted: np.ndarray) -> dict[str, Any]:
    """Scores and the two histograms for a numeric column (``baseline`` is its profile)."""
    numeric = baseline["numeric"]
    bins = Bins(np.asarray(numeric["histogram"]["edges"], dtype=np.float64))
    base_counts = np.asarray(numeric["histogram"]["counts"], dtype=np.float64)
    current_counts = bins.counts(current_sorted).astype(np.float64)
    points, cdf = sketch_cdf(numeric["sketch"], baseline["count"] - baseline["missing"])
    statistic, p_value = ks_against_cdf(
        points, cdf, baseline["count"] - baseline["missing"], current_sorted
    )
    return {
        "psi": psi(base_counts, current_counts) if current_sorted.size else None,
        "ks_statistic": statistic,
        "ks_p_value": p_value,
        "histogram": {
            "edges": bins.edges.tolist(),
            "baseline": _plain_fractions(base_counts),
            "current": _plain_fractions(current_counts),
        },
    }


def categorical_drift(baseline: dict[str, Any], current_counts: dict[str, int]) -> dict[str, Any]:
    """Scores and the two frequency tables for a categorical column."""
    categorical = baseline["categorical"]
    names = [entry["value"] for entry in categorical["top"]]
    base = [float(entry["count"]) for entry in categorical["top"]]
    known = set(names)
    current = [float(current_counts.get(name, 0)) for name in names]
    other_current = float(sum(n for name, n in current_counts.items() if name not in known))
    if categorical["other_count"] or other_current:
        names.append(OTHER)
        base.append(float(categorical["other_count"]))
        current.append(other_current)
    base_array, current_array = np.asarray(base), np.asarray(current)
    statistic, p_value = chi_square(base_array, current_array)
    return {
        "psi": psi(base_array, current_array) if current_array.sum() else None,
        "chi2_statistic": statistic,
        "chi2_p_value": p_value,
        "histogram": {
            "categories": names,
            "baseline": _plain_fractions(base_array),
            "current": _plain_fractions(current_array),
        },
    }


def _plain_fractions(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * counts.size
