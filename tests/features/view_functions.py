"""Python transformations the feature-view tests name by module path."""

from __future__ import annotations

import pandas as pd


def age_bucket(frame: pd.DataFrame) -> pd.DataFrame:
    """Decades of age, vectorized: one call per batch."""
    return pd.DataFrame({"age_bucket": (frame["age"] // 10).astype("int64")})
