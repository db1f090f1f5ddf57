"""Models the serving tests deploy: real MLflow flavors, logged and registered for real."""

from __future__ import annotations

import math
from typing import Any

import mlflow
import numpy as np
import pandas as pd


class Failing(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Raises on every prediction: what a broken canary looks like."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        raise RuntimeError("this model is broken on purpose")


class NaNs(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Answers NaN for every row: the gateway must return null, not fail."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return np.full(len(model_input), math.nan)


class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Mixed-type input through pyfunc: returns ``city`` upper-cased and ``n`` doubled."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return pd.DataFrame(
            {"city": model_input["city"].str.upper(), "twice": model_input["n"] * 2}
        )


def frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x1": rng.normal(size=rows), "x2": rng.normal(size=rows)})


def target(x: pd.DataFrame, slope: float) -> np.ndarray:
    return np.asarray(slope * x["x1"] + 2 * x["x2"] + 1.0)


class Slow(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Takes 50 ms per call: load that keeps requests in flight."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        import time

        time.sleep(0.05)
        return np.zeros(len(model_input))
