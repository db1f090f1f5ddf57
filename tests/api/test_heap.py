"""The control plane's heap freezes: at start-up and after its first requests, only when
asked (a test process embedding the app keeps its collector as it is)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import anyio
import pytest
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.api.heap import FreezeLongLived
from slipway.services import Services


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # this test process collects everything again


def test_the_heap_freezes_at_start_and_after_the_given_requests(unfrozen: None) -> None:
    calls: list[int] = []

    async def app(scope: object, receive: object, send: object) -> None:
        calls.append(gc.get_freeze_count())

    async def run() -> None:
        middleware = FreezeLongLived(app, after=(2,))  # type: ignore[arg-type]
        for _ in range(3):
            await middleware({"type": "http"}, None, None)  # type: ignore[arg-type]

    anyio.run(run)
    # Frozen after the second request's answer; the third found it frozen.
    assert calls[0] == 0 and calls[1] == 0 and calls[2] > 0


# Freezing collects first: that finalizes whatever garbage earlier tests of this process
# left (an unclosed socket of theirs warns here, not where it was leaked).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_only_the_control_plane_s_own_process_freezes(services: Services, unfrozen: None) -> None:
    with TestClient(create_app(services)) as client:
        for _ in range(20):
            client.get("/api/v1/health/live")
    assert gc.get_freeze_count() == 0
    create_app(services, freeze_heap=True)
    assert gc.get_freeze_count() > 0
