"""No editor-as-shell, for code: what a REST caller makes the workers import must be a code
bundle it uploaded, a folder the admin declared, or a module the admin allows.

Each attack is tried over HTTP with an editor's token and must be a 400 naming the
field, with nothing created. The accepted cases are the same requests with the code
shipped as a bundle (or under a declared root).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.settings import load_settings
from slipway.runtime import bundles
from slipway.services import Services

API = "/api/v1"
GZIP = {"content-type": bundles.MEDIA_TYPE}


@pytest.fixture
def code_root(tmp_path: Path) -> Path:
    """A folder the admin declared in code.allowed_roots, holding a module."""
    folder = tmp_path / "declared"
    folder.mkdir()
    (folder / "shared_steps.py").write_text("def fit(**kw):\n    return 1\n")
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The caller's own code, outside every root."""
    folder = tmp_path / "project"
    (folder / "trainer").mkdir(parents=True)
    (folder / "trainer" / "__init__.py").write_text("")
    (folder / "trainer" / "fit.py").write_text("def fit(**kw):\n    return 1\n")
    (folder / "train.py").write_text("print('training')\n")
    return folder


@pytest.fixture
def services(tmp_path: Path, code_root: Path) -> Iterator[Services]:
    settings = load_settings(
        home=tmp_path / "home",
        server={"auth": True, "allowed_hosts": ["testserver"]},
        code={"allowed_roots": [str(code_root)]},
    )
    opened = Services.open(settings)
    yield opened
    opened.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def editor(services: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {services.tokens.create('ed', 'editor', created_by='t')[1]}"}


def upload(client: TestClient, headers: dict[str, str], data: bytes) -> Any:
    return client.post(f"{API}/code-bundles", content=data, headers=headers | GZIP)


def refused(response: Any, field: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field, error
    return str(error["message"])


def training(name: str, **code: Any) -> dict[str, Any]:
    return {"name": name, **code}


def test_a_training_job_runs_only_shipped_or_declared_code(
    client: TestClient, services: Services, editor: dict[str, str], project: Path, code_root: Path
) -> None:
    post = lambda body: client.post(f"{API}/jobs", json=body, headers=editor)  # noqa: E731
    # A host folder the admin never declared: the workers would import whatever it holds.
    message = refused(post(training("a", script="train.py", source_dir=str(project))), "source_dir")
    assert "code.allowed_roots" in message
    # The platform's own interpreter as a shell.
    refused(post(training("b", function="os:system")), "function")
    refused(post(training("c", module="http.server")), "module")
    # A module the job does not ship, next to a folder that is declared.
    refused(post(training("d", function="os:system", source_dir=str(code_root))), "function")
    # Data: channels are copied into the job, so they are confined like batch inputs.
    body = training("e", function="shared_steps:fit", source_dir=str(code_root))
    refused(post(body | {"channels": {"train": "/etc"}}), "channels.train")
    assert services.training.jobs() == []

    stored = upload(client, editor, bundles.pack(project))
    assert stored.status_code == 201, stored.text
    uri = stored.json()["uri"]
    assert stored.json()["top_level"] == ["train", "trainer"]
    for accepted in (
        training("f", script="train.py", source_dir=uri),
        training("g", function="trainer.fit:fit", source_dir=uri),
        training("h", function="shared_steps:fit", source_dir=str(code_root)),
        training("i", module="slipway.steps.anything"),  # code.allowed_modules
    ):
        assert post(accepted).status_code == 201, accepted
    assert services.training.get("f").spec.source_dir == uri  # the digest, in the job's spec
    missing = f"{bundles.PREFIX}{'0' * 64}"
    assert "upload it first" in refused(
        post(training("j", script="train.py", source_dir=missing)), "source_dir"
    )


def test_a_tuning_job_and_a_pipeline_import_only_their_own_code(
    client: TestClient, services: Services, editor: dict[str, str], project: Path
) -> None:
    tuning = {
        "name": "t",
        "trial": "os:system",
        "parameter_ranges": {"x": {"type": "continuous", "min": 0, "max": 1}},
    }
    refused(client.post(f"{API}/tuning-jobs", json=tuning, headers=editor), "trial")
    on_host = tuning | {"trial": "trainer.fit:fit", "code_paths": [str(project)]}
    refused(client.post(f"{API}/tuning-jobs", json=on_host, headers=editor), "code_paths[0]")

    uri = upload(client, editor, bundles.pack(project, only={"trainer"})).json()["uri"]
    shipped = on_host | {"code_paths": [uri]}
    assert client.post(f"{API}/tuning-jobs", json=shipped, headers=editor).status_code == 201

    def definition(function: str, code_paths: list[str]) -> dict[str, Any]:
        step = {"name": "fit", "function": function}
        graph = {"name": "p", "steps": {"fit": step}, "code_paths": code_paths}
        return {"name": "p", "target": "trainer.flows:p", "graph": graph}

    put = lambda body: client.put(f"{API}/pipelines/p", json=body, headers=editor)  # noqa: E731
    refused(put(definition("trainer.fit:fit", [str(project)])), "graph.code_paths[0]")
    refused(put(definition("subprocess:run", [uri])), "graph.steps.fit.function")
    assert services.pipelines.pipelines() == []
    assert put(definition("trainer.fit:fit", [uri])).status_code == 200
    assert put(definition("slipway.steps.platform:noop", [])).status_code == 200


def tar_with(info: tarfile.TarInfo) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(info, io.BytesIO(b"x" * info.size))
    return gzip.compress(raw.getvalue())


def test_a_hostile_bundle_is_refused_and_nothing_is_stored(
    client: TestClient, services: Services, editor: dict[str, str], tokens_viewer: dict[str, str]
) -> None:
    escape = tarfile.TarInfo("../../home/.bashrc")
    escape.size = 1
    link = tarfile.TarInfo("steps.py")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    assert "not a relative path" in refused(upload(client, editor, tar_with(escape)), "bundle")
    assert "not a plain file" in refused(upload(client, editor, tar_with(link)), "bundle")
    refused(upload(client, editor, b"MZ not an archive"), "bundle")
    assert services.artifacts.list(bundles.STORE_PREFIX) == []
    wrong_type = client.post(
        f"{API}/code-bundles", content=b"x", headers=editor | {"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    assert upload(client, tokens_viewer, b"x").status_code == 403
    assert upload(client, {}, b"x").status_code == 401


@pytest.fixture
def tokens_viewer(services: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {services.tokens.create('v', 'viewer', created_by='t')[1]}"}
