"""Traffic counters shared by every gateway worker: written in 5-second windows, summed for
``/metrics``, for the deployment alarms and for :func:`variant_stats`.

Each gateway worker counts in memory and adds its counts to the database once a second, so
the numbers are the same whichever worker a scrape lands on, and a deployment controller
in another process can judge a canary by them.

Latencies are counted twice: in the fixed buckets of ``BUCKETS_MS`` that ``/metrics``
exposes as Prometheus histograms, and in quantile sketches
(:class:`~slipway.serving.sketch.Sketch`), whose percentiles are within 1% of the exact
ones (a bucket's edge can be 50% off). Both are kept
in the row's ``histogram`` JSON column: ``total``, ``model`` and ``overhead`` for the
buckets, ``sketch_total``, ``sketch_model`` and ``sketch_overhead`` for the sketches
(rows written before the sketches existed have none; see :meth:`Counters.percentile`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from slipway.core.errors import InvalidInput, NotFound
from slipway.core.workspace import validate_scoped_name
from slipway.serving.sketch import Sketch
from slipway.serving.tables import EndpointRow, ServingStatsRow

WINDOW_SECONDS = 5
# Upper bounds (ms) of the latency histogram's buckets; the last bucket is +Inf.
BUCKETS_MS: tuple[float, ...] = (
    0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip


def window_start(ts: float) -> datetime:
    return datetime.fromtimestamp(ts - ts % WINDOW_SECONDS, UTC)


def bucket_index(ms: float) -> int:
    return bisect.bisect_left(BUCKETS_MS, ms)


Latency = Literal["total", "model", "overhead"]


@dataclass
class Counters:
    """Counts of one (endpoint, config version, variant)."""

    requests: int = 0
    errors: int = 0
    latency_ms_sum: float = 0.0
    model_ms_sum: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    model_histogram: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    overhead_histogram: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    latency_sketch: Sketch = field(default_factory=Sketch)
    model_sketch: Sketch = field(default_factory=Sketch)
    overhead_sketch: Sketch = field(default_factory=Sketch)
    prediction_sum: float = 0.0
    prediction_count: int = 0
    captured: int = 0
    capture_dropped: int = 0
    cold_starts: int = 0
    cold_start_ms_sum: float = 0.0

    def observe(self, total_ms: float, model_ms: float, *, error: bool) -> None:
        self.requests += 1
        if error:
            self.errors += 1
        self.latency_ms_sum += total_ms
        self.model_ms_sum += model_ms
        overhead_ms = total_ms - model_ms
        self.histogram[bisect.bisect_left(BUCKETS_MS, total_ms)] += 1
        self.model_histogram[bisect.bisect_left(BUCKETS_MS, model_ms)] += 1
        self.overhead_histogram[bisect.bisect_left(BUCKETS_MS, overhead_ms)] += 1
        self.latency_sketch.add(total_ms)
        self.model_sketch.add(model_ms)
        self.overhead_sketch.add(overhead_ms)

    def add(self, other: Counters) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.latency_ms_sum += other.latency_ms_sum
        self.model_ms_sum += other.model_ms_sum
        self.histogram = _plus(self.histogram, other.histogram)
        self.model_histogram = _plus(self.model_histogram, other.model_histogram)
        self.overhead_histogram = _plus(self.overhead_histogram, other.overhead_histogram)
        self.latency_sketch.merge(other.latency_sketch)
        self.model_sketch.merge(other.model_sketch)
        self.overhead_sketch.merge(other.overhead_sketch)
        self.prediction_sum += other.prediction_sum
        self.prediction_count += other.prediction_count
        self.captured += other.captured
        self.capture_dropped += other.capture_dropped
        self.cold_starts += other.cold_starts
        self.cold_start_ms_sum += other.cold_start_ms_sum

    def empty(self) -> bool:
        return not (self.requests or self.captured or self.capture_dropped or self.cold_starts)

    def _parts(self, of: Latency) -> tuple[Sketch, list[int]]:
        match of:
            case "total":
                return self.latency_sketch, self.histogram
            case "model":
                return self.model_sketch, self.model_histogram
            case "overhead":
                return self.overhead_sketch, self.overhead_histogram

    def percentile(self, q: float, of: Latency = "total") -> float | None:
        """The ``q`` quantile (0 ≤ q ≤ 1) of the latency ``of`` (ms), within 1% of the
        exact one (``numpy.percentile(..., method="inverted_cdf")`` of every request
        counted); None without requests.

        Counts that take in rows written before latency sketches existed fall back to
        :meth:`bucket_percentile`, which is coarse but covers every request."""
        sketch, histogram = self._parts(of)
        if sketch.count == sum(histogram):
            return sketch.quantile(q)
        return self.bucket_percentile(q, of)

    def bucket_percentile(self, q: float, of: Latency = "total") -> float | None:
        """The upper edge (ms) of the ``BUCKETS_MS`` bucket holding the ``q`` quantile:
        never below the exact quantile, but up to one bucket above (``inf`` past the last
        edge)."""
        histogram = self._parts(of)[1]
        total = sum(histogram)
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index, count in enumerate(histogram):
            seen += count
            if seen >= rank:
                return BUCKETS_MS[index] if index < len(BUCKETS_MS) else math.inf
        return math.inf

    @property
    def mean_ms(self) -> float | None:
        return self.latency_ms_sum / self.requests if self.requests else None

    @property
    def model_mean_ms(self) -> float | None:
        return self.model_ms_sum / self.requests if self.requests else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def prediction_mean(self) -> float | None:
        return self.prediction_sum / self.prediction_count if self.prediction_count else None


def _plus(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


def _histograms(counts: Counters) -> dict[str, Any]:
    return {
        "total": counts.histogram,
        "model": counts.model_histogram,
        "overhead": counts.overhead_histogram,
        "sketch_total": counts.latency_sketch.to_json(),
        "sketch_model": counts.model_sketch.to_json(),
        "sketch_overhead": counts.overhead_sketch.to_json(),
    }


def _sketch(hist: dict[str, Any], key: str) -> Sketch:
    """The sketch stored under ``key``; empty in a row written before sketches existed."""
    stored = hist.get(key)
    return Sketch.from_json(stored) if stored is not None else Sketch()


def _from_row(row: ServingStatsRow) -> Counters:
    hist = row.histogram or {}
    size = len(BUCKETS_MS) + 1
    return Counters(
        requests=row.requests,
        errors=row.errors,
        latency_ms_sum=row.latency_ms_sum,
        model_ms_sum=row.model_ms_sum,
        histogram=list(hist.get("total", [0] * size)),
        model_histogram=list(hist.get("model", [0] * size)),
        overhead_histogram=list(hist.get("overhead", [0] * size)),
        latency_sketch=_sketch(hist, "sketch_total"),
        model_sketch=_sketch(hist, "sketch_model"),
        overhead_sketch=_sketch(hist, "sketch_overhead"),
        prediction_sum=row.prediction_sum,
        prediction_count=row.prediction_count,
        captured=row.captured,
        capture_dropped=row.capture_dropped,
        cold_starts=row.cold_starts,
        cold_start_ms_sum=row.cold_start_ms_sum,
    )


Key = tuple[str, int, str, datetime]  # endpoint, config version, variant, window start


def write_counts(session: Session, gateway_id: str, counts: dict[Key, Counters]) -> None:
    """Add ``counts`` to this gateway worker's rows (one writer per row: no races)."""
    for (endpoint, version, variant, start), delta in counts.items():
        row = session.get(ServingStatsRow, (endpoint, version, variant, start, gateway_id))
        if row is None:
            session.add(
                ServingStatsRow(
                    endpoint=endpoint,
                    config_version=version,
                    variant=variant,
                    window_start=start,
                    gateway_id=gateway_id,
                    requests=delta.requests,
                    errors=delta.errors,
                    latency_ms_sum=delta.latency_ms_sum,
                    model_ms_sum=delta.model_ms_sum,
                    histogram=_histograms(delta),
                    prediction_sum=delta.prediction_sum,
                    prediction_count=delta.prediction_count,
                    captured=delta.captured,
                    capture_dropped=delta.capture_dropped,
                    cold_starts=delta.cold_starts,
                    cold_start_ms_sum=delta.cold_start_ms_sum,
                )
            )
            continue
        current = _from_row(row)
        current.add(delta)
        row.requests = current.requests
        row.errors = current.errors
        row.latency_ms_sum = current.latency_ms_sum
        row.model_ms_sum = current.model_ms_sum
        row.histogram = _histograms(current)
        row.prediction_sum = current.prediction_sum
        row.prediction_count = current.prediction_count
        row.captured = current.captured
        row.capture_dropped = current.capture_dropped
        row.cold_starts = current.cold_starts
        row.cold_start_ms_sum = current.cold_start_ms_sum


def read_counts(
    session: Session,
    *,
    endpoint: str | None = None,
    config_version: int | None = None,
    since: datetime | None = None,
) -> dict[tuple[str, str], Counters]:
    """Counters summed per (endpoint, variant), optionally for one config since a time."""
    query = select(ServingStatsRow)
    if endpoint is not None:
        query = query.where(ServingStatsRow.endpoint == endpoint)
    if config_version is not None:
        query = query.where(ServingStatsRow.config_version == config_version)
    if since is not None:
        # A window that started up to WINDOW_SECONDS before ``since`` overlaps it.
        query = query.where(ServingStatsRow.window_start >= window_start(since.timestamp()))
    return sum_rows(session.scalars(query))


def sum_rows(rows: Iterable[ServingStatsRow]) -> dict[tuple[str, str], Counters]:
    out: dict[tuple[str, str], Counters] = {}
    for row in rows:
        out.setdefault((row.endpoint, row.variant), Counters()).add(_from_row(row))
    return out


def variant_stats(
    session: Session,
    endpoint: str,
    *,
    since: datetime | None = None,
    config_version: int | None = None,
) -> dict[str, dict[str, Any]]:
    """What each variant of ``endpoint`` served (shadow variants too), summed over every
    gateway worker, optionally since a time (with a time zone; counted in whole 5-second
    windows) and for one config: requests, errors, ``error_rate``, latency percentiles
    (``p50_ms``, ``p90_ms``, ``p99_ms``; within 1% of the exact ones) and ``mean_ms`` of
    the whole request and of the model alone (``model_*``), and ``prediction_mean``.
    Figures without requests are None. ``endpoint`` is its scoped name. Raises NotFound
    for an unknown endpoint."""
    validate_scoped_name(endpoint, field="endpoint")
    if session.get(EndpointRow, endpoint) is None:
        raise NotFound(f"endpoint {endpoint!r} does not exist", details={"endpoint": endpoint})
    if since is not None:
        if since.tzinfo is None:
            raise InvalidInput("since needs a time zone (e.g. Z or +02:00)", field="since")
        try:
            window_start(since.timestamp())
        except (OverflowError, ValueError, OSError):
            message = f"since {since.isoformat()} is out of range"
            raise InvalidInput(message, field="since") from None
    counts = read_counts(session, endpoint=endpoint, config_version=config_version, since=since)
    return {variant: _summary(c) for (_, variant), c in sorted(counts.items())}


def _summary(counts: Counters) -> dict[str, Any]:
    return {
        "requests": counts.requests,
        "errors": counts.errors,
        "error_rate": counts.error_rate,
        "p50_ms": counts.percentile(0.50),
        "p90_ms": counts.percentile(0.90),
        "p99_ms": counts.percentile(0.99),
        "mean_ms": counts.mean_ms,
        "model_p50_ms": counts.percentile(0.50, "model"),
        "model_p90_ms": counts.percentile(0.90, "model"),
        "model_p99_ms": counts.percentile(0.99, "model"),
        "model_mean_ms": counts.model_mean_ms,
        "prediction_mean": counts.prediction_mean,
    }


class TrafficWindow(NamedTuple):
    """What one variant served in one 5-second window, summed over every gateway worker
    (and over configs, unless one was asked for). Percentiles come from the merged
    sketches (within 1%), not from bucket edges; None for a window without requests."""

    window_start: datetime
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None


# Per variant, its windows oldest first: what :func:`variant_series` returns.
Series = dict[str, list[TrafficWindow]]


def variant_series(
    session: Session,
    endpoint: str,
    *,
    since: datetime,
    config_version: int | None = None,
) -> Series:
    """Per variant of ``endpoint`` (its scoped name; shadow variants too), one
    :class:`TrafficWindow` per stored 5-second window from the one holding ``since`` (with
    a time zone), oldest first: what a chart of traffic over time draws. Windows in which
    no gateway counted anything are left out (no rows: no traffic). It reads every row
    since ``since``, so ask for a short span (minutes). Raises NotFound for an unknown
    endpoint, InvalidInput for a ``since`` without a zone or out of range."""
    validate_scoped_name(endpoint, field="endpoint")
    if session.get(EndpointRow, endpoint) is None:
        raise NotFound(f"endpoint {endpoint!r} does not exist", details={"endpoint": endpoint})
    if since.tzinfo is None:
        raise InvalidInput("since needs a time zone (e.g. Z or +02:00)", field="since")
    try:
        first = window_start(since.timestamp())
    except (OverflowError, ValueError, OSError):
        raise InvalidInput(f"since {since.isoformat()} is out of range", field="since") from None
    query = select(ServingStatsRow).where(
        ServingStatsRow.endpoint == endpoint, ServingStatsRow.window_start >= first
    )
    if config_version is not None:
        query = query.where(ServingStatsRow.config_version == config_version)
    merged: dict[str, dict[datetime, Counters]] = {}
    for row in session.scalars(query):
        windows = merged.setdefault(row.variant, {})
        windows.setdefault(row.window_start, Counters()).add(_from_row(row))
    return {
        variant: [
            TrafficWindow(start, c.requests, c.errors, c.percentile(0.50), c.percentile(0.99))
            for start, c in sorted(windows.items())
        ]
        for variant, windows in sorted(merged.items())
    }
