"""Shared fixtures: settings in a temporary workspace, databases on both engines, Kafka topics.

The PostgreSQL, Redis and Kafka test services are started by ``scripts/services start`` (the
Makefile does it), which writes their URLs to ``.services/env``. A test that needs a service
that is not running fails with a message saying how to start it; nothing is skipped.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy.engine import make_url

from slipway.core.db import Database
from slipway.core.db.migrate import ensure_schema
from slipway.core.settings import Settings, load_settings
from slipway.services import Services
from slipway.workers.handlers import DEFAULT_QUEUES
from slipway.workers.worker import Worker
from tests.registry.second_platform import prod_platform  # noqa: F401  (a session fixture)
from tests.s3_server import BUCKET as S3_BUCKET
from tests.s3_server import client_env, s3_server
from tests.shared_platform import shared_platform  # noqa: F401  (a session fixture)

REPO = Path(__file__).resolve().parents[1]

# xdist's workers inherit LINES and COLUMNS; Rich fixes a console's size for good when both
# are set as it is created (at import), so the CLI tests' COLUMNS=200 would not apply.
for _size in ("LINES", "COLUMNS"):
    os.environ.pop(_size, None)

# Starlette's TestClient calls the server "testserver"; the control plane answers only
# loopback names and those configured (slipway.api.hosts), so the tests configure it. Set
# here as well as per test: session- and module-scoped platforms load their settings
# before any test's own environment is in place.
ALLOWED_HOSTS = ("SLIPWAY_SERVER__ALLOWED_HOSTS", "testserver")
os.environ[ALLOWED_HOSTS[0]] = ALLOWED_HOSTS[1]


# The test files that take longest, longest first (their share of `make test`'s slowest
# phases; BENCHMARKS.md lists them). xdist hands out whole groups (a file, or the Ray
# group below) in collection order, so a long file drawn last by the random order leaves
# one worker busy for minutes while the other idles; scheduled first, they overlap with
# the short ones.
LONGEST_FIRST = (
    "tests/e2e/test_demo.py",
    "tests/workers/test_ray_executor.py",
    "tests/workers/test_executor_conformance.py",
    "tests/api/test_fuzz.py",
    "tests/serving/test_gateway_process.py",
    "tests/tuning/test_tuning.py",
    "tests/training/test_jobs.py",
    "tests/chaos/test_kafka_restart.py",
    "tests/pipelines/test_champion_challenger.py",
    "tests/pipelines/test_recovery.py",
    "tests/batch/test_batch.py",
    "tests/cli/test_up.py",
    "tests/features/test_ingest_crash.py",
)


RAY_GROUP = "ray"


class _Groups:
    """One xdist group per test file (``--dist loadgroup``: what ``loadfile`` does, so a
    file's module-scoped platform is built once), except that every test needing the Ray
    head runs in one group: each worker that ran one would otherwise start its own head
    (20-30 s, and its daemons' CPU for the rest of the run). A plugin of its own, as its
    hook must run before xdist's and the ordering hook below after every other."""

    @pytest.hookimpl(tryfirst=True)  # before xdist names each test's group from its mark
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        root = config.rootpath
        for item in items:
            group = RAY_GROUP if item.get_closest_marker("ray") else item.path.relative_to(root)
            item.add_marker(pytest.mark.xdist_group(str(group)))


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Groups(), "slipway-xdist-groups")


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle, which it keeps otherwise
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    root = config.rootpath

    def key(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(root).as_posix(), len(rank))

    items.sort(key=key)  # stable: each file's items stay together, in their random order


def _service_env() -> dict[str, str]:
    path = Path(os.environ.get("SLIPWAY_SERVICES_DIR", REPO / ".services")) / "env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                values[key.strip()] = value.strip()
    values.update({k: v for k, v in os.environ.items() if k.startswith("SLIPWAY_TEST_")})
    return values


def service_url(name: str) -> str:
    """The URL of a running test service, or a test failure telling how to start it."""
    key = f"SLIPWAY_TEST_{name.upper()}_URL"
    url = _service_env().get(key)
    if not url:
        pytest.fail(f"{key} is not set: start the test services with `scripts/services start`")
    return url


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own settings: drop SLIPWAY_* and run in tmp_path."""
    for key in list(os.environ):
        if key.startswith("SLIPWAY_") and not key.startswith("SLIPWAY_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SLIPWAY_CONFIG", str(tmp_path / "slipway.yaml"))
    monkeypatch.setenv(*ALLOWED_HOSTS)  # for TestClient (see above)


@pytest.fixture(autouse=True)
def _mlflow_uris_restored() -> Iterator[None]:
    """A test that calls ``mlflow.set_tracking_uri`` or ``mlflow.set_registry_uri`` (as a
    user's script does) must not point the next test in the same process at its server or
    database: MLflow keeps each URI in a module global, which wins over the environment
    variable, and writes the variable too. (A registry URI left behind by one test once
    sent another test's ``register_model`` straight to a database instead of its server.)"""
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    saved = {
        (tracking, "_tracking_uri", "MLFLOW_TRACKING_URI"): tracking._tracking_uri,
        (registry, "_registry_uri", "MLFLOW_REGISTRY_URI"): registry._registry_uri,
    }
    saved_env = {env: os.environ.get(env) for (_, _, env) in saved}
    yield
    for (module, attribute, env), value in saved.items():
        setattr(module, attribute, value)
        if saved_env[env] is None:
            os.environ.pop(env, None)
        else:
            os.environ[env] = saved_env[env]  # type: ignore[assignment]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home")


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a brand-new, empty database on the PostgreSQL test service, dropped
    (with any connection left to it) afterwards."""
    base = make_url(service_url("postgres"))
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database, dropped after the test."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meta.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty metadata database on each engine in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated metadata database on each engine in turn."""
    database = Database(database_url)
    ensure_schema(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    """A migrated metadata database on SQLite only, for tests of SQLite's own locking."""
    database = Database(sqlite_url)
    ensure_schema(database)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local S3 server (``tests/s3_server.py``) with the bucket ``slipway-test``; the
    process environment points botocore, s3fs and delta-rs at it while the session runs."""
    import boto3

    log = tmp_path_factory.mktemp("s3") / "server.log"
    with s3_server(log) as endpoint:
        env = client_env(endpoint)
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            boto3.client("s3").create_bucket(Bucket=S3_BUCKET)
            yield endpoint
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def s3_root(s3_endpoint: str) -> Iterator[str]:
    """A fresh ``s3://slipway-test/<random>`` prefix, removed afterwards."""
    import s3fs

    prefix = f"{S3_BUCKET}/{uuid.uuid4().hex}"
    yield f"s3://{prefix}"
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)


@pytest.fixture
def kafka_bootstrap() -> str:
    """The test broker's bootstrap address (``127.0.0.1:PORT``)."""
    return service_url("kafka")


@pytest.fixture
def kafka_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, uniquely named topic on the test broker, deleted after the test. One partition;
    for more, parametrize indirectly: ``@pytest.mark.parametrize("kafka_topic", [3],
    indirect=True)``."""
    partitions = int(getattr(request, "param", 1))
    name = f"test-{uuid.uuid4().hex[:16]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)], request_timeout=30
    )
    created[name].result(timeout=30)
    yield name
    admin.delete_topics([name], request_timeout=30)[name].result(timeout=30)


@pytest.fixture
def workers(services: Services) -> Iterator[None]:
    """Two in-process workers on the test module's ``services`` (each step, job or trial
    still runs in a process of its own)."""
    pool = [Worker(services, queues=DEFAULT_QUEUES, worker_id=f"w{n}") for n in range(2)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in pool]
    for thread in threads:
        thread.start()
    yield
    for worker in pool:
        worker.stopping.set()
    for thread in threads:
        thread.join(timeout=60)
