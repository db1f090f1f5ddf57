"""Overload: one endpoint's measured capacity, then an open-loop load at 1x and 2x of it.

One gateway worker serves one LightGBM endpoint. First a closed loop (every connection
sends its next request as soon as the last is answered, enough connections to keep the
worker's queue full) measures its capacity. Then an open loop offers requests at a
constant arrival rate, whatever the answers do, for ``--duration`` seconds at 1x and 2x
that capacity; and once more at 2x with shedding off (``serving.max_queue`` 100000) to
show what it prevents. Reported per run: offered and answered rates, goodput (200s per
second), the share shed with 429, exact p50/p99/max of the accepted requests' latency
(sorted samples, not histogram buckets) and errors. Latency runs from a request's
*scheduled* send time, so a request the generator had to hold back (every connection
busy) counts its wait: no coordinated omission.

The generator is one asyncio (uvloop) process speaking raw HTTP/1.1 over many keep-alive
connections: a write and a header scan per request. So that it cannot be the bottleneck,
the gateway is pinned to one core and the generator to the other (``sched_setaffinity``),
and each run reports the generator's CPU use and its send lag (how late, past its
scheduled time, each request went out); a run whose offered rate falls short of the
target says so.

    .venv/bin/python bench/overload.py [--duration 60] [--rows 1] [--connections 256]

Writes ``bench/overload_results.md`` (a section of BENCHMARKS.md, see bench/report.py) and
the raw figures to ``bench/.data/overload.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "overload_results.md"
DATA = BENCH / ".data"
FEATURES = [f"x{i}" for i in range(8)]


# -- the load generator ------------------------------------------------------------------


@dataclass
class Tally:
    """What one run saw; latencies in seconds from each request's scheduled time."""

    accepted: list[float] = field(default_factory=list)
    shed: list[float] = field(default_factory=list)
    other: collections.Counter[int] = field(default_factory=collections.Counter)
    lag: list[float] = field(default_factory=list)
    retry_after_missing: int = 0
    sent: int = 0
    connects: int = 0


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request outstanding at a time."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.scheduled = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.load.idle(self)

    def send(self, scheduled: float) -> None:
        assert self.transport is not None
        self.scheduled = scheduled
        self.load.tally.lag.append(time.perf_counter() - scheduled)
        self.transport.write(self.load.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"content-length:")
        stop = head.find(b"\r", at)
        length = int(head[at + 15 : stop if stop >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        status = int(head[9:12])
        self.load.answered(self, status, b"retry-after:" in head, b"connection: close" in head)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class Load:
    """Sends requests over ``connections`` keep-alive connections; a request due while
    every connection waits for an answer queues here (and its latency counts the wait)."""

    def __init__(self, port: int, request: bytes, connections: int, *, closed: bool) -> None:
        self.port = port
        self.request = request
        self.connections = connections
        self.closed_loop = closed
        self.loop = asyncio.get_running_loop()
        self.free: list[_Connection] = []
        self.backlog: collections.deque[float] = collections.deque()
        self.outstanding = 0
        self.tally = Tally()
        self.recording = True
        self.last_answer = 0.0

    async def open(self) -> None:
        await asyncio.gather(*(self._connect() for _ in range(self.connections)))

    async def _connect(self) -> None:
        self.tally.connects += 1
        await self.loop.create_connection(lambda: _Connection(self), "127.0.0.1", self.port)

    def idle(self, connection: _Connection) -> None:
        if self.backlog:
            connection.send(self.backlog.popleft())
        elif self.closed_loop and self.recording:
            self.tally.sent += 1
            self.outstanding += 1
            connection.send(time.perf_counter())
        else:
            self.free.append(connection)

    def submit(self, scheduled: float) -> None:
        self.tally.sent += 1
        self.outstanding += 1
        if self.free:
            self.free.pop().send(scheduled)
        else:
            self.backlog.append(scheduled)

    def answered(self, connection: _Connection, status: int, retry: bool, close: bool) -> None:
        latency = time.perf_counter() - connection.scheduled
        self.last_answer = time.perf_counter()
        self.outstanding -= 1
        if self.recording:
            if status == 200:
                self.tally.accepted.append(latency)
            elif status == 429:
                self.tally.shed.append(latency)
                self.tally.retry_after_missing += not retry
            else:
                self.tally.other[status] += 1
        if close:  # the server rotates connections (every 1000 requests): reconnect
            if connection.transport is not None:
                connection.transport.close()
            self.loop.create_task(self._connect())
            return
        self.idle(connection)

    async def drain(self, timeout: float) -> int:
        deadline = self.loop.time() + timeout
        while self.outstanding > 0 and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        return self.outstanding


async def closed_loop(
    port: int, request: bytes, connections: int, seconds: float, gateway_pid: int
) -> dict[str, Any]:
    load = Load(port, request, connections, closed=True)
    load.recording = False
    await load.open()
    server = _Usage(gateway_pid)
    cpu0, start = time.process_time(), time.perf_counter()
    load.recording = True
    idle, load.free = load.free, []
    for connection in idle:
        load.idle(connection)
    await asyncio.sleep(seconds)
    load.recording = False
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    figures = _figures(load.tally, elapsed, cpu / elapsed, server.share(), target=None)
    await load.drain(30)
    return figures


async def open_loop(
    port: int, request: bytes, connections: int, rate: float, seconds: float, gateway_pid: int
) -> dict[str, Any]:
    load = Load(port, request, connections, closed=False)
    await load.open()
    server = _Usage(gateway_pid)
    cpu0, start = time.process_time(), time.perf_counter()
    interval = 1.0 / rate
    sent = 0
    total = int(seconds * rate)
    while sent < total:
        now = time.perf_counter()
        due = min(int((now - start) * rate) + 1, total) - sent
        for index in range(sent, sent + due):
            load.submit(start + index * interval)
        sent += due
        # uvloop's timers tick in whole milliseconds (a shorter sleep would spin): at
        # most ~1 ms late, and that lateness is in the latency, measured from schedule.
        await asyncio.sleep(0.001)
    unanswered = await load.drain(30)
    # Rates over the whole run, up to the last answer: what a backlog answered after the
    # offered window is not counted as if it had been answered within it.
    elapsed = max(load.last_answer, start + seconds) - start
    cpu = time.process_time() - cpu0
    return _figures(
        load.tally, elapsed, cpu / elapsed, server.share(), target=rate, unanswered=unanswered
    )


class _Usage:
    """The CPU share a process tree (the gateway) used since this was made."""

    def __init__(self, pid: int) -> None:
        root = psutil.Process(pid)
        self.processes = [root, *root.children(recursive=True)]
        self.start = time.perf_counter()
        self.cpu = self._cpu()

    def _cpu(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.processes)

    def share(self) -> float:
        return (self._cpu() - self.cpu) / (time.perf_counter() - self.start)


def _pct(samples: np.ndarray, q: float) -> float:
    return float(np.percentile(samples, q, method="inverted_cdf")) * 1000 if len(samples) else 0.0


def _figures(
    tally: Tally,
    seconds: float,
    cpu: float,
    server_cpu: float,
    *,
    target: float | None,
    unanswered: int = 0,
) -> dict[str, Any]:
    accepted = np.asarray(tally.accepted)
    shed = np.asarray(tally.shed)
    answered = len(accepted) + len(shed) + sum(tally.other.values())
    lag = np.asarray(tally.lag)
    return {
        "target_rps": target,
        "offered_rps": tally.sent / seconds,
        "answered_rps": answered / seconds,
        "goodput_rps": len(accepted) / seconds,
        "shed_share": len(shed) / answered if answered else 0.0,
        "p50_ms": _pct(accepted, 50),
        "p99_ms": _pct(accepted, 99),
        "max_ms": float(accepted.max()) * 1000 if len(accepted) else 0.0,
        "shed_p99_ms": _pct(shed, 99),
        "errors": sum(tally.other.values()) + unanswered + tally.retry_after_missing,
        "other_statuses": dict(tally.other),
        "unanswered": unanswered,
        "generator_cpu": cpu,
        "gateway_cpu": server_cpu,
        "gateway_cpu_us_per_answer": server_cpu * seconds / answered * 1e6 if answered else 0.0,
        "send_lag_p99_ms": _pct(lag, 99),
        "requests": tally.sent,
    }


# -- the platform ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train(services: Any) -> str:
    import lightgbm
    import mlflow
    import pandas as pd

    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(5000, len(FEATURES))), columns=FEATURES)
    y = x.sum(axis=1) + rng.normal(size=5000)
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 31},
        lightgbm.Dataset(x, y),
        num_boost_round=100,
    )
    experiment = services.registry.mlflow.experiment_id(
        "bench-overload", services.settings.artifact_root
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        signature = mlflow.models.infer_signature(x.head(50), y.head(50).to_numpy())
        mlflow.lightgbm.log_model(booster, name="model", signature=signature)
    version = services.registry.register("overload", f"runs:/{run.info.run_id}/model", actor="b")
    services.registry.set_approval("overload", version.version, "Approved", actor="b")
    return f"overload:{version.version}"


@contextmanager
def gateway(env: dict[str, str], port: int, core: int) -> Iterator[subprocess.Popen[bytes]]:
    """`slipway serve` with one worker, every process of it pinned to ``core``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "slipway", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "the gateway exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.3)
        for member in [
            psutil.Process(process.pid),
            *psutil.Process(process.pid).children(recursive=True),
        ]:
            member.cpu_affinity([core])
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def settle(services: Any, name: str, url: str, body: bytes) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        services.deployments.tick()
        try:
            response = httpx.post(
                url, content=body, headers={"content-type": "application/json"}, timeout=5
            )
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"endpoint {name} did not come into service")


def machine() -> str:
    names = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    load = os.getloadavg()
    return (
        f"{names[0] if names else 'unknown CPU'}, nproc {os.cpu_count()},"
        f" load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    )


# -- the run -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    from slipway.core.settings import load_settings
    from slipway.services import Services

    cores = sorted(os.sched_getaffinity(0))
    server_core, generator_core = cores[0], cores[-1]
    os.sched_setaffinity(0, {generator_core})
    workspace = Path(tempfile.mkdtemp(prefix="slipway-bench-overload-"))
    settings = load_settings(home=workspace / "home")
    services = Services.open(settings)
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "duration": args.duration,
        "rows": args.rows,
        "connections": args.connections,
        "runs": [],
    }
    try:
        print("training and registering a LightGBM model ...", flush=True)
        ref = train(services)
        row = [0.1 * i for i in range(len(FEATURES))]
        body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [row] * args.rows}})
        payload = body.encode()
        request = (
            b"POST /endpoints/overload/invocations HTTP/1.1\r\nhost: bench\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(payload), payload)
        )
        base_env = os.environ | settings.as_env() | {"MLFLOW_DISABLE_TELEMETRY": "true"}
        asyncio_run = _runner()

        def record(case: str, figures: dict[str, Any]) -> None:
            results["runs"].append({"case": case, **figures})
            print(
                f"  {case:34} offered {figures['offered_rps']:7.0f}/s  goodput"
                f" {figures['goodput_rps']:7.0f}/s  shed {figures['shed_share']:6.1%}  p50"
                f" {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:8.2f} ms  errors"
                f" {figures['errors']}  CPU gateway {figures['gateway_cpu']:.0%}"
                f" ({figures['gateway_cpu_us_per_answer']:.0f} us/answer) generator"
                f" {figures['generator_cpu']:.0%}",
                flush=True,
            )

        port = free_port()
        with gateway(base_env, port, server_core) as served:
            url = f"http://127.0.0.1:{port}/endpoints/overload/invocations"
            services.endpoints.create(
                {"name": "overload", "variants": [{"name": "main", "model": ref}]}, actor="b"
            )
            settle(services, "overload", url, payload)
            asyncio_run(
                closed_loop(port, request, args.closed_connections, 5, served.pid)
            )  # warm-up
            capacity = asyncio_run(
                closed_loop(
                    port, request, args.closed_connections, args.capacity_seconds, served.pid
                )
            )
            record(f"capacity (closed loop, {args.closed_connections} conn)", capacity)
            rate = capacity["goodput_rps"]
            results["capacity_rps"] = rate
            if args.capacity_only:
                return results
            for factor in (1.0, 2.0):
                figures = asyncio_run(
                    open_loop(
                        port, request, args.connections, factor * rate, args.duration, served.pid
                    )
                )
                record(f"open loop {factor:g}x capacity", figures)
        if not args.skip_unbounded:
            port = free_port()
            unbounded = base_env | {
                "SLIPWAY_SERVING__MAX_QUEUE": "100000",
                "SLIPWAY_SERVING__MAX_IN_FLIGHT": "100000",
            }
            with gateway(unbounded, port, server_core) as served:
                url = f"http://127.0.0.1:{port}/endpoints/overload/invocations"
                settle(services, "overload", url, payload)
                asyncio_run(closed_loop(port, request, args.closed_connections, 5, served.pid))
                figures = asyncio_run(
                    open_loop(
                        port, request, args.connections, 2.0 * rate, args.duration, served.pid
                    )
                )
                record("open loop 2x, shedding off", figures)
    finally:
        services.close()
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def _runner() -> Any:
    try:
        import uvloop

        return uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency of the gateway
        return asyncio.run


def write(results: dict[str, Any], argv: list[str]) -> str:
    lines = [
        "# Overload (gateway)",
        "",
        f"Measured {results['measured_at']} on {results['machine']}; load average at end"
        f" {' / '.join(str(x) for x in results['load_average_at_end'])}.",
        f"One gateway worker, one LightGBM endpoint (100 trees), {results['rows']} row(s) per"
        f" request; open loop over {results['connections']} keep-alive connections for"
        f" {results['duration']:g} s per run; default `serving.max_queue` (128) unless said.",
        "",
        f"    .venv/bin/python bench/overload.py {' '.join(argv)}".rstrip(),
        "",
        "| run | offered req/s | goodput req/s | shed (429) | accepted p50 ms"
        " | accepted p99 ms | accepted max ms | 429 p99 ms | errors | gateway CPU"
        " | generator CPU | send lag p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in results["runs"]:
        lines.append(
            f"| {entry['case']} | {entry['offered_rps']:,.0f} | {entry['goodput_rps']:,.0f} |"
            f" {entry['shed_share']:.1%} | {entry['p50_ms']:.2f} | {entry['p99_ms']:.2f} |"
            f" {entry['max_ms']:.1f} | {entry['shed_p99_ms']:.2f} | {entry['errors']} |"
            f" {entry['gateway_cpu']:.0%} | {entry['generator_cpu']:.0%} |"
            f" {entry['send_lag_p99_ms']:.2f} |"
        )
    lines += [
        "",
        "Latencies run from each request's scheduled send time, so they include the"
        " generator's own send lag (last column: how late it got a request out, the two"
        " processes sharing the machine). Goodput is 200s per second; shed requests are"
        " answered 429 with `Retry-After: 1`; the shedding-off run is the same gateway with"
        " `serving.max_queue` and `max_in_flight` at 100000, where every request waits its turn.",
    ]
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per open-loop run")
    parser.add_argument("--capacity-seconds", type=float, default=15.0)
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    # One request outstanding per connection: enough of them that the generator can keep
    # offering 2x while the gateway holds max_queue and answers the rest 429.
    parser.add_argument("--connections", type=int, default=1024, help="open-loop connections")
    parser.add_argument("--closed-connections", type=int, default=32)
    parser.add_argument("--skip-unbounded", action="store_true", help="no shedding-off run")
    parser.add_argument(
        "--capacity-only", action="store_true", help="only the closed loop (for A/B of the code)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = run(args)
    args.out.write_text(write(results, sys.argv[1:]))
    DATA.mkdir(exist_ok=True)
    (DATA / "overload.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out} and {DATA / 'overload.json'}")


if __name__ == "__main__":
    main()
