"""Deployment alarms judged on a new config's traffic: by the deployment controller over
every gateway's counts, and by each gateway worker over its own counts as requests come.

The worker's own judgement is what keeps a broken candidate from getting more traffic: it
trips on the request that crosses the threshold, stops routing to the candidate at once,
and reports the trip, on which the controller rolls back — no request routed by that
worker after the trip reaches the candidate. The controller's judgement over the summed
counts catches what no single worker sees alone.
"""

from __future__ import annotations

from slipway.serving.spec import AlarmMetric, AlarmSpec
from slipway.serving.stats import Counters

# The state a gateway worker reports for a config (a GatewayModelRow) whose alarm it
# tripped; its ``error`` holds the alarm's name, a newline, and the reason.
TRIPPED = "tripped"
LATENCY_ALARMS = frozenset(
    {AlarmMetric.LATENCY_P50_MS, AlarmMetric.LATENCY_P90_MS, AlarmMetric.LATENCY_P99_MS}
)


def alarm_value(alarm: AlarmSpec, counts: Counters) -> float | None:
    """The alarm's metric over ``counts``; None before ``min_requests`` were served."""
    if counts.requests < alarm.min_requests:
        return None
    match alarm.metric:
        case AlarmMetric.ERROR_RATE:
            return counts.error_rate
        case AlarmMetric.LATENCY_P50_MS:
            return counts.percentile(0.50)
        case AlarmMetric.LATENCY_P90_MS:
            return counts.percentile(0.90)
        case AlarmMetric.LATENCY_P99_MS:
            return counts.percentile(0.99)
        case AlarmMetric.PREDICTION_MEAN:
            return counts.prediction_mean


def first_tripped(alarms: list[AlarmSpec], counts: Counters) -> tuple[AlarmSpec, float] | None:
    """The first alarm ``counts`` trip, with the value that tripped it."""
    for alarm in alarms:
        measured = alarm_value(alarm, counts)
        if measured is not None and alarm.tripped(measured):
            return alarm, measured
    return None


def trip_reason(alarm: AlarmSpec, measured: float, requests: int, percent: float) -> str:
    return (
        f"alarm {alarm.name!r} tripped: {alarm.metric.value} = {measured:.4g}"
        f" ({alarm.comparison} {alarm.threshold:g}) after {requests} requests"
        f" at {percent:g}% of traffic"
    )
