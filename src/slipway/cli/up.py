"""``slipway up`` (everything), ``slipway server`` (control plane), ``slipway worker``.

Each command imports the plane it runs when it runs (the control plane's app, the
gateway, the worker's handlers, MLflow's server): loading the CLI loads none of them, so
``slipway --help``, every other command and each process ``slipway up`` starts pay only
for their own plane (tests/cli/test_cli_imports.py).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError

from slipway.api import API_PREFIX
from slipway.cli.context import local_platform, reported, settings_or_exit
from slipway.cli.output import console, errors
from slipway.core.errors import BackendUnavailable, InvalidInput
from slipway.core.settings import LOOPBACK_HOSTS, Settings
from slipway.core.tls import client_verify, server_context
from slipway.runtime.exit import Stopped, exit_now, stop_on_sigterm
from slipway.runtime.supervisor import ProcessSpec, Supervisor

if TYPE_CHECKING:
    from slipway.security.resources import Token
    from slipway.services import Services
    from slipway.workers.ray_executor import RayWorker


def _server_settings(settings: Settings, host: str | None, port: int | None) -> Settings:
    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    return settings


def server(
    host: str | None = typer.Option(None, help="address to bind (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="port (default 8420)"),
) -> None:
    """Run the control plane (REST API and OpenAPI) in this process."""
    # Lazy (module docstring): the control plane's app and every capability behind it.
    import uvicorn

    from slipway.api.app import create_app
    from slipway.api.auth import check_bind_safety
    from slipway.services import Services

    settings = _server_settings(settings_or_exit(), host, port)
    with reported():
        check_bind_safety(settings.server)
        server_context(settings.tls)  # a wrong path or key: refused before listening
        services = Services.open(settings)
    # What the process loads lives as long as it: kept out of the collector's full passes,
    # which otherwise stall a request every few dozen (slipway.api.heap).
    app = create_app(services, freeze_heap=True)
    stop_on_sigterm()
    try:
        uvicorn.run(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_level="warning",
            timeout_graceful_shutdown=5,
            ssl_certfile=settings.tls.cert_file,
            ssl_keyfile=settings.tls.key_file,
        )
    except Stopped:
        pass  # SIGTERM after uvicorn's graceful stop: ours follows
    finally:
        services.close()
    exit_now(0)


def _override(settings: Settings, field: str, apply: Callable[[], None]) -> None:
    """Apply a command-line flag to the settings with the settings' own validation."""
    try:
        apply()
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise InvalidInput(f"invalid setting {field}: {message}", field=field) from None


def _worker_settings(
    settings: Settings, executor: str | None, address: str | None, max_in_flight: int | None
) -> Settings:
    workers, ray_settings = settings.workers, settings.ray
    if executor is not None:
        _override(settings, "workers.executor", lambda: setattr(workers, "executor", executor))
    if address is not None:
        _override(settings, "ray.address", lambda: setattr(ray_settings, "address", address))
    if max_in_flight is not None:
        _override(
            settings,
            "workers.ray_max_in_flight",
            lambda: setattr(workers, "ray_max_in_flight", max_in_flight),
        )
    return settings


def _ray_worker(services: Services, queues: Sequence[str], worker_id: str | None) -> RayWorker:
    try:
        # Lazy: Ray is an optional extra (slipway[ray]), and heavy to import.
        from slipway.workers.ray_executor import RayWorker
    except ModuleNotFoundError as exc:
        if exc.name != "ray" and not (exc.name or "").startswith("ray."):
            raise
        raise BackendUnavailable("the Ray executor needs Ray: pip install 'slipway[ray]'") from None
    return RayWorker(services, queues=queues, worker_id=worker_id)


def worker(
    queue: list[str] | None = typer.Option(None, help="queues to serve (repeatable)"),
    worker_id: str | None = typer.Option(None, "--id", help="worker id (default host:pid)"),
    executor: str | None = typer.Option(
        None,
        help="local: run each item in this worker; ray: run items as tasks on a Ray"
        " cluster (default workers.executor)",
    ),
    ray_address: str | None = typer.Option(
        None,
        help="the Ray cluster: ray://host:10001 or host:6379 (default ray.address;"
        " unset: Ray on this machine)",
    ),
    ray_max_in_flight: int | None = typer.Option(
        None, min=1, help="items running on Ray at once (default: the cluster's CPUs)"
    ),
) -> None:
    """Run one worker: claim work from the queue and run it (or, with --executor ray,
    have a Ray cluster run it) until stopped."""
    # Lazy (module docstring): the worker and the handlers of every kind of work.
    from slipway.services import Services
    from slipway.workers.handlers import DEFAULT_QUEUES
    from slipway.workers.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = settings_or_exit()
    with reported():
        settings = _worker_settings(settings, executor, ray_address, ray_max_in_flight)
        services = Services.open(settings)
        try:
            queues = queue or DEFAULT_QUEUES
            if settings.workers.executor == "ray":
                ray_runner = _ray_worker(services, queues, worker_id)
                try:
                    ray_runner.warm_up()
                    # After joining the cluster: ray.init installs handlers of its own.
                    ray_runner.install_signal_handlers()
                    ray_runner.run()
                finally:
                    ray_runner.close()
            else:
                runner = Worker(services, queues=queues, worker_id=worker_id)
                runner.install_signal_handlers()
                runner.warm_up()
                runner.run()
        finally:
            services.close()
    exit_now(0)


def scheduler() -> None:
    """Run the scheduler: cron schedules and event triggers, until stopped."""
    # Lazy (module docstring): the scheduler's loop, and what it schedules.
    from slipway.workers.scheduler import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with local_platform() as services:
        run_scheduler(services, stop)
    exit_now(0)


def serve(
    host: str | None = typer.Option(None, help="address to bind (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="port (default 8422)"),
    workers: int | None = typer.Option(None, min=1, help="worker processes (at least)"),
    max_workers: int | None = typer.Option(None, min=1, help="scale up to this many"),
) -> None:
    """Run the gateway (data plane): every endpoint, in N worker processes."""
    # Lazy (module docstring): the gateway's master; its workers load the gateway itself.
    from slipway.services import Services
    from slipway.serving.gateway import server as gateway_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_or_exit()
    serving = settings.serving
    host = host or serving.host
    port = port if port is not None else serving.port
    count = workers or serving.workers
    with reported():
        Services.open(settings).close()  # migrate once, before the workers start
        code = gateway_server.serve(
            settings,
            host=host,
            port=port,
            workers=count,
            max_workers=max(count, max_workers or serving.max_workers),
        )
    exit_now(code)


def mlflow(
    host: str | None = typer.Option(None, help="address to bind (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="port (default 8421)"),
) -> None:
    """Run MLflow's tracking server and UI on Slipway's database and artifact root."""
    # Lazy (module docstring): MLflow's server, and the platform it migrates first.
    from slipway.api.tracking.serve import main as serve_tracking
    from slipway.services import Services
    from slipway.tracking.config import tracking_env

    settings = settings_or_exit()
    host = host or settings.tracking.host
    port = port if port is not None else settings.tracking.port
    with reported():
        Services.open(settings).close()  # Slipway's tables first, then MLflow adds its own
        os.environ.update(tracking_env(settings))
    exit_now(serve_tracking(["--host", host, "--port", str(port)]))


def _wait_healthy(
    urls: dict[str, str],
    supervisor: Supervisor,
    *,
    verify: ssl.SSLContext | bool,
    timeout: float,
) -> None:
    """Wait until every URL answers 200 (``verify``: the platform's certificate with TLS)."""
    # Lazy (module docstring): only `slipway up` asks its processes over HTTP.
    import httpx

    deadline = time.monotonic() + timeout
    waiting = dict(urls)
    while waiting and time.monotonic() < deadline:
        for name, url in list(waiting.items()):
            if supervisor.running[name].process.poll() is not None:
                raise BackendUnavailable(f"{name} exited during start-up")
            try:
                if httpx.get(url, timeout=2, verify=verify).status_code == 200:
                    del waiting[name]
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    if waiting:
        raise BackendUnavailable(f"{', '.join(waiting)} did not answer within {timeout:.0f} s")


# How long the token `slipway up` gives its own processes lives: it is revoked when the
# platform stops, and expires on its own if the platform is killed instead.
SERVICE_TOKEN_LIFETIME = timedelta(days=7)


def _service_token(settings: Settings) -> tuple[Token, str]:
    """An editor token for the platform's own processes and the user code they run (jobs,
    steps, trials log runs and models to MLflow): what an execution role is to SageMaker."""
    # Lazy (module docstring), as in up.
    from slipway.security.resources import Role
    from slipway.services import Services

    services = Services.open(settings, migrate=False)
    try:
        return services.tokens.create(
            f"slipway-up-{secrets.token_hex(4)}",
            Role.EDITOR,
            created_by="slipway up",
            expires_in=SERVICE_TOKEN_LIFETIME,
        )
    finally:
        services.close()


def _revoke(settings: Settings, token: Token) -> None:
    # Lazy (module docstring), as in up.
    from slipway.services import Services

    services = Services.open(settings, migrate=False)
    try:
        services.tokens.revoke(token.id, actor="slipway up")
    finally:
        services.close()


def _all_loopback(settings: Settings) -> bool:
    hosts = (settings.server.host, settings.tracking.host, settings.serving.host)
    return all(host in LOOPBACK_HOSTS for host in hosts)


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


def up(
    host: str | None = typer.Option(None, help="address to bind (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="control-plane port (default 8420)"),
    workers: int | None = typer.Option(None, min=0, help="local worker processes"),
    mlflow_port: int | None = typer.Option(None, help="MLflow tracking server port (8421)"),
    gateway_port: int | None = typer.Option(None, help="gateway (endpoints) port (8422)"),
    start_timeout: float = typer.Option(
        120.0,
        min=1,
        help="seconds every process has to answer before the start counts as failed"
        " (a busy or small machine needs more)",
    ),
) -> None:
    """Start the platform: control plane, MLflow, scheduler, gateway and a local worker
    pool. Ctrl-C stops it all."""
    # Lazy (module docstring): the platform, opened here only to migrate it; each plane
    # loads in the process that runs it.
    from slipway.api.auth import check_bind_safety
    from slipway.services import Services
    from slipway.tracking.config import TOKEN_VAR, tracking_process

    settings = _server_settings(settings_or_exit(), host, port)
    with reported():
        check_bind_safety(settings.server)
        server_context(settings.tls)  # a wrong path or key: refused before anything starts
        Services.open(settings).close()  # migrate once, before children race to do it
    if settings.server.auth and not settings.tls.enabled and not _all_loopback(settings):
        errors.print(
            "[yellow]warning:[/yellow] auth is on and the platform listens beyond loopback"
            " without TLS: tokens cross the network in clear. Set tls.cert_file and"
            " tls.key_file (SLIPWAY_TLS__CERT_FILE, SLIPWAY_TLS__KEY_FILE), or terminate TLS"
            " in front of every plane."
        )
    count = settings.workers.processes if workers is None else workers
    ray_executor = settings.workers.executor == "ray"
    if mlflow_port is not None:
        settings.tracking.port = mlflow_port
    if gateway_port is not None:
        settings.serving.port = gateway_port
    tracking = settings.tracking
    serving = settings.serving
    scheme = settings.tls.scheme
    gateway_url = f"{scheme}://{_reachable(serving.host)}:{serving.port}"
    tracking_url = f"{scheme}://{_reachable(tracking.host)}:{tracking.port}"
    env = settings.as_env()
    service_token: Token | None = None
    if tracking.enabled:
        # Every process Slipway starts, and the user code they run, logs to the server;
        # with auth on, with a token of the platform's own, revoked when it stops.
        env["MLFLOW_TRACKING_URI"] = tracking_url
        if settings.server.auth:
            service_token, env[TOKEN_VAR] = _service_token(settings)
        if settings.tls.cert_file:
            # MLflow's client in every process trusts the platform's certificate.
            env["MLFLOW_TRACKING_SERVER_CERT_PATH"] = settings.tls.cert_file
    python = [sys.executable, "-m", "slipway"]
    specs = [
        ProcessSpec(
            "control-plane",
            [
                *python,
                "server",
                "--host",
                settings.server.host,
                "--port",
                str(settings.server.port),
            ],
            essential=True,
            env=env,
        ),
        *(
            [tracking_process(settings, tracking.host, tracking.port, essential=True)]
            if tracking.enabled
            else []
        ),
        ProcessSpec("scheduler", [*python, "scheduler"], env=env),
        *(
            [
                ProcessSpec(
                    "gateway",
                    [*python, "serve", "--host", serving.host, "--port", str(serving.port)],
                    essential=True,
                    env=env,
                )
            ]
            if serving.enabled
            else []
        ),
        *(
            # One Ray executor replaces the local pool: the cluster runs the items.
            [
                ProcessSpec(
                    "worker-ray", [*python, "worker", "--executor", "ray", "--id", "ray-0"], env=env
                )
            ]
            if ray_executor and count
            else (
                ProcessSpec(f"worker-{n}", [*python, "worker", "--id", f"local-{n}"], env=env)
                for n in range(count)
            )
        ),
    ]
    supervisor = Supervisor(specs)
    supervisor.install_signal_handlers()
    supervisor.start()
    base_url = f"{scheme}://{_reachable(settings.server.host)}:{settings.server.port}"
    checks = {"control-plane": f"{base_url}{API_PREFIX}/health/live"}
    if tracking.enabled:
        checks["tracking"] = f"{tracking_url}/health"
    if serving.enabled:
        checks["gateway"] = f"{gateway_url}/ping"
    try:
        _wait_healthy(checks, supervisor, verify=client_verify(settings.tls), timeout=start_timeout)
    except BackendUnavailable as exc:
        errors.print(f"[red]error:[/red] {exc.message}")
        supervisor.stop()
        raise typer.Exit(1) from None
    console.print("[bold green]Slipway is up[/bold green]")
    sign_in = " (sign in with an API token)" if settings.server.auth else ""
    console.print(f"  console        {base_url}/{sign_in}")
    console.print(f"  control plane  {base_url}{API_PREFIX}")
    console.print(f"  API docs       {base_url}{API_PREFIX}/docs")
    if tracking.enabled:
        console.print(f"  MLflow         {tracking_url}")
    if serving.enabled:
        console.print(f"  gateway        {gateway_url}/endpoints/<name>/invocations")
    console.print(f"  health         {base_url}{API_PREFIX}/health")
    if ray_executor and count:
        where = settings.ray.address or "Ray on this machine"
        console.print(f"  workers        a Ray executor ({where}), and a scheduler")
    else:
        console.print(f"  workers        {count} local process(es), and a scheduler")
    console.print(f"  home           {settings.home}")
    console.print("[dim]Ctrl-C to stop[/dim]")
    sys.stdout.flush()
    code = supervisor.watch()
    if service_token is not None:
        with reported():
            _revoke(settings, service_token)
    console.print("Slipway stopped")
    exit_now(code)
