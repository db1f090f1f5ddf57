"""MLflow's tracking server as Slipway runs it: real server, real ``mlflow`` client, both
engines; plus the launcher's pieces (URI mapping, socket, REST fast path) on their own."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import mlflow.tracking._model_registry.utils as registry_utils
import mlflow.tracking._tracking_service.utils as tracking_utils
import mlflow.tracking.fluent as fluent
import numpy as np
import psutil
import pytest
import requests
from fastapi import FastAPI
from flask import Flask, Response
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sqlalchemy import inspect

from slipway.core.db import Database, current_revision, head_revision
from slipway.core.db.migrate import ensure_schema
from slipway.core.errors import InvalidInput
from slipway.core.settings import Settings, load_settings
from slipway.tracking import config as tracking_config
from slipway.tracking import server as tracking
from slipway.tracking.schema_lock import schema_lock
from tests.tracking.server import TrackingServer

MLFLOW_TABLES = {
    "alembic_version",
    "experiments",
    "runs",
    "metrics",
    "latest_metrics",
    "params",
    "registered_models",
    "model_versions",
    "registered_model_aliases",
    "logged_models",
}


# ---------------------------------------------------------------- the launcher's pieces


def test_backend_store_uri_maps_slipway_urls_to_mlflow_store_uris() -> None:
    assert tracking_config.backend_store_uri("sqlite:////w/slipway.db") == "sqlite:////w/slipway.db"
    assert (
        tracking_config.backend_store_uri("postgresql://u:p@h:5432/db")
        == "postgresql+psycopg://u:p@h:5432/db"
    )
    assert tracking_config.backend_store_uri("postgres://h/db") == "postgresql+psycopg://h/db"
    assert (
        tracking_config.backend_store_uri("postgresql+psycopg://h/db")
        == "postgresql+psycopg://h/db"
    )
    with pytest.raises(InvalidInput):
        tracking_config.backend_store_uri("mysql://h/db")


def test_artifacts_destination_is_the_mlflow_folder_of_the_artifact_root(tmp_path: Path) -> None:
    assert tracking_config.artifacts_destination(str(tmp_path / "art")) == str(
        tmp_path / "art/mlflow"
    )
    assert tracking_config.artifacts_destination("s3://bucket/x/") == "s3://bucket/x/mlflow"
    with pytest.raises(InvalidInput) as caught:
        tracking_config.artifacts_destination("memory://x")
    assert caught.value.field == "artifacts.root"


def test_tracking_env_is_what_mlflow_server_hands_its_workers(settings: Settings) -> None:
    env = tracking_config.tracking_env(settings)
    store = f"sqlite:///{settings.home / 'slipway.db'}"
    assert env["_MLFLOW_SERVER_FILE_STORE"] == env["_MLFLOW_SERVER_REGISTRY_STORE"] == store
    assert env["_MLFLOW_SERVER_ARTIFACT_ROOT"] == "mlflow-artifacts:/"
    assert env["_MLFLOW_SERVER_SERVE_ARTIFACTS"] == "true"
    assert env["_MLFLOW_SERVER_ARTIFACT_DESTINATION"] == str(settings.home / "artifacts/mlflow")
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE" not in env

    pg = load_settings(home=settings.home, database={"url": "postgresql://h/db", "pool_size": 3})
    pg_env = tracking_config.tracking_env(pg)
    assert pg_env["_MLFLOW_SERVER_FILE_STORE"] == "postgresql+psycopg://h/db"
    assert pg_env["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"] == "3"


def test_variable_names_are_the_ones_mlflow_reads() -> None:
    # Read from MLflow's source: importing mlflow.server would build its app.
    source = Path(mlflow.__file__).parent / "server" / "constants.py"
    constants = source.read_text()
    for name in (
        tracking_config.BACKEND_STORE_URI_VAR,
        tracking_config.REGISTRY_STORE_URI_VAR,
        tracking_config.ARTIFACT_ROOT_VAR,
        tracking_config.SERVE_ARTIFACTS_VAR,
        tracking_config.ARTIFACTS_DESTINATION_VAR,
    ):
        assert f'"{name}"' in constants, name


def test_process_spec_keeps_the_password_off_the_command_line() -> None:
    settings = load_settings(database={"url": "postgresql://u:secret@h/db"})
    spec = tracking_config.tracking_process(settings, "127.0.0.1", 5123)
    assert spec.name == "tracking"
    assert list(spec.argv)[1:] == [
        "-m",
        "slipway.api.tracking",  # MLflow behind Slipway's gate
        "--host",
        "127.0.0.1",
        "--port",
        "5123",
        "--workers",
        "1",
    ]
    assert "secret" not in " ".join(spec.argv)
    assert "secret" in spec.env["_MLFLOW_SERVER_FILE_STORE"]


def test_accepted_connections_have_nagle_off() -> None:
    """The root cause of ~40 ms per keep-alive request under ``mlflow server``."""

    async def accepted_nodelay() -> int:
        sock = tracking.listening_socket("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                conn = transport.get_extra_info("socket")
                seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(seen, 5)
            writer.close()
            return value

    assert asyncio.run(accepted_nodelay()) != 0


def test_sqlite_pragmas_apply_to_engines_created_afterwards(tmp_path: Path) -> None:
    # In a child process: the listener is process-wide, and MLflow's engines are what it is
    # for; this test process's other SQLite engines must not be touched.
    script = (
        "from sqlalchemy import create_engine, text\n"
        "from slipway.tracking.config import install_sqlite_pragmas\n"
        "install_sqlite_pragmas(1234)\n"
        f"engine = create_engine('sqlite:///{tmp_path / 'm.db'}')\n"
        "with engine.connect() as conn:\n"
        "    for pragma in ('journal_mode', 'synchronous', 'busy_timeout'):\n"
        "        print(conn.execute(text(f'PRAGMA {pragma}')).scalar())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["wal", "1", "1234"]  # 1 is synchronous=NORMAL


def _try_lock(folder: Path) -> str:
    """Whether another process could take the folder's lock right now (without waiting)."""
    script = (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(folder)!r}, os.O_RDONLY)\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "    print('taken')\n"
        "except BlockingIOError:\n"
        "    print('busy')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.strip()


def test_schema_setup_lock_excludes_a_second_starter(tmp_path: Path) -> None:
    """Every process opening MLflow's store takes this lock around it (the tracking
    server's set-up and every registry client's): while one holds it, another cannot."""
    uri = f"sqlite:///{tmp_path / 'db' / 'slipway.db'}"
    with schema_lock(uri):
        assert _try_lock(tmp_path / "db") == "busy"
    assert _try_lock(tmp_path / "db") == "taken"
    assert list((tmp_path / "db").iterdir()) == []  # no lock file left behind
    with schema_lock("http://127.0.0.1:1"):  # a server's URI: nothing to lock
        pass


def _apps() -> tuple[FastAPI, Flask]:
    api = FastAPI()

    @api.get("/api/3.0/mlflow/native")
    def native() -> dict[str, str]:
        return {"served_by": "fastapi"}

    flask_app = Flask("rest")

    @flask_app.route("/api/2.0/mlflow/echo", methods=["GET", "POST", "OPTIONS"])
    def echo() -> Response:
        from flask import request

        return Response(b"flask:" + request.get_data(), headers={"X-Seen": "1"})

    @flask_app.route("/api/2.0/mlflow/big")
    def big() -> Response:
        return Response((b"x" * 65536 for _ in range(40)), mimetype="application/octet-stream")

    @flask_app.route("/elsewhere")
    def elsewhere() -> str:
        return "flask"

    # MLflow mounts Flask the same way; Starlette warns the bridge is deprecated.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
        from starlette.middleware.wsgi import WSGIMiddleware
    api.mount("/", WSGIMiddleware(flask_app.wsgi_app))
    return api, flask_app


def test_fast_path_serves_rest_calls_like_the_full_app() -> None:
    api, flask_app = _apps()
    front = tracking.RestFastPath(api, flask_app.wsgi_app, threads=2)
    taken: list[str] = []
    original = front.wsgi_app

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        taken.append(environ["PATH_INFO"])
        return original(environ, start_response)

    front.wsgi_app = spy

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=front)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [
                await client.post("/api/2.0/mlflow/echo", content=b"body"),
                await client.get("/api/3.0/mlflow/native"),
                await client.get("/elsewhere"),
                await client.post("/api/2.0/mlflow/echo", headers={"Origin": "http://t"}),
                await client.options("/api/2.0/mlflow/echo"),
                await client.get("/api/2.0/mlflow/big"),
            ]

    echo, native, elsewhere, with_origin, options, big = asyncio.run(calls())
    assert (echo.status_code, echo.content, echo.headers["x-seen"]) == (200, b"flask:body", "1")
    assert native.json() == {"served_by": "fastapi"}
    assert elsewhere.text == "flask"
    assert with_origin.content == b"flask:"
    assert options.status_code == 200
    assert big.content == b"x" * 65536 * 40  # streamed: larger than the buffer
    # Only the plain REST calls took the fast path; the rest went through the full app.
    assert taken == ["/api/2.0/mlflow/echo", "/api/2.0/mlflow/big"]


# ---------------------------------------------------------------- the real server


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Database, set[str]]]:
    """Settings and a Slipway-migrated database on each engine, before any MLflow start."""
    settings = load_settings(home=tmp_path / "home", database={"url": database_url})
    db = Database(database_url)
    ensure_schema(db)
    slipway_tables = set(inspect(db.engine).get_table_names())
    assert slipway_tables and all(t.startswith("slipway_") for t in slipway_tables)
    yield settings, db, slipway_tables
    db.dispose()


@pytest.fixture
def mlflow_globals(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test sets MLflow's process-wide state like user code: it starts from none (a
    fresh process's) and puts back what was there afterwards."""
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        # setenv first so that teardown also removes a variable that was absent before
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_globals")
def test_mlflow_client_end_to_end_over_http(
    served: tuple[Settings, Database, set[str]], tmp_path: Path
) -> None:
    settings, db, slipway_tables = served
    server = TrackingServer(settings, tmp_path / "server.log")
    try:
        server.wait_healthy()
        listening = [
            c.laddr
            for c in psutil.Process(server.process.pid).net_connections("tcp")
            if c.status == psutil.CONN_LISTEN
        ]
        assert [(a.ip, a.port) for a in listening] == [("127.0.0.1", server.port)]
        _check_ui_and_security(server.url)
        run_id = _user_code(server.url, tmp_path)
    finally:
        server.stop()
    assert server.process.returncode == 0, server.log.read_text()

    # The artifacts are files under Slipway's artifact root, written by the server's proxy.
    artifact_files = Path(settings.artifact_root, "mlflow").rglob("notes.txt")
    assert any(run_id in str(path) for path in artifact_files)

    # Both schemas live side by side, each with its own Alembic history.
    tables = set(inspect(db.engine).get_table_names())
    assert slipway_tables <= tables
    assert tables >= MLFLOW_TABLES
    assert current_revision(db) == head_revision()

    # A second start on the now-populated database: no migration, the data still there.
    again = TrackingServer(settings, tmp_path / "server2.log")
    try:
        again.wait_healthy()
        client = MlflowClient(again.url)
        assert client.get_run(run_id).data.params == {"C": "0.5", "solver": "lbfgs"}
        client.log_metric(run_id, "after_restart", 1.0)
        assert client.get_metric_history(run_id, "after_restart")[0].value == 1.0
    finally:
        again.stop()
    assert again.process.returncode == 0, again.log.read_text()
    assert set(inspect(db.engine).get_table_names()) == tables


def _check_ui_and_security(url: str) -> None:
    ui = requests.get(f"{url}/", timeout=10)
    assert ui.status_code == 200 and "<!doctype html>" in ui.text.lower()
    assert requests.get(f"{url}/health", timeout=10).text == "OK"
    # The REST fast path answers like MLflow's full stack (an Origin header forces the latter).
    path = f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    fast = requests.get(path, timeout=10)
    full = requests.get(path, headers={"Origin": url}, timeout=10)
    assert fast.status_code == full.status_code == 200
    assert fast.json() == full.json()
    # In MLflow's workspace mode (Slipway's workspaces are MLflow's) a workspace's
    # experiments keep their artifacts under workspaces/<workspace>/.
    location = fast.json()["experiment"]["artifact_location"]
    assert location == "mlflow-artifacts:/workspaces/default/0"
    assert fast.headers["x-content-type-options"] == full.headers["x-content-type-options"]
    # Host validation (DNS rebinding protection) still applies on the fast path.
    assert requests.get(path, headers={"Host": "evil.example"}, timeout=10).status_code == 403


def _user_code(url: str, tmp_path: Path) -> str:
    """What a user's training script does, unchanged; each step checked."""
    mlflow.set_tracking_uri(url)
    experiment_id = mlflow.create_experiment("churn")
    assert mlflow.get_experiment(experiment_id).artifact_location.startswith("mlflow-artifacts:")
    mlflow.set_experiment("churn")

    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    labels = np.array([0, 1, 0, 1])
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on four rows\n")
    with mlflow.start_run() as run:
        mlflow.log_params({"C": 0.5, "solver": "lbfgs"})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_artifact(str(notes))
        model = LogisticRegression(C=0.5).fit(features, labels)
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=features[:2], pip_requirements=["scikit-learn"]
        )
    run_id: str = run.info.run_id

    client = MlflowClient()
    logged = client.get_run(run_id)
    assert logged.data.params == {"C": "0.5", "solver": "lbfgs"}
    assert logged.data.metrics["loss"] == pytest.approx(1 / 3)
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [0, 1, 2]
    assert [a.path for a in client.list_artifacts(run_id)] == ["notes.txt"]
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="notes.txt", dst_path=str(tmp_path / "dl")
    )
    assert Path(downloaded).read_text() == "trained on four rows\n"

    version = mlflow.register_model(info.model_uri, "churn-model")
    assert version.version == "1"
    client.set_registered_model_alias("churn-model", "champion", version.version)
    assert client.get_model_version_by_alias("churn-model", "champion").version == "1"

    loaded = mlflow.pyfunc.load_model("models:/churn-model@champion")
    predictions = loaded.predict(features)
    assert list(predictions) == list(model.predict(features))
    return run_id
