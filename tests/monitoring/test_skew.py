"""The feature-skew monitor: the comparison on small Arrow tables (tolerances, nulls, text,
booleans, the distribution of differences), then end to end on an embedded platform — a
feature view with a window and a row-level transformation, an endpoint behind a real
gateway with data capture whose clients send the view's columns themselves — a correct
client shows no skew, a client computing one feature its own way on some requests is
found with that share; bad specs are refused naming the field, embedded and over REST.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from slipway.api.app import create_app
from slipway.cli.main import app
from slipway.core.errors import InvalidInput
from slipway.core.settings import load_settings
from slipway.features.views.resources import FeatureView
from slipway.features.views.spec import FeatureViewSpec
from slipway.monitoring import capture
from slipway.monitoring.skew import CHECK, compare, compare_feature
from slipway.monitoring.skew_monitor import AT, entity_rows, renamed_keys, view_ref
from slipway.monitoring.spec import Skew
from slipway.services import Services
from tests.monitoring.synthetic import execute_queued
from tests.serving.conftest import Platform, RunningGateway, start_gateway

TOLERANCE = {"abs_tolerance": 1e-9, "rel_tolerance": 1e-6}


def _one(
    served: list[object], offline: list[object], served_type: pa.DataType | None = None
) -> dict[str, Any]:
    entry, mismatch = compare_feature(pa.array(served, served_type), pa.array(offline), **TOLERANCE)
    assert mismatch.to_pylist().count(True) == entry["mismatches"]
    return entry


# -- the comparison -----------------------------------------------------------------------


def test_numbers_within_the_tolerance_match_and_beyond_it_do_not() -> None:
    offline = [1.0, 1000.0, 0.0, 5.0, 1e6]
    # 1e-12 off (absolute), 5e-4 off at 1000 (relative 5e-7), 5e-10 off at zero (absolute),
    # 0.5 off, then 2e-6 relative off.
    served = [1.0 + 1e-12, 1000.0005, 5e-10, 5.5, 1e6 * (1 + 2e-6)]
    entry = _one(served, offline)
    assert (entry["rows"], entry["mismatches"]) == (5, 2)
    assert entry["share"] == pytest.approx(0.4)
    assert entry["compared_as"] == "number"
    looser = compare_feature(
        pa.array(served), pa.array(offline), abs_tolerance=2.5, rel_tolerance=0.0
    )[0]
    assert looser["mismatches"] == 0  # 0.5 and 2.0 are within 2.5


def test_integers_against_floats_and_booleans_against_numbers_compare_as_numbers() -> None:
    entry = _one([1, 2, 3], [1.0, 2.0, 3.5])
    assert (entry["compared_as"], entry["mismatches"]) == ("number", 1)
    entry = _one([True, False, True], [1, 0, 0])
    assert (entry["compared_as"], entry["mismatches"]) == ("number", 1)


def test_nulls_on_one_side_mismatch_and_on_both_sides_match() -> None:
    entry = _one([None, 1.0, None, 2.0], [None, None, 3.0, 2.0], pa.float64())
    assert entry["mismatches"] == 2
    assert (entry["missing_in_capture"], entry["missing_offline"], entry["both_missing"]) == (
        1,
        1,
        1,
    )
    # The differences only cover rows with both values.
    assert entry["differences"]["rows"] == 1


def test_special_floats() -> None:
    nan, inf = math.nan, math.inf
    entry = _one([nan, inf, nan, 1.0, -inf, nan, None], [nan, inf, 1.0, inf, inf, None, nan])
    # A NaN is a missing number (the gateway's matrices carry nulls as NaN): NaN against
    # NaN or null matches, NaN against 1 is missing in the capture. inf = inf matches; 1
    # against inf and -inf against inf do not.
    assert entry["mismatches"] == 3
    assert (entry["missing_in_capture"], entry["both_missing"]) == (1, 3)
    differences = entry["differences"]  # of inf - inf, 1 - inf, -inf - inf: none finite
    assert (differences["rows"], differences["not_finite"], differences["max"]) == (0, 3, None)


def test_text_and_booleans_compare_by_equality() -> None:
    entry = _one(["a", "b", None, "c"], ["a", "B", None, None])
    assert (entry["compared_as"], entry["mismatches"], entry["missing_offline"]) == ("equal", 2, 1)
    assert "differences" not in entry
    entry = _one([True, False, None], [True, True, False])
    assert (entry["compared_as"], entry["mismatches"]) == ("equal", 2)
    # Dictionary-encoded text is text.
    encoded = pa.array(["x", "y", "x"]).dictionary_encode()
    entry = compare_feature(encoded, pa.array(["x", "y", "y"]), **TOLERANCE)[0]
    assert (entry["compared_as"], entry["mismatches"]) == ("equal", 1)


def test_values_of_different_types_compare_as_text() -> None:
    entry = _one(["1", "2", "x"], [1, 2, 3])
    assert (entry["compared_as"], entry["mismatches"]) == ("text", 1)
    # A capture of nothing but nulls has no type: it is the recomputed column's.
    entry = _one([None, None], [1.5, None], pa.null())
    assert (entry["compared_as"], entry["served_type"], entry["missing_in_capture"]) == (
        "number",
        "null",
        1,
    )
    # Values that do not compare at all name the feature.
    lists = pa.table({"f": pa.array([[1], [2]])})
    with pytest.raises(InvalidInput) as caught:
        compare(lists, pa.table({"f": pa.array([{"x": 1}, {"x": 2}])}), ["f"],
                max_mismatch_share=0.0, **TOLERANCE)  # fmt: skip
    assert caught.value.field == "skew.features.0"


def test_the_distribution_of_differences() -> None:
    rng = np.random.default_rng(1)
    offline = rng.uniform(1.0, 100.0, 10_000)
    served = offline.copy()
    served[:1000] += 0.5  # 10%: +0.5
    served[1000:1050] -= 3000.0  # 0.5%: -3000
    entry = _one(served.tolist(), offline.tolist())
    assert entry["mismatches"] == 1050
    differences = entry["differences"]
    assert differences["rows"] == 10_000 and differences["not_finite"] == 0
    assert differences["p50"] == 0.0
    assert differences["p90"] == pytest.approx(0.5, abs=1e-9)
    assert differences["p99"] == pytest.approx(0.5, abs=1e-9)
    assert differences["max"] == pytest.approx(3000.0)
    assert differences["mean"] == pytest.approx((1000 * 0.5 - 50 * 3000.0) / 10_000)
    histogram = differences["histogram"]
    # Ascending: (-1e4, -1e3] (the -3000s), the exact zeros, [0.1, 1) (the +0.5s).
    lows = [b["low"] for b in histogram]
    assert lows == sorted(lows)
    by_range = {(b["low"], b["high"]): b["count"] for b in histogram}
    assert by_range[(-1e4, -1e3)] == 50
    assert by_range[(0.1, 1.0)] == 1000
    assert by_range[(0.0, 0.0)] == 8950
    assert sum(by_range.values()) == 10_000
    assert len(histogram) == 3


def test_exact_powers_of_ten_open_their_decade() -> None:
    entry = _one([1.001, 10.0, 100.1, -1.0], [0.0, 0.0, 0.1, 0.0])
    by_range = {(b["low"], b["high"]): b["count"] for b in entry["differences"]["histogram"]}
    # 1.001, 10 and 100 (exactly) fall in [1, 10), [10, 100) and [100, 1000); -1 in
    # (-10, -1]. Bins are contiguous between the smallest and largest decade on a side.
    assert by_range == {
        (-10.0, -1.0): 1,
        (0.0, 0.0): 0,
        (1.0, 10.0): 1,
        (10.0, 100.0): 1,
        (100.0, 1000.0): 1,
    }
    wide = _one([1e-3, 50.0], [0.0, 0.0])["differences"]["histogram"]
    assert [(b["low"], b["count"]) for b in wide] == [
        (0.0, 0),
        (1e-3, 1),
        (1e-2, 0),
        (1e-1, 0),
        (1.0, 0),
        (10.0, 1),
    ]


def test_compare_reports_violations_above_the_share_with_examples() -> None:
    rows = 200
    served = pa.table(
        {
            "inference_id": [f"r{i // 10}" for i in range(rows)],
            "row": pa.array([i % 10 for i in range(rows)], pa.int32()),
            "good": np.arange(rows, dtype=np.float64),
            "bad": np.where(np.arange(rows) % 20 == 0, -1.0, 1.0),
            "label": ["a"] * rows,
        }
    )
    offline = pa.table(
        {
            "good": np.arange(rows, dtype=np.float64),
            "bad": np.ones(rows),
            "label": ["a"] * rows,
            "absent": np.ones(rows),
        }
    )
    report = compare(
        served,
        offline,
        ["good", "bad", "label", "absent"],
        max_mismatch_share=0.01,
        **TOLERANCE,
    )
    assert report["metrics"] == {"good": 0.0, "bad": 0.05, "label": 0.0, "absent": 1.0}
    assert report["skewed"] == ["bad", "absent"]
    checks = {v["column"]: v for v in report["violations"]}
    assert set(checks) == {"bad", "absent"}
    assert checks["bad"]["check"] == CHECK
    assert (checks["bad"]["value"], checks["bad"]["threshold"]) == (0.05, 0.01)
    assert "10 of 200 rows (5.00%)" in checks["bad"]["message"]
    assert "no such column" in checks["absent"]["message"]
    bad = report["features"]["bad"]
    assert bad["examples"][:2] == [
        {"inference_id": "r0", "row": 0, "served": -1.0, "offline": 1.0},
        {"inference_id": "r2", "row": 0, "served": -1.0, "offline": 1.0},
    ]
    assert len(bad["examples"]) == 5
    absent = report["features"]["absent"]
    assert (absent["in_capture"], absent["missing_in_capture"]) == (False, rows)
    # At exactly the allowed share it is no violation.
    at_limit = compare(served, offline, ["bad"], max_mismatch_share=0.05, **TOLERANCE)
    assert at_limit["violations"] == [] and at_limit["metrics"] == {"bad": 0.05}


# -- which view, and the entity rows ----------------------------------------------------


def test_the_view_defaults_to_the_one_the_endpoint_enrichment_pins() -> None:
    pinned = {"enrichment": {"feature_view": "rider:3", "entity_keys": {"user": "rider_id"}}}
    assert view_ref(Skew(), pinned, "rides") == ("rider", 3)
    # Named without a version: the pinned version of the same view, else the latest.
    assert view_ref(Skew(feature_view="rider"), pinned, "rides") == ("rider", 3)
    assert view_ref(Skew(feature_view="rider:2"), pinned, "rides") == ("rider", 2)
    assert view_ref(Skew(feature_view="other"), pinned, "rides") == ("other", None)
    assert renamed_keys(pinned) == {"user": "rider_id"}
    for config in (None, {"enrichment": {"features": ["riders:age"]}}, {"variants": []}):
        with pytest.raises(InvalidInput) as caught:
            view_ref(Skew(), config, "rides")
        assert caught.value.field == "skew.feature_view"
        assert renamed_keys(config) == {}


def test_entity_rows_take_the_keys_request_fields_and_capture_time() -> None:
    view = FeatureView(
        name="rider",
        version=1,
        spec=FeatureViewSpec.model_validate(VIEW),
        digest="d",
        entity_keys=["rider_id"],
        columns={"age": "int", "per_km": "float"},
        created_by="t",
        created_at=datetime.now(UTC),
    )
    times = pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC"))
    captured = pa.table({"user": ["a", "b"], "distance": [1.0, 2.0], "age": [3, 4], "time": times})
    rows = entity_rows(captured, view, {"user": "rider_id"})
    assert rows.column_names == ["rider_id", "distance", AT]
    assert rows["rider_id"].to_pylist() == ["a", "b"] and rows[AT] == captured["time"]
    with pytest.raises(InvalidInput) as caught:
        entity_rows(captured, view)  # the key is under another name, unmapped
    assert caught.value.field == "skew.feature_view" and "'rider_id'" in caught.value.message


# -- end to end ---------------------------------------------------------------------------

RIDERS = [f"r{i}" for i in range(20)]
PER_REQUEST = 5
REQUESTS = 100
SKEWED_EVERY = 4  # the skewed client computes per_km its own way on every 4th request
VIEW: dict[str, Any] = {
    "name": "rider",
    "features": ["riders:age"],
    "request_fields": {"distance": "float"},
    "transformations": [
        {"name": "trips_1h", "window": {"group": "trips", "function": "count", "duration": "1h"}},
        {
            "name": "fare_sum_24h",
            "window": {"group": "trips", "column": "fare", "function": "sum", "duration": "24h"},
        },
        {"name": "senior", "expression": "age >= 60", "type": "bool"},
        {"name": "per_km", "expression": "fare_sum_24h / distance", "type": "float"},
    ],
}
COLUMNS = ["rider_id", "distance", "age", "trips_1h", "fare_sum_24h", "per_km"]


class Pricer(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A model taking the view's columns (and the key and request field) as its inputs."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return np.asarray(model_input["per_km"] * 2.0 + model_input["age"] * 0.01)


@dataclass
class SkewPlatform:
    services: Services
    gateway: RunningGateway
    windows: dict[str, tuple[datetime, datetime]]
    skewed_rows: int
    rows: int


def _register_pricer(services: Services, name: str, *, with_key: bool) -> str:
    """The pricer taking the view's columns and the request field (``with_key``: and
    the entity key, for clients that send every column themselves)."""
    example = pd.DataFrame(
        {
            "rider_id": ["r0"],
            "distance": [2.5],
            "age": [40],
            "trips_1h": [1],
            "fare_sum_24h": [12.0],
            "per_km": [4.8],
        }
    )
    if not with_key:
        example = example.drop(columns=["rider_id"])
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        experiment = services.registry.mlflow.experiment_id("skew", services.settings.artifact_root)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.pyfunc.log_model(
                name="model",
                python_model=Pricer(),
                signature=mlflow.models.infer_signature(example, np.array([9.0])),
                pip_requirements=["pandas"],
            )
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    version = services.registry.register(name, f"runs:/{run.info.run_id}/model", actor="t")
    services.registry.set_approval(name, version.version, "Approved", actor="t")
    return f"{name}:{version.version}"


def _send(fp_services: Services, url: str, *, skewed: bool) -> int:
    """One client's traffic: per request, the view read online now for its riders and
    sent with the request; a skewed client divides every 4th request's fare by miles
    rather than kilometres. Returns the rows it skewed."""
    rng = np.random.default_rng(7 if skewed else 3)
    skewed_rows = 0
    for request in range(REQUESTS):
        riders = rng.choice(RIDERS, PER_REQUEST, replace=False)
        distances = np.round(rng.uniform(0.5, 20.0, PER_REQUEST), 3)
        entity = [
            {"rider_id": str(r), "distance": float(d)}
            for r, d in zip(riders, distances, strict=True)
        ]
        rows = fp_services.feature_views.get_online("rider", entity)
        records = [e | r for e, r in zip(entity, rows, strict=True)]
        if skewed and request % SKEWED_EVERY == 0:
            for record in records:
                record["per_km"] = record["fare_sum_24h"] / (record["distance"] * 0.621371)
            skewed_rows += len(records)
        response = httpx.post(
            f"{url}/endpoints/rides/invocations",
            json={"dataframe_records": [{c: r[c] for c in COLUMNS} for r in records]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    return skewed_rows


def _send_enriched(url: str) -> None:
    """Requests carrying only the key (as "user") and the request field."""
    rng = np.random.default_rng(5)
    for _ in range(REQUESTS):
        riders = rng.choice(RIDERS, PER_REQUEST, replace=False)
        distances = np.round(rng.uniform(0.5, 20.0, PER_REQUEST), 3)
        records = [
            {"user": str(r), "distance": float(d)} for r, d in zip(riders, distances, strict=True)
        ]
        response = httpx.post(
            f"{url}/endpoints/rides-enriched/invocations",
            json={"dataframe_records": records},
            timeout=30,
        )
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def skew_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SkewPlatform]:
    """Riders and their trips (every rider has trips in the last day, none near a window's
    edge), the view, an endpoint serving a model on the view's columns with full capture;
    then a correct client's traffic, late corrections of what it was served, and a
    skewed client's traffic, each phase its own window."""
    root = tmp_path_factory.mktemp("skew")
    services = Services.open(
        load_settings(home=root / "home", database={"url": f"sqlite:///{root}/meta.db"})
    )
    now = datetime.now(UTC)
    services.features.create_group(
        {
            "name": "riders",
            "record_identifiers": [{"name": "rider_id"}],
            "features": [{"name": "age", "type": "int"}],
        }
    )
    services.features.create_group(
        {
            "name": "trips",
            "record_identifiers": [{"name": "rider_id"}],
            "features": [{"name": "fare", "type": "float"}],
        }
    )
    services.features.ingest(
        "riders",
        pd.DataFrame(
            {
                "rider_id": RIDERS,
                "event_time": [now - timedelta(days=2)] * len(RIDERS),
                "age": [20 + 3 * i for i in range(len(RIDERS))],
            }
        ),
    )
    trips = [
        (rider, now - timedelta(minutes=minutes), round(5.0 + i * 1.37 + minutes / 100, 2))
        for i, rider in enumerate(RIDERS)
        for minutes in (30, 120, 300)
    ]
    services.features.ingest(
        "trips",
        pd.DataFrame(
            {
                "rider_id": [t[0] for t in trips],
                "event_time": [t[1] for t in trips],
                "fare": [t[2] for t in trips],
            }
        ),
    )
    services.feature_views.apply(VIEW)
    platform = Platform(
        services,
        {
            "pricer": _register_pricer(services, "pricer", with_key=True),
            "view-pricer": _register_pricer(services, "view-pricer", with_key=False),
        },
    )
    gateway, stop = start_gateway(services)
    try:
        platform.deploy(
            {
                "name": "rides",
                "variants": [{"name": "main", "model": platform.refs["pricer"]}],
                "data_capture": {"enabled": True, "sampling_percent": 100},
            }
        )
        # The gateway computes the view itself (the version it pins), the key sent as
        # "user".
        platform.deploy(
            {
                "name": "rides-enriched",
                "variants": [{"name": "main", "model": platform.refs["view-pricer"]}],
                "data_capture": {"enabled": True, "sampling_percent": 100},
                "enrichment": {"feature_view": "rider", "entity_keys": {"user": "rider_id"}},
            }
        )
        windows: dict[str, tuple[datetime, datetime]] = {}
        start = datetime.now(UTC)
        _send(services, gateway.url, skewed=False)
        _send_enriched(gateway.url)
        gateway.gateway.capture.flush()
        windows["correct"] = (start, datetime.now(UTC))
        # Ingested after the correct client was served, about times before it: a fare
        # corrected (same rider and event time) and an age restated as of yesterday.
        services.features.ingest(
            "trips",
            pd.DataFrame(
                {"rider_id": ["r0"], "event_time": [now - timedelta(minutes=120)], "fare": [99.0]}
            ),
        )
        services.features.ingest(
            "riders",
            pd.DataFrame(
                {"rider_id": ["r1"], "event_time": [now - timedelta(days=1)], "age": [77]}
            ),
        )
        start = datetime.now(UTC)
        skewed_rows = _send(services, gateway.url, skewed=True)
        gateway.gateway.capture.flush()
        windows["skewed"] = (start, datetime.now(UTC))
        yield SkewPlatform(services, gateway, windows, skewed_rows, REQUESTS * PER_REQUEST)
    finally:
        stop()
        services.close()


def _run(sp: SkewPlatform, monitor: str, window: str) -> Any:
    start, end = sp.windows[window]
    run = sp.services.monitoring.run(monitor, actor="t", start=start, end=end)
    assert execute_queued(sp.services) == 1
    done = sp.services.monitoring.get_run(run.id)
    assert done.state == "completed", done.error
    return done


def _monitor(name: str, **skew: Any) -> dict[str, Any]:
    return {"name": name, "kind": "feature_skew", "endpoint": "rides", "skew": skew}


def test_a_correct_client_shows_no_skew(skew_platform: SkewPlatform) -> None:
    sp = skew_platform
    sp.services.monitoring.create(_monitor("rides-skew", feature_view="rider"), actor="t")
    done = _run(sp, "rides-skew", "correct")
    assert (done.status, done.rows, done.violations) == ("no_violations", sp.rows, 0)
    report = sp.services.monitoring.report(done.id).model_dump()
    view = sp.services.feature_views.get("rider")
    assert report["feature_view"] == {"name": "rider", "version": 1, "digest": view.digest}
    assert report["compared"] == sp.rows and report["as_known_at"] is True
    # Every view column the capture holds (the key and request field are inputs, not
    # view columns), each compared on every row without a difference.
    assert list(report["features"]) == ["age", "trips_1h", "fare_sum_24h", "per_km"]
    for feature, entry in report["features"].items():
        assert (entry["rows"], entry["mismatches"], entry["share"]) == (sp.rows, 0, 0.0), feature
        assert entry["missing_in_capture"] == entry["missing_offline"] == 0
        assert entry["differences"]["max"] <= 1e-9
    assert report["metrics"] == dict.fromkeys(report["features"], 0.0)
    assert done.summary["skewed"] == [] and done.summary["compared"] == sp.rows


def test_an_endpoint_enriched_by_the_view_is_compared_with_the_view_it_pins(
    skew_platform: SkewPlatform,
) -> None:
    """No view named: the one the endpoint's enrichment pins; the key found under the
    request field the enrichment maps to it; every view column the gateway computed
    (a boolean among them) compared, with the late corrections not counted."""
    sp = skew_platform
    monitor = {"name": "enriched-skew", "kind": "feature_skew", "endpoint": "rides-enriched"}
    sp.services.monitoring.create(monitor, actor="t")
    done = _run(sp, "enriched-skew", "correct")
    assert (done.status, done.rows, done.violations) == ("no_violations", sp.rows, 0)
    report = sp.services.monitoring.report(done.id).model_dump()
    assert report["feature_view"]["name"] == "rider" and report["feature_view"]["version"] == 1
    assert list(report["features"]) == ["age", "trips_1h", "fare_sum_24h", "senior", "per_km"]
    assert report["features"]["senior"]["compared_as"] == "equal"
    for feature, entry in report["features"].items():
        assert (entry["rows"], entry["mismatches"]) == (sp.rows, 0), feature
    # The corrections touched rows of r0 and r1 in this window, recomputed as known at.
    start, end = sp.windows["correct"]
    riders = capture.read_window(sp.services.artifacts, "rides-enriched", start, end)["user"]
    assert {"r0", "r1"} <= set(riders.to_pylist())


def test_late_corrections_are_not_skew_as_known_at_the_request(
    skew_platform: SkewPlatform,
) -> None:
    """The correct client's window was recomputed above after the corrections were
    ingested; the default training set (latest by event time) would count them, and so
    would have found skew that no client caused."""
    sp = skew_platform
    start, end = sp.windows["correct"]
    captured = capture.read_window(sp.services.artifacts, "rides", start, end)
    view = sp.services.feature_views.get("rider")
    rows = entity_rows(captured, view)
    known = sp.services.feature_views.training_set(
        "rider", rows, timestamp_column=AT, as_known_at=True
    ).data
    latest = sp.services.feature_views.training_set("rider", rows, timestamp_column=AT).data
    riders = captured["rider_id"].to_pylist()
    for feature, rider in (("fare_sum_24h", "r0"), ("age", "r1")):
        served = captured[feature].to_pylist()
        assert served == pytest.approx(known[feature].to_pylist())
        recomputed = latest[feature].to_pylist()
        changed = [
            i
            for i, (a, b) in enumerate(zip(served, recomputed, strict=True))
            if a != pytest.approx(b)  # sums in another order may differ in the last bit
        ]
        assert changed and {riders[i] for i in changed} == {rider}, feature


def test_a_client_computing_a_feature_its_own_way_is_found(skew_platform: SkewPlatform) -> None:
    sp = skew_platform
    sp.services.monitoring.create(_monitor("rides-skewed", feature_view="rider:1"), actor="t")
    done = _run(sp, "rides-skewed", "skewed")
    assert (done.status, done.violations) == ("violations", 1)
    report = sp.services.monitoring.report(done.id).model_dump()
    share = sp.skewed_rows / sp.rows
    assert 0.15 < share < 0.35  # every 4th request of 100
    per_km = report["features"]["per_km"]
    assert (per_km["mismatches"], per_km["share"]) == (sp.skewed_rows, share)
    # Miles for kilometres: each skewed value is 1/0.621371 - 1 = 61% above the view's.
    differences = per_km["differences"]
    assert differences["p50"] == 0.0 and differences["max"] > 0.1
    # The skewed rows are at least 0.1 above; the rest differ by float rounding at most
    # (two sums of the same fares in another order), far below the tolerance.
    histogram = differences["histogram"]
    assert sum(b["count"] for b in histogram if b["low"] >= 0.1) == sp.skewed_rows
    assert all(b["count"] == 0 for b in histogram if b["high"] < -1e-9 or 1e-9 < b["low"] < 0.1)
    for example in per_km["examples"]:
        assert example["served"] == pytest.approx(example["offline"] / 0.621371)
        assert example["inference_id"] and example["row"] in range(PER_REQUEST)
    for feature in ("age", "trips_1h", "fare_sum_24h"):
        assert report["features"][feature]["mismatches"] == 0, feature
    [violation] = report["violations"]
    assert (violation["column"], violation["check"], violation["value"]) == (
        "per_km",
        "feature_skew_check",
        share,
    )
    assert report["skewed"] == ["per_km"] and done.summary["skewed"] == ["per_km"]
    raised = sp.services.events.read(types=["monitor.violations"], limit=100)
    [event] = [e for e in raised if e.payload["monitor"] == "rides-skewed"]
    assert event.payload["kind"] == "feature_skew" and event.payload["run_id"] == done.id
    assert event.payload["checks"] == ["feature_skew_check"]
    completed = sp.services.events.read(types=["monitor.run_completed"], limit=100)
    assert done.id in [e.payload["run_id"] for e in completed]


def test_a_subset_of_features_and_a_sample_of_rows(skew_platform: SkewPlatform) -> None:
    sp = skew_platform
    sp.services.monitoring.create(
        _monitor("rides-sample", feature_view="rider", features=["per_km"], max_rows=120, seed=1),
        actor="t",
    )
    done = _run(sp, "rides-sample", "skewed")
    report = sp.services.monitoring.report(done.id).model_dump()
    assert (report["rows"], report["compared"]) == (sp.rows, 120)
    assert list(report["features"]) == ["per_km"]
    share = report["features"]["per_km"]["share"]
    assert abs(share - sp.skewed_rows / sp.rows) < 0.12  # a sample of 120 of the rows
    again = _run(sp, "rides-sample", "skewed")
    same = sp.services.monitoring.report(again.id).model_dump()["features"]["per_km"]
    assert same["share"] == share  # the sample is seeded


BAD_SKEW: list[tuple[dict[str, Any], str]] = [
    ({"feature_view": "nobody"}, "skew.feature_view"),
    ({"feature_view": "rider:9"}, "skew.feature_view"),
    ({"feature_view": "rider:x"}, "skew.feature_view"),
    ({"feature_view": "rider", "features": ["per_km", "speed"]}, "skew.features.1"),
    ({"feature_view": "rider", "features": ["per km"]}, "skew.features"),
    ({"feature_view": "rider", "abs_tolerance": -1e-9}, "skew.abs_tolerance"),
    ({"feature_view": "rider", "rel_tolerance": -0.1}, "skew.rel_tolerance"),
    ({"feature_view": "rider", "max_mismatch_share": 1.5}, "skew.max_mismatch_share"),
    ({"feature_view": "rider", "max_rows": 0}, "skew.max_rows"),
    ({}, "skew.feature_view"),  # the endpoint's enrichment names no view
]


def test_bad_skew_settings_name_the_field_and_write_nothing(skew_platform: SkewPlatform) -> None:
    sp = skew_platform
    monitoring = sp.services.monitoring
    before = [m.name for m in monitoring.list()]
    for settings, field in BAD_SKEW:
        with pytest.raises(InvalidInput) as caught:
            monitoring.create(_monitor("rides-bad", **settings), actor="t")
        assert caught.value.field == field, (settings, caught.value)
    with pytest.raises(InvalidInput) as caught:
        monitoring.create(
            {"name": "rides-bad", "kind": "bias", "endpoint": "rides", "skew": {}}, actor="t"
        )
    assert caught.value.field == "body"  # skew settings belong to a feature_skew monitor
    assert [m.name for m in monitoring.list()] == before
    # An update is checked the same way and changes nothing.
    monitoring.create(_monitor("rides-kept", feature_view="rider"), actor="t")
    kept = monitoring.get("rides-kept")
    for settings, field in BAD_SKEW:
        with pytest.raises(InvalidInput) as caught:
            monitoring.update(_monitor("rides-kept", **settings), actor="t")
        assert caught.value.field == field, settings
    assert monitoring.get("rides-kept") == kept


def test_bad_skew_settings_over_rest(skew_platform: SkewPlatform) -> None:
    sp = skew_platform
    with TestClient(create_app(sp.services), raise_server_exceptions=False) as client:
        for settings, field in BAD_SKEW:
            response = client.post("/api/v1/monitors", json=_monitor("rides-rest", **settings))
            assert response.status_code == 400, (settings, response.text)
            error = response.json()["error"]
            assert (error["code"], error["details"]["field"]) == ("invalid_input", field), settings
        assert client.get("/api/v1/monitors/rides-rest").status_code == 404
        created = client.post(
            "/api/v1/monitors", json=_monitor("rides-rest", feature_view="rider:1")
        )
        assert created.status_code == 201, created.text
        assert created.json()["spec"]["skew"] == {
            "feature_view": "rider:1",
            "features": None,
            "abs_tolerance": 1e-9,
            "rel_tolerance": 1e-6,
            "max_mismatch_share": 0.01,
            "max_rows": 100_000,
            "seed": 0,
        }


def test_the_console_and_the_cli_show_the_report(
    skew_platform: SkewPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp = skew_platform
    sp.services.monitoring.create(_monitor("rides-shown", feature_view="rider"), actor="t")
    done = _run(sp, "rides-shown", "skewed")
    with TestClient(create_app(sp.services), raise_server_exceptions=False) as console:
        page = console.get("/monitoring/rides-shown")
        assert page.status_code == 200, page.text
        assert "Feature skew (online / offline)" in page.text
        shares = page.text.split('id="latest-metrics"')[1].split("</table>")[0]
        assert "per_km" in shares and "age" in shares  # the latest run's share per feature
        run_page = console.get(f"/monitoring/rides-shown/runs/{done.id}")
        assert run_page.status_code == 200, run_page.text
        violations = run_page.text.split('id="violations"')[1].split("</table>")[0]
        assert "per_km" in violations and CHECK in violations
    settings = sp.services.settings
    monkeypatch.setenv("SLIPWAY_HOME", str(settings.home))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", settings.database.url)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["monitors", "report", str(done.id)])
    assert result.exit_code == 0, result.output
    shown = result.stdout
    assert "rows compared with feature view rider:1" in shown
    rows = {line.split("│")[1].strip(): line for line in shown.splitlines() if "│" in line}
    share = f"{sp.skewed_rows / sp.rows:.2%}"
    assert f"{sp.skewed_rows:,}" in rows["per_km"] and share in rows["per_km"]
    assert "0.00%" in rows["age"] and CHECK in shown
