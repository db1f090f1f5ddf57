"""A real `slipway serve` worker pushed past its queue: what is past ``serving.max_queue``
is answered 429 with ``Retry-After`` at once, without running the app; the accepted
requests wait behind at most that many others, nothing hangs, a client that retries with
backoff gets every request through, and an endpoint's ``max_concurrency`` sheds that
endpoint only.

The gateway runs one worker with a queue of 4, in front of a model that takes 50 ms a
call (tests/serving/models.py's ``Slow``) and predicts on one thread: a service time
large and steady enough that overload is certain however busy the machine is.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.serving.conftest import Platform, free_port
from tests.serving.rawhttp import read_responses
from tests.waiting import eventually

ROW = {"dataframe_records": [{"x1": 1.0, "x2": 0.5}]}
MAX_QUEUE = 4
SERVICE_SECONDS = 0.05  # the Slow model's sleep per call
# Accepted requests wait behind at most MAX_QUEUE others; generous for a busy machine.
ACCEPTED_BOUND = 4 * (MAX_QUEUE + 1) * SERVICE_SECONDS + 1.0

pytestmark = pytest.mark.slow


@dataclass
class Outcome:
    status: int
    seconds: float
    retry_after: str | None
    body: dict[str, object]


@pytest.fixture(scope="module")
def gateway_url(platform: Platform) -> Iterator[str]:
    """`slipway serve` with one worker and a queue of MAX_QUEUE, serving three endpoints:
    ``shed-slow`` (slow), ``shed-capped`` (slow, two threads, max_concurrency 1) and
    ``shed-brisk``."""
    port = free_port()
    env = (
        os.environ
        | platform.services.settings.as_env()
        | {"SLIPWAY_SERVING__MAX_QUEUE": str(MAX_QUEUE)}
    )
    master = subprocess.Popen(
        [sys.executable, "-m", "slipway", "serve", "--port", str(port), "--workers", "1"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert master.poll() is None, "the gateway exited"
        try:
            return all(
                httpx.post(f"{url}/endpoints/{name}/invocations", json=ROW, timeout=5).status_code
                == 200
                for name in ("shed-slow", "shed-capped", "shed-brisk")
            )
        except httpx.TransportError:
            return False

    try:
        # Endpoints come into service once a gateway has loaded them: start it first.
        eventually(lambda: _pings(url, master), what="the gateway answers", timeout=60)
        slow = platform.refs["slow"]
        platform.deploy({"name": "shed-slow", "variants": [{"name": "main", "model": slow}]})
        platform.deploy(
            {
                "name": "shed-capped",
                "max_concurrency": 1,
                "variants": [{"name": "main", "model": slow, "workers": 2}],
            }
        )
        lgbm = platform.refs["lgbm"]
        brisk = {"name": "shed-brisk", "variants": [{"name": "main", "model": lgbm}]}
        platform.deploy(brisk)
        eventually(ready, what="the gateway serves its endpoints", timeout=90, interval=0.2)
        yield url
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
    assert master.returncode == 0


def _pings(url: str, master: subprocess.Popen[bytes]) -> bool:
    assert master.poll() is None, "the gateway exited"
    try:
        return httpx.get(f"{url}/ping", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _invoke(client: httpx.Client, url: str, endpoint: str) -> Outcome:
    started = time.monotonic()
    response = client.post(f"{url}/endpoints/{endpoint}/invocations", json=ROW)
    return Outcome(
        response.status_code,
        time.monotonic() - started,
        response.headers.get("retry-after"),
        response.json(),
    )


def _assert_shed(outcome: Outcome) -> None:
    assert outcome.status == 429
    assert outcome.retry_after is not None and int(outcome.retry_after) >= 1
    error = outcome.body["error"]
    assert isinstance(error, dict) and error["code"] == "overloaded" and error["message"]
    assert error["details"] == {"retry_after": int(outcome.retry_after)}


def _shed_total(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(r"^slipway_gateway_shed_total (\d+)", text, re.MULTILINE)
    assert found, text
    return int(found.group(1))


def _load(url: str, endpoint: str, *, clients: int, each: int) -> list[Outcome]:
    """``clients`` threads, each on its own connection sending ``each`` requests in turn."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            for _ in range(each):
                outcome = _invoke(http, url, endpoint)
                with lock:
                    outcomes.append(outcome)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return outcomes


def test_a_pipelined_burst_past_the_queue_is_shed_in_order(gateway_url: str) -> None:
    """Twelve requests in one write: MAX_QUEUE are admitted (the first is still predicting
    when the rest are parsed), the other eight are answered 429 in their turn, without
    running the app, and the connection stays open."""
    before = _shed_total(gateway_url)
    body = b'{"dataframe_records": [{"x1": 1.0, "x2": 0.5}]}'
    request = (
        b"POST /endpoints/shed-slow/invocations HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    port = int(gateway_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request * 12)
        responses = read_responses(sock, 12, timeout=30)
        assert len(responses) == 12, f"the connection closed after {len(responses)} responses"
        assert [r.split(b" ", 2)[1] for r in responses] == [b"200"] * MAX_QUEUE + [b"429"] * 8
        for shed in responses[MAX_QUEUE:]:
            head = shed.split(b"\r\n\r\n")[0].lower()
            assert b"\r\nretry-after: 1" in head and b"connection: close" not in head
            assert b'"code":"overloaded"' in shed
        sock.sendall(request)  # still open, and admitted again
        assert read_responses(sock, 1, timeout=30)[0].startswith(b"HTTP/1.1 200")
    assert _shed_total(gateway_url) == before + 8


def test_sustained_overload_sheds_and_the_accepted_stay_fast(gateway_url: str) -> None:
    # 16 clients against a capacity of ~20 requests/s: four times what the queue holds.
    outcomes = _load(gateway_url, "shed-slow", clients=16, each=6)
    assert len(outcomes) == 96
    accepted = [o for o in outcomes if o.status == 200]
    shed = [o for o in outcomes if o.status == 429]
    assert len(accepted) + len(shed) == len(outcomes), {o.status for o in outcomes}
    assert accepted and shed
    for outcome in shed:
        _assert_shed(outcome)
    slowest = max(o.seconds for o in accepted)
    assert slowest < ACCEPTED_BOUND, (slowest, ACCEPTED_BOUND)


def test_a_client_retrying_with_backoff_gets_every_request_through(gateway_url: str) -> None:
    results: list[tuple[int, int]] = []  # (final status, attempts)
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            for _ in range(4):
                attempt = 0
                while True:
                    attempt += 1
                    outcome = _invoke(http, gateway_url, "shed-slow")
                    if outcome.status != 429 or attempt == 12:
                        break
                    _assert_shed(outcome)
                    # The client's own backoff (what is under test is the server's answer):
                    # exponential from 50 ms, jittered, capped by Retry-After.
                    ceiling = min(float(outcome.retry_after or 1), 0.05 * 2**attempt)
                    time.sleep(random.uniform(ceiling / 2, ceiling))
                with lock:
                    results.append((outcome.status, attempt))

    threads = [threading.Thread(target=client) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert len(results) == 48
    assert {status for status, _ in results} == {200}, results
    assert any(attempts > 1 for _, attempts in results), "nothing was ever shed"


def test_max_concurrency_sheds_that_endpoint_only(gateway_url: str) -> None:
    """Three clients keep ``shed-capped`` (max_concurrency 1) busy while a fourth calls
    ``shed-brisk``: four requests outstanding at most, within the worker's queue of four, so
    every 429 comes from the endpoint's own limit."""
    stop = threading.Event()
    capped: list[Outcome] = []

    def hammer() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                capped.append(_invoke(http, gateway_url, "shed-capped"))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    brisk: list[Outcome] = []
    try:
        with httpx.Client(timeout=30) as http:
            eventually(
                lambda: any(o.status == 429 for o in capped),
                what="capped sheds past its max_concurrency",
            )
            eventually(lambda: len(capped) >= 20, what="capped has had a busy while")
            brisk = [_invoke(http, gateway_url, "shed-brisk") for _ in range(30)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert {o.status for o in brisk} == {200}, [o.body for o in brisk if o.status != 200]
    assert {o.status for o in capped} == {200, 429}
    for outcome in (o for o in capped if o.status == 429):
        _assert_shed(outcome)
        message = outcome.body["error"]["message"]  # type: ignore[index]
        assert "max_concurrency" in message
    slowest = max(o.seconds for o in capped if o.status == 200)
    assert slowest < ACCEPTED_BOUND, slowest
