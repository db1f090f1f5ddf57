"""A feature-skew run: the feature values an endpoint served, against the same feature view
recomputed offline for the same keys, request fields and moments.

Training/serving skew is a feature computed one way for training and another way when
serving (a client's own formula, a stale cache, a unit slip). The captured traffic
(:func:`capture.read_window <slipway.monitoring.capture.read_window>`, its ``features``
struct flattened) holds what the model received: the entity keys, the request fields and
the view's columns. For each captured row — all of the window's, or a seeded sample of
``max_rows`` — the run builds an entity row from the view's entity keys, the request
fields and the capture's ``time``, and recomputes the view with
:meth:`FeatureViews.training_set <slipway.features.views.service.FeatureViews.training_set>`
**as known at** that time: only feature rows and window events ingested by then count,
which is what the online store could have answered. A late correction ingested after
the request is then no skew, while a client computing a feature differently is.
:mod:`slipway.monitoring.skew` compares the two sides row by row.

The view is the monitor's ``skew.feature_view`` or, by default, the one the endpoint's
enrichment pins in its active config. Named without a version, it is the version the
enrichment pins when that is the same view, else the latest. Entity keys are looked up
under the request field the enrichment maps to them (``enrichment.entity_keys``), else
under their own name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from slipway.core.errors import InvalidInput, NotFound
from slipway.features.views.resources import FeatureView
from slipway.features.views.service import FeatureViews
from slipway.monitoring import skew
from slipway.monitoring.spec import MonitorSpec, Skew, parse_view_ref

AT = "__slipway_served_at"  # the entity rows' timestamp column: the capture's time

Recompute = Callable[[FeatureView, pa.Table], pa.Table]


def _enrichment(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    found = (config or {}).get("enrichment")
    return found if isinstance(found, Mapping) else {}


def view_ref(
    settings: Skew, config: Mapping[str, Any] | None, endpoint: str
) -> tuple[str, int | None]:
    """(name, version or None for the latest) of the view a run compares with; ``config``
    is the endpoint's active config as stored (None: not deployed)."""
    pinned = _enrichment(config).get("feature_view")
    pinned_ref = (
        parse_view_ref(pinned, field="skew.feature_view") if isinstance(pinned, str) else None
    )
    named = settings.view_ref()
    if named is None:
        if pinned_ref is None:
            state = "is not deployed" if config is None else "has no feature view enrichment"
            raise InvalidInput(
                f"endpoint {endpoint!r} {state}: name the feature view to compare with",
                field="skew.feature_view",
            )
        return pinned_ref
    name, version = named
    if version is None and pinned_ref is not None and pinned_ref[0] == name:
        version = pinned_ref[1]
    return name, version


def resolve(
    views: FeatureViews, settings: Skew, config: Mapping[str, Any] | None, endpoint: str
) -> FeatureView:
    """The view version a run compares with (InvalidInput naming ``skew.feature_view``
    when it does not exist)."""
    name, version = view_ref(settings, config, endpoint)
    try:
        return views.get(name, version)
    except NotFound as exc:
        raise InvalidInput(exc.message, field="skew.feature_view") from None


def check(views: FeatureViews, monitor: MonitorSpec, config: Mapping[str, Any] | None) -> None:
    """At creation and update: the view exists and has every feature named. Without a
    view named and with the endpoint not deployed yet, the run resolves it."""
    settings = monitor.skew
    assert settings is not None
    if settings.feature_view is None and config is None:
        return
    view = resolve(views, settings, config, monitor.endpoint)
    for index, feature in enumerate(settings.features or []):
        if feature not in view.columns:
            raise InvalidInput(
                f"feature view {view.name!r} (version {view.version}) has no column"
                f" {feature!r} (it has {', '.join(view.columns)})",
                field=f"skew.features.{index}",
            )


def entity_rows(
    captured: pa.Table, view: FeatureView, renamed: Mapping[str, str] | None = None
) -> pa.Table:
    """The view's entity keys (from the request field ``renamed`` maps to each, or its
    own name), the request fields the capture has, and the capture's time as ``AT``."""
    field_of = {key: field for field, key in (renamed or {}).items()}
    columns: dict[str, Any] = {}
    for key in view.entity_keys:
        source = field_of.get(key, key)
        if source not in captured.column_names:
            source = key
        if source not in captured.column_names:
            raise InvalidInput(
                f"the captured traffic has no column {key!r}, an entity key of feature view"
                f" {view.name!r}: the skew is measured on requests that carry their keys",
                field="skew.feature_view",
            )
        columns[key] = captured[source]
    for field in view.spec.request_fields:
        if field in captured.column_names and field not in columns:
            columns[field] = captured[field]
    columns[AT] = captured["time"]
    return pa.table(columns)


def _sample(captured: pa.Table, settings: Skew) -> pa.Table:
    if captured.num_rows <= settings.max_rows:
        return captured
    rng = np.random.default_rng(settings.seed)
    chosen = np.sort(rng.choice(captured.num_rows, settings.max_rows, replace=False))
    return captured.take(pa.array(chosen))


def evaluate(
    captured: pa.Table,
    settings: Skew,
    view: FeatureView,
    recompute: Recompute,
    *,
    renamed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report of one skew run over a window's captured rows (read with their
    identity): per feature the comparison of :func:`skew.compare
    <slipway.monitoring.skew.compare>`, and a violation per feature whose share of
    mismatching rows is above ``max_mismatch_share``. ``recompute`` gives the view's
    columns for entity rows (the training set as known at their timestamp)."""
    report: dict[str, Any] = {
        "kind": "feature_skew",
        "rows": captured.num_rows,
        "compared": 0,
        "feature_view": {"name": view.name, "version": view.version, "digest": view.digest},
        "as_known_at": True,
        "abs_tolerance": settings.abs_tolerance,
        "rel_tolerance": settings.rel_tolerance,
        "max_mismatch_share": settings.max_mismatch_share,
        "features": {},
        "metrics": {},
        "skewed": [],
        "violations": [],
    }
    if captured.num_rows == 0:
        return report
    features = settings.features or [c for c in view.columns if c in captured.column_names]
    if not features:
        raise InvalidInput(
            f"the captured traffic holds none of the columns of feature view {view.name!r}"
            f" ({', '.join(view.columns)})",
            field="skew.features",
        )
    rows = _sample(captured, settings)
    try:
        offline = recompute(view, entity_rows(rows, view, renamed))
    except InvalidInput as exc:
        raise InvalidInput(
            f"recomputing feature view {view.name!r} for the captured rows: {exc.message}",
            field=exc.field or "skew.feature_view",
        ) from None
    compared = skew.compare(
        rows,
        offline,
        features,
        abs_tolerance=settings.abs_tolerance,
        rel_tolerance=settings.rel_tolerance,
        max_mismatch_share=settings.max_mismatch_share,
    )
    return report | compared | {"compared": rows.num_rows}


def as_known_at(views: FeatureViews) -> Recompute:
    """The recomputation a run uses: the view's training set for the entity rows, as
    known at each row's time."""

    def recompute(view: FeatureView, rows: pa.Table) -> pa.Table:
        built = views.training_set(
            view.name, rows, version=view.version, timestamp_column=AT, as_known_at=True
        )
        return built.data

    return recompute


def renamed_keys(config: Mapping[str, Any] | None) -> dict[str, str]:
    """The enrichment's request field → entity key mapping, when it has one."""
    mapping = _enrichment(config).get("entity_keys")
    return {str(k): str(v) for k, v in mapping.items()} if isinstance(mapping, Mapping) else {}
