"""Batch transform jobs through slipway.Client over HTTP, against the embedded API: the same
tests run on both (a parametrized fixture) on one ``slipway up``, whose workers score the
chunks.

The model is registered with the embedded registry of the same platform (setup, not what
is tested here); input and output files are on this machine, where the workers run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from slipway.batch.resources import BatchChunk, BatchJob
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.resource import Listing
from tests.client.models import registered
from tests.shared_platform import SharedPlatform


def _input(path: Path, rows: int, *, columns: tuple[str, ...] = ("a", "b")) -> str:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"id": np.arange(rows)} | {c: rng.normal(size=rows) for c in columns})
    frame.to_parquet(path, row_group_size=1000)
    return str(path)


def _spec(name: str, model: str, source: str, out: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "input": {"files": {"path": source}},
        "output": {"files": {"path": str(out)}},
        "id_column": "id",
        "chunk_rows": 1000,
        **extra,
    }


@pytest.fixture
def model(shared_platform: SharedPlatform, side: str, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"batch-clf-{side}"
    return f"{name}:{registered(shared_platform, monkeypatch, name)}"


def test_a_job_over_a_parquet_file_completes_and_its_output_reads_back(
    platform: Any, model: str, side: str, tmp_path: Path
) -> None:
    batch, name, out = platform.batch, f"score-{side}", tmp_path / "scored"
    source = _input(tmp_path / "input.parquet", 3000)
    submitted = batch.submit(_spec(name, model, source, out, keep_columns=["a"]), actor="tests")
    assert isinstance(submitted, BatchJob)
    assert (submitted.state, submitted.chunks_total, submitted.chunk_states) == (
        "Pending",
        3,
        {"pending": 3},
    )
    assert f"{submitted.model_name}:{submitted.model_version}" == model
    assert submitted.spec.input.files is not None and submitted.spec.input.files.path == source

    done = batch.wait(name, timeout=300)
    assert (done.state, done.rows_done, done.chunks_done) == ("Completed", 3000, 3), done.error
    assert done.chunk_states == {"done": 3} and done.manifest is not None
    assert batch.get(name) == done
    chunks = batch.chunks(name)
    assert isinstance(chunks, Listing) and all(isinstance(c, BatchChunk) for c in chunks)
    assert [(c.index, c.state, c.rows) for c in chunks] == [(i, "done", 1000) for i in range(3)]
    assert name in [j.name for j in batch.list(limit=500)]

    scored = pd.read_parquet(out).sort_values("id")
    assert scored["id"].tolist() == list(range(3000))
    assert {"a", "prediction"} <= set(scored.columns)
    with pytest.raises(Conflict):
        batch.stop(name)  # it has ended


def test_stop_then_resume_finishes_every_chunk_once(
    platform: Any, model: str, side: str, tmp_path: Path
) -> None:
    batch, name = platform.batch, f"stopped-{side}"
    source = _input(tmp_path / "input.parquet", 20_000)
    batch.submit(_spec(name, model, source, tmp_path / "out"), actor="tests")
    batch.stop(name)
    assert batch.get(name).state == "Stopped"
    with pytest.raises(Conflict):
        batch.stop(name)
    resumed = batch.resume(name)
    assert resumed.state in ("Running", "Completed")
    done = batch.wait(name, timeout=300)
    assert (done.state, done.rows_done, done.chunks_done) == ("Completed", 20_000, 20), done.error
    assert len(pd.read_parquet(tmp_path / "out")) == 20_000


def test_bad_input_is_the_same_typed_error_naming_the_field(
    platform: Any, model: str, side: str, tmp_path: Path
) -> None:
    batch, name, out = platform.batch, f"bad-{side}", tmp_path / "out"
    source = _input(tmp_path / "input.parquet", 1000)
    for change, field in [
        ({"chunk_rows": 5}, "chunk_rows"),
        ({"replicas": 3}, "replicas"),
        ({"name": "Not A Name"}, "name"),
        ({"output": {"files": {"path": str(out), "format": "xlsx"}}}, "output.files.format"),
        ({"model": model.split(":")[0]}, "model"),
    ]:
        with pytest.raises(InvalidInput) as bad:
            batch.submit(_spec(name, model, source, out) | change, actor="tests")
        assert bad.value.field == field, (change, bad.value.message)
    lacking = _input(tmp_path / "lacking.parquet", 1000, columns=("a",))
    with pytest.raises(InvalidInput) as missing_column:
        batch.submit(_spec(name, model, lacking, out), actor="tests")
    assert missing_column.value.field == "b"
    with pytest.raises(NotFound):
        batch.submit(_spec(name, f"nobody-{side}:1", source, out), actor="tests")
    assert name not in [j.name for j in batch.list(limit=500)]  # nothing stored
    for call in (
        lambda: batch.get(name),
        lambda: batch.chunks(name),
        lambda: batch.stop(name),
        lambda: batch.resume(name),
    ):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(InvalidInput) as bad_limit:
        batch.list(limit=0)
    assert bad_limit.value.field == "limit"
