"""Latency percentiles from quantile sketches: within 1% of numpy's exact ones, merged
across gateway worker processes through the stats table, and shown per variant over REST
and on the command line."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from slipway.api.app import create_app
from slipway.cli.main import app as cli
from slipway.core.settings import load_settings
from slipway.services import Services
from slipway.serving.alarms import alarm_value
from slipway.serving.gateway.metrics import render
from slipway.serving.sketch import ALPHA, MAX_BUCKETS, Sketch
from slipway.serving.spec import AlarmMetric, AlarmSpec
from slipway.serving.stats import (
    Counters,
    read_counts,
    variant_stats,
    window_start,
    write_counts,
)
from slipway.serving.tables import EndpointRow, ServingStatsRow
from tests.api.conftest import bearer
from tests.serving.stats_writer import gateway_worker

QUANTILES = (0.5, 0.9, 0.99, 0.999)


def exact(values: Any, q: float) -> float:
    """The quantile the sketch promises to approximate: the value of rank ceil(q * n), as
    ``numpy.percentile(values, 100 * q, method="inverted_cdf")`` (``np.quantile`` takes
    ``q`` itself, so that ``100 * q / 100`` cannot move the rank by a rounding error)."""
    return float(np.quantile(values, q, method="inverted_cdf"))


def assert_close(estimate: float | None, truth: float, what: str) -> None:
    assert estimate is not None, what
    error = abs(estimate - truth) / truth
    assert error <= ALPHA + 1e-12, f"{what}: {estimate} vs exact {truth} ({error:.4%} off)"


def latencies(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    match kind:
        case "lognormal":  # a typical service: ms, long right tail
            return rng.lognormal(mean=1.0, sigma=1.0, size=n)
        case "uniform":  # from 50 µs to 20 s
            return rng.uniform(0.05, 20_000.0, size=n)
        case "bimodal":  # cache hits well under a millisecond, misses of 10-60 s
            hits = rng.normal(0.4, 0.05, size=n * 7 // 10)
            misses = rng.lognormal(mean=np.log(20_000.0), sigma=0.4, size=n - hits.size)
            return np.concatenate([np.abs(hits) + 0.001, misses])
        case "tiny":  # microseconds
            return rng.uniform(0.002, 0.9, size=n)
    raise AssertionError(kind)


# -- the sketch ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lognormal", "uniform", "bimodal", "tiny"])
def test_quantiles_are_within_one_percent_of_the_exact_ones(kind: str) -> None:
    values = latencies(kind, 20_000, seed=1)
    sketch = Sketch.of(values.tolist())
    assert sketch.count == values.size
    for q in (*QUANTILES, 0.0, 0.01, 1.0):
        assert_close(sketch.quantile(q), exact(values, q), f"{kind} q={q}")


def test_the_rank_is_that_of_the_inverted_cdf() -> None:
    """With few values a neighbour's rank would be far off: the rank must be exact."""
    for values in ([7.0], [1.0, 100.0], [1.0, 10.0, 100.0], [5.0, 1.0, 3.0, 2.0, 4.0]):
        sketch = Sketch.of(values)
        for q in (0.0, 0.2, 0.25, 0.3, 0.5, 0.6, 0.75, 0.9, 0.99, 1.0):
            assert_close(sketch.quantile(q), exact(values, q), f"{values} q={q}")


def test_zero_negative_and_huge_values() -> None:
    sketch = Sketch.of([0.0, -1.0, 1e-9, float("nan"), 5.0, float("inf"), 1e30])
    assert sketch.zero == 4 and sketch.count == 7
    assert sketch.quantile(0.5) == 0.0  # rank 4 of 7: the zero bucket
    assert_close(sketch.quantile(5 / 7), 5.0, "the value above the zeros")
    top = sketch.quantile(1.0)
    assert top is not None and top > 1e11  # clamped to the top bucket, not an error
    spread = Sketch.of([10.0**e for e in range(-8, 40)])
    assert len(spread.buckets) <= MAX_BUCKETS
    with pytest.raises(ValueError, match="between 0 and 1"):
        sketch.quantile(1.5)


def test_an_empty_sketch_has_no_quantiles() -> None:
    assert Sketch().quantile(0.5) is None and Sketch().count == 0
    assert Counters().percentile(0.99) is None
    assert Counters().percentile(0.5, "model") is None
    assert Sketch.from_json(json.loads(json.dumps(Sketch().to_json()))) == Sketch()


def test_merging_equals_the_sketch_of_all_values() -> None:
    a, b = latencies("lognormal", 5_000, seed=2), latencies("bimodal", 3_000, seed=3)
    merged = Sketch.of(a.tolist())
    merged.merge(Sketch.of(b.tolist()))
    assert merged == Sketch.of(np.concatenate([a, b]).tolist())
    both = np.concatenate([a, b])
    for q in QUANTILES:
        assert_close(merged.quantile(q), exact(both, q), f"merged q={q}")


def test_serialisation_round_trips_compactly() -> None:
    values = [*latencies("lognormal", 10_000, seed=4).tolist(), 0.0, -2.0]
    sketch = Sketch.of(values)
    stored = json.dumps(sketch.to_json(), separators=(",", ":"))
    assert Sketch.from_json(json.loads(stored)) == sketch
    assert len(stored) < 3_000, len(stored)  # ~ 500 buckets of 3 characters at most
    with pytest.raises(ValueError, match="alpha"):
        Sketch.from_json({**sketch.to_json(), "alpha": 0.05})


def test_counters_give_sketch_percentiles_and_keep_the_buckets() -> None:
    model = latencies("lognormal", 10_000, seed=5)
    overhead = latencies("tiny", 10_000, seed=6)
    counts = Counters()
    for m, o in zip(model.tolist(), overhead.tolist(), strict=True):
        counts.observe(m + o, m, error=False)
    total = model + overhead
    for q in QUANTILES:
        assert_close(counts.percentile(q), exact(total, q), f"total q={q}")
        assert_close(counts.percentile(q, "model"), exact(model, q), f"model q={q}")
        # overhead is computed as total - model, so compare with the same subtraction
        assert_close(counts.percentile(q, "overhead"), exact(total - model, q), f"q={q}")
        bucket = counts.bucket_percentile(q)
        assert bucket is not None and bucket >= exact(total, q)  # the old, coarse figure
    assert sum(counts.histogram) == counts.requests == 10_000  # /metrics' buckets stay


def test_alarms_judge_by_the_sketch() -> None:
    counts = Counters()
    for ms in range(1, 101):  # 1..100 ms: p90 is 90 ms, its bucket edge 100 ms
        counts.observe(float(ms), ms / 2, error=False)
    alarm = AlarmSpec(metric=AlarmMetric.LATENCY_P90_MS, threshold=95.0, min_requests=10)
    assert_close(alarm_value(alarm, counts), 90.0, "p90")
    assert counts.bucket_percentile(0.9) == 100.0


def test_rows_written_before_sketches_fall_back_to_bucket_edges() -> None:
    """A row from an older gateway has only the buckets: its requests still count."""
    counts = Counters()
    counts.observe(4.0, 2.0, error=False)
    old = Counters(requests=1, histogram=list(counts.histogram))  # no sketch
    assert old.percentile(0.5) == 5.0  # the bucket edge above 4 ms
    mixed = Counters()
    mixed.add(old)
    mixed.add(counts)
    assert mixed.requests == 2 and mixed.percentile(0.5) == 5.0
    assert counts.percentile(0.5) == pytest.approx(4.0, rel=ALPHA)


# -- merged across gateway worker processes --------------------------------------------

WINDOWS = [datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC), datetime(2030, 1, 1, 12, 0, 5, tzinfo=UTC)]


def _endpoint(services: Services, name: str) -> None:
    """The endpoint's row as :meth:`Endpoints.create` stores it: stats need no model, and
    no gateway runs here (the counts are written as gateway workers write them)."""
    now = datetime.now(UTC)
    with services.db.write() as session:
        session.add(
            EndpointRow(
                name=name,
                status="InService",
                active_version=1,
                target_version=None,
                created_by="test",
                created_at=now,
                updated_at=now,
            )
        )


@pytest.fixture
def services(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """A platform with auth on, which the CLI opens too (same home and database)."""
    settings = load_settings(
        home=tmp_path / "home", database={"url": database_url}, server={"auth": True}
    )
    opened = Services.open(settings)
    monkeypatch.setenv("SLIPWAY_HOME", str(settings.home))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", database_url)
    monkeypatch.setenv("COLUMNS", "250")
    yield opened
    opened.close()


def test_percentiles_merged_across_two_worker_processes(services: Services) -> None:
    _endpoint(services, "lat")
    fast_model = latencies("lognormal", 6_000, seed=7)
    slow_model = latencies("bimodal", 4_000, seed=8)
    fast = (fast_model + latencies("tiny", 6_000, seed=9), fast_model)
    slow = (slow_model + latencies("tiny", 4_000, seed=10), slow_model)
    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(
            target=gateway_worker,
            args=(services.settings.database_url, gateway, WINDOWS, t.tolist(), m.tolist()),
        )
        for gateway, (t, m) in (("gw-a", fast), ("gw-b", slow))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0, f"worker exited with {worker.exitcode}"

    with services.db.session() as session:
        rows = session.scalars(select(ServingStatsRow)).all()
        assert {(r.gateway_id, r.window_start) for r in rows} == {
            (g, w) for g in ("gw-a", "gw-b") for w in WINDOWS
        }
        merged = read_counts(session, endpoint="lat")[("lat", "main")]
        summary = variant_stats(session, "lat")["main"]
        later = variant_stats(session, "lat", since=WINDOWS[1] + timedelta(seconds=1))
        none = variant_stats(session, "lat", config_version=2)

    total = np.concatenate([fast[0], slow[0]])
    model = np.concatenate([fast[1], slow[1]])
    assert merged.requests == summary["requests"] == 10_000
    assert summary["errors"] == 200 and summary["error_rate"] == pytest.approx(0.02)
    for q in QUANTILES:
        assert_close(merged.percentile(q), exact(total, q), f"total q={q}")
        assert_close(merged.percentile(q, "model"), exact(model, q), f"model q={q}")
    for q in (50, 90, 99):
        assert_close(summary[f"p{q}_ms"], exact(total, q / 100), f"p{q}_ms")
        assert_close(summary[f"model_p{q}_ms"], exact(model, q / 100), f"model_p{q}_ms")
    assert summary["mean_ms"] == pytest.approx(total.mean())
    assert summary["model_mean_ms"] == pytest.approx(model.mean())
    assert summary["prediction_mean"] is None  # nothing numeric was predicted
    assert later["main"]["requests"] == 5_000  # the second window of each worker
    assert none == {}
    # /metrics still exposes the fixed buckets, summed over both workers
    text = render({("lat", "main"): merged})
    assert 'slipway_request_latency_ms_bucket{endpoint="lat",variant="main",le="+Inf"} 10000' in (
        text
    )


# -- REST and CLI ----------------------------------------------------------------------

runner = CliRunner()


def _traffic(services: Services) -> None:
    """Counts as two gateway workers would have written them, 10 minutes ago and now."""
    now = window_start(datetime.now(UTC).timestamp())
    then = now - timedelta(minutes=10)
    a, b = Counters(), Counters()
    for ms in range(1, 101):
        a.observe(float(ms), ms / 2, error=ms > 95)
        b.observe(float(ms) * 10, ms * 5, error=False)
    b.prediction_sum, b.prediction_count = 30.0, 100
    with services.db.write() as session:
        write_counts(session, "gw-1", {("web", 1, "main", then): a, ("web", 1, "canary", now): b})
        write_counts(session, "gw-2", {("web", 1, "main", now): a})


def test_stats_over_rest(services: Services) -> None:
    _endpoint(services, "web")
    viewer = bearer(services.tokens.create("t-viewer", "viewer", created_by="test")[1])
    url = "/api/v1/endpoints/web/stats"
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        assert client.get(url).status_code == 401
        empty = client.get(url, headers=viewer)
        assert empty.status_code == 200, empty.text
        assert empty.json() == {
            "endpoint": "web",
            "since": None,
            "config_version": None,
            "variants": {},
        }
        _traffic(services)
        body = client.get(url, headers=viewer).json()
        main, canary = body["variants"]["main"], body["variants"]["canary"]
        assert (main["requests"], main["errors"], canary["requests"]) == (200, 10, 100)
        assert main["error_rate"] == pytest.approx(0.05)
        assert_close(main["p50_ms"], 50.0, "main p50")
        assert_close(main["p99_ms"], 99.0, "main p99")
        assert_close(canary["p90_ms"], 900.0, "canary p90")
        assert_close(canary["model_p90_ms"], 450.0, "canary model p90")
        assert canary["prediction_mean"] == pytest.approx(0.3)
        assert main["prediction_mean"] is None

        since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        recent = client.get(url, params={"since": since}, headers=viewer)
        assert recent.status_code == 200, recent.text
        assert recent.json()["variants"]["main"]["requests"] == 100  # gw-2's window only
        one = client.get(url, params={"config_version": 1}, headers=viewer).json()
        assert one["variants"]["main"]["requests"] == 200
        assert (
            client.get(url, params={"config_version": 2}, headers=viewer).json()["variants"] == {}
        )

        for bad in ("yesterday", "2030-01-01T00:00:00", "2030-13-01T00:00:00Z"):
            refused = client.get(url, params={"since": bad}, headers=viewer)
            assert refused.status_code == 400, (bad, refused.text)
            error = refused.json()["error"]
            assert error["code"] == "invalid_input" and error["details"]["field"] == "query.since"
            assert "since" in error["message"]
        missing = client.get("/api/v1/endpoints/nope/stats", headers=viewer)
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["code"] == "not_found"
        assert "nope" in missing.json()["error"]["message"]


def test_stats_on_the_command_line(services: Services) -> None:
    _endpoint(services, "web")
    quiet = runner.invoke(cli, ["endpoints", "stats", "web"])
    assert quiet.exit_code == 0, quiet.output
    assert "web: no traffic (all kept traffic)" in quiet.stdout
    _traffic(services)

    table = runner.invoke(cli, ["endpoints", "stats", "web"])
    assert table.exit_code == 0, table.output
    assert "web: all kept traffic" in table.stdout
    main_line = next(line for line in table.stdout.splitlines() if "main" in line)
    assert "200" in main_line and "5%" in main_line

    recent = runner.invoke(cli, ["endpoints", "stats", "web", "--since", "1m", "-o", "json"])
    assert recent.exit_code == 0, recent.output
    body = json.loads(recent.stdout)
    assert body["endpoint"] == "web" and body["variants"]["main"]["requests"] == 100
    assert_close(body["variants"]["canary"]["p50_ms"], 500.0, "canary p50")
    stamp = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    hour = runner.invoke(cli, ["endpoints", "stats", "web", "--since", stamp, "-o", "json"])
    assert json.loads(hour.stdout)["variants"]["main"]["requests"] == 200

    for bad, says in (("yesterday", "ISO 8601"), ("2030-01-01T00:00:00", "time zone")):
        refused = runner.invoke(cli, ["endpoints", "stats", "web", "--since", bad])
        assert refused.exit_code == 2, refused.output
        assert "--since" in refused.output and says in refused.output
    missing = runner.invoke(cli, ["endpoints", "stats", "nope"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    assert "Usage" in runner.invoke(cli, ["endpoints", "stats", "--help"]).stdout
