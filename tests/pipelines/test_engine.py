"""DAG semantics, caching, retries, failures, cancel and retry-from-failure."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.pipelines.dsl import pipeline, step
from slipway.pipelines.resources import Execution
from slipway.services import Services
from tests.pipelines import sample


def _states(described: Execution) -> dict[str, str]:
    return {s.name: s.state for s in described.steps}


def test_graph_is_listable_without_running(services: Services) -> None:
    graph = sample.fan.graph()
    assert set(graph["steps"]) == {
        "numbers",
        "scale",
        "scale_2",
        "scale_3",
        "total",
        "publish",
        "publish_2",
    }
    assert graph["steps"]["total"]["depends_on"] == ["scale", "scale_2", "scale_3"]
    assert graph["steps"]["publish"]["conditions"] == ["condition-1"]
    assert graph["conditions"]["condition-1"]["op"] == ">="
    assert graph["parameters"] == {
        "n": {"type": "int", "default": 4},
        "threshold": {"type": "float", "default": 10.0},
    }
    assert services.pipelines.register(sample.fan).name == "fan"


def test_fan_out_fan_in_and_conditions(services: Services, workers: None) -> None:
    services.pipelines.register(sample.fan)
    run = services.pipelines.start("fan", {"n": 4})
    done = services.pipelines.wait(run, timeout=120)
    assert done.state == "Succeeded", done
    states = _states(done)
    assert states["publish"] == "Succeeded" and states["publish_2"] == "Skipped"
    assert states["condition-2"] == "Succeeded"
    outputs = {s.name: s.outputs for s in done.steps}
    assert outputs["total"]["value"] == {"sum": 36.0, "parts": 3}
    assert outputs["publish"]["value"] == {"published": "big:36.0"}
    logs = "".join(r.text for r in services.pipelines.logs(run, "numbers"))
    assert "making 4 numbers" in logs
    small = services.pipelines.wait(services.pipelines.start("fan", {"n": 2, "threshold": 50}))
    assert _states(small)["publish"] == "Skipped" and _states(small)["publish_2"] == "Succeeded"


def test_cache_hits_and_misses(services: Services, workers: None) -> None:
    services.pipelines.register(sample.fan)
    first = services.pipelines.wait(services.pipelines.start("fan", {"n": 3}))
    assert "Cached" not in _states(first).values()
    again = services.pipelines.wait(services.pipelines.start("fan", {"n": 3}))
    cached = _states(again)
    assert cached["numbers"] == cached["scale"] == cached["total"] == "Cached"
    assert {s.cached_from for s in again.steps if s.state == "Cached"} == {first.id}
    changed = services.pipelines.wait(services.pipelines.start("fan", {"n": 5}))
    assert _states(changed)["numbers"] == "Succeeded"  # a new input is a miss


def test_retries_with_backoff_then_success(
    services: Services, workers: None, tmp_path: Path
) -> None:
    services.pipelines.register(sample.retrying)
    marker = tmp_path / "count"
    done = services.pipelines.wait(
        services.pipelines.start("retrying", {"marker": str(marker), "failures": 2})
    )
    assert done.state == "Succeeded"
    assert done.steps[0].attempts == 3
    assert marker.read_text() == "3"


def test_user_error_fails_with_traceback_and_retry_resumes(
    services: Services, workers: None, tmp_path: Path
) -> None:
    services.pipelines.register(sample.broken)
    run = services.pipelines.start("broken", {"marker": str(tmp_path / "m")})
    failed = services.pipelines.wait(run)
    assert failed.state == "Failed"
    states = _states(failed)
    assert states["flaky"] == "Succeeded" and states["boom"] == "Failed"
    boom = next(s for s in failed.steps if s.name == "boom")
    assert "Traceback" in boom.error and "ValueError: bad value 1" in boom.error
    with pytest.raises(NotFound):
        services.pipelines.retry("no-such-execution")
    services.pipelines.retry(run)
    again = services.pipelines.wait(run)
    assert again.state == "Failed"
    assert (tmp_path / "m").read_text() == "1"  # flaky kept its output, did not rerun


def test_timeout_and_cancel(services: Services, workers: None, tmp_path: Path) -> None:
    services.pipelines.register(sample.timeouts)
    timed = services.pipelines.wait(services.pipelines.start("timeouts"))
    assert timed.state == "Failed" and "timed out" in timed.steps[0].error
    services.pipelines.register(sample.slow)
    marker = tmp_path / "pid"
    run = services.pipelines.start("slow", {"seconds": 30, "marker": str(marker)})
    for _ in range(200):
        if marker.exists():
            break
        threading.Event().wait(0.1)
    services.pipelines.cancel(run)
    cancelled = services.pipelines.wait(run, timeout=30)
    assert cancelled.state == "Cancelled"
    assert _states(cancelled)["sleepy"] == "Cancelled"  # the independent step may have run
    with pytest.raises(Conflict):
        services.pipelines.cancel(run)


def test_bad_parameters_and_definitions(services: Services) -> None:
    services.pipelines.register(sample.fan)
    with pytest.raises(InvalidInput) as info:
        services.pipelines.start("fan", {"n": "many"})
    assert info.value.field == "n"
    with pytest.raises(InvalidInput) as info:
        services.pipelines.start("fan", {"colour": 1})
    assert info.value.field == "colour"

    @step
    def untyped(x: int) -> int:
        return x

    @pipeline(name="bad")
    def bad(x) -> None:  # type: ignore[no-untyped-def]
        untyped(x)

    with pytest.raises(InvalidInput, match="annotation"):
        bad.graph()
    with pytest.raises(InvalidInput):
        services.pipelines.register("tests.pipelines.sample:nothing")
    for options, field in [({"cpus": 0}, "cpus"), ({"memory_mb": 8}, "memory_mb")]:
        with pytest.raises(InvalidInput) as info:
            step(**options)  # type: ignore[call-overload]
        assert info.value.field == field


def test_a_step_runs_on_the_cpus_it_asks_for(services: Services, workers: None) -> None:
    services.pipelines.register(sample.capped)
    done = services.pipelines.wait(services.pipelines.start("capped"), timeout=120)
    assert done.state == "Succeeded", done
    (result,) = [s.outputs["value"] for s in done.steps]
    assert result == {"cores": 1, "omp": "1"}


def test_describing_a_finished_execution_takes_no_write_lock(
    services: Services, workers: None
) -> None:
    """Consoles and wait() poll describe(); for a finished execution it only reads, so it
    answers while another connection holds SQLite's write lock (it used to queue for it)."""
    import sqlite3
    import time

    from sqlalchemy.engine import make_url

    services.pipelines.register(sample.fan)
    run = services.pipelines.start("fan", {"n": 2})
    assert services.pipelines.wait(run, timeout=120).state == "Succeeded"
    path = make_url(services.settings.database_url).database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held for the next 3 s
    answered: list[float] = []

    def describe() -> None:
        start = time.monotonic()
        assert services.pipelines.describe(run).state == "Succeeded"
        answered.append(time.monotonic() - start)

    reader = threading.Thread(target=describe)
    reader.start()
    reader.join(timeout=3)
    holder.execute("ROLLBACK")
    holder.close()
    reader.join()
    assert answered and answered[0] < 1.5, answered
