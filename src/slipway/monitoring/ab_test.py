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
from typing import Protocol

import duckdb
import pandas as pd
import pyarrow as pa

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.core.workspace import scoped_name
from slipway.evaluation import ab
from slipway.monitoring import capture, ground_truth
from slipway.monitoring.resources import ABReport
from slipway.registry.models import Output
from slipway.registry.service import Registry
from slipway.serving.service import Endpoints


class Sources(Protocol):
    """What an A/B report reads: the endpoint's configs and traffic counters
    (``endpoints``), which model versions serve scores (``registry``), and the captured
    predictions and their labels (``artifacts``). The platform's services have them, and
    so has :class:`~slipway.monitoring.service.Monitoring`."""

    @property
    def endpoints(self) -> Endpoints: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def artifacts(self) -> ArtifactStore: ...


def _served_models(services: Sources, endpoint: str) -> dict[tuple[str, int], str]:
    """(variant, model version) -> model name, from every config the endpoint had."""
    out: dict[tuple[str, int], str] = {}
    for config in services.endpoints.history(endpoint):
        spec = config.spec
        for variant in [*spec.variants, *spec.shadow_variants]:
            if variant.version is not None:
                out[(variant.name, variant.version)] = variant.model_name
    return out


def _scores(services: Sources, name: str, version: int) -> bool:
    described = services.registry.get(name, version)
    binary = described.classes is not None and len(described.classes) == 2
    return described.output in (Output.PROBABILITIES, Output.BOTH) and binary


def labelled_traffic(
    services: Sources, endpoint: str, start: datetime, end: datetime
) -> tuple[pd.DataFrame, int]:
    """Captured production rows in ``[start, end)`` that have a label (one frame with
    ``inference_id``, ``variant``, ``label``, and ``score`` or ``prediction``), and how
    many captured rows there were in all."""
    key = scoped_name(services.endpoints.workspace, endpoint)  # its workspace's files
    captured = capture.read_window(services.artifacts, key, start, end, identity=True)
    if captured.num_rows == 0:
        return pd.DataFrame(columns=["inference_id", "variant", "label"]), 0
    labels = ground_truth.read(services.artifacts, key, start)
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
    services: Sources,
    endpoint: str,
    *,
    since: datetime,
    until: datetime | None = None,
    rule: ab.Rule,
    reference: str | None = None,
) -> ABReport:
    """The A/B report of ``endpoint`` over ``[since, until)``: per-variant quality with
    sample sizes, each variant against ``reference`` (by default the active config's
    heaviest variant) with its interval and verdict, and traffic figures. InvalidInput
    (``until``) unless ``until`` is after ``since``; NotFound for an unknown endpoint."""
    until = until or utcnow()
    for moment, field in ((since, "since"), (until, "until")):
        if moment.tzinfo is None:
            raise InvalidInput(f"{field} needs a time zone (e.g. Z or +02:00)", field=field)
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    described = services.endpoints.describe(endpoint)  # NotFound for an unknown endpoint
    active = described.active
    if reference is None:
        if active is None:
            raise InvalidInput(f"endpoint {endpoint!r} serves no config yet", field="endpoint")
        reference = max(active.spec.variants, key=lambda v: v.weight).name
    frame, captured = labelled_traffic(services, endpoint, since, until)
    if len(frame):
        report = ab.decide(frame, reference, rule)
    else:
        names = {v.name for v in active.spec.variants} if active is not None else set()
        report = ab.unlabelled(sorted(names | {reference}), reference, rule)
    traffic = services.endpoints.stats(endpoint, since=since).variants
    for variant, figures in report["variants"].items():
        served = traffic.get(variant)
        figures["traffic"] = served.model_dump() if served is not None else {}
    return ABReport.model_validate(
        {
            "endpoint": endpoint,
            "since": since,
            "until": until,
            "captured_rows": captured,
            "labelled_rows": len(frame),
            **report,
        }
    )
