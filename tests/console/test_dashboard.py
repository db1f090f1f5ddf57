"""The model dashboard's joins: which alerts concern a model."""

from __future__ import annotations

from slipway.console.dashboard import concerns
from slipway.events.resources import Alert


def test_an_alert_concerns_a_model_by_whole_names() -> None:
    def alert(resource: str) -> Alert:
        return Alert.model_construct(resource=resource)

    args = ("churn", {"shop"}, {"shop-dq"})
    assert concerns(alert("model/churn/3"), *args)
    assert concerns(alert("endpoint/shop"), *args)
    assert concerns(alert("workspaces/fraud/monitor/shop-dq"), *args)
    assert not concerns(alert("endpoint/shopping"), *args)
    assert not concerns(alert("model/churn-v2/1"), *args)
    assert not concerns(alert("feature_group/churn"), *args)
