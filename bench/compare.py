"""Checking training sets: Slipway's against Feast's, and against a pandas oracle."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PLANE_FEATURES, PLANES, WEATHER, WEATHER_FEATURES

FEATURES = WEATHER_FEATURES + list(PLANE_FEATURES)


def _frame(path: Path | str) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(path).to_pandas()
    return frame.sort_values("row_id").set_index("row_id")


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where null equals null (NaN and None alike)."""
    a_null, b_null = a.isna().to_numpy(), b.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        values = a.astype("float64").to_numpy() == b.astype("float64").to_numpy()
    else:
        values = a.astype(object).to_numpy() == b.astype(object).to_numpy()
    same: np.ndarray = (a_null & b_null) | (~a_null & ~b_null & values)
    return same


def compare(expected: pd.DataFrame, actual: pd.DataFrame) -> dict[str, Any]:
    """Rows (by row_id) and feature values of ``actual`` against ``expected``."""
    common = expected.index.intersection(actual.index)
    left, right = expected.loc[common], actual.loc[common]
    bad = np.zeros(len(common), dtype=bool)
    bad_values = 0
    for name in FEATURES:
        differs = ~_same(left[name], right[name])
        bad |= differs
        bad_values += int(differs.sum())
    return {
        "expected_rows": len(expected),
        "actual_rows": len(actual),
        "missing_rows": len(expected.index.difference(actual.index)),
        "extra_rows": len(actual.index.difference(expected.index)),
        "mismatched_rows": int(bad.sum()),
        "mismatched_values": bad_values,
        "compared_values": len(common) * len(FEATURES),
    }


def compare_files(expected: Path | str, actual: Path | str) -> dict[str, Any]:
    return compare(_frame(expected), _frame(actual))


def oracle(entities_path: Path | str) -> pd.DataFrame:
    """The point-in-time join computed independently with pandas.merge_asof (latest
    weather at or before the flight's hour, per origin; the plane row per tailnum)."""
    entities = pq.read_table(entities_path).to_pandas()
    weather = pq.read_table(WEATHER).to_pandas().sort_values("time_hour")
    planes = pq.read_table(PLANES).to_pandas().drop(columns="event_time")
    ordered = entities.sort_values("event_timestamp")
    joined = pd.merge_asof(
        ordered,
        weather,
        left_on="event_timestamp",
        right_on="time_hour",
        by="origin",
        direction="backward",
        allow_exact_matches=True,
    ).drop(columns="time_hour")
    joined = joined.merge(planes, on="tailnum", how="left")
    return joined.sort_values("row_id").set_index("row_id")


def compare_with_oracle(entities_path: Path | str, actual: Path | str) -> dict[str, Any]:
    return compare(oracle(entities_path), _frame(actual))
