"""An endpoint's A/B test, read from what it served: captured predictions joined with
their ground truth by (inference id, row), scored per variant and decided by the stated
rule of :mod:`slipway.evaluation.ab`, beside each variant's traffic figures (requests,
errors, latency percentiles from the gateways' sketches).

A variant's captured ``prediction`` is a score (the positive class's probability) when
its model version serves probabilities of a binary classifier (see
:mod:`slipway.registry.outputs`), and a label otherwise; ROC AUC and log loss need the
former, so versions meant for an A/B test are registered with ``output=probabilities``
(or ``both``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import pyarrow as pa

from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.evaluation import ab
from slipway.monitoring import capture, ground_truth
from slipway.registry.models import Output

if TYPE_CHECKING:
    from slipway.services import Services


def _served_models(services: Services, endpoint: str) -> dict[tuple[str, int], str]:
    """(variant, model version) -> model name, from every config the endpoint had."""
    out: dict[tuple[str, int], str] = {}
    for config in services.endpoints.history(endpoint):
        spec = config.spec
        for variant in [*spec.variants, *spec.shadow_variants]:
            if variant.version is not None:
                out[(variant.name, variant.version)] = variant.model_name
    return out


def _scores(services: Services, name: str, version: int) -> bool:
    described = services.registry.get(name, version)
    binary = described.classes is not None and len(described.classes) == 2
    return described.output in (Output.PROBABILITIES, Output.BOTH) and binary


def labelled_traffic(
    services: Services, endpoint: str, start: datetime, end: datetime
) -> tuple[pd.DataFrame, int]:
    """Captured production rows in ``[start, end)`` that have a label (one frame with
    ``inference_id``, ``variant``, ``label``, and ``score`` or ``prediction``), and how
    many captured rows there were in all."""
    captured = capture.read_window(services.artifacts, endpoint, start, end, identity=True)
    if captured.num_rows == 0:
        return pd.DataFrame(columns=["inference_id", "variant", "label"]), 0
    labels = ground_truth.read(services.artifacts, endpoint, start)
    con = duckdb.connect()
    con.register(
        "captured",
        captured.select(["inference_id", "row", "variant", "model_version", "prediction"]),
    )
    con.register("labels", labels)
    joined = con.sql(
        "SELECT c.inference_id, c.row, CAST(c.variant AS VARCHAR) AS variant, c.model_version,"
        " TRY_CAST(c.prediction AS DOUBLE) AS prediction, l.label_number AS label"
        " FROM captured c JOIN labels l USING (inference_id, row)"
    ).df()
    if not pa.types.is_floating(captured.schema.field("prediction").type) and len(joined):
        raise InvalidInput(
            "the captured predictions are not numbers: an A/B test needs numeric labels or scores",
            field="endpoint",
        )
    models = _served_models(services, endpoint)
    keys = [(v, int(m)) for v, m in zip(joined["variant"], joined["model_version"], strict=True)]
    is_score = {key: key in models and _scores(services, models[key], key[1]) for key in set(keys)}
    scored = [is_score[key] for key in keys]
    mask = pd.Series(scored, index=joined.index, dtype=bool)
    frame = joined.assign(
        score=joined["prediction"].where(mask),
        prediction=joined["prediction"].where(~mask),
    ).drop(columns=["model_version"])
    if frame["prediction"].isna().all():
        frame = frame.drop(columns=["prediction"])  # labels are then derived from scores
    return frame, captured.num_rows


def run(
    services: Services,
    endpoint: str,
    *,
    since: datetime,
    until: datetime | None = None,
    rule: ab.Rule,
    reference: str | None = None,
) -> dict[str, Any]:
    """The A/B report of ``endpoint`` over ``[since, until)``: per-variant quality with
    sample sizes, each variant against ``reference`` (by default the active config's
    heaviest variant) with its interval and verdict, and traffic figures."""
    from slipway.serving.stats import variant_stats

    until = until or utcnow()
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    described = services.endpoints.describe(endpoint)  # NotFound for an unknown endpoint
    if reference is None:
        active = described.active
        if active is None:
            raise InvalidInput(f"endpoint {endpoint!r} serves no config yet", field="endpoint")
        spec = active.spec
        reference = max(spec.variants, key=lambda v: v.weight).name
    frame, captured = labelled_traffic(services, endpoint, since, until)
    report = ab.decide(frame, reference, rule)
    with services.db.session() as session:
        traffic = variant_stats(session, endpoint, since=since)
    for variant, figures in report["variants"].items():
        figures["traffic"] = traffic.get(variant, {})
    return {
        "endpoint": endpoint,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "captured_rows": captured,
        "labelled_rows": len(frame),
        **report,
    }
