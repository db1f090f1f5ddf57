"""A worker runs handlers, records failures with their traceback, and respects leases."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.core.queue import WorkState
from slipway.core.settings import load_settings
from slipway.core.work import WorkContext
from slipway.services import Services
from slipway.workers.handlers import DEFAULT_QUEUES, KINDS, WARM_UPS, handlers
from slipway.workers.worker import Worker


def _services(database_url: str, tmp_path: Path) -> Services:
    settings = load_settings(
        home=tmp_path / "home",
        database={"url": database_url},
        workers={"lease_seconds": 0.6, "poll_seconds": 0.05},
    )
    return Services.open(settings)


def test_runs_items_and_stores_results(database_url: str, tmp_path: Path) -> None:
    services = _services(database_url, tmp_path)
    item = services.queue.enqueue("system", "system.echo", {"hello": "world"})
    assert Worker(services, queues=DEFAULT_QUEUES).run(max_items=1) == 1
    done = services.queue.get(item.id)
    assert done.state is WorkState.SUCCEEDED
    assert done.result == {"echo": {"hello": "world"}, "attempt": 1}
    services.close()


def test_user_code_error_is_recorded_with_traceback_and_retried(
    database_url: str, tmp_path: Path
) -> None:
    services = _services(database_url, tmp_path)
    item = services.queue.enqueue(
        "system", "system.echo", {"fail": "bad data"}, max_attempts=2, backoff_seconds=0
    )
    worker = Worker(services, queues=DEFAULT_QUEUES)
    worker.run(max_items=2)
    failed = services.queue.get(item.id)
    assert failed.state is WorkState.FAILED
    assert failed.attempts == 2
    assert "Traceback" in (failed.last_error or "")
    assert "RuntimeError: bad data" in (failed.last_error or "")
    services.close()


def test_unknown_kind_fails_without_retry(database_url: str, tmp_path: Path) -> None:
    services = _services(database_url, tmp_path)
    item = services.queue.enqueue("system", "no.such_kind", {}, max_attempts=5)
    Worker(services, queues=DEFAULT_QUEUES).run(max_items=1)
    failed = services.queue.get(item.id)
    assert (failed.state, failed.attempts) == (WorkState.FAILED, 1)
    assert "no handler" in (failed.last_error or "")
    services.close()


def test_heartbeat_keeps_long_work_and_cancel_discards_its_result(
    database_url: str, tmp_path: Path
) -> None:
    services = _services(database_url, tmp_path)
    long_item = services.queue.enqueue("system", "system.echo", {"sleep": 1.5})
    worker = Worker(services, queues=DEFAULT_QUEUES)
    worker.run(max_items=1)  # 1.5 s of work on a 0.6 s lease: heartbeats must keep it
    kept = services.queue.get(long_item.id)
    assert (kept.state, kept.attempts) == (WorkState.SUCCEEDED, 1)

    def cancel_myself(context: WorkContext) -> dict[str, bool]:
        services.queue.cancel(context.item_id)
        return {"written": True}

    doomed = services.queue.enqueue("system", "self.cancel", {})
    Worker(services, queues=DEFAULT_QUEUES, handlers={"self.cancel": cancel_myself}).run(
        max_items=1
    )
    final = services.queue.get(doomed.id)
    assert final.state is WorkState.CANCELLED
    assert final.result is None
    assert "system.echo" in KINDS
    # Every kind a worker claims has a handler, given its services when assembled.
    assert set(handlers(services)) == KINDS
    services.close()


def test_warm_up_opens_stores_once_and_survives_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    services = _services(f"sqlite:///{tmp_path / 'meta.db'}", tmp_path)
    calls: list[str] = []

    def opens(services: Services) -> None:
        calls.append("mlflow")
        services.registry.mlflow.client.get_experiment_by_name("Default")

    def breaks(_services: Services) -> None:
        calls.append("broken")
        raise RuntimeError("no fork server today")

    monkeypatch.setitem(WARM_UPS, "a", (opens, breaks))
    monkeypatch.setitem(WARM_UPS, "b", (opens,))
    worker = Worker(services, queues=["a", "b", "system"])
    worker.warm_up()
    assert calls == ["mlflow", "broken"]  # a warm-up shared by two queues runs once
    assert services.registry.mlflow.opened  # MLflow's store is open
    assert "no fork server today" in caplog.text
    item = services.queue.enqueue("system", "system.echo", {})
    assert worker.run(max_items=1) == 1  # and the worker still works
    assert services.queue.get(item.id).state is WorkState.SUCCEEDED
    services.close()
