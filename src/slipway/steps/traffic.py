"""The built-in step that turns an endpoint's captured traffic and its ground truth into
labelled evaluation data."""

from __future__ import annotations

import pandas as pd

from slipway.core.errors import InvalidInput
from slipway.pipelines.dsl import step
from slipway.steps.platform import platform


@step(kind="processing", cache=False)  # traffic keeps arriving: never reuse
def labelled_traffic(endpoint: str, label: str = "label", hours: float = 24.0 * 30) -> pd.DataFrame:
    """What ``endpoint`` was sent in the last ``hours`` and what really happened: the
    captured model inputs (production traffic, after enrichment) joined with their ground
    truth by (inference id, row), one row each, the label in column ``label``. Evaluation
    data for :func:`compare_models` that is the traffic the champion actually faces."""
    from datetime import timedelta

    import duckdb

    from slipway.core.clock import utcnow
    from slipway.monitoring import capture, ground_truth

    if not 0 < hours <= 24 * 366:
        raise InvalidInput("hours must be in (0, 8784]", field="hours")
    with platform() as services:
        services.endpoints.describe(endpoint)  # NotFound for an unknown endpoint
        end = utcnow()
        start = end - timedelta(hours=hours)
        captured = capture.read_window(services.artifacts, endpoint, start, end, identity=True)
        labels = ground_truth.read(services.artifacts, endpoint, start)
    identity = {"inference_id", "row", "time", "variant", "model_version", "prediction"}
    features = [c for c in captured.column_names if c not in identity]
    if label in features:
        raise InvalidInput(f"{label!r} is a model input; name the label otherwise", field="label")
    if captured.num_rows == 0:
        return pd.DataFrame(columns=[*features, label])
    con = duckdb.connect()
    con.register("captured", captured)
    con.register("labels", labels)
    selected = ", ".join(f'c."{f}"' for f in features)
    # A request captured twice (a retried write) counts once; numeric labels as numbers.
    frame = con.sql(
        f"SELECT {selected}, coalesce(l.label_number::VARCHAR, l.label) AS label_text,"
        " l.label_number FROM captured c JOIN labels l USING (inference_id, row)"
        " QUALIFY row_number() OVER (PARTITION BY c.inference_id, c.row ORDER BY c.time) = 1"
    ).df()
    numeric = frame["label_number"].notna().all()
    frame[label] = frame["label_number"] if numeric else frame["label_text"]
    if numeric and (frame[label] % 1 == 0).all():
        frame[label] = frame[label].astype("int64")
    out: pd.DataFrame = frame.drop(columns=["label_text", "label_number"])
    return out
