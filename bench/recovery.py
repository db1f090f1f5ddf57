"""Recovery: seconds from a backing service's restart to the first successful write
through the platform, for PostgreSQL, Redis and Kafka.

Each service is a private one, started for the run on a free loopback port (the same
helpers the chaos tests use: ``tests/chaos/private.py``, ``tests/batch/broker.py``) and
killed the way a crash would (PostgreSQL ``pg_ctl -m immediate``, Redis and Kafka
SIGKILL), left down for ``--down`` seconds, then started again. Meanwhile a client writes
through the platform without pause (one attempt every 10 ms):

- PostgreSQL (metadata database): ``POST /api/v1/feature-groups/{name}/records`` on the
  control plane (uvicorn, this process), the first answered 201;
- Redis (online store): the same ingest, with the metadata on SQLite;
- Kafka (events): the ``slipway scheduler`` process publishing the events outbox; the
  first event appended after the kill whose delivery the broker acknowledged (the
  publisher's durable subscription moved past it).

Reported per service, over ``--repeat`` restarts: the service's own start (restart command
to it accepting connections), the platform's reconnection (service ready to the first
successful write: what Slipway adds) and the total, each as median and max.

    .venv/bin/python bench/recovery.py [--repeat 5] [--down 2]

Writes ``bench/recovery_results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))  # the private servers and platform pieces of tests/chaos

from tests.batch.broker import Broker  # noqa: E402
from tests.chaos.platform import control_plane, process  # noqa: E402
from tests.chaos.private import PrivatePostgres, PrivateRedis  # noqa: E402

from slipway.core.health import kafka_api_versions  # noqa: E402
from slipway.core.settings import Settings, load_settings  # noqa: E402
from slipway.services import Services  # noqa: E402

OUT = BENCH / "recovery_results.md"
DATA = BENCH / ".data"  # raw figures
GROUP = {
    "name": "bench",
    "record_identifiers": [{"name": "id"}],
    "event_time": "time",
    "features": [{"name": "value", "type": "float"}],
}


def machine() -> str:
    names = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{names[0] if names else 'unknown CPU'}, nproc {os.cpu_count()}, load average {load}"


class Writer:
    """``attempt()`` every 10 ms on a thread; ``first_after(t)`` is the time of the first
    success that started after ``t``."""

    def __init__(self, attempt: Callable[[], bool]) -> None:
        self.attempt = attempt
        self.successes: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                ok = self.attempt()
            except Exception:
                ok = False
            if ok:
                self.successes.append(started)
            self._stop.wait(0.01)

    def first_after(self, moment: float, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            after = [t for t in list(self.successes) if t >= moment]
            if after:
                return min(after)
            time.sleep(0.005)
        raise RuntimeError(f"no successful write {timeout} s after the restart")

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def _ingest(api: str) -> Callable[[], bool]:
    client = httpx.Client(timeout=10)
    counter = iter(range(10**9))

    def attempt() -> bool:
        n = next(counter)
        record = {"id": f"k{n}", "time": datetime.now(UTC).isoformat(), "value": float(n)}
        response = client.post(f"{api}/feature-groups/bench/records", json={"records": [record]})
        assert response.status_code in (201, 503), response.text  # never a 500
        return response.status_code == 201

    return attempt


def _restarts(
    name: str,
    repeat: int,
    down: float,
    kill: Callable[[], None],
    start: Callable[[], None],
    answers: Callable[[], bool],
    first_write_after: Callable[[float], float],
) -> dict[str, Any]:
    """Kill, wait ``down``, start; the service's own start is timed by ``answers`` (its
    own client's probe, every 10 ms, on a thread: not by the start command, whose own
    readiness check may come after the platform's first write)."""
    runs = []
    with Writer(answers) as prober:
        for n in range(repeat):
            kill()
            time.sleep(down)  # the outage itself: clients meet it meanwhile
            restart = time.monotonic()
            start()
            ready = prober.first_after(restart)
            written = first_write_after(restart)
            run = {"start": ready - restart, "reconnect": max(0.0, written - ready)}
            run["total"] = written - restart
            runs.append(run)
            print(f"{name} #{n + 1}: {run}", flush=True)
    return {"service": name, "runs": runs}


def _pg_answers(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    return probe


def _redis_answers(port: int) -> Callable[[], bool]:
    """PING on a raw socket: redis-py's client retries with backoff on a refused
    connection, which would make the probe itself late by up to a second."""

    def probe() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    return probe


def _kafka_answers(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        kafka_api_versions("127.0.0.1", port)
        return True

    return probe


@contextmanager
def _platform(settings: Settings) -> Iterator[tuple[Services, str]]:
    services = Services.open(settings)
    try:
        services.features.create_group(GROUP)
        with control_plane(services) as api:
            yield services, api
    finally:
        services.close()


def bench_postgres(root: Path, repeat: int, down: float) -> dict[str, Any]:
    with PrivatePostgres() as pg:
        settings = load_settings(home=root / "pg", database={"url": pg.url})
        with _platform(settings) as (_, api), Writer(_ingest(api)) as writer:
            writer.first_after(0)
            return _restarts(
                "PostgreSQL",
                repeat,
                down,
                pg.stop,
                pg.start,
                _pg_answers(pg.url),
                writer.first_after,
            )


def bench_redis(root: Path, repeat: int, down: float) -> dict[str, Any]:
    with PrivateRedis() as redis:
        settings = load_settings(
            home=root / "redis",
            database={"url": f"sqlite:///{root}/redis-meta.db"},
            online_store={"url": redis.url},
        )
        with _platform(settings) as (_, api), Writer(_ingest(api)) as writer:
            writer.first_after(0)
            return _restarts(
                "Redis",
                repeat,
                down,
                redis.stop,
                redis.start,
                _redis_answers(redis.port),
                writer.first_after,
            )


def bench_kafka(root: Path, repeat: int, down: float) -> dict[str, Any]:
    broker = Broker(root / "broker")
    broker.start()
    try:
        settings = load_settings(
            home=root / "kafka",
            database={"url": f"sqlite:///{root}/kafka-meta.db"},
            kafka={"bootstrap_servers": broker.bootstrap, "events_topic": "bench.events"},
        )
        with (
            _platform(settings) as (services, api),
            process(settings, "scheduler", log=root / "scheduler.log"),
        ):
            published = services.events.subscription("slipway-kafka-publisher")
            ingest = _ingest(api)
            marks: dict[float, int] = {}  # time of a kill -> the last event id before it

            def kill() -> None:
                ingest()  # an event before the kill, then another written while it is down
                marks[time.monotonic()] = max(e.id for e in services.events.read(after=0))
                broker.kill()
                ingest()

            def first_write_after(moment: float) -> float:
                last_before = marks[max(marks)]
                deadline = time.monotonic() + 120
                while published.position <= last_before:
                    if time.monotonic() > deadline:
                        raise RuntimeError("no event published 120 s after the restart")
                    time.sleep(0.01)
                return time.monotonic()

            ingest()
            while published.position == 0:
                time.sleep(0.05)
            return _restarts(
                "Kafka",
                repeat,
                down,
                kill,
                broker.start,
                _kafka_answers(broker.port),
                first_write_after,
            )
    finally:
        broker.kill()


def _row(result: dict[str, Any]) -> str:
    cells = []
    for key in ("start", "reconnect", "total"):
        values = [r[key] for r in result["runs"]]
        cells.append(f"{statistics.median(values):.2f} / {max(values):.2f}")
    return f"| {result['service']} | {len(result['runs'])} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--down", type=float, default=2.0)
    args = parser.parse_args()
    results = {"measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": machine(), "down_seconds": args.down}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="slipway-recovery-") as tmp:
        root = Path(tmp)
        results["services"] = [
            bench_postgres(root, args.repeat, args.down),
            bench_redis(root, args.repeat, args.down),
            bench_kafka(root, max(3, args.repeat // 2 + 1), args.down),
        ]
    lines = [
        "# Recovery (backing service restarts)",
        "",
        f"Measured {results['measured_at']} on {results['machine']}.",
        f"Each service killed (PostgreSQL `pg_ctl -m immediate`, Redis and Kafka SIGKILL),"
        f" down {args.down:g} s, started again on the same port; a client writes through the"
        " platform every 10 ms meanwhile. Seconds, median / max.",
        "",
        "    .venv/bin/python bench/recovery.py",
        "",
        "| service | restarts | service start (restart → accepting) | Slipway reconnects"
        " (accepting → first write) | restart → first write |",
        "|---|---:|---:|---:|---:|",
        *(_row(r) for r in results["services"]),
        "",
        "First write: PostgreSQL and Redis, an ingest answered 201 by the control plane"
        " (503 with `Retry-After` until then, never a 500); Kafka, an event appended while the"
        " broker was down, acknowledged by the broker to the scheduler's publisher (it"
        " ticks every second). The service's own start is timed by its client's probe"
        " (every 10 ms, on a thread); on a busy machine that probe can answer after the"
        " platform has already written, and the reconnection then reads 0: read it as"
        " \"nothing measurable\". Kafka's total is mostly the broker's own start (a JVM);"
        " its reconnection includes up to one scheduler tick.",
        "",
    ]
    OUT.write_text("\n".join(lines))
    DATA.mkdir(exist_ok=True)
    (DATA / "recovery.json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines[:14]))


if __name__ == "__main__":
    main()
