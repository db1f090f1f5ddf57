"""How Slipway runs MLflow's tracking server: store URIs, environment, process spec, and
SQLite tuning for MLflow's engines. Light to import (no MLflow, no ASGI): the registry and
the supervisor use it; :mod:`slipway.tracking.server` is the server itself.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine, event

from slipway.core.db.engine import normalize_url
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import Settings
from slipway.core.workspace import DEFAULT_WORKSPACE
from slipway.runtime.supervisor import ProcessSpec

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
ARTIFACTS_FOLDER = "mlflow"

# The variables ``mlflow server`` hands its workers (``mlflow.server.constants`` and
# ``mlflow.environment_variables``). Spelled out because importing ``mlflow.server`` builds
# the Flask app and reads them, so they must be set before anything from it is imported.
BACKEND_STORE_URI_VAR = "_MLFLOW_SERVER_FILE_STORE"
REGISTRY_STORE_URI_VAR = "_MLFLOW_SERVER_REGISTRY_STORE"
ARTIFACT_ROOT_VAR = "_MLFLOW_SERVER_ARTIFACT_ROOT"
SERVE_ARTIFACTS_VAR = "_MLFLOW_SERVER_SERVE_ARTIFACTS"
ARTIFACTS_DESTINATION_VAR = "_MLFLOW_SERVER_ARTIFACT_DESTINATION"
SERVER_BOOT_ID_VAR = "_MLFLOW_SERVER_BOOT_ID"
WORKSPACES_VAR = "MLFLOW_ENABLE_WORKSPACES"
WORKSPACE_VAR = "MLFLOW_WORKSPACE"
# Slipway's own, read by every server process (a uvicorn worker is a fresh interpreter).
BUSY_TIMEOUT_VAR = "_SLIPWAY_TRACKING_BUSY_TIMEOUT_MS"
FAST_PATH_VAR = "_SLIPWAY_TRACKING_FAST_PATH"
# The tracking server Slipway runs: MLflow's behind Slipway's tokens and registry rules
# (a face of the platform, named here and never imported).
GATED_SERVER_MODULE = "slipway.api.tracking"
# Runs log artifacts through the server's proxy: ``mlflow-artifacts:/<experiment>/<run>/...``.
PROXIED_ARTIFACT_ROOT = "mlflow-artifacts:/"


def backend_store_uri(database_url: str) -> str:
    """MLflow's backend store URI for Slipway's metadata database URL.

    ``sqlite:///path`` is kept; ``postgresql://`` and ``postgres://`` get the psycopg 3
    driver (``postgresql+psycopg://``), which MLflow's SQLAlchemy store accepts (psycopg2,
    SQLAlchemy's default PostgreSQL driver, is not a Slipway dependency). Anything else
    raises :class:`InvalidInput`.
    """
    uri = normalize_url(database_url)
    backend = uri.split(":", 1)[0].split("+", 1)[0]
    if backend not in {"sqlite", "postgresql"}:
        raise InvalidInput(
            "MLflow's backend store must be sqlite or postgresql", field="database.url"
        )
    return uri


def artifacts_destination(artifact_root: str) -> str:
    """Where the server keeps MLflow's artifacts: the ``mlflow`` folder of the artifact root.

    A local root gives an absolute path; a URI root (``s3://bucket/x``) gives a URI below it,
    handled by MLflow's artifact repository for that scheme. ``memory://`` roots are refused:
    the server is a process of its own and could share nothing through them.
    """
    if "://" in artifact_root:
        if artifact_root.startswith("memory://"):
            raise InvalidInput(
                "MLflow's server cannot keep artifacts in memory://; use a folder or an"
                " object store",
                field="artifacts.root",
            )
        return f"{artifact_root.rstrip('/')}/{ARTIFACTS_FOLDER}"
    return str(Path(artifact_root).expanduser().resolve() / ARTIFACTS_FOLDER)


def tracking_env(settings: Settings) -> dict[str, str]:
    """The environment of the tracking server process, as ``mlflow server`` would set it.

    Backend and registry store on Slipway's database, artifacts served by the server from
    :func:`artifacts_destination`, job execution off and workspaces on (Slipway's
    workspaces are MLflow's: :func:`enable_mlflow_workspaces`); on PostgreSQL the
    connection pool is sized like Slipway's. The database URL (and any password in it)
    travels here rather than on the command line, where ``ps`` would show it.
    """
    store = backend_store_uri(settings.database_url)
    env = {
        # The platform the gate in front of MLflow checks tokens against and registers in.
        **settings.as_env(),
        BACKEND_STORE_URI_VAR: store,
        REGISTRY_STORE_URI_VAR: store,
        ARTIFACT_ROOT_VAR: PROXIED_ARTIFACT_ROOT,
        SERVE_ARTIFACTS_VAR: "true",
        ARTIFACTS_DESTINATION_VAR: artifacts_destination(settings.artifact_root),
        "_MLFLOW_SGI_NAME": "uvicorn",
        "_MLFLOW_IN_JOB_EXECUTOR": "false",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        WORKSPACES_VAR: "true",
        BUSY_TIMEOUT_VAR: str(settings.database.busy_timeout_ms),
    }
    if store.startswith("postgresql"):
        env["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"] = str(settings.database.pool_size)
        env["MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"] = str(settings.database.pool_size)
    return env


def server_argv(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, workers: int = 1
) -> list[str]:
    """The command that runs the tracking server, behind Slipway's gate; its environment
    comes from :func:`tracking_env` (or, when that is absent, from Slipway's settings)."""
    return [
        sys.executable,
        "-m",
        GATED_SERVER_MODULE,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def tracking_process(
    settings: Settings,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    workers: int = 1,
    essential: bool = False,
) -> ProcessSpec:
    """The supervisor's spec for the tracking server: :func:`server_argv` run with
    :func:`tracking_env`."""
    return ProcessSpec(
        "tracking",
        server_argv(host, port, workers=workers),
        essential=essential,
        env=tracking_env(settings),
    )


class _SqlitePragmas:
    """A ``connect`` listener giving each SQLite connection a busy timeout, WAL and
    ``synchronous=NORMAL``; connections to other databases are left alone."""

    def __init__(self, busy_timeout_ms: int) -> None:
        self.busy_timeout_ms = busy_timeout_ms

    def __call__(self, dbapi_conn: Any, _record: Any) -> None:
        if not isinstance(dbapi_conn, sqlite3.Connection):
            return
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()


_pragmas: _SqlitePragmas | None = None


def install_sqlite_pragmas(busy_timeout_ms: int = 30_000) -> None:
    """Tune every SQLite connection any SQLAlchemy engine of this process opens from now on.

    MLflow builds its engines when its stores are first used, so this runs before that.
    Commits then append to the write-ahead log without waiting for the disk: a power loss
    may drop the last commits but never corrupts the file, the trade Slipway's own engine
    makes. WAL is a property of the file and lets Slipway read while MLflow writes.
    Idempotent; a second call only changes the busy timeout.
    """
    global _pragmas
    if _pragmas is None:
        _pragmas = _SqlitePragmas(busy_timeout_ms)
        event.listen(Engine, "connect", _pragmas)
    else:
        _pragmas.busy_timeout_ms = busy_timeout_ms


def enable_mlflow_workspaces() -> None:
    """Put this process's MLflow in workspace mode, before it opens a store.

    Slipway's workspaces are MLflow's (experiments and registered models belong to one;
    names are unique within it), and a store opened without the mode refuses a database
    holding another workspace's experiments. MLflow's calls then need a workspace: Slipway's
    own run inside :meth:`~slipway.registry.mlflow_store.MlflowStore.scope`, and code that
    names none (a user's ``mlflow`` calls in this process) gets the default one, as a
    client of the server without ``MLFLOW_WORKSPACE`` does."""
    os.environ[WORKSPACES_VAR] = "true"
    os.environ.setdefault(WORKSPACE_VAR, DEFAULT_WORKSPACE)


def user_tracking_uri(settings: Settings) -> str:
    """The ``MLFLOW_TRACKING_URI`` to give user code (jobs, steps, trials): the tracking
    server when this process was started by ``slipway up`` (which sets it), otherwise
    MLflow's store on the metadata database directly."""
    return os.environ.get("MLFLOW_TRACKING_URI") or backend_store_uri(settings.database_url)


TOKEN_VAR = "MLFLOW_TRACKING_TOKEN"


def user_tracking_env(settings: Settings, workspace: str = DEFAULT_WORKSPACE) -> dict[str, str]:
    """``MLFLOW_TRACKING_URI`` (:func:`user_tracking_uri`) and, when this process has one,
    the ``MLFLOW_TRACKING_TOKEN`` the tracking server asks for with auth on: what user
    code a job, step or trial runs needs to log to the platform's MLflow, in
    ``workspace`` (``MLFLOW_WORKSPACE``; workspace mode for a store opened directly)."""
    env = {
        "MLFLOW_TRACKING_URI": user_tracking_uri(settings),
        WORKSPACES_VAR: "true",
        WORKSPACE_VAR: workspace,
    }
    if os.environ.get(TOKEN_VAR):
        env[TOKEN_VAR] = os.environ[TOKEN_VAR]
    return env


_WILDCARDS = ("0.0.0.0", "::", "")
_LOOPBACKS = ("127.0.0.1", "localhost", "::1")


def public_tracking_uri(settings: Settings, *, reached_at: str | None = None) -> str:
    """The MLflow tracking URI users should log to, wherever their code runs: the tracking
    server's ``http(s)://`` URL, never the metadata database's (which holds a password and
    is not reachable from a laptop).

    An ``http(s)`` ``MLFLOW_TRACKING_URI`` in the environment wins (``slipway up`` sets it
    for every process it starts; an operator sets it for a server run elsewhere); otherwise
    the server of ``settings.tracking``. When that server listens on every interface and
    the URI names loopback, ``reached_at`` — the host a remote caller reached the control
    plane at — replaces it, since that is the machine the server runs on. No tracking
    server (``tracking.enabled`` false, no URL given) is a :class:`NotFound`."""
    configured = os.environ.get("MLFLOW_TRACKING_URI", "")
    tracking = settings.tracking
    if configured.startswith(("http://", "https://")):
        uri = configured.rstrip("/")
    elif tracking.enabled:
        host = DEFAULT_HOST if tracking.host in _WILDCARDS else tracking.host
        uri = f"{settings.tls.scheme}://{_bracketed(host)}:{tracking.port}"
    else:
        raise NotFound(
            "this platform runs no MLflow tracking server: tracking.enabled is false and"
            " MLFLOW_TRACKING_URI names no http(s) server"
        )
    parts = urlsplit(uri)
    host = parts.hostname or DEFAULT_HOST
    if (
        reached_at
        and tracking.host in _WILDCARDS
        and host in _LOOPBACKS
        and reached_at not in _LOOPBACKS
    ):
        host = reached_at
    # Rebuilt from host and port alone: a user:password part is never handed out.
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{_bracketed(host)}{port}"))


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
