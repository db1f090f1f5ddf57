"""Bias metrics of a facet (a sensitive attribute), after SageMaker Clarify's definitions.

A *facet* splits the rows in two groups. Group **d** (Clarify's "disadvantaged" facet)
is what the user names: the rows whose facet column holds one of ``values``
(categorical facets; one value or several), or whose value is ``>= threshold`` (numeric
facets). Group **a** (the "advantaged" facet) is every other row. Rows whose facet, label
or prediction is missing belong to neither and are counted as ``left_out``. The outcome
is binary: a label (or prediction) is *positive* when it equals ``positive_label`` —
everything else is negative, so a multi-class label becomes "this class or not".

Notation: ``n_g`` rows of group g; ``q_g`` the share of them labelled positive; ``q'_g``
the share predicted positive; ``TPR_g = TP/(TP+FN)`` (recall), ``FPR_g = FP/(FP+TN)``,
``ACC_g = (TP+TN)/n_g``; ``P_g = (q_g, 1 - q_g)`` the label distribution of g over
(positive, negative). Logarithms are natural (nats).

Pre-training metrics (the labels only):

- ``CI`` class imbalance ``(n_a - n_d) / (n_a + n_d)``, in [-1, 1];
- ``DPL`` difference in proportions of labels ``q_a - q_d``, in [-1, 1];
- ``KL`` Kullback-Leibler divergence ``KL(P_a || P_d) = sum_y P_a(y) ln(P_a(y)/P_d(y))``
  (terms with ``P_a(y) = 0`` are 0), in [0, inf);
- ``JS`` Jensen-Shannon divergence ``(KL(P_a || P) + KL(P_d || P)) / 2`` with
  ``P = (P_a + P_d) / 2``, in [0, ln 2].

Post-training metrics (predictions against the labels):

- ``DI`` disparate impact ``q'_d / q'_a`` (1 is parity; the four-fifths rule asks >= 0.8);
- ``DPPL`` difference in positive proportions in predicted labels ``q'_a - q'_d``;
- ``AD`` accuracy difference ``ACC_a - ACC_d``;
- ``RD`` recall difference ``TPR_a - TPR_d`` (Clarify's name for the equal-opportunity
  difference, signed);
- ``equal_opportunity_difference`` as fairlearn defines it: the largest minus the
  smallest TPR of the groups, ``|TPR_a - TPR_d|``;
- ``equalized_odds_difference`` as fairlearn defines it (``agg="worst_case"``):
  ``max(|TPR_a - TPR_d|, |FPR_a - FPR_d|)``.

fairlearn's ``demographic_parity_difference`` is ``|DPPL|`` and its
``demographic_parity_ratio`` is ``min(DI, 1/DI)``.

Undefined values are ``None``, never a number made up, and ``undefined`` says why:

- no row at all: every metric; an empty group a or d: every metric but ``CI`` (which is
  1 or -1 then);
- ``KL``: a label outcome some rows of a have and no row of d has (``P_d(y) = 0 <
  P_a(y)``) makes it infinite — None;
- ``DI``: no row of a predicted positive (``q'_a = 0``);
- ``RD`` and ``equal_opportunity_difference``: a group without positive labels (its TPR
  is 0/0); ``equalized_odds_difference``: that, or a group without negative labels (FPR).

Everything is counted in one vectorised pass (``numpy.bincount`` over a 3-bit code per
row) after one Arrow kernel call splits the rows by the facet: a million rows take
~0.1 s, most of it the split of a text column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from slipway.core.errors import InvalidInput

PRE_TRAINING: tuple[str, ...] = ("CI", "DPL", "KL", "JS")
POST_TRAINING: tuple[str, ...] = (
    "DI",
    "DPPL",
    "AD",
    "RD",
    "equal_opportunity_difference",
    "equalized_odds_difference",
)
METRICS: tuple[str, ...] = PRE_TRAINING + POST_TRAINING
MAX_FACET_VALUES = 1000

FacetValue = bool | int | float | str


@dataclass(frozen=True)
class Facet:
    """Which rows form group d: ``values`` of a categorical column, or ``>= threshold``
    of a numeric one (exactly one of the two)."""

    column: str
    values: tuple[FacetValue, ...] | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if (self.values is None) == (self.threshold is None):
            raise InvalidInput(
                "give facet_values (the values of group d) or facet_threshold (group d: values"
                " >= it), exactly one of them",
                field="facet_values",
            )
        if self.values is not None and not 0 < len(self.values) <= MAX_FACET_VALUES:
            raise InvalidInput(
                f"facet_values must list 1-{MAX_FACET_VALUES} values", field="facet_values"
            )
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise InvalidInput("facet_threshold must be a finite number", field="facet_threshold")

    def describe(self) -> dict[str, Any]:
        if self.values is not None:
            return {"column": self.column, "values": list(self.values)}
        return {"column": self.column, "threshold": self.threshold}

    def __str__(self) -> str:
        if self.values is not None:
            return f"{self.column} in {list(self.values)!r}"
        return f"{self.column} >= {self.threshold:g}"


@dataclass(frozen=True)
class Groups:
    """Row membership: ``in_d`` (group d) where ``known`` (the facet is not missing:
    null, or NaN)."""

    in_d: np.ndarray
    known: np.ndarray
    unmatched: list[FacetValue]  # facet values (or the threshold) no row has


def as_arrow(values: Any, *, field: str) -> pa.Array | pa.ChunkedArray:
    """A column as Arrow (dictionaries decoded; NaN as null), whatever it came as; a
    column of mixed types is an :class:`InvalidInput` naming ``field``."""
    try:
        if isinstance(values, pa.Array | pa.ChunkedArray):
            column = values
        elif isinstance(values, pd.Series):
            column = pa.Array.from_pandas(values)
        else:
            column = pa.array(np.asarray(values), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"the {field} column mixes types: {exc}", field=field) from None
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column


def _kind(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "number"
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    ):
        return "text"
    return None


def _value_kind(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | float | np.integer | np.floating):
        return "number"
    return "text" if isinstance(value, str) else type(value).__name__


def as_bools(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow column as numpy, nulls as False."""
    filled = pc.fill_null(array, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def present(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per row, whether the value is there: not null and, for floats, not NaN."""
    valid = pc.is_valid(column)
    if pa.types.is_floating(column.type):
        valid = pc.and_(valid, pc.invert(pc.is_nan(column)))
    return as_bools(valid)


def groups(values: Any, facet: Facet) -> Groups:
    """Which rows of the facet column ``values`` are in group d; raises
    :class:`InvalidInput` when the facet cannot apply to the column's type."""
    column = as_arrow(values, field="facet")
    kind = _kind(column.type)
    known = present(column)
    if facet.threshold is not None:
        if kind != "number":
            raise InvalidInput(
                f"facet_threshold needs a numeric column; {facet.column!r} holds"
                f" {kind or column.type}",
                field="facet_threshold",
            )
        in_d = as_bools(pc.greater_equal(column, pa.scalar(float(facet.threshold))))
        return Groups(in_d, known, [] if in_d.any() else [facet.threshold])
    assert facet.values is not None
    if kind is None:
        raise InvalidInput(
            f"column {facet.column!r} ({column.type}) is not categorical, numeric or boolean",
            field="facet",
        )
    for value in facet.values:
        if _value_kind(value) != kind:
            raise InvalidInput(
                f"facet value {value!r} ({_value_kind(value)}) cannot match column"
                f" {facet.column!r} of type {column.type}",
                field="facet_values",
            )
    if kind == "number":
        column = pc.cast(column, pa.float64())
        value_set = pa.array([float(v) for v in facet.values], pa.float64())
    else:
        value_set = pa.array(list(facet.values), column.type)
    mask = pc.is_in(column, value_set=value_set)
    in_d = as_bools(mask)
    seen = set(pc.unique(pc.filter(column, mask)).to_pylist())
    unmatched = [v for v in facet.values if (float(v) if kind == "number" else v) not in seen]
    return Groups(in_d, known, unmatched)


def _number(value: Any) -> float | None:
    if isinstance(value, bool | int | float | np.integer | np.floating | np.bool_):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def text_of(value: Any) -> str:
    """A label as ground truth stores it as text: ``true``/``false``, ``1`` for 1.0."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    number = _number(value) if not isinstance(value, str) else None
    if number is not None:
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def positives(
    values: Any, positive_label: Any, *, field: str = "label"
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, whether ``values`` (labels or predicted labels) equals ``positive_label``,
    and whether it is present at all. Numbers and booleans compare as numbers (1 equals
    1.0 and True); text compares as text."""
    column = as_arrow(values, field=field)
    known = present(column)
    kind = _kind(column.type)
    number = _number(positive_label)
    if kind in ("number", "bool") and number is not None:
        hits = pc.equal(pc.cast(column, pa.float64()), pa.scalar(number))
    elif kind == "text":
        hits = pc.equal(column, pa.scalar(text_of(positive_label), column.type))
    else:
        raise InvalidInput(
            f"positive_label {positive_label!r} cannot match values of type {column.type}",
            field="positive_label",
        )
    return as_bools(hits), known


@dataclass(frozen=True)
class _Counts:
    """The confusion counts of one group (predicted counts 0 without predictions)."""

    tp: int
    fn: int
    fp: int
    tn: int

    @property
    def rows(self) -> int:
        return self.tp + self.fn + self.fp + self.tn

    @property
    def positive(self) -> int:
        return self.tp + self.fn

    @property
    def predicted(self) -> int:
        return self.tp + self.fp


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _kl(p: Sequence[float], q: Sequence[float]) -> float | None:
    """KL(p || q) in nats; None when infinite (q(y) = 0 < p(y))."""
    total = 0.0
    for py, qy in zip(p, q, strict=True):
        if py == 0:
            continue
        if qy == 0:
            return None
        total += py * math.log(py / qy)
    return total


def _group(counts: _Counts, with_predictions: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "rows": counts.rows,
        "labelled_positive": counts.positive,
        "label_positive_rate": _ratio(counts.positive, counts.rows),
    }
    if with_predictions:
        entry |= {
            "predicted_positive": counts.predicted,
            "predicted_positive_rate": _ratio(counts.predicted, counts.rows),
            "true_positive_rate": _ratio(counts.tp, counts.positive),
            "false_positive_rate": _ratio(counts.fp, counts.fp + counts.tn),
            "accuracy": _ratio(counts.tp + counts.tn, counts.rows),
        }
    return entry


def compute(
    in_d: np.ndarray,
    label_positive: np.ndarray,
    predicted_positive: np.ndarray | None = None,
    *,
    keep: np.ndarray | None = None,
) -> dict[str, Any]:
    """The pre-training metrics (and the post-training ones, given predictions) of the
    rows where ``keep`` (default: all); boolean arrays of one length. Returns ``groups``
    (counts and rates of a and d), ``metrics`` (every metric, None where undefined),
    ``undefined`` (metric → why) and ``rows`` (the rows counted)."""
    code = in_d.astype(np.int8) * 4 + label_positive.astype(np.int8) * 2
    if predicted_positive is not None:
        code += predicted_positive.astype(np.int8)
    if keep is not None:
        code = np.where(keep, code, 8)
    tally = np.bincount(code, minlength=9)
    # code = 4·d + 2·label + prediction: [tn, fp, fn, tp] of a, then of d.
    a = _Counts(tp=int(tally[3]), fn=int(tally[2]), fp=int(tally[1]), tn=int(tally[0]))
    d = _Counts(tp=int(tally[7]), fn=int(tally[6]), fp=int(tally[5]), tn=int(tally[4]))
    with_predictions = predicted_positive is not None
    names = METRICS if with_predictions else PRE_TRAINING
    metrics: dict[str, float | None] = dict.fromkeys(names)
    undefined: dict[str, str] = {}
    rows = a.rows + d.rows

    if rows == 0:
        undefined |= dict.fromkeys(names, "no rows")
    else:
        metrics["CI"] = (a.rows - d.rows) / rows
    empty = "facet a has no rows" if a.rows == 0 else "facet d has no rows" if d.rows == 0 else ""
    if rows and empty:
        undefined |= dict.fromkeys(names[1:], empty)
    if rows and not empty:
        q_a, q_d = a.positive / a.rows, d.positive / d.rows
        p_a, p_d = (q_a, 1.0 - q_a), (q_d, 1.0 - q_d)
        metrics["DPL"] = q_a - q_d
        metrics["KL"] = _kl(p_a, p_d)
        if metrics["KL"] is None:
            outcome = "positive" if q_d == 0 else "negative"
            undefined["KL"] = f"infinite: facet a has {outcome} labels and facet d none"
        mean = tuple((x + y) / 2 for x, y in zip(p_a, p_d, strict=True))
        metrics["JS"] = ((_kl(p_a, mean) or 0.0) + (_kl(p_d, mean) or 0.0)) / 2
        if with_predictions:
            _post_training(a, d, metrics, undefined)
    return {
        "rows": rows,
        "groups": {"a": _group(a, with_predictions), "d": _group(d, with_predictions)},
        "metrics": metrics,
        "undefined": undefined,
    }


def _post_training(
    a: _Counts, d: _Counts, metrics: dict[str, float | None], undefined: dict[str, str]
) -> None:
    """Fill in the post-training metrics of two non-empty groups."""
    selected_a, selected_d = a.predicted / a.rows, d.predicted / d.rows
    if a.predicted:
        metrics["DI"] = selected_d / selected_a
    else:
        undefined["DI"] = "no row of facet a was predicted positive (q'_a = 0)"
    metrics["DPPL"] = selected_a - selected_d
    metrics["AD"] = (a.tp + a.tn) / a.rows - (d.tp + d.tn) / d.rows
    tpr_a, tpr_d = _ratio(a.tp, a.positive), _ratio(d.tp, d.positive)
    fpr_a, fpr_d = _ratio(a.fp, a.fp + a.tn), _ratio(d.fp, d.fp + d.tn)
    if tpr_a is None or tpr_d is None:
        group = "a" if tpr_a is None else "d"
        why = f"facet {group} has no positive labels (its recall is 0/0)"
        for metric in ("RD", "equal_opportunity_difference", "equalized_odds_difference"):
            undefined[metric] = why
    else:
        metrics["RD"] = tpr_a - tpr_d
        metrics["equal_opportunity_difference"] = abs(tpr_a - tpr_d)
    if fpr_a is None or fpr_d is None:
        group = "a" if fpr_a is None else "d"
        undefined.setdefault(
            "equalized_odds_difference",
            f"facet {group} has no negative labels (its false positive rate is 0/0)",
        )
    elif tpr_a is not None and tpr_d is not None:
        metrics["equalized_odds_difference"] = max(abs(tpr_a - tpr_d), abs(fpr_a - fpr_d))


def check_thresholds(
    metrics: dict[str, float | None], thresholds: dict[str, dict[str, float]], *, column: str
) -> list[dict[str, Any]]:
    """A violation for every metric past its bound (``{"min": x}``, ``{"max": x}``); an
    undefined metric violates nothing."""
    violations = []
    for metric, bound in thresholds.items():
        value = metrics.get(metric)
        if value is None:
            continue
        for side, word in (("min", "below"), ("max", "above")):
            limit = bound.get(side)
            if limit is None or (value >= limit if side == "min" else value <= limit):
                continue
            violations.append(
                {
                    "column": column,
                    "check": "bias",
                    "metric": metric,
                    "message": f"{metric} {value:.4g} of facet {column} is {word} {limit:g}",
                    "value": value,
                    "threshold": limit,
                }
            )
    return violations
