"""Python transformations the tests name as ``tests.features.views.sample_functions:...``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

#: the number of rows of each call of :func:`counted`
CALLS: list[int] = []
#: the dtypes :func:`seen` was given
SEEN: list[dict[str, str]] = []

NOT_CALLABLE = 3


def fare_per_km(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"fare_per_km": frame["fare"] / frame["distance"]})


def per_km(frame: pd.DataFrame) -> dict[str, Any]:
    return {"fare_per_km_py": frame["fare"] / frame["distance"]}


def counted(frame: pd.DataFrame) -> dict[str, Any]:
    CALLS.append(len(frame))
    return {"doubled": frame["x"].to_numpy() * 2}


def seen(frame: pd.DataFrame) -> dict[str, Any]:
    SEEN.append({name: str(dtype) for name, dtype in frame.dtypes.items()})
    return {"doubled": frame["x"] * 2}


def in_place(frame: pd.DataFrame) -> pd.DataFrame:
    """Changes the frame it was given, as user code may."""
    frame["x"] *= 2
    frame.loc[0, "x"] = -1
    return frame.rename(columns={"x": "doubled"})


def two_outputs(frame: pd.DataFrame) -> dict[str, Any]:
    """A mapping of different kinds of columns: a pa.Array, a list, a NumPy array."""
    total = (frame["a"] + frame["b"]).to_numpy()
    return {
        "total": pa.array(total),
        "label": ["big" if value > 10 else "small" for value in total],
        "positive": total > 0,
    }


def undeclared(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"doubled": frame["x"] * 2, "other": frame["x"]})


def missing(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"something": frame["x"]})


def short(frame: pd.DataFrame) -> dict[str, Any]:
    return {"doubled": frame["x"].iloc[:-1] * 2}


def strings(frame: pd.DataFrame) -> dict[str, Any]:
    return {"doubled": frame["x"].astype(str)}


def fractions(frame: pd.DataFrame) -> dict[str, Any]:
    return {"doubled": frame["x"] + 0.5}


def whole_floats(frame: pd.DataFrame) -> dict[str, Any]:
    """Whole numbers as floats, NaN where the input was missing (what pandas does to an
    int column with gaps)."""
    return {"doubled": frame["x"] * 2.0}


def mixed(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "doubled": np.array([1, "a"] * (len(frame) // 2) + [1] * (len(frame) % 2), dtype=object)
    }


def a_list(frame: pd.DataFrame) -> list[float]:
    return [1.0] * len(frame)


def a_scalar(frame: pd.DataFrame) -> dict[str, Any]:
    return {"doubled": 2.0}


def broken(frame: pd.DataFrame) -> dict[str, Any]:
    raise RuntimeError("the function's own bug")
