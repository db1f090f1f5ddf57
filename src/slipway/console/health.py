"""The health of everything the platform runs on, for the overview: the backends'
checks (:mod:`slipway.core.health`), the tracking server, and the workers as the work queue
shows them (a queue whose oldest item waits long has no one working it)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from slipway.core.health import TIMEOUT_SECONDS, Check, check_all
from slipway.core.queue import WorkState
from slipway.core.tls import client_verify
from slipway.services import Services

# Work queued longer than this with no worker taking it means the workers are down or busy.
STALE_QUEUE_SECONDS = 120.0


def check_tracking(services: Services) -> Check:
    uri = services.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return Check("tracking", uri, "not configured", "MLflow runs in process (no server)")
    started = datetime.now(UTC)
    try:
        answer = httpx.get(
            f"{uri.rstrip('/')}/health",
            timeout=TIMEOUT_SECONDS,
            verify=client_verify(services.settings.tls),
        )
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        return Check("tracking", uri, "unreachable", f"{type(exc).__name__}: {exc}")
    elapsed = (datetime.now(UTC) - started).total_seconds() * 1000
    return Check("tracking", uri, "ok", "MLflow server answers", round(elapsed, 1))


def check_workers(services: Services, now: datetime | None = None) -> Check:
    moment = now or datetime.now(UTC)
    queued = services.queue.list(state=WorkState.QUEUED, limit=1000)
    claimed = services.queue.list(state=WorkState.CLAIMED, limit=1000)
    holders = {item.lease_owner for item in claimed if item.lease_owner}
    detail = f"{len(claimed)} item(s) running on {len(holders)} worker(s), {len(queued)} queued"
    if queued:
        oldest = min(item.created_at for item in queued)
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        waited = (moment - oldest).total_seconds()
        if waited > STALE_QUEUE_SECONDS:
            return Check(
                "workers",
                "work queue",
                "unreachable",
                f"{detail}; the oldest has waited {waited:.0f} s: are workers running"
                " (`slipway up` or `slipway worker`)?",
            )
    return Check("workers", "work queue", "ok", detail)


def health(services: Services) -> list[Check]:
    """Every check, in a stable order."""
    return [*check_all(services.settings), check_tracking(services), check_workers(services)]
