"""The ``batch_transform`` built-in step, called plainly (outside a pipeline).

No worker runs, so the job never completes: these cover what the step does around it.
Scoring itself is covered by tests/batch.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.pipelines.definition import define
from slipway.services import Services
from slipway.steps import batch_transform
from tests.pipelines import sample
from tests.registry.logged import register_classifier


@pytest.fixture
def spec(services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A valid job spec; the step's own platform opens the fixture's home."""
    monkeypatch.setenv("SLIPWAY_HOME", str(services.settings.home))
    register_classifier(services, monkeypatch, "churn")
    rows = 1500
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"id": np.arange(rows), "a": rng.normal(size=rows)})
    frame["b"] = rng.normal(size=rows)
    frame.to_parquet(tmp_path / "input.parquet", row_group_size=1000)
    return {
        "name": "nightly",
        "model": "churn:1",
        "input": {"files": {"path": str(tmp_path / "input.parquet")}},
        "output": {"files": {"path": str(tmp_path / "out")}},
        "chunk_rows": 1000,
    }


def test_a_job_still_running_at_the_timeout_is_stopped(
    services: Services, spec: dict[str, object]
) -> None:
    with pytest.raises(TimeoutError, match="nightly-adhoc"):
        batch_transform(spec, timeout_seconds=0.2)
    job = services.batch.get("nightly-adhoc")
    assert job.state == "Stopped" and job.chunks_total == 2
    assert job.created_by == "pipeline:adhoc"


def test_a_bad_spec_fails_the_step(services: Services, spec: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match="chunk_rows"):
        batch_transform(spec | {"chunk_rows": 5})
    assert services.batch.list() == []


def test_an_execution_from_the_api_has_its_paths_confined(
    services: Services, spec: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller of the API starts the pipeline (or registered, scheduled or triggered it
    there): its step may not make the workers read or write outside the data roots — the
    input here is a folder of the machine's own, as ``/etc`` would be."""
    services.pipelines.register(sample.fan)
    remote = services.pipelines.start("fan", confined=True)
    assert services.pipelines.describe(remote).confined
    monkeypatch.setenv("SLIPWAY_EXECUTION_ID", remote)
    with pytest.raises(InvalidInput) as caught:
        batch_transform(spec)
    assert caught.value.field == "input.files.path"
    assert services.batch.list() == []  # nothing submitted

    # Started in process (the machine's own user, as the embedded SDK): not confined.
    local = services.pipelines.start("fan")
    assert not services.pipelines.describe(local).confined
    monkeypatch.setenv("SLIPWAY_EXECUTION_ID", local)
    with pytest.raises(TimeoutError):  # submitted; no worker runs it here
        batch_transform(spec, timeout_seconds=0.2)
    assert [j.name for j in services.batch.list()] == [f"nightly-{local[:8]}"]


def test_a_pipeline_registered_through_the_api_confines_every_execution(
    services: Services,
) -> None:
    services.pipelines.register(define(sample.fan), confined=True)
    assert services.pipelines.describe(services.pipelines.start("fan")).confined
    services.schedules.create("often", "fan", "* * * * *", confined=True)
    services.pipelines.register(sample.fan)  # registered again in process
    assert not services.pipelines.describe(services.pipelines.start("fan")).confined
    [fired] = services.schedules.tick(utcnow() + timedelta(minutes=2))
    assert services.pipelines.describe(fired.execution_id).confined  # the schedule's own
