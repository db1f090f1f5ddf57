"""No editor-as-shell: the paths a REST caller names must lie under the data roots.

An editor's token may submit batch jobs and build baselines; without data roots it could
make the server read any file it can (``/etc/passwd`` into a batch job) and write
wherever it can. Each attack is tried over HTTP with an editor's token and must be a 400
naming the field, with nothing created; paths under the artifact root or a declared root
are accepted. :func:`slipway.core.roots.confine` is tested on its own below.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from slipway.core.errors import InvalidInput
from slipway.core.roots import confine
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.registry.logged import register_classifier

API = "/api/v1"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The folder declared in data.allowed_roots."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder the server can read and write, under no root."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


@pytest.fixture
def services(tmp_path: Path, data: Path) -> Iterator[Services]:
    """Only ``data`` is a declared root (tests/api/conftest.py's ``client`` serves this)."""
    settings = load_settings(
        home=tmp_path / "home", server={"auth": True}, data={"allowed_roots": [str(data)]}
    )
    opened = Services.open(settings)
    yield opened
    opened.close()


@pytest.fixture
def editor(services: Services) -> dict[str, str]:
    secret = services.tokens.create("t-editor", "editor", created_by="test")[1]
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def model(services: Services, monkeypatch: pytest.MonkeyPatch) -> str:
    return f"churn:{register_classifier(services, monkeypatch, 'churn')}"


def write_input(path: Path) -> str:
    """A Parquet file with the model's columns (a, b) and an id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"id": np.arange(1000), "a": rng.normal(size=1000)})
    frame["b"] = rng.normal(size=1000)
    frame.to_parquet(path)
    return str(path)


def job(source: str, target: str, name: str = "score", model: str = "churn:1") -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "input": {"files": {"path": source}},
        "output": {"files": {"path": target}},
        "id_column": "id",
        "chunk_rows": 1000,
    }


def refused(response: Any, field: str) -> str:
    """The 400's message, after checking it names ``field`` and the setting to change."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["field"] == field, error
    assert "data.allowed_roots" in error["message"], error
    return str(error["message"])


def test_a_batch_job_cannot_read_etc_passwd(
    client: TestClient, editor: dict[str, str], data: Path, model: str
) -> None:
    body = job("/etc/passwd", str(data / "out"), model=model)
    message = refused(
        client.post(f"{API}/batch-jobs", json=body, headers=editor), "input.files.path"
    )
    assert str(data) in message  # the roots allowed are named
    assert client.get(f"{API}/batch-jobs", headers=editor).json() == []
    assert not (data / "out").exists()


def test_a_batch_job_cannot_write_outside_the_roots(
    client: TestClient, editor: dict[str, str], data: Path, outside: Path, model: str
) -> None:
    body = job(write_input(data / "in.parquet"), str(outside / "out"), model=model)
    refused(client.post(f"{API}/batch-jobs", json=body, headers=editor), "output.files.path")
    assert client.get(f"{API}/batch-jobs", headers=editor).json() == []
    assert list(outside.iterdir()) == []


def test_a_symlink_inside_a_root_pointing_outside_is_refused(
    client: TestClient, editor: dict[str, str], data: Path, outside: Path, model: str
) -> None:
    secret = write_input(outside / "secret.parquet")
    (data / "link.parquet").symlink_to(secret)
    (data / "linked-folder").symlink_to(outside, target_is_directory=True)
    reading = job(str(data / "link.parquet"), str(data / "out"), model=model)
    refused(client.post(f"{API}/batch-jobs", json=reading, headers=editor), "input.files.path")
    writing = job(write_input(data / "in.parquet"), str(data / "linked-folder" / "out"))
    refused(client.post(f"{API}/batch-jobs", json=writing, headers=editor), "output.files.path")
    # A glob inside the root matching the link is refused as well.
    globbed = job(str(data / "*.parquet"), str(data / "out"), model=model)
    refused(client.post(f"{API}/batch-jobs", json=globbed, headers=editor), "input.files.path")
    assert client.get(f"{API}/batch-jobs", headers=editor).json() == []


def test_a_sibling_folder_sharing_the_roots_prefix_is_outside(
    client: TestClient, editor: dict[str, str], data: Path, model: str
) -> None:
    sibling = write_input(data.parent / f"{data.name}2" / "in.parquet")  # .../data2/in.parquet
    body = job(sibling, str(data / "out"), model=model)
    refused(client.post(f"{API}/batch-jobs", json=body, headers=editor), "input.files.path")


def test_paths_under_a_declared_root_or_the_artifact_root_are_accepted(
    services: Services, client: TestClient, editor: dict[str, str], data: Path, model: str
) -> None:
    declared = job(write_input(data / "in.parquet"), str(data / "out"), "declared", model)
    created = client.post(f"{API}/batch-jobs", json=declared, headers=editor)
    assert created.status_code == 201, created.text
    artifacts = Path(services.settings.artifact_root) / "datasets"
    stored = job(write_input(artifacts / "in.parquet"), str(artifacts / "out"), "stored", model)
    created = client.post(f"{API}/batch-jobs", json=stored, headers=editor)
    assert created.status_code == 201, created.text
    names = {j["name"] for j in client.get(f"{API}/batch-jobs", headers=editor).json()}
    assert names == {"declared", "stored"}


def test_a_job_is_checked_again_when_resumed(
    services: Services, client: TestClient, editor: dict[str, str], data: Path, model: str
) -> None:
    body = job(write_input(data / "in.parquet"), str(data / "out"), model=model)
    assert client.post(f"{API}/batch-jobs", json=body, headers=editor).status_code == 201
    assert client.post(f"{API}/batch-jobs/score/stop", headers=editor).status_code == 202
    services.settings.data.allowed_roots = []  # the admin narrows the roots
    refused(client.post(f"{API}/batch-jobs/score/resume", headers=editor), "input.files.path")


def test_a_baseline_cannot_read_a_file_outside_the_roots(
    client: TestClient, editor: dict[str, str], data: Path, outside: Path
) -> None:
    for source, field in [
        ({"file": write_input(outside / "b.parquet")}, "source.file"),
        ({"file": "/etc/passwd"}, "source.file"),
        (
            {"training_set": {"entities": str(outside / "b.parquet"), "features": ["g:x"]}},
            "source.training_set.entities",
        ),
    ]:
        body = {"name": "base", "source": source}
        refused(client.post(f"{API}/baselines", json=body, headers=editor), field)
    assert client.get(f"{API}/baselines", headers=editor).json() == []
    inside = {"name": "base", "source": {"file": write_input(data / "b.parquet")}}
    created = client.post(f"{API}/baselines", json=inside, headers=editor)
    assert created.status_code == 201, created.text


def test_a_baseline_cannot_read_an_outside_file_through_a_versions_lineage(
    services: Services, client: TestClient, editor: dict[str, str], outside: Path, model: str
) -> None:
    # Registered over REST, a version's lineage may name any entity file...
    source = services.registry.get("churn", 1).source
    lineage = {"training_set": {"entities": write_input(outside / "e.parquet"), "feature_refs": []}}
    registered = client.post(
        f"{API}/models/churn/versions", json={"source": source, "lineage": lineage}, headers=editor
    )
    assert registered.status_code == 201, registered.text
    # ...which a model_version baseline would read.
    body = {"name": "base", "source": {"model_version": True}, "model": "churn:2"}
    refused(client.post(f"{API}/baselines", json=body, headers=editor), "source.model_version")
    assert client.get(f"{API}/baselines", headers=editor).json() == []


# -- confine on its own ----------------------------------------------------------------


def test_local_paths_are_compared_by_component_after_resolving_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    (root / "in").mkdir(parents=True)
    roots = [str(root)]
    assert confine(str(root / "in" / "x.parquet"), roots, field="f") == str(root / "in/x.parquet")
    assert confine(f"file://{root}/x.csv", roots, field="f") == f"file://{root}/x.csv"
    assert confine(str(root), roots, field="f") == str(root)
    (root / "up").symlink_to(tmp_path, target_is_directory=True)
    for outside in [f"{root}2/x", str(tmp_path / "x"), str(root / "up" / "x"), "/etc/passwd"]:
        with pytest.raises(InvalidInput) as caught:
            confine(outside, roots, field="input.files.path")
        assert caught.value.field == "input.files.path"
    with pytest.raises(InvalidInput):
        confine("/data2/x", ["/data"], field="f")
    # Paths whose meaning depends on the reader (working folder, home) are refused.
    monkeypatch.chdir(root)
    for ambiguous in ["in/x.parquet", "~/x", "file:/etc/passwd", "local:/etc/passwd"]:
        with pytest.raises(InvalidInput):
            confine(ambiguous, roots, field="f")
    with pytest.raises(InvalidInput):
        confine(str(root / ".." / "x"), roots, field="f")  # '..' is refused outright
    with pytest.raises(InvalidInput):
        confine(str(root / "x"), [], field="f")


def test_a_glob_is_judged_by_the_folder_of_its_first_wildcard(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "in").mkdir(parents=True)
    (root / "in" / "a.parquet").write_bytes(b"")
    roots = [str(root / "in")]
    for inside in ["in/*.parquet", "in/**/*.parquet", "in/part-?.csv", "in/[ab].parquet"]:
        assert confine(str(root / inside), roots, field="f") == str(root / inside)
    # "in*" also matches a sibling "input2": its fixed folder is root, not root/in.
    for outside in ["in*", "in*/x.parquet", "*/in/x.parquet", "i[n]/x.parquet"]:
        with pytest.raises(InvalidInput):
            confine(str(root / outside), roots, field="f")
    # A match that is a link out of the root makes the whole glob refused.
    os.symlink(tmp_path, root / "in" / "b.parquet")
    with pytest.raises(InvalidInput):
        confine(str(root / "in" / "*.parquet"), roots, field="f")


def test_object_store_uris_need_the_same_store_bucket_and_key_prefix() -> None:
    roots = ["s3://lake/scoring", "gs://other"]
    for inside in [
        "s3://lake/scoring/in.parquet",
        "s3a://lake/scoring/2024/*.parquet",
        "s3://lake/scoring",
        "gcs://other/anything/x.csv",
    ]:
        assert confine(inside, roots, field="f") == inside
    for outside in [
        "s3://lake/scoring2/x",
        "s3://lake/x",
        "s3://lake2/scoring/x",
        "gs://lake/scoring/x",
        "s3://lake/scor*/x",
        "s3://lake*/scoring/x",
        "memory://lake/scoring/x",
        "/lake/scoring/x",
        "s3://lake/scoring/x::file:///etc/passwd",
    ]:
        with pytest.raises(InvalidInput):
            confine(outside, roots, field="f")


def test_the_setting_is_comma_separated_and_normalised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPWAY_DATA__ALLOWED_ROOTS", f" {tmp_path}/a/ , S3A://Lake/x/,gcs://b")
    assert load_settings(home=tmp_path).data.allowed_roots == [
        str(tmp_path / "a"),
        "s3://Lake/x",
        "gs://b",
    ]
    monkeypatch.delenv("SLIPWAY_DATA__ALLOWED_ROOTS")
    assert load_settings(home=tmp_path).data.allowed_roots == []
    for bad in ["relative/dir", "http://host/x", "/data/*", "s3://", "ftp://h/x", "/a::b"]:
        with pytest.raises(InvalidInput) as caught:
            load_settings(home=tmp_path, data={"allowed_roots": [bad]})
        assert str(caught.value.field).startswith("data.allowed_roots")


def _workspace_refusal(response: Any, field: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field, error
    return str(error["message"])


def test_a_workspace_reaches_its_own_share_of_the_artifact_root_only(
    services: Services, client: TestClient, data: Path, model: str
) -> None:
    """The artifact root is partitioned: ``workspaces/<ws>/`` (and MLflow's
    ``mlflow/workspaces/<ws>/``) is that workspace's, the rest the default's; a request
    naming another's share, or a folder holding every workspace's, is a 400 naming the
    field. Declared data roots are the platform's, shared."""
    services.workspaces.create("fraud", actor="test")
    _, secret = services.tokens.create("fraud-editor", "editor", workspaces=["fraud"])
    fraud = {"Authorization": f"Bearer {secret}", "X-Slipway-Workspace": "fraud"}
    default = {"Authorization": f"Bearer {services.tokens.create('ed', 'editor')[1]}"}
    root = Path(services.settings.artifact_root)
    ours = write_input(root / "datasets" / "in.parquet")
    theirs = write_input(root / "workspaces" / "fraud" / "datasets" / "in.parquet")
    mlflow_theirs = write_input(root / "mlflow" / "workspaces" / "fraud" / "1" / "in.parquet")

    for body, field in [
        (job(ours, str(root / "workspaces" / "fraud" / "out"), model=model), "input.files.path"),
        (job(theirs, str(root / "datasets" / "out"), model=model), "output.files.path"),
    ]:
        message = _workspace_refusal(
            client.post(f"{API}/batch-jobs", json=body, headers=fraud), field
        )
        assert "workspace 'default'" in message and "acts in workspace 'fraud'" in message
    for body, field, owner in [
        (job(theirs, str(root / "datasets" / "out"), model=model), "input.files.path", "fraud"),
        (job(mlflow_theirs, str(root / "o"), model=model), "input.files.path", "fraud"),
        (job(str(root / "workspaces"), str(root / "o"), model=model), "input.files.path", "*"),
        (job(ours, str(root), model=model), "output.files.path", "*"),
    ]:
        response = client.post(f"{API}/batch-jobs", json=body, headers=default)
        _workspace_refusal(response, field)
        assert response.json()["error"]["details"]["owner"] == owner
    channel = {
        "name": "fit",
        "module": "slipway.steps.jobs",
        "channels": {"train": str(root / "datasets")},
    }
    _workspace_refusal(client.post(f"{API}/jobs", json=channel, headers=fraud), "channels.train")
    # A declared data root is every workspace's.
    shared = job(write_input(data / "in.parquet"), str(data / "out"), model=model)
    allowed = client.post(f"{API}/batch-jobs", json=shared, headers=default)
    assert allowed.status_code == 201, allowed.text
    assert client.get(f"{API}/batch-jobs", headers=fraud).json() == []


def test_a_workspace_registers_its_own_files_only(
    services: Services, client: TestClient, model: str
) -> None:
    """A version's files must be in the registering workspace's share: the default
    workspace's ``churn`` files are not fraud's to register, nor fraud's the default's."""
    services.workspaces.create("fraud", actor="test")
    _, secret = services.tokens.create("fraud-editor", "editor", workspaces=["fraud"])
    fraud = {"Authorization": f"Bearer {secret}", "X-Slipway-Workspace": "fraud"}
    key = services.registry.get("churn", 1).artifact_key
    source = str(Path(services.settings.artifact_root) / key)
    response = client.post(f"{API}/models/churn/versions", json={"source": source}, headers=fraud)
    message = _workspace_refusal(response, "source")
    assert "is workspace 'default''s" in message
    assert services.registry.in_workspace("fraud").models() == []
    with pytest.raises(InvalidInput) as caught:
        services.registry.register(
            "stolen", str(Path(services.settings.artifact_root) / "workspaces/fraud/x"), actor="t"
        )
    assert caught.value.field == "source" and "workspace 'fraud'" in caught.value.message
