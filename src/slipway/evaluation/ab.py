"""A/B tests that decide: per-variant model quality from ground truth, the difference of
each variant from the reference with a bootstrap confidence interval, and a stated rule
that says winner, loser, or no difference yet.

Input is one row per served prediction that has its label: ``inference_id``, ``variant``,
``label`` (0/1 for a classifier, a number for a regressor) and ``score`` (the positive
class's probability, or the regressor's prediction) and/or ``prediction`` (a label).

The interval is a percentile bootstrap of the difference (variant minus reference, turned
so that positive is better): each resample draws inference ids with replacement within
each variant — a request's rows stay together, since they share a model call and a user
— and recomputes both metrics. It is seeded, so the same data and seed give the same
interval.

The rule, stated once: with fewer than ``min_samples`` labelled inferences in either
variant there is **no difference yet**; otherwise a variant is the **winner** when the
whole interval lies above zero and the estimated improvement is at least
``min_difference`` (the minimum difference worth acting on), the **loser** when the whole
interval lies below zero and the estimate is at most ``-min_difference``, and else there
is **no difference yet** (more data may tell).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from slipway.core.errors import InvalidInput
from slipway.evaluation import metrics as m

WINNER, LOSER, UNDECIDED = "winner", "loser", "no difference yet"
MAX_RESAMPLES = 10_000


def roc_auc(label: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve by ranks (Mann-Whitney U, ties counted half): equal to
    scikit-learn's ``roc_auc_score`` and fast enough to run a thousand times."""
    positives = int(label.sum())
    negatives = label.size - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranked = score[order]
    # Average ranks of tied scores (1-based).
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], ranked.size]
    average = (starts + ends + 1) / 2.0
    ranks = np.empty(score.size, dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    u = ranks[label == 1].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def _log_loss(label: np.ndarray, score: np.ndarray) -> float | None:
    p = np.clip(score, 1e-15, 1 - 1e-15)
    return float(-np.mean(label * np.log(p) + (1 - label) * np.log(1 - p)))


def _accuracy(label: np.ndarray, predicted: np.ndarray) -> float | None:
    return float(np.mean(label == predicted))


def _rmse(label: np.ndarray, score: np.ndarray) -> float | None:
    return float(np.sqrt(np.mean((label - score) ** 2)))


def _mae(label: np.ndarray, score: np.ndarray) -> float | None:
    return float(np.mean(np.abs(label - score)))


# metric -> (function, the column it reads)
_FUNCTIONS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float | None], str]] = {
    "roc_auc": (roc_auc, "score"),
    "log_loss": (_log_loss, "score"),
    "accuracy": (_accuracy, "prediction"),
    "rmse": (_rmse, "score"),
    "mae": (_mae, "score"),
}
CLASSIFIER_METRICS = ("roc_auc", "log_loss", "accuracy")
REGRESSOR_METRICS = ("rmse", "mae")


@dataclass(frozen=True)
class Rule:
    metric: str = "roc_auc"
    min_difference: float = 0.0
    min_samples: int = 100
    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.metric not in _FUNCTIONS:
            raise InvalidInput(
                f"metric must be one of {', '.join(_FUNCTIONS)}, not {self.metric!r}",
                field="metric",
            )
        if not (self.min_difference >= 0 and np.isfinite(self.min_difference)):
            raise InvalidInput("min_difference must be a number >= 0", field="min_difference")
        if self.min_samples < 1:
            raise InvalidInput("min_samples must be at least 1", field="min_samples")
        if not 0.5 <= self.confidence < 1:
            raise InvalidInput("confidence must be in [0.5, 1)", field="confidence")
        if not 1 <= self.resamples <= MAX_RESAMPLES:
            raise InvalidInput(f"resamples must be in 1..{MAX_RESAMPLES}", field="resamples")

    @property
    def direction(self) -> m.Direction:
        return m.METRICS[self.metric].direction


@dataclass
class _Variant:
    """One variant's labelled rows, grouped by inference id for resampling."""

    name: str
    columns: dict[str, np.ndarray]
    group_of_row: np.ndarray  # index of each row's inference id
    groups: int

    @classmethod
    def of(cls, name: str, frame: pd.DataFrame) -> _Variant:
        # Ordered by id (and row), not by arrival: capture files are scanned in parallel,
        # so the order rows come in varies, and the seeded draws must not depend on it.
        keys = ["inference_id", "row"] if "row" in frame.columns else ["inference_id"]
        frame = frame.sort_values(keys, kind="stable")
        codes, uniques = pd.factorize(frame["inference_id"], sort=True)
        columns = {
            c: frame[c].to_numpy(dtype=np.float64)
            for c in ("label", "score", "prediction")
            if c in frame.columns
        }
        return cls(name, columns, codes, len(uniques))

    def value(self, metric: str, rows: np.ndarray | None = None) -> float | None:
        function, column = _FUNCTIONS[metric]
        if column not in self.columns:
            return None
        label, values = self.columns["label"], self.columns[column]
        if rows is not None:
            label, values = label[rows], values[rows]
        return function(label, values)

    def resample(self, rng: np.random.Generator) -> np.ndarray:
        """Rows of a bootstrap sample of this variant's inference ids."""
        drawn = np.bincount(rng.integers(0, self.groups, self.groups), minlength=self.groups)
        return np.repeat(np.arange(self.group_of_row.size), drawn[self.group_of_row])


def _prepare(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    missing = {"inference_id", "variant", "label"} - set(frame.columns)
    if missing:
        raise InvalidInput(f"labelled traffic lacks {sorted(missing)}", field="data")
    column = _FUNCTIONS[metric][1]
    classifier = metric in CLASSIFIER_METRICS
    if classifier and "prediction" not in frame.columns and "score" in frame.columns:
        # Labels from the probabilities, at the threshold a served label would use.
        frame = frame.assign(prediction=(frame["score"] >= 0.5).astype(np.float64))
    if column not in frame.columns or frame[column].isna().all():
        what = "scores (probabilities)" if column == "score" else "labels"
        raise InvalidInput(
            f"metric {metric!r} needs the served {what}, which this traffic does not have"
            " (register the model with output=probabilities)",
            field="metric",
        )
    return frame.dropna(subset=["label", column])


def decide(
    frame: pd.DataFrame, reference: str, rule: Rule, *, metrics: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Every variant's figures and sample sizes, and each non-reference variant's
    difference from ``reference`` with its interval and verdict (see the module doc)."""
    frame = _prepare(frame, rule.metric)
    names = sorted(frame["variant"].unique())
    if reference not in names:
        raise InvalidInput(
            f"no labelled traffic for the reference variant {reference!r}"
            f" (variants with labels: {', '.join(names) or 'none'})",
            field="reference",
        )
    variants = {n: _Variant.of(n, frame[frame["variant"] == n]) for n in names}
    shown = metrics or (
        CLASSIFIER_METRICS if rule.metric in CLASSIFIER_METRICS else REGRESSOR_METRICS
    )
    figures = {
        n: {"samples": v.groups, "rows": int(v.group_of_row.size)}
        | {k: v.value(k) for k in shown if k in _FUNCTIONS}
        for n, v in variants.items()
    }
    base = variants[reference]
    comparisons = [_compare(variants[n], base, rule) for n in names if n != reference]
    return _report(rule, reference, figures, comparisons)


def unlabelled(names: list[str], reference: str, rule: Rule) -> dict[str, Any]:
    """The report of an A/B test no ground truth has reached yet: every variant with no
    samples, and each comparison undecided saying so (an early look at a running test is
    an answer, not an error)."""
    figures: dict[str, dict[str, Any]] = {n: {"samples": 0, "rows": 0} for n in names}
    comparisons = [
        {
            "variant": n,
            "versus": reference,
            "difference": None,
            "interval": None,
            "verdict": UNDECIDED,
            "reason": "not enough labelled samples yet: no ground truth joins the captured"
            f" predictions ({n} and {reference} have 0 of {rule.min_samples})",
        }
        for n in names
        if n != reference
    ]
    return _report(rule, reference, figures, comparisons)


def _report(
    rule: Rule,
    reference: str,
    figures: dict[str, dict[str, Any]],
    comparisons: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "metric": rule.metric,
        "direction": rule.direction,
        "reference": reference,
        "rule": {
            "min_difference": rule.min_difference,
            "min_samples": rule.min_samples,
            "confidence": rule.confidence,
            "resamples": rule.resamples,
            "seed": rule.seed,
        },
        "variants": figures,
        "comparisons": comparisons,
    }


def _compare(variant: _Variant, base: _Variant, rule: Rule) -> dict[str, Any]:
    sign = 1.0 if rule.direction == "maximize" else -1.0
    ours, theirs = variant.value(rule.metric), base.value(rule.metric)
    out: dict[str, Any] = {
        "variant": variant.name,
        "versus": base.name,
        "difference": None,
        "interval": None,
        "verdict": UNDECIDED,
    }
    short = [v for v in (variant, base) if v.groups < rule.min_samples]
    if short or ours is None or theirs is None:
        detail = (
            ", ".join(f"{v.name} has {v.groups} of {rule.min_samples}" for v in short)
            or f"{rule.metric} is undefined on one side (a single class?)"
        )
        out["reason"] = f"not enough labelled samples yet: {detail}"
        if ours is not None and theirs is not None:
            out["difference"] = sign * (ours - theirs)
        return out
    difference = sign * (ours - theirs)
    rng = np.random.default_rng(rule.seed)
    draws = np.empty(rule.resamples)
    kept = 0
    for _ in range(rule.resamples):
        a = variant.value(rule.metric, variant.resample(rng))
        b = base.value(rule.metric, base.resample(rng))
        if a is not None and b is not None:
            draws[kept] = sign * (a - b)
            kept += 1
    tail = (1 - rule.confidence) / 2
    low, high = (float(x) for x in np.quantile(draws[:kept], [tail, 1 - tail]))
    if low > 0 and difference >= rule.min_difference:
        verdict = WINNER
    elif high < 0 and difference <= -rule.min_difference:
        verdict = LOSER
    else:
        verdict = UNDECIDED
    better = "better" if difference >= 0 else "worse"
    out |= {
        "difference": difference,
        "interval": [low, high],
        "verdict": verdict,
        "reason": (
            f"{variant.name} is {abs(difference):.4f} {better} than {base.name} on"
            f" {rule.metric} ({ours:.4f} vs {theirs:.4f}; {variant.groups:,} vs"
            f" {base.groups:,} labelled inferences); {rule.confidence:.0%} interval"
            f" [{low:+.4f}, {high:+.4f}], minimum difference {rule.min_difference:g}"
        ),
    }
    return out
