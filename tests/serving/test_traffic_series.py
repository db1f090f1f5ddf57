"""Traffic over time (:meth:`Endpoints.series`): per variant and 5-second window, summed
over gateway workers, with latency percentiles from the merged sketches — what the
console's live charts draw."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import load_settings
from slipway.services import Services
from slipway.serving.sketch import ALPHA
from slipway.serving.stats import Counters, TrafficWindow, window_start, write_counts
from slipway.serving.tables import EndpointRow


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    opened = Services.open(load_settings(home=tmp_path / "home", database={"url": database_url}))
    yield opened
    opened.close()


def _endpoint(services: Services, name: str) -> None:
    """The endpoint's row as :meth:`Endpoints.create` stores it: counts need no model, and
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


def _counts(values: np.ndarray, errors: int = 0) -> Counters:
    counts = Counters()
    for i, ms in enumerate(values.tolist()):
        counts.observe(ms, ms / 2, error=i < errors)
    return counts


def exact(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q, method="inverted_cdf"))


def test_windows_per_variant_with_sketch_percentiles(services: Services) -> None:
    _endpoint(services, "web")
    rng = np.random.default_rng(11)
    now = window_start(datetime.now(UTC).timestamp())
    windows = [now - timedelta(seconds=5 * k) for k in (4, 2, 0)]  # one window skipped
    # Per window: gateway 1 and gateway 2 each count part of main's requests; the canary
    # (config 2) only in the last window; an old window outside the span.
    main = {w: (rng.lognormal(1.0, 1.0, 300), rng.lognormal(3.0, 0.5, 200)) for w in windows}
    canary = rng.uniform(1.0, 100.0, 150)
    with services.db.write() as session:
        write_counts(
            session,
            "gw-1",
            {("web", 1, "main", w): _counts(a, errors=3) for w, (a, _) in main.items()}
            | {("web", 1, "main", now - timedelta(minutes=30)): _counts(np.ones(7))},
        )
        write_counts(
            session,
            "gw-2",
            {("web", 1, "main", w): _counts(b) for w, (_, b) in main.items()}
            | {("web", 2, "canary", now): _counts(canary, errors=15)},
        )

    series = services.endpoints.series("web", since=now - timedelta(minutes=1))
    assert sorted(series) == ["canary", "main"]
    assert [w.window_start for w in series["main"]] == windows  # oldest first, no gap filled
    for point, (a, b) in zip(series["main"], main.values(), strict=True):
        both = np.concatenate([a, b])
        assert isinstance(point, TrafficWindow)
        assert (point.requests, point.errors) == (500, 3)
        # the merged sketches' percentiles: within 1% of the exact ones, not bucket edges
        for got, q in ((point.p50_ms, 0.5), (point.p99_ms, 0.99)):
            assert got is not None
            assert abs(got - exact(both, q)) / exact(both, q) <= ALPHA + 1e-12
        merged = _counts(a, errors=3)
        merged.add(_counts(b))
        assert (point.p50_ms, point.p99_ms) == (merged.percentile(0.5), merged.percentile(0.99))
    [last] = series["canary"]
    assert (last.window_start, last.requests, last.errors) == (now, 150, 15)
    assert last.p99_ms == pytest.approx(exact(canary, 0.99), rel=ALPHA)

    only_two = services.endpoints.series("web", since=now - timedelta(minutes=1), config_version=2)
    assert list(only_two) == ["canary"]
    hour = services.endpoints.series("web", since=now - timedelta(hours=1))
    assert [w.requests for w in hour["main"]] == [7, 500, 500, 500]
    assert services.endpoints.series("web", since=now + timedelta(minutes=1)) == {}


def test_unknown_endpoint_and_bad_times_are_refused(services: Services) -> None:
    with pytest.raises(NotFound, match="nope"):
        services.endpoints.series("nope", since=datetime.now(UTC))
    _endpoint(services, "web")
    with pytest.raises(InvalidInput, match="time zone"):
        services.endpoints.series("web", since=datetime(2030, 1, 1))
    assert services.endpoints.series("web", since=datetime.now(UTC)) == {}
