"""Per-worker traffic counters, flushed to the shared stats table, and ``/metrics``.

Counting happens on the request path, so it is a dict lookup and a few additions; the
flush swaps the dict and writes the deltas off the request path.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from slipway.core.db.engine import Database
from slipway.core.workspace import DEFAULT_WORKSPACE, split_scoped
from slipway.serving.stats import BUCKETS_MS, WINDOW_SECONDS, Counters, read_counts, write_counts
from slipway.serving.stats import window_start as window_at

LocalKey = tuple[str, int, str, int]  # endpoint, config version, variant, window (epoch s)


class Recorder:
    def __init__(self, db: Database, gateway_id: str) -> None:
        self.db = db
        self.gateway_id = gateway_id
        self._counts: dict[LocalKey, Counters] = {}
        self._lock = threading.Lock()
        # Per workspace: when its text was rendered, and the text.
        self._scrapes: dict[str, tuple[float, str]] = {}

    def counters(self, endpoint: str, version: int, variant: str) -> Counters:
        now = int(time.time())
        key = (endpoint, version, variant, now - now % WINDOW_SECONDS)
        counts = self._counts.get(key)
        if counts is None:
            with self._lock:
                counts = self._counts.setdefault(key, Counters())
        return counts

    def captured(self, endpoint: str, version: int, variant: str, rows: int) -> None:
        """Count ``rows`` the capture writer wrote (its ``on_written`` callback)."""
        self.counters(endpoint, version, variant).captured += rows

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
        pending = {
            (e, v, variant, window_at(float(w))): c
            for (e, v, variant, w), c in counts.items()
            if not c.empty()
        }
        if not pending:
            return
        try:
            with self.db.write() as session:
                write_counts(session, self.gateway_id, pending)
        except Exception:
            with self._lock:  # keep the counts for the next flush
                for key, value in counts.items():
                    self._counts.setdefault(key, Counters()).add(value)
            raise

    def prometheus(self, extra: dict[str, float], workspace: str = DEFAULT_WORKSPACE) -> str:
        """The counters of every endpoint of ``workspace`` in Prometheus' text format
        (cached for a second); its endpoints are labelled by their names in it."""
        now = time.monotonic()
        scrape = self._scrapes.get(workspace)
        if scrape is not None and now - scrape[0] < 1.0:
            body = scrape[1]
        else:
            with self.db.session() as session:
                totals = read_counts(session)
            mine = {}
            for (endpoint, variant), counts in totals.items():
                owner, name = split_scoped(endpoint)
                if owner == workspace:
                    mine[(name, variant)] = counts
            body = render(mine)
            if len(self._scrapes) >= 256:  # names come from requests: keep it bounded
                self._scrapes.clear()
            self._scrapes[workspace] = (now, body)
        lines = [body]
        for name, value in extra.items():
            lines.append(f"# TYPE {name} gauge\n{name} {value:g}\n")
        return "".join(lines)


def _labels(endpoint: str, variant: str, **more: str) -> str:
    pairs = {"endpoint": endpoint, "variant": variant, **more}
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def _histogram(
    lines: list[str], name: str, labels: tuple[str, str], counts: list[int], total: float
) -> None:
    running = 0
    for bound, count in zip([*BUCKETS_MS, math.inf], counts, strict=True):
        running += count
        le = "+Inf" if math.isinf(bound) else f"{bound:g}"
        lines.append(f"{name}_bucket{_labels(*labels, le=le)} {running}")
    lines.append(f"{name}_sum{_labels(*labels)} {total:.6g}")
    lines.append(f"{name}_count{_labels(*labels)} {running}")


def render(totals: dict[tuple[str, str], Counters]) -> str:
    lines: list[str] = []
    metrics: list[tuple[str, str, str, Any]] = [
        ("slipway_requests_total", "counter", "requests served", lambda c: c.requests),
        ("slipway_errors_total", "counter", "requests that failed", lambda c: c.errors),
        ("slipway_capture_records_total", "counter", "rows captured", lambda c: c.captured),
        (
            "slipway_capture_dropped_total",
            "counter",
            "captured requests dropped under pressure",
            lambda c: c.capture_dropped,
        ),
        (
            "slipway_cold_starts_total",
            "counter",
            "models loaded on demand",
            lambda c: c.cold_starts,
        ),
        (
            "slipway_cold_start_ms_total",
            "counter",
            "milliseconds spent loading on demand",
            lambda c: c.cold_start_ms_sum,
        ),
    ]
    ordered = sorted(totals.items())
    for name, kind, help_text, get in metrics:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for (endpoint, variant), counts in ordered:
            lines.append(f"{name}{_labels(endpoint, variant)} {get(counts):g}")
    histograms: list[tuple[str, str, str, Callable[[Counters], float]]] = [
        ("slipway_request_latency_ms", "request latency", "histogram", lambda c: c.latency_ms_sum),
        (
            "slipway_model_latency_ms",
            "time in the model",
            "model_histogram",
            lambda c: c.model_ms_sum,
        ),
        (
            "slipway_overhead_latency_ms",
            "request latency outside the model",
            "overhead_histogram",
            lambda c: c.latency_ms_sum - c.model_ms_sum,
        ),
    ]
    for name, help_text, attr, total_of in histograms:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} histogram")
        for (endpoint, variant), counts in ordered:
            _histogram(lines, name, (endpoint, variant), getattr(counts, attr), total_of(counts))
    return "\n".join(lines) + "\n"
