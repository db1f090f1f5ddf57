"""The ``batch_transform`` built-in step, called plainly (outside a pipeline).

No worker runs, so the job never completes: these cover what the step does around it.
Scoring itself is covered by tests/batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.core.errors import InvalidInput
from slipway.services import Services
from slipway.steps import batch_transform
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
