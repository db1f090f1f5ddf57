"""Run MLflow's tracking server and UI on Slipway's database and artifact root, fast.

MLflow keeps its tables (and its own ``alembic_version``) in Slipway's metadata database,
next to Slipway's ``slipway_*`` tables, and its artifacts under ``<artifact_root>/mlflow``,
proxied by the server (``--serve-artifacts``) so remote clients log artifacts over HTTP.
The REST API and the UI are MLflow's own: ``mlflow.server.fastapi_app:app``, unmodified.

Why Slipway launches it itself rather than running ``mlflow server`` (measured by
``bench/tracking.py``; causes and figures in ``bench/tracking_results.md``):

- **Nagle's algorithm on every connection** (~40 ms per keep-alive request). With
  ``--workers`` > 1 (``mlflow server`` uses 4) uvicorn binds the socket itself as
  ``socket.socket(AF_INET)``, whose ``proto`` is 0, and asyncio turns on ``TCP_NODELAY``
  only for sockets whose ``proto`` is ``IPPROTO_TCP``. uvicorn writes a response's headers
  and body separately, so the body waits for the client's delayed ACK.
  :func:`listening_socket` fixes the socket.
- **An fsync per commit** (~20 ms per ``log_metric`` on SQLite). MLflow opens SQLite with
  the rollback journal and ``synchronous=FULL`` and commits twice per call.
  :func:`install_sqlite_pragmas` gives MLflow's connections WAL and ``synchronous=NORMAL``.
- **The ASGI layers in front of Flask** (~40% of the server's CPU per call). MLflow wraps its
  Flask app in FastAPI: two no-op ``BaseHTTPMiddleware`` layers, security middleware that
  Flask repeats, a router, and an ASGI-to-WSGI bridge with a task group and a memory stream.
  :class:`RestFastPath` hands plain REST calls straight to Flask on a thread pool.
- **Processes nobody asked for.** ``mlflow server`` also starts a job runner and seven huey
  consumers (~2 GB of memory) for GenAI jobs; they are not started here.

``python -m slipway.tracking.server --host H --port P`` is the process the supervisor runs
(:func:`server_argv`, :func:`tracking_process`). It reads MLflow's configuration from the
environment :func:`tracking_env` builds, or from Slipway's settings when that is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import logging
import os
import signal
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slipway.core.errors import SlipwayError
from slipway.core.net import listening_socket
from slipway.core.settings import LOOPBACK_HOSTS, load_settings
from slipway.core.tls import server_context
from slipway.runtime.exit import exit_now
from slipway.tracking import metrics as fast_metrics
from slipway.tracking.config import (
    ARTIFACT_ROOT_VAR,
    BACKEND_STORE_URI_VAR,
    BUSY_TIMEOUT_VAR,
    DEFAULT_HOST,
    DEFAULT_PORT,
    FAST_PATH_VAR,
    REGISTRY_STORE_URI_VAR,
    SERVER_BOOT_ID_VAR,
    install_sqlite_pragmas,
    tracking_env,
)
from slipway.tracking.schema_lock import schema_lock

log = logging.getLogger("slipway.tracking")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# MLflow's app alone (with the fast path); Slipway runs it behind its gate instead.
APP_FACTORY = "slipway.tracking.server:create_app"
_REST_PREFIXES = ("/api/2.0/mlflow/", "/api/2.0/preview/mlflow/", "/api/3.0/mlflow/")
_WSGI_DEPRECATION = r"starlette\.middleware\.wsgi is deprecated"
# Responses up to this size are buffered and sent in one piece; larger ones are streamed.
_BUFFER_LIMIT = 1024 * 1024


class RestFastPath:
    """An ASGI app in front of MLflow's: plain REST calls go straight to the Flask app.

    MLflow's FastAPI app reaches its Flask app, which serves the REST API, through several
    middlewares and a bridge that cost more CPU than many handlers. For the requests where
    every one of those layers is a no-op, this calls Flask directly on a thread pool:

    - the path is under ``/api/2.0/mlflow/``, ``/api/2.0/preview/mlflow/`` or
      ``/api/3.0/mlflow/`` and no FastAPI-native route of MLflow's matches it, even partially
      (so the FastAPI router would hand it to Flask too);
    - the method is not ``OPTIONS`` and there is no ``Origin`` header (CORS answers neither);
    - host validation, cross-origin blocking and security headers are done by Flask's own
      hooks, which MLflow installs alongside the FastAPI ones with the same settings.

    Everything else, UI and browser calls included, goes to MLflow's app unchanged. The
    environ is built by Starlette's ``build_environ`` exactly as MLflow's bridge builds it,
    the call runs in a copy of the request's context, and header names are lower-cased
    the same way, so clients see the same responses.
    """

    def __init__(self, app: ASGIApp, wsgi_app: WSGIApp, *, threads: int = 40) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        routes: list[BaseRoute] = list(getattr(app, "routes", []))
        self._native = [route for route in routes if not isinstance(route, Mount)]
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="mlflow-rest")
        self._flask_only = functools.lru_cache(maxsize=4096)(self._flask_only_uncached)
        # The environ MLflow's own bridge builds. Starlette's module warns that it is
        # deprecated (MLflow imports it all the same): imported here, quietly.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_WSGI_DEPRECATION)
            from starlette.middleware.wsgi import build_environ
        self._build_environ: Callable[[Scope, bytes], dict[str, Any]] = build_environ

    def _flask_only_uncached(self, method: str, path: str) -> bool:
        scope: Scope = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "headers": [],
            "query_string": b"",
        }
        return all(route.matches(scope)[0] is Match.NONE for route in self._native)

    def _takes(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            return False
        path: str = scope["path"]
        if not path.startswith(_REST_PREFIXES):
            return False
        if any(name == b"origin" for name, _ in scope["headers"]):
            return False
        return self._flask_only(scope["method"], path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._takes(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more_body = message.get("more_body", False)
        environ = self._build_environ(scope, b"".join(chunks))
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        response = _WsgiResponse(loop, send)
        await loop.run_in_executor(self._pool, context.run, response.run, self.wsgi_app, environ)
        if not response.streamed:
            await send(response.start_message())
            await send({"type": "http.response.body", "body": b"".join(response.body)})


class _WsgiResponse:
    """One WSGI call, run on a worker thread: buffered up to ``_BUFFER_LIMIT``, then sent
    to the event loop chunk by chunk."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send: Send) -> None:
        self.loop = loop
        self.send = send
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.streamed = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and self.streamed:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = int(status.split(" ", 1)[0])
        self.headers = [
            (name.strip().encode("ascii").lower(), value.strip().encode("ascii"))
            for name, value in headers
        ]
        return self.write

    def start_message(self) -> Message:
        return {"type": "http.response.start", "status": self.status, "headers": self.headers}

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self.streamed and self.size + len(chunk) <= _BUFFER_LIMIT:
            self.body.append(chunk)
            self.size += len(chunk)
            return
        if not self.streamed:
            self.streamed = True
            self._send(self.start_message())
            self._send(
                {"type": "http.response.body", "body": b"".join(self.body), "more_body": True}
            )
            self.body = []
        self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    def run(self, wsgi_app: WSGIApp, environ: dict[str, Any]) -> None:
        result = wsgi_app(environ, self.start_response)
        try:
            for chunk in result:
                self.write(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if self.streamed:
            self._send({"type": "http.response.body", "body": b""})

    def _send(self, message: Message) -> None:
        async def deliver() -> None:
            await self.send(message)

        asyncio.run_coroutine_threadsafe(deliver(), self.loop).result()


def initialize_stores() -> None:
    """Create or upgrade MLflow's tables (its own Alembic history) and default experiment
    from the environment :func:`tracking_env` sets, once, before the server serves.

    A no-op on an up-to-date database; Slipway's tables, if any, are left alone."""
    # mlflow.server is heavy and reads the environment at import: imported only here.
    from mlflow.server.handlers import initialize_backend_stores

    store = os.environ[BACKEND_STORE_URI_VAR]
    with schema_lock(store):
        initialize_backend_stores(
            store, os.environ[REGISTRY_STORE_URI_VAR], os.environ[ARTIFACT_ROOT_VAR]
        )


def create_app() -> ASGIApp:
    """The ASGI app of one server process (a uvicorn factory, so that each worker process
    installs the SQLite tuning before MLflow opens its database): MLflow's FastAPI app, with
    :class:`RestFastPath` in front unless ``_SLIPWAY_TRACKING_FAST_PATH=0`` asks for MLflow's
    app alone. Workspaces need nothing of the FastAPI layer: Flask's own hook resolves the
    request's workspace (``X-MLFLOW-WORKSPACE``) when FastAPI's middleware did not."""
    install_sqlite_pragmas(int(os.environ.get(BUSY_TIMEOUT_VAR, "30000")))
    # MLflow's module warns (a UserWarning) that Starlette's WSGI bridge is deprecated: a
    # note for MLflow's developers, not for whoever starts the server.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_WSGI_DEPRECATION)
        from mlflow.server import app as flask_app
        from mlflow.server.fastapi_app import app as fastapi_app

    mlflow_app: ASGIApp = fastapi_app
    if os.environ.get(FAST_PATH_VAR, "1") == "0":
        return mlflow_app
    fast_metrics.install()
    return RestFastPath(mlflow_app, flask_app.wsgi_app)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m slipway.tracking.server",
        description="MLflow's tracking server and UI on Slipway's database and artifact root.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--log-level", default="warning", help="uvicorn's (default warning)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser.parse_args(argv)


def _exit_cleanly(_signum: int, _frame: object) -> None:
    """A stop was asked for: exit with status 0. uvicorn, after its graceful shutdown,
    raises the signal again for the handler it found, which is this one."""
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None, *, factory: str = APP_FACTORY) -> int:
    """Run the tracking server until SIGTERM or SIGINT; returns the exit status.

    ``factory`` is the ``module:function`` building each process's app: Slipway's face
    puts its gate in front (:mod:`slipway.api.tracking`), and that is what Slipway runs."""
    # uvicorn is only needed here: importing this module stays cheap.
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    args = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = load_settings()
        if BACKEND_STORE_URI_VAR not in os.environ:
            os.environ.update(tracking_env(settings))
        server_context(settings.tls)  # a wrong path or key: refused before listening
        sock = listening_socket(args.host, args.port)
    except SlipwayError as exc:
        print(f"slipway tracking: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"slipway tracking: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    os.environ.setdefault(SERVER_BOOT_ID_VAR, uuid.uuid4().hex)
    if factory == APP_FACTORY and args.host not in LOOPBACK_HOSTS:
        log.warning(
            "MLflow's server has no authentication: anyone reaching %s can use it", args.host
        )
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _exit_cleanly)
    install_sqlite_pragmas(int(os.environ.get(BUSY_TIMEOUT_VAR, "30000")))
    initialize_stores()
    config = uvicorn.Config(
        factory,
        factory=True,
        host=args.host,
        port=port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
        timeout_graceful_shutdown=5,
        ssl_certfile=settings.tls.cert_file,
        ssl_keyfile=settings.tls.key_file,
    )
    scheme = settings.tls.scheme
    print(f"slipway tracking: MLflow on {scheme}://{args.host}:{port}", file=sys.stderr, flush=True)
    if args.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return 0
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1


if __name__ == "__main__":
    exit_now(main())
