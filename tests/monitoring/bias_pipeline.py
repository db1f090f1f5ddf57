"""A pipeline that computes a bias report at registration (importable by worker
processes, so not a test module)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from slipway.monitoring.bias_steps import bias_report
from slipway.pipelines.dsl import pipeline, step
from slipway.steps import register_model


@step
def applicants(rows: int, seed: int) -> pd.DataFrame:
    """Credit applications: ``income`` and ``debt`` decide ``approved``, and women (the
    ``sex`` facet, never a model input) have lower incomes, so fewer are approved."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["f", "m"], size=rows, p=[0.4, 0.6])
    income = rng.normal(np.where(sex == "f", 45.0, 55.0), 10.0)
    debt = rng.normal(20.0, 5.0, rows)
    approved = (income - debt + rng.normal(0.0, 5.0, rows) > 32.0).astype(np.int64)
    return pd.DataFrame({"income": income, "debt": debt, "sex": sex, "approved": approved})


@step
def fit_credit(frame: pd.DataFrame) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(frame[["income", "debt"]], frame["approved"])


@pipeline(name="credit-bias")
def credit_bias(rows: int = 400) -> None:
    data = applicants(rows, 1)
    model = fit_credit(data)
    report = bias_report(model, data, "approved", "sex", facet_values=["f"])
    register_model(model, "credit", reports={"bias": report})
