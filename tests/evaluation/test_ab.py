"""A/B decisions: per-variant figures equal scikit-learn's over the same rows, the bootstrap
interval is reproducible with its seed, and the stated rule picks winner, loser or no
difference yet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, roc_auc_score

from slipway.core.errors import InvalidInput
from slipway.evaluation import ab


def _traffic(
    n: int, *, strength: dict[str, float], seed: int = 0, rows_per_request: int = 1
) -> pd.DataFrame:
    """Labelled traffic; a variant's scores separate the classes by ``strength``."""
    rng = np.random.default_rng(seed)
    parts = []
    for variant, power in strength.items():
        label = rng.integers(0, 2, n)
        logit = power * (2 * label - 1) + rng.normal(size=n)
        score = 1 / (1 + np.exp(-logit))
        ids = [f"{variant}-{i // rows_per_request}" for i in range(n)]
        parts.append(
            pd.DataFrame(
                {
                    "inference_id": ids,
                    "variant": variant,
                    "label": label,
                    "score": np.round(score, 3),
                }
            )
        )  # rounding makes ties
    return pd.concat(parts, ignore_index=True)


def test_rank_auc_equals_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(3)
    label = rng.integers(0, 2, 2000)
    score = np.round(rng.random(2000) + 0.2 * label, 2)
    assert ab.roc_auc(label, score) == pytest.approx(roc_auc_score(label, score), abs=1e-12)
    assert ab.roc_auc(np.ones(5), np.arange(5.0)) is None  # one class: undefined


def test_per_variant_figures_equal_scikit_learns() -> None:
    frame = _traffic(1500, strength={"champion": 1.0, "challenger": 1.3}, rows_per_request=3)
    result = ab.decide(frame, "champion", ab.Rule(resamples=200))
    for variant, figures in result["variants"].items():
        rows = frame[frame["variant"] == variant]
        assert figures["rows"] == len(rows) and figures["samples"] == len(rows) // 3
        assert figures["roc_auc"] == pytest.approx(roc_auc_score(rows["label"], rows["score"]))
        assert figures["log_loss"] == pytest.approx(log_loss(rows["label"], rows["score"]))
        predicted = (rows["score"] >= 0.5).astype(int)
        assert figures["accuracy"] == pytest.approx(accuracy_score(rows["label"], predicted))


def test_the_interval_is_reproducible_with_its_seed() -> None:
    frame = _traffic(800, strength={"champion": 1.0, "challenger": 1.2})
    first = ab.decide(frame, "champion", ab.Rule(seed=7, resamples=300))
    again = ab.decide(frame, "champion", ab.Rule(seed=7, resamples=300))
    other = ab.decide(frame, "champion", ab.Rule(seed=8, resamples=300))
    assert first["comparisons"] == again["comparisons"]
    assert first["comparisons"][0]["interval"] != other["comparisons"][0]["interval"]
    low, high = first["comparisons"][0]["interval"]
    assert low < first["comparisons"][0]["difference"] < high


def test_the_rule_picks_winner_loser_and_no_difference_yet() -> None:
    rule = ab.Rule(min_difference=0.01, min_samples=200, resamples=300)
    clear = _traffic(3000, strength={"champion": 0.5, "better": 1.5, "worse": 0.1})
    verdicts = {
        c["variant"]: c["verdict"] for c in ab.decide(clear, "champion", rule)["comparisons"]
    }
    assert verdicts == {"better": ab.WINNER, "worse": ab.LOSER}
    same = _traffic(3000, strength={"champion": 1.0, "twin": 1.0}, seed=5)
    twin = ab.decide(same, "champion", rule)["comparisons"][0]
    assert twin["verdict"] == ab.UNDECIDED and twin["interval"][0] < 0 < twin["interval"][1]
    few = _traffic(50, strength={"champion": 0.5, "better": 3.0})
    early = ab.decide(few, "champion", rule)["comparisons"][0]
    assert early["verdict"] == ab.UNDECIDED and "50 of 200" in early["reason"]
    # A real but small difference below the minimum worth acting on: not a winner.
    picky = ab.Rule(min_difference=0.5, min_samples=200, resamples=300)
    assert ab.decide(clear, "champion", picky)["comparisons"][0]["verdict"] == ab.UNDECIDED


def test_lower_is_better_metrics_are_turned_so_positive_means_better() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(size=2000)
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "inference_id": [f"a{i}" for i in range(2000)],
                    "variant": "a",
                    "label": truth,
                    "score": truth + rng.normal(scale=1.0, size=2000),
                }
            ),
            pd.DataFrame(
                {
                    "inference_id": [f"b{i}" for i in range(2000)],
                    "variant": "b",
                    "label": truth,
                    "score": truth + rng.normal(scale=0.3, size=2000),
                }
            ),
        ]
    )
    result = ab.decide(frame, "a", ab.Rule("mae", resamples=200, min_samples=10))
    b = frame[frame["variant"] == "b"]
    assert result["variants"]["b"]["mae"] == pytest.approx(
        mean_absolute_error(b["label"], b["score"])
    )
    comparison = result["comparisons"][0]
    assert comparison["difference"] > 0 and comparison["verdict"] == ab.WINNER


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda f: (f, "champion", ab.Rule("auc")), "metric"),
        (lambda f: (f.drop(columns="score"), "champion", ab.Rule("roc_auc")), "metric"),
        (lambda f: (f, "nobody", ab.Rule()), "reference"),
        (lambda f: (f.drop(columns="label"), "champion", ab.Rule()), "data"),
        (lambda f: (f, "champion", ab.Rule(min_samples=0)), "min_samples"),
        (lambda f: (f, "champion", ab.Rule(confidence=1.0)), "confidence"),
        (lambda f: (f, "champion", ab.Rule(min_difference=-1)), "min_difference"),
    ],
)
def test_bad_input_names_the_field(change: object, field: str) -> None:
    frame = _traffic(100, strength={"champion": 1.0, "challenger": 1.0})
    with pytest.raises(InvalidInput) as caught:
        ab.decide(*change(frame))  # type: ignore[operator]
    assert caught.value.field == field


def test_a_test_no_ground_truth_reached_yet_is_undecided_not_an_error() -> None:
    rule = ab.Rule("roc_auc", min_samples=50)
    report = ab.unlabelled(["champion", "challenger"], "champion", rule)
    assert report["variants"] == {
        "champion": {"samples": 0, "rows": 0},
        "challenger": {"samples": 0, "rows": 0},
    }
    (comparison,) = report["comparisons"]
    assert (comparison["variant"], comparison["versus"]) == ("challenger", "champion")
    assert comparison["verdict"] == ab.UNDECIDED and comparison["difference"] is None
    assert "0 of 50" in comparison["reason"]
    assert report["rule"]["min_samples"] == 50 and report["reference"] == "champion"
