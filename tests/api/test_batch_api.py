"""Batch transform jobs over REST, on both engines, with a real registered model.

No worker runs here, so a submitted job stays Pending (or goes Stopped, then Running when
resumed): what the control plane does on its own. Scoring is covered by tests/batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.queue import WorkState
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.registry.logged import register_classifier

URL = "/api/v1/batch-jobs"


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(
        home=tmp_path / "home",
        database={"url": database_url},
        data={"allowed_roots": [str(tmp_path)]},  # inputs and outputs are written there
    )
    opened = Services.open(settings)
    yield opened
    opened.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as test_client:
        yield test_client


def write_input(path: Path, rows: int = 3000, *, columns: tuple[str, ...] = ("a", "b")) -> str:
    """A Parquet file with the model's columns (a, b) and an id, in row groups of 1,000."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"id": np.arange(rows)} | {c: rng.normal(size=rows) for c in columns})
    frame.to_parquet(path, row_group_size=1000)
    return str(path)


def spec(
    tmp_path: Path, name: str = "score", model: str = "churn:1", **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "input": {"files": {"path": str(tmp_path / "input.parquet")}},
        "output": {"files": {"path": str(tmp_path / "out")}},
        "id_column": "id",
        "chunk_rows": 1000,
        **extra,
    }


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"chunk_rows": 5}, "chunk_rows"),
        ({"replicas": 3}, "replicas"),
        ({"name": "Not A Name"}, "name"),
        ({"input": {"files": {"path": "/x.parquet"}, "query": {"sql": "select 1"}}}, "input"),
        ({"input": {"files": {"path": "ftp://host/x.parquet"}}}, "input.files.path"),
        ({"output": {"files": {"path": "/o"}, "kafka": {"topic": "t"}}}, "output"),
        ({"output": {"files": {"path": "/o", "format": "xlsx"}}}, "output.files.format"),
        ({"retries": -1}, "retries"),
    ],
)  # fmt: skip
def test_a_bad_spec_is_a_400_naming_the_field_and_stores_nothing(
    client: TestClient, tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    error = _error(client.post(URL, json=spec(tmp_path) | change), 400)
    assert error["code"] == "invalid_input"
    assert error["details"]["field"] == field, error
    assert client.get(URL).json() == []


def test_a_kafka_output_needs_an_id_column(client: TestClient, tmp_path: Path) -> None:
    body = spec(tmp_path, output={"kafka": {"topic": "scores"}}) | {"id_column": None}
    error = _error(client.post(URL, json=body), 400)
    # A whole-spec rule: pydantic reports it against the body, the message names the field.
    assert "id_column" in error["message"], error
    assert client.get(URL).json() == []


def test_the_model_and_the_input_are_checked_before_anything_is_stored(
    services: Services, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = _error(client.post(URL, json=spec(tmp_path, model="nobody:1")), 404)
    assert "nobody" in unknown["message"]
    register_classifier(services, monkeypatch, "churn")
    _error(client.post(URL, json=spec(tmp_path, model="churn:7")), 404)
    unpinned = _error(client.post(URL, json=spec(tmp_path, model="churn")), 400)
    assert unpinned["details"]["field"] == "model"

    missing = _error(client.post(URL, json=spec(tmp_path)), 400)
    assert missing["details"]["field"] == "input.files.path", missing

    write_input(tmp_path / "input.parquet", columns=("a",))
    lacking = _error(client.post(URL, json=spec(tmp_path)), 400)
    assert lacking["details"]["field"] == "b" and "b" in lacking["message"], lacking
    write_input(tmp_path / "input.parquet")
    no_id = _error(client.post(URL, json=spec(tmp_path, id_column="key")), 400)
    assert no_id["details"]["field"] == "key", no_id

    assert client.get(URL).json() == []
    assert services.queue.list(queue="batch") == []


def test_submit_list_describe_chunks_stop_and_resume(
    services: Services, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(services, monkeypatch, "churn")
    write_input(tmp_path / "input.parquet")

    created = client.post(URL, json=spec(tmp_path))
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["state"] == "Pending" and job["chunks_total"] == 3 and job["chunks_done"] == 0
    assert (job["model_name"], job["model_version"]) == ("churn", 1) and job["digest"]
    assert job["created_by"] == "anonymous" and job["spec"]["chunk_rows"] == 1000
    again = _error(client.post(URL, json=spec(tmp_path)), 409)
    assert "exists" in again["message"]

    listed = client.get(URL).json()
    assert [(j["name"], j["state"], j["chunks_total"]) for j in listed] == [("score", "Pending", 3)]
    described = client.get(f"{URL}/score").json()
    assert described["state"] == "Pending" and described["chunk_states"] == {"pending": 3}
    chunks = client.get(f"{URL}/score/chunks").json()
    assert [(c["index"], c["state"], c["source"]["rows"]) for c in chunks] == [
        (0, "pending", 1000),
        (1, "pending", 1000),
        (2, "pending", 1000),
    ]
    queued = services.queue.list(queue="batch")
    assert len(queued) == 3 and {i.state for i in queued} == {WorkState.QUEUED}

    stopped = client.post(f"{URL}/score/stop")
    assert stopped.status_code == 202, stopped.text
    assert stopped.json() == {"name": "score", "state": "Stopped"}
    assert client.get(f"{URL}/score").json()["state"] == "Stopped"
    assert {i.state for i in services.queue.list(queue="batch")} == {WorkState.CANCELLED}
    _error(client.post(f"{URL}/score/stop"), 409)

    resumed = client.post(f"{URL}/score/resume")
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["state"] == "Running" and resumed.json()["error"] is None
    states = [i.state for i in services.queue.list(queue="batch")]
    assert sorted(states).count(WorkState.QUEUED) == 3 and len(states) == 6
    assert [c["state"] for c in client.get(f"{URL}/score/chunks").json()] == ["pending"] * 3
    _error(client.post(f"{URL}/score/resume"), 409)  # only Failed or Stopped jobs resume

    for path in ("/nobody", "/nobody/chunks"):
        _error(client.get(f"{URL}{path}"), 404)
    for action in ("stop", "resume"):
        _error(client.post(f"{URL}/nobody/{action}"), 404)

    schema = client.get("/api/v1/openapi.json").json()
    assert {f"{URL}", f"{URL}/{{name}}/chunks", f"{URL}/{{name}}/resume"} <= set(schema["paths"])
    audit = [e["action"] for e in client.get("/api/v1/audit").json()]
    assert "POST /api/v1/batch-jobs/{name}/stop" in audit, audit
