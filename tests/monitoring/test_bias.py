"""Bias metrics (Clarify's definitions): each one against numbers worked out by hand on a
small crafted set, against fairlearn (and scipy) where the definitions coincide on a
random one, undefined values with their reasons; the ``bias_report`` step called plainly,
through a real pipeline run into the registered version's lineage, and refusing bad
input naming the argument."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    true_positive_rate,
    true_positive_rate_difference,
)
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy
from sklearn.metrics import accuracy_score

from slipway.core.errors import InvalidInput
from slipway.core.settings import load_settings
from slipway.monitoring import bias
from slipway.monitoring.bias_steps import bias_report
from slipway.services import Services
from tests.monitoring import bias_pipeline

# Ten rows, plus one whose facet is missing (left out). Facet d is sex "f" (or age >= 40).
#   facet a (m, age < 40): label 1 1 1 0 0 0, predicted 1 1 0 1 0 0
#   facet d (f, age >= 40): label 1 0 0 0,    predicted 0 1 0 0
CRAFTED = pd.DataFrame(
    {
        "sex": ["m", "m", "m", "m", "m", "m", "f", "f", "f", "f", None],
        "age": [25, 31, 39, 22, 38, 30, 40, 52, 61, 45, None],
        "label": [1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1],
        "predicted": [1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1],
    }
)
# Worked out by hand:
#   n_a = 6, n_d = 4; q_a = 3/6 = 0.5, q_d = 1/4 = 0.25
#   a: TP 2, FN 1, FP 1, TN 2 -> q'_a = 3/6 = 0.5, TPR_a = 2/3, FPR_a = 1/3, ACC_a = 4/6
#   d: TP 0, FN 1, FP 1, TN 2 -> q'_d = 1/4 = 0.25, TPR_d = 0/1 = 0, FPR_d = 1/3, ACC_d = 2/4
EXPECTED = {
    "CI": 0.2,  # (6 - 4) / (6 + 4)
    "DPL": 0.25,  # 0.5 - 0.25
    # KL(P_a || P_d), P_a = (0.5, 0.5), P_d = (0.25, 0.75):
    #   0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3) = 0.5 * 0.2876820725 = 0.1438410362
    "KL": 0.14384103622589042,
    # P = (0.375, 0.625); KL(P_a || P) = 0.5 ln(0.5/0.375) + 0.5 ln(0.5/0.625)
    #   = 0.5 ln(16/15) = 0.0322692606;
    # KL(P_d || P) = 0.25 ln(0.25/0.375) + 0.75 ln(0.75/0.625)
    #   = 0.25 * -0.4054651081 + 0.75 * 0.1823215568 = 0.0353748906;
    # JS = (0.0322692606 + 0.0353748906) / 2 = 0.0338220756
    "JS": 0.033822075568605205,
    "DI": 0.5,  # q'_d / q'_a = 0.25 / 0.5
    "DPPL": 0.25,  # q'_a - q'_d = 0.5 - 0.25
    "AD": 1 / 6,  # ACC_a - ACC_d = 4/6 - 2/4 = 0.1666...
    "RD": 2 / 3,  # TPR_a - TPR_d = 2/3 - 0
    "equal_opportunity_difference": 2 / 3,  # |2/3 - 0|
    "equalized_odds_difference": 2 / 3,  # max(|2/3 - 0|, |1/3 - 1/3|)
}


def _crafted(facet: bias.Facet) -> dict[str, Any]:
    split = bias.groups(CRAFTED[facet.column], facet)
    labels, _ = bias.positives(CRAFTED["label"], 1)
    predicted, _ = bias.positives(CRAFTED["predicted"], 1)
    return bias.compute(split.in_d, labels, predicted, keep=split.known)


@pytest.mark.parametrize(
    "facet",
    [bias.Facet("sex", values=("f",)), bias.Facet("age", threshold=40.0)],
    ids=["categorical", "numeric"],
)
def test_every_metric_equals_its_hand_computed_value(facet: bias.Facet) -> None:
    result = _crafted(facet)
    assert result["rows"] == 10  # the row without a facet is left out
    assert set(result["metrics"]) == set(bias.METRICS)
    for metric, expected in EXPECTED.items():
        assert result["metrics"][metric] == pytest.approx(expected, rel=1e-12), metric
    assert result["undefined"] == {}
    a, d = result["groups"]["a"], result["groups"]["d"]
    assert (a["rows"], a["labelled_positive"], a["predicted_positive"]) == (6, 3, 3)
    assert (d["rows"], d["labelled_positive"], d["predicted_positive"]) == (4, 1, 1)
    assert d["true_positive_rate"] == 0.0 and a["false_positive_rate"] == pytest.approx(1 / 3)


def test_labels_only_give_the_pre_training_metrics() -> None:
    split = bias.groups(CRAFTED["sex"], bias.Facet("sex", values=("f",)))
    labels, _ = bias.positives(CRAFTED["label"], 1)
    result = bias.compute(split.in_d, labels, keep=split.known)
    assert set(result["metrics"]) == set(bias.PRE_TRAINING)
    assert result["metrics"]["KL"] == pytest.approx(EXPECTED["KL"], rel=1e-12)


def _compute(
    in_d: list[int], labels: list[int], predicted: list[int] | None = None
) -> dict[str, Any]:
    return bias.compute(
        np.array(in_d, bool),
        np.array(labels, bool),
        None if predicted is None else np.array(predicted, bool),
    )


def test_undefined_metrics_are_none_with_a_reason() -> None:
    # No row of a predicted positive: DI = q'_d / 0.
    #   a: label 1 0, predicted 0 0; d: label 1 0, predicted 1 0 -> DPPL = 0 - 1/2
    result = _compute([0, 0, 1, 1], [1, 0, 1, 0], [0, 0, 1, 0])
    assert result["metrics"]["DI"] is None and "q'_a = 0" in result["undefined"]["DI"]
    assert result["metrics"]["DPPL"] == -0.5

    # Facet d has only positive labels: KL(P_a || P_d) is infinite, JS is not.
    #   P_a = (2/3, 1/3), P_d = (1, 0), P = (5/6, 1/6)
    #   KL(P_a || P) = 2/3 ln(4/5) + 1/3 ln 2 = 0.0822866926; KL(P_d || P) = ln(6/5) = 0.1823215568
    #   JS = (0.0822866926 + 0.1823215568) / 2 = 0.1323041247
    result = _compute([0, 0, 0, 1, 1], [1, 1, 0, 1, 1])
    assert result["metrics"]["KL"] is None and "infinite" in result["undefined"]["KL"]
    assert result["metrics"]["JS"] == pytest.approx(0.13230412471889827, rel=1e-12)

    # Facet d without positive labels: its recall is 0/0.
    result = _compute([0, 0, 1, 1], [1, 0, 0, 0], [1, 0, 1, 0])
    for metric in ("RD", "equal_opportunity_difference", "equalized_odds_difference"):
        assert result["metrics"][metric] is None
        assert "facet d has no positive labels" in result["undefined"][metric]
    assert result["metrics"]["AD"] == 0.5  # ACC_a 2/2 - ACC_d 1/2

    # Facet a without negative labels: its false positive rate is 0/0.
    result = _compute([0, 0, 1, 1], [1, 1, 1, 0], [1, 0, 1, 0])
    assert result["metrics"]["RD"] == -0.5  # TPR_a 1/2 - TPR_d 1/1
    assert result["metrics"]["equalized_odds_difference"] is None
    assert "no negative labels" in result["undefined"]["equalized_odds_difference"]

    # An empty facet d: CI is 1, nothing else is defined.
    result = _compute([0, 0, 0], [1, 0, 1], [1, 1, 0])
    assert result["metrics"]["CI"] == 1.0
    assert all(result["metrics"][m] is None for m in bias.METRICS if m != "CI")
    assert set(result["undefined"].values()) == {"facet d has no rows"}

    # No rows at all.
    result = _compute([], [], [])
    assert all(value is None for value in result["metrics"].values())
    assert result["undefined"]["CI"] == "no rows"


@pytest.fixture(scope="module")
def random_set() -> pd.DataFrame:
    """5,000 rows with a three-valued facet whose groups differ in labels and predictions."""
    rng = np.random.default_rng(42)
    rows = 5000
    race = rng.choice(["x", "y", "z"], size=rows, p=[0.5, 0.3, 0.2])
    score = rng.uniform(0, 100, rows)
    base = np.select([race == "x", race == "y"], [0.55, 0.4], 0.3)
    label = (rng.random(rows) < base).astype(int)
    flip = rng.random(rows) < np.where(race == "x", 0.15, 0.3)  # less accurate for y and z
    predicted = np.where(flip, 1 - label, label)
    return pd.DataFrame({"race": race, "score": score, "label": label, "predicted": predicted})


@pytest.mark.parametrize(
    "facet",
    [bias.Facet("race", values=("y", "z")), bias.Facet("score", threshold=62.5)],
    ids=["categorical", "numeric"],
)
def test_metrics_equal_fairlearn_and_scipy_where_definitions_coincide(
    random_set: pd.DataFrame, facet: bias.Facet
) -> None:
    split = bias.groups(random_set[facet.column], facet)
    labels, _ = bias.positives(random_set["label"], 1)
    predicted, _ = bias.positives(random_set["predicted"], 1)
    metrics = bias.compute(split.in_d, labels, predicted)["metrics"]
    y, p = random_set["label"].to_numpy(), random_set["predicted"].to_numpy()
    group = np.where(split.in_d, "d", "a")

    # fairlearn's differences are absolute (the largest group's value minus the smallest's).
    assert abs(metrics["DPPL"]) == pytest.approx(
        demographic_parity_difference(y, p, sensitive_features=group)
    )
    assert min(metrics["DI"], 1 / metrics["DI"]) == pytest.approx(
        demographic_parity_ratio(y, p, sensitive_features=group)
    )
    assert metrics["equal_opportunity_difference"] == pytest.approx(
        equal_opportunity_difference(y, p, sensitive_features=group)
    )
    assert metrics["equal_opportunity_difference"] == pytest.approx(
        true_positive_rate_difference(y, p, sensitive_features=group)
    )
    assert metrics["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, p, sensitive_features=group)
    )
    frame = MetricFrame(
        metrics={"tpr": true_positive_rate, "accuracy": accuracy_score},
        y_true=y,
        y_pred=p,
        sensitive_features=group,
    )
    by_group = frame.by_group
    assert metrics["RD"] == pytest.approx(by_group.loc["a", "tpr"] - by_group.loc["d", "tpr"])
    assert metrics["AD"] == pytest.approx(
        by_group.loc["a", "accuracy"] - by_group.loc["d", "accuracy"]
    )
    # Pre-training: DPL is the labels' demographic parity difference; KL and JS as scipy's.
    assert abs(metrics["DPL"]) == pytest.approx(
        demographic_parity_difference(y, y, sensitive_features=group)
    )
    q_a, q_d = y[group == "a"].mean(), y[group == "d"].mean()
    assert metrics["KL"] == pytest.approx(entropy([q_a, 1 - q_a], [q_d, 1 - q_d]))
    assert metrics["JS"] == pytest.approx(jensenshannon([q_a, 1 - q_a], [q_d, 1 - q_d]) ** 2)
    n_d = int(split.in_d.sum())
    assert metrics["CI"] == pytest.approx((len(y) - 2 * n_d) / len(y))


def test_labels_of_any_kind_match_the_positive_label() -> None:
    assert bias.positives(pd.Series([1.0, 0.0, None]), 1)[0].tolist() == [True, False, False]
    assert bias.positives(pd.Series([1.0, 0.0, None]), 1)[1].tolist() == [True, True, False]
    assert bias.positives(pd.Series([True, False]), 1)[0].tolist() == [True, False]
    assert bias.positives(pd.Series(["yes", "no"]), "yes")[0].tolist() == [True, False]
    assert bias.positives(pd.Series(["true", "1"]), True)[0].tolist() == [True, False]
    # A missing facet (null, or NaN in Arrow) is in neither group.
    split = bias.groups(pa.array([1.0, float("nan"), None, 5.0]), bias.Facet("x", threshold=2.0))
    assert (split.in_d.tolist(), split.known.tolist()) == (
        [False, False, False, True],
        [True, False, False, True],
    )
    categories = pd.Series(["a", "b", "a"], dtype="category")
    assert bias.groups(categories, bias.Facet("c", values=("a",))).in_d.tolist() == [
        True,
        False,
        True,
    ]


# -- the step ----------------------------------------------------------------------------


def test_the_step_called_plainly_reports_both_stages() -> None:
    data = bias_pipeline.applicants(400, 1)
    model = bias_pipeline.fit_credit(data)
    report = bias_report(model, data, "approved", "sex", facet_values=["f"])
    assert report["facet"] == {"column": "sex", "values": ["f"]}
    assert report["rows"] == 400 and report["left_out"] == 0
    predicted = model.predict(data[["income", "debt"]])
    in_d = (data["sex"] == "f").to_numpy()
    label = data["approved"].to_numpy()
    q = {g: label[mask].mean() for g, mask in (("a", ~in_d), ("d", in_d))}
    selected = {g: predicted[mask].mean() for g, mask in (("a", ~in_d), ("d", in_d))}
    assert report["metrics"]["DPL"] == pytest.approx(q["a"] - q["d"])
    assert report["metrics"]["DI"] == pytest.approx(selected["d"] / selected["a"])
    assert report["metrics"]["DI"] < 0.8  # lower incomes, fewer approvals: the bias is there
    assert report["groups"]["d"]["rows"] == int(in_d.sum())
    assert report["undefined"] == {}


@pytest.mark.parametrize(
    ("arguments", "field", "says"),
    [
        ({"label": "nope"}, "label", "no column 'nope'"),
        ({"facet": "gender"}, "facet", "no column 'gender'"),
        ({"facet_values": None}, "facet_values", "exactly one"),
        ({"facet_threshold": 50.0}, "facet_values", "exactly one"),
        ({"facet_values": ["f", "x"]}, "facet_values", "'x' match no row of column 'sex'"),
        ({"facet_values": "f"}, "facet_values", "must be a list"),
        ({"facet_values": [1]}, "facet_values", "cannot match column 'sex'"),
        (
            {"facet": "income", "facet_values": None, "facet_threshold": 1000.0},
            "facet_threshold",
            "no row of column 'income' is >= facet_threshold 1000",
        ),
        (
            {"facet_values": None, "facet_threshold": 50.0},
            "facet_threshold",
            "needs a numeric column; 'sex' holds text",
        ),
        ({"positive_label": 2}, "positive_label", "no value of column 'approved' equals"),
        ({"positive_label": "yes"}, "positive_label", "'yes' cannot match values of type int64"),
    ],
)
def test_bad_step_input_names_the_argument(
    arguments: dict[str, Any], field: str, says: str
) -> None:
    data = bias_pipeline.applicants(50, 1)
    model = bias_pipeline.fit_credit(data)
    given: dict[str, Any] = {
        "label": "approved",
        "facet": "sex",
        "facet_values": ["f"],
    } | arguments
    with pytest.raises(InvalidInput) as caught:
        bias_report(model, data, **given)
    assert caught.value.field == field
    assert says in caught.value.message


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(
        home=tmp_path / "home", workers={"lease_seconds": 5, "poll_seconds": 0.05}
    )
    opened = Services.open(settings)
    yield opened
    opened.close()


def test_a_pipeline_keeps_the_bias_report_in_the_registered_lineage(
    services: Services, workers: None
) -> None:
    services.pipelines.register(bias_pipeline.credit_bias)
    done = services.pipelines.wait(services.pipelines.start("credit-bias"), timeout=240)
    assert done.state == "Succeeded", done
    outputs = {s.name: s.outputs for s in done.steps}
    step_report = outputs["bias-report"]["value"]
    registered = outputs["register-model"]["value"]
    lineage = services.registry.get("credit", registered["version"]).lineage
    assert lineage["reports"]["bias"] == step_report
    data = bias_pipeline.applicants(400, 1)
    direct = bias_report(bias_pipeline.fit_credit(data), data, "approved", "sex", ["f"])
    assert step_report["groups"] == direct["groups"]
    for metric, value in direct["metrics"].items():
        assert step_report["metrics"][metric] == pytest.approx(value), metric
