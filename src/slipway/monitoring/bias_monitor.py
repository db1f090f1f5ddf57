"""A bias run: captured predictions joined with late ground truth, split by a facet.

The join is model quality's: on (inference id, row), predictions without a label yet are
left out and counted (``unlabelled``). The facet is one of the model's input columns, as
captured (the ``features`` struct, flattened by :func:`capture.read_window
<slipway.monitoring.capture.read_window>`); traffic without that column fails the run,
saying so. A captured prediction is predicted positive when it equals ``positive_label``
or — for a binary classifier serving scores (the positive class's probability, see
:mod:`slipway.registry.outputs`), with ``probability_threshold`` set — when it is ``>=``
the threshold. The metrics, and what is None when, are :mod:`slipway.monitoring.bias`'s:
a facet value no labelled row has in the window is reported (``unmatched_facet_values``)
and leaves the metrics needing group d undefined; it is no error, a quiet hour may lack
it. Thresholds work as model quality's: ``{"DI": {"min": 0.8}}`` (the four-fifths rule).

At creation, :func:`check_facet` refuses a facet the monitor's baseline, or else the
model versions its endpoint serves (their input signatures), do not have, when either is
known.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from slipway.core.errors import InvalidInput
from slipway.monitoring import bias, capture, served
from slipway.monitoring.baselines import Baselines
from slipway.monitoring.spec import Bias, MonitorSpec

_JOINED = ("inference_id", "row", "prediction", "facet")


def join(captured: pa.Table, labels: pa.Table, facet: str) -> pa.Table:
    """Labelled captured rows: ``prediction``, ``facet`` (the facet column's values),
    ``label`` and ``label_number``."""
    con = duckdb.connect()
    selected = captured.select(["inference_id", "row", "prediction", facet])
    con.register("captured", selected.rename_columns(list(_JOINED)))
    con.register("labels", labels)
    return con.sql(
        "SELECT c.prediction, c.facet, l.label, l.label_number "
        "FROM captured c JOIN labels l USING (inference_id, row)"
    ).to_arrow_table()


def _label_positive(pairs: pa.Table, positive_label: Any) -> pa.ChunkedArray:
    """Ground truth is kept as text and, when numeric, as a number (see
    :mod:`slipway.monitoring.ground_truth`): either matching ``positive_label`` counts."""
    hits = pc.equal(pairs["label"], bias.text_of(positive_label))
    if isinstance(positive_label, bool | int | float):
        hits = pc.or_kleene(hits, pc.equal(pairs["label_number"], float(positive_label)))
    return pc.fill_null(hits, False)


def _predicted(pairs: pa.Table, settings: Bias) -> tuple[Any, Any]:
    """Per row: predicted positive, and whether a prediction is there at all."""
    prediction = pairs["prediction"]
    if settings.probability_threshold is None:
        try:
            return bias.positives(prediction, settings.positive_label, field="prediction")
        except InvalidInput as exc:
            raise InvalidInput(
                f"captured predictions: {exc.message}", field="bias.positive_label"
            ) from None
    if not (pa.types.is_floating(prediction.type) or pa.types.is_integer(prediction.type)):
        raise InvalidInput(
            f"probability_threshold needs numeric scores; the captured predictions are"
            f" {prediction.type}",
            field="bias.probability_threshold",
        )
    scores = pc.cast(prediction, pa.float64())
    above = pc.greater_equal(scores, settings.probability_threshold)
    return bias.as_bools(above), bias.present(scores)


def evaluate(captured: pa.Table, labels: pa.Table, settings: Bias) -> dict[str, Any]:
    """The report of one bias run over a window's captured rows and the labels read."""
    facet = settings.facet_rule()
    report: dict[str, Any] = {
        "kind": "bias",
        "rows": captured.num_rows,
        "labelled": 0,
        "unlabelled": captured.num_rows,
        "facet": facet.describe(),
        "positive_label": settings.positive_label,
        "probability_threshold": settings.probability_threshold,
        "groups": {},
        "metrics": {},
        "undefined": {},
        "violations": [],
    }
    if captured.num_rows == 0:
        return report
    if facet.column not in captured.column_names or facet.column == "prediction":
        inputs = [c for c in captured.column_names if c not in (*capture.IDENTITY, "prediction")]
        raise InvalidInput(
            f"the captured traffic has no input column {facet.column!r} (it has"
            f" {', '.join(inputs) or 'none'})",
            field="bias.facet",
        )
    pairs = join(captured, labels, facet.column)
    report["labelled"] = pairs.num_rows
    report["unlabelled"] = captured.num_rows - pairs.num_rows
    if pairs.num_rows == 0:
        return report
    split = bias.groups(pairs["facet"], facet)
    predicted, known = _predicted(pairs, settings)
    label_positive = bias.as_bools(_label_positive(pairs, settings.positive_label))
    result = bias.compute(split.in_d, label_positive, predicted, keep=split.known & known)
    thresholds = {m: b.model_dump(exclude_none=True) for m, b in settings.thresholds.items()}
    return report | {
        "left_out": pairs.num_rows - result["rows"],
        "unmatched_facet_values": split.unmatched,
        "groups": result["groups"],
        "metrics": result["metrics"],
        "undefined": result["undefined"],
        "violations": bias.check_thresholds(result["metrics"], thresholds, column=facet.column),
    }


def check_facet(session: Session, baselines: Baselines, monitor: MonitorSpec) -> None:
    """Refuse (400 naming ``bias.facet``) a facet column the monitor's baseline — or,
    without one, the endpoint's served models — do not have, when that is known."""
    assert monitor.bias is not None
    facet = monitor.bias.facet
    if monitor.baseline is not None:
        profiles = baselines.statistics(monitor.baseline).columns
        columns: set[str] | None = {
            name for name, profile in profiles.items() if profile.get("role") != "prediction"
        }
        where = f"baseline {monitor.baseline!r}"
    else:
        columns = served.endpoint_columns(
            session, baselines.workspace, monitor.endpoint, monitor.variant
        )
        where = f"the model inputs of endpoint {monitor.endpoint!r}"
    if columns is not None and facet not in columns:
        raise InvalidInput(
            f"{where} has no column {facet!r} (it has {', '.join(sorted(columns))})",
            field="bias.facet",
        )
