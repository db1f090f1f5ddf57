"""The web console (issue 21): first load of the overview page in a real browser, against
MLflow's own UI listing the same registered models, and each console page's server time.

Data: a fresh Slipway home (embedded SQLite, in a temporary folder) populated through the
platform's services — 50 registered models with 4 versions each (200 versions, registered
from a few real MLflow runs that logged a tiny scikit-learn model; approvals, rejections
and aliases set on some), 20 endpoints naming them (two variants on every other one; the
gateway loads them), and 1,000 executions of two small pipelines (no worker runs them, so
most stay pending; every fifth is cancelled).

First load: ``slipway up`` on that home (auth off, no workers), then headless Chromium
(Debian's, through Playwright) opens the console's overview ``/`` in a fresh browser
context each time (no cache, no cookies) and the time from navigation start to the model
dashboard's rows (``#model-dashboard tbody tr``, every row of its first page) is read from
the page's own clock (``performance.now()``, set by a MutationObserver the moment the rows
are there). The same, alternating, for MLflow's UI on the tracking server ``slipway up``
runs (``/#/models?workspace=default``, until its registered-models table shows its first
page of rows: 25, its default page size; the console shows 50).
Target: the console's median ≤ 1 s.

Server time: the control plane (``create_app`` on the populated services, FastAPI's
TestClient) in a process of its own holding nothing else, as ``slipway server``'s, and
each console page requested 50 times after 3 warm-ups; the time from the request entering
the ASGI app to its last body byte (the client's own overhead is not counted), the SQL
statements each ran and the garbage collector's full passes during it (the heap frozen
after start-up, as ``slipway server`` does). Target: p99 ≤ 50 ms
per page. A page that misses is profiled (cProfile around its handler) to say where its
time goes, and, if a full garbage collection fell in its slowest request, timed again
with the heap frozen (``gc.freeze()``).

    .venv/bin/python bench/console.py [--repeats 10] [--requests 50]
    .venv/bin/python bench/console.py --render   # the section again from the last figures

Writes ``bench/console_results.md`` and replaces (or appends) the ``## Console`` section
of BENCHMARKS.md, leaving every other section as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import importlib
import json
import math
import os
import pstats
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, machine

from slipway.pipelines.dsl import condition, pipeline, step

ROOT = BENCH.parent
OUT = BENCH / "console_results.md"
RAW = BENCH / ".data" / "console.json"
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## Console"

MODELS = 50
VERSIONS_EACH = 4
RUNS = 5  # MLflow runs that logged a model; every version is registered from one of them
ENDPOINTS = 20
EXECUTIONS = 1_000
TARGET_FIRST_LOAD_S = 1.0
TARGET_P99_MS = 50.0

CHROMIUM = "/usr/bin/chromium"
# As tests/console/browser.py: no network beyond this machine, nothing in the background.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CONSOLE_ROWS = "#model-dashboard tbody tr"
# MLflow 3's registered-models page (its "Registered Models" list, found by inspecting the
# page in Chromium: a Du Bois table of div[role=row]; the header row has no cells). With
# workspaces on (Slipway's are MLflow's), the UI shows a workspace picker until the URL
# names one, as a bookmark of the page does.
MLFLOW_PATH = "/#/models?workspace=default"
MLFLOW_ROWS = "[data-testid='model-list-table'] [role='row']:has([role='cell'])"

DOMAINS = [
    "churn", "fraud", "ltv", "demand", "ranking", "eta", "pricing", "spam", "credit", "uplift"
]  # fmt: skip
REGIONS = ["eu", "us", "apac", "latam", "mena"]


# -- the pipelines (registered, started, never run: no worker) ---------------------------


@step(cache=False)
def extract(rows: int) -> int:
    return rows


@step
def featurize(rows: int) -> dict[str, float]:
    return {"rows": float(rows)}


@step
def fit(features: dict[str, float], learning_rate: float) -> dict[str, float]:
    return {"auc": 0.8 + learning_rate / 10, **features}


@step
def promote(metrics: dict[str, float]) -> str:
    return f"promoted at auc {metrics['auc']:.3f}"


@pipeline(name="nightly-retrain")
def nightly_retrain(rows: int = 100_000, learning_rate: float = 0.1) -> None:
    metrics = fit(featurize(extract(rows)), learning_rate)
    with condition(metrics["auc"] >= 0.8):
        promote(metrics)


@step(cache=False)
def load_day(day: str) -> int:
    return len(day)


@step
def score(rows: int) -> int:
    return rows


@step
def publish(scored: int) -> str:
    return f"{scored} rows"


@pipeline(name="daily-scoring")
def daily_scoring(day: str = "2026-01-01") -> None:
    publish(score(load_day(day)))


# -- helpers ----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[console {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile by nearest rank: of 50 samples the p99 is the slowest, of 10
    the p90 is the second slowest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def progress(what: str, done: int, total: int, started: float) -> None:
    """One line every tenth of the way (and at the end)."""
    step_ = max(1, total // 10)
    if done % step_ == 0 or done == total:
        elapsed = time.monotonic() - started
        log(f"  {what}: {done:,}/{total:,} ({elapsed:.0f} s)")


# -- 1. populating --------------------------------------------------------------------------


@dataclass
class Platform:
    home: Path
    config: Path
    models: list[str]
    endpoints: list[str]
    pipelines: list[str]
    executions: list[str]
    cancelled: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def model_names(count: int) -> list[str]:
    names = [f"{d}-{r}" for r in REGIONS for d in DOMAINS]
    return names[:count]


def logged_runs(services: Any, count: int) -> list[str]:
    """``count`` real MLflow runs, each logging a small logistic regression as ``model``
    (as tests/registry/logged.py does), with a few parameters and metrics."""
    import logging
    import warnings

    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")

    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    experiment_id = services.registry.mlflow.experiment_id(
        "console-bench", services.settings.artifact_root
    )
    runs = []
    started = time.monotonic()
    for i in range(count):
        rng = np.random.default_rng(i)
        x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
        y = (x["a"] + x["b"] > 0).astype(int)
        c = 0.1 * (i + 1)
        model = LogisticRegression(C=c).fit(x, y)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params({"C": c, "solver": "lbfgs", "rows": 200})
            mlflow.log_metrics({"accuracy": float(model.score(x, y)), "rows": 200.0})
            mlflow.sklearn.log_model(
                model, name="model", input_example=x.head(2), pip_requirements=["scikit-learn"]
            )
        runs.append(str(run.info.run_id))
        progress("MLflow runs logged", i + 1, count, started)
    return runs


def populate(
    home: Path,
    config: Path,
    models: int = MODELS,
    endpoint_count: int = ENDPOINTS,
    execution_count: int = EXECUTIONS,
) -> Platform:
    """The data, through the platform's own services."""
    from slipway.core.settings import load_settings
    from slipway.registry.models import ApprovalStatus
    from slipway.services import Services

    began = time.monotonic()
    services = Services.open(load_settings())
    try:
        runs = logged_runs(services, RUNS)
        names = model_names(models)
        started = time.monotonic()
        total = models * VERSIONS_EACH
        done = 0
        for v in range(1, VERSIONS_EACH + 1):  # version by version: registered over time
            for i, name in enumerate(names):
                run_id = runs[(i + v) % len(runs)]
                services.registry.register(
                    name,
                    f"runs:/{run_id}/model",
                    actor=f"user-{i % 7}",
                    description=f"{name} v{v}",
                    owner=f"team-{DOMAINS.index(name.split('-')[0]) % 4}",
                )
                done += 1
                progress("model versions registered", done, total, started)
        started = time.monotonic()
        approvals = 0
        for i, name in enumerate(names):
            # v1 and v3 approved, v2 rejected on every third model, v4 left pending.
            for number, status in ((1, "Approved"), (3, "Approved"), (2, "Rejected")):
                if status == "Rejected" and i % 3:
                    continue
                services.registry.set_approval(
                    name,
                    number,
                    ApprovalStatus.parse(status),
                    actor="approver",
                    comment=f"{status.lower()} after review",
                )
                approvals += 1
            services.registry.set_alias(name, "champion", 3, actor="approver")
        log(
            f"  {approvals} approvals and {models} aliases set ({time.monotonic() - started:.0f} s)"
        )
        started = time.monotonic()
        endpoints = []
        for i in range(endpoint_count):
            model = names[i]
            variants: list[dict[str, Any]] = [{"name": "main", "model": f"{model}:3", "weight": 9}]
            if i % 2 == 0:
                variants.append({"name": "challenger", "model": f"{model}:4", "weight": 1})
            endpoint = f"{model}-live"
            services.endpoints.create(
                {"name": endpoint, "environment": "staging", "variants": variants},
                actor="deployer",
            )
            endpoints.append(endpoint)
            progress("endpoints created", i + 1, endpoint_count, started)
        # Registered from an importable module (this file, as `console`), so each
        # pipeline's code target names a module a worker could import.
        flows = importlib.import_module("console")
        services.pipelines.register(flows.nightly_retrain, actor="editor")
        services.pipelines.register(flows.daily_scoring, actor="editor")
        started = time.monotonic()
        executions: list[str] = []
        cancelled: list[str] = []
        for i in range(execution_count):
            if i % 10 < 7:
                execution = services.pipelines.start(
                    "nightly-retrain",
                    {"rows": 1_000 * (i + 1), "learning_rate": 0.05 + (i % 5) / 100},
                    actor="editor",
                )
            else:
                execution = services.pipelines.start(
                    "daily-scoring", {"day": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"}
                )
            executions.append(execution)
            if i % 5 == 4:
                services.pipelines.cancel(execution, actor="editor")
                cancelled.append(execution)
            progress("pipeline executions started", i + 1, execution_count, started)
        counts = {
            "models": len(services.registry.models()),
            "versions": sum(len(services.registry.versions(n)) for n in names),
            "endpoints": len(services.endpoints.list()),
            "executions": services.pipelines.execution_page(limit=1)[1],
            "audit entries": len(services.audit.list(limit=100_000)),
        }
    finally:
        services.close()
    seconds = time.monotonic() - began
    log(f"populated in {seconds:.0f} s: {counts}")
    return Platform(
        home,
        config,
        names,
        endpoints,
        ["nightly-retrain", "daily-scoring"],
        executions,
        cancelled,
        counts,
        seconds,
    )


# -- 2. slipway up ------------------------------------------------------------------------


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    url: str
    tracking_url: str
    gateway_url: str
    log_path: Path


def _answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    import httpx

    if process.poll() is not None:
        raise SystemExit(f"slipway up exited early ({process.returncode})")
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _wait(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.25)


@contextlib.contextmanager
def slipway_up(platform: Platform, ports: dict[str, int]) -> Iterator[Up]:
    """``slipway up --workers 0`` on the home, in its own session (process group)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "MLFLOW_"))}
    env |= {"SLIPWAY_HOME": str(platform.home), "SLIPWAY_CONFIG": str(platform.config)}
    log_path = platform.home / "up.log"
    output = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "slipway", "up", "--workers", "0"],
        env=env,
        cwd=platform.home,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    up = Up(
        process,
        f"http://127.0.0.1:{ports['server']}",
        f"http://127.0.0.1:{ports['tracking']}",
        f"http://127.0.0.1:{ports['gateway']}",
        log_path,
    )
    try:
        started = time.monotonic()
        _wait(lambda: _answers(f"{up.url}/api/v1/health/live", process), "control plane", 120)
        _wait(lambda: _answers(f"{up.tracking_url}/health", process), "MLflow server", 180)
        _wait(lambda: _answers(f"{up.gateway_url}/ping", process), "gateway", 120)
        log(f"slipway up answered in {time.monotonic() - started:.0f} s (log: {log_path})")
        yield up
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        # Anything of the group still alive (a gateway worker slow to exit) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output.close()


def endpoints_settled(up: Up, names: list[str], timeout: float) -> dict[str, int]:
    """Wait until every endpoint has left Creating (the gateway loaded its models and the
    controller put it in service), so the first loads run on a quiet platform; the count
    of each status at the end."""
    import httpx

    deadline = time.monotonic() + timeout
    statuses: dict[str, int] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{up.url}/api/v1/endpoints", timeout=10).json()
        items = body.get("items", body) if isinstance(body, dict) else body
        statuses = {}
        for item in items:
            statuses[item["status"]] = statuses.get(item["status"], 0) + 1
        if statuses.get("InService", 0) == len(names):
            break
        time.sleep(2)
    return statuses


def wait_quiet(limit: float) -> float:
    """Wait (up to ``limit`` s) for the machine's other work to ease: the 1-minute load
    average under the number of cores. Returns the load average when measuring starts."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= (os.cpu_count() or 1) and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


# -- 3. first loads in Chromium ---------------------------------------------------------------

# Set in every document before its scripts run: the page's own clock at the moment
# ``want`` rows matching the selector are in the document.
ROWS_CLOCK = """
(() => {
  const selector = %s, want = %d;
  const check = () => {
    if (window.__rowsAt !== undefined) return true;
    if (document.querySelectorAll(selector).length >= want) {
      window.__rowsAt = performance.now();
      return true;
    }
    return false;
  };
  const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
  observer.observe(document, {childList: true, subtree: true});
})();
"""


@dataclass
class Load:
    rows_ms: float  # navigation start -> rows present, by the page's clock
    wall_ms: float  # page.goto called -> rows seen by Playwright, by ours
    response_ms: float  # navigation start -> the HTML document's last byte
    bytes: int  # transferred, every resource of the load
    requests: int


def one_load(browser: Any, url: str, selector: str, want: int, shot: Path | None) -> Load:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(60_000)
    try:
        context.add_init_script(ROWS_CLOCK % (json.dumps(selector), want))
        page = context.new_page()
        counted = {"requests": 0}
        page.on(
            "requestfinished",
            lambda _request: counted.__setitem__("requests", counted["requests"] + 1),
        )
        start = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_function("window.__rowsAt !== undefined", polling=50)
        wall = (time.perf_counter() - start) * 1000
        timing = page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const all = [nav, ...performance.getEntriesByType('resource')];
              return {rows: window.__rowsAt, response: nav.responseEnd,
                      bytes: all.reduce((n, e) => n + (e.transferSize || 0), 0)};
            }"""
        )
        if shot is not None:
            page.wait_for_timeout(500)
            page.screenshot(path=str(shot), full_page=True)
        return Load(
            timing["rows"], wall, timing["response"], int(timing["bytes"]), counted["requests"]
        )
    finally:
        context.close()


def count_rows(browser: Any, url: str, selector: str, shot: Path) -> int:
    """How many rows the page shows once it has settled (an untimed visit), and a
    screenshot of it to check the table really rendered."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        # Not "networkidle": MLflow's UI keeps polling.
        page.goto(url, wait_until="load", timeout=120_000)
        page.wait_for_selector(selector, timeout=60_000)
        page.wait_for_timeout(3_000)
        page.screenshot(path=str(shot), full_page=True)
        return len(page.query_selector_all(selector))
    finally:
        context.close()


def first_loads(up: Up, repeats: int, shots: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    pages = {
        "console": (f"{up.url}/", CONSOLE_ROWS),
        "mlflow": (f"{up.tracking_url}{MLFLOW_PATH}", MLFLOW_ROWS),
    }
    found: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, chromium_sandbox=False
        )
        try:
            want = {}
            for name, (url, selector) in pages.items():
                want[name] = count_rows(browser, url, selector, shots / f"{name}-settled.png")
                log(f"  {name}: {want[name]} rows once settled ({shots / f'{name}-settled.png'})")
                found[name] = {"url": url, "selector": selector, "rows": want[name], "loads": []}
            for i in range(repeats):
                # Alternating, so a change in the machine's load falls on both.
                order = list(pages) if i % 2 == 0 else list(reversed(pages))
                for name in order:
                    url, selector = pages[name]
                    shot = shots / f"{name}-first-load.png" if i == 0 else None
                    load = one_load(browser, url, selector, want[name], shot)
                    found[name]["loads"].append(load.__dict__)
                    log(
                        f"  load {i + 1}/{repeats} {name:8}: rows at {load.rows_ms:7.0f} ms"
                        f" (wall {load.wall_ms:.0f} ms, document {load.response_ms:.0f} ms,"
                        f" {load.requests} requests, {load.bytes / 1024:.0f} KiB)"
                    )
        finally:
            browser.close()
    for figures in found.values():
        rows = [load["rows_ms"] for load in figures["loads"]]
        figures["median_ms"] = statistics.median(rows)
        figures["p90_ms"] = percentile(rows, 90)
        figures["kib"] = statistics.median(load["bytes"] for load in figures["loads"]) / 1024
        figures["requests"] = statistics.median(load["requests"] for load in figures["loads"])
    return found


# -- 4. server time per page ------------------------------------------------------------------


class Timed:
    """ASGI wrapper: how long the app took over each HTTP request, from the call to the
    last body message sent (what the server spends; the test client's transport is not
    counted)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last = time.perf_counter() - start

        await self.app(scope, receive, timed_send)


class Statements:
    """How many SQL statements the process executes (every engine: Slipway's and MLflow's),
    to tell a page that reads a lot from one that reads once per item (N+1)."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._executed)

    def _executed(self, *_: Any) -> None:
        self.count += 1


class FullCollections:
    """The garbage collector's full (generation 2) passes and how long each took: such a
    pass walks every tracked object of the process, so its cost grows with the heap
    (libraries, caches), not with the page that happened to allocate when it ran."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self._start)

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


def console_pages(platform: Platform) -> dict[str, str]:
    model = platform.models[0]
    pending = next(e for e in reversed(platform.executions) if e not in set(platform.cancelled))
    return {
        "/": "/",
        "/models": "/models",
        "/models/<m>": f"/models/{model}",
        "/models/<m>/versions/1": f"/models/{model}/versions/1",
        "/features": "/features",
        "/pipelines": "/pipelines",
        "/pipelines/<name>": f"/pipelines/{platform.pipelines[0]}",
        "/pipelines/executions/<id> (pending)": f"/pipelines/executions/{pending}",
        "/pipelines/executions/<id> (cancelled)": f"/pipelines/executions/{platform.cancelled[-1]}",
        "/endpoints": "/endpoints",
        "/endpoints/<e>": f"/endpoints/{platform.endpoints[0]}",
        "/monitoring": "/monitoring",
        "/jobs": "/jobs",
        "/audit": "/audit",
    }


def _own(filename: str) -> bool:
    return "/slipway/" in filename and "/slipway/console/routing.py" not in filename


def profile_summary(stats: pstats.Stats, total: float, calls: int) -> str:
    """The largest shares of a page's handler time among Slipway's own functions (below
    the page handler itself), as text."""
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, ncalls, _tt, cumulative, _callers) in raw.items():
        if not _own(filename) or "/console/pages/" in filename:
            continue
        module = filename.split("/slipway/", 1)[1].removesuffix(".py").replace("/", ".")
        rows.append((cumulative, f"{module}.{name}", ncalls))
    rows.sort(reverse=True)
    parts = []
    for cumulative, name, ncalls in rows[:5]:
        times = f" ×{ncalls / calls:g}" if ncalls > calls else ""  # noqa: RUF001
        parts.append(f"`{name}`{times} {cumulative / total:.0%}")
    return ", ".join(parts)


def server_times(platform: Platform, requests: int, warmups: int) -> dict[str, Any]:
    """Each page ``requests`` times after ``warmups``, in this process; a page missing
    its target is then requested 10 more times with its handler under cProfile."""
    from fastapi import routing as fastapi_routing
    from fastapi.testclient import TestClient

    from slipway.api.app import create_app
    from slipway.core.settings import load_settings
    from slipway.services import Services

    statements = Statements()
    collections = FullCollections()
    services = Services.open(load_settings())
    # As `slipway server` starts it: its long-lived objects frozen out of the garbage
    # collector's full passes (slipway.api.heap).
    app = create_app(services, freeze_heap=True)
    timed = Timed(app)
    # A sync handler runs in a worker thread, where cProfile has to be enabled itself:
    # FastAPI's call of a sync endpoint (in that thread) runs under the current profiler,
    # when one is set.
    profiling: dict[str, Any] = {"profile": None, "seconds": 0.0}
    run_sync = fastapi_routing._run_sync_endpoint

    @functools.wraps(run_sync)
    def profiled(*args: Any, **kwargs: Any) -> Any:
        current = profiling["profile"]
        if current is None:
            return run_sync(*args, **kwargs)
        start = time.perf_counter()
        try:
            return current.runcall(run_sync, *args, **kwargs)
        finally:
            profiling["seconds"] += time.perf_counter() - start

    fastapi_routing._run_sync_endpoint = profiled

    results: dict[str, Any] = {}
    dump = BENCH / ".data" / "console-profiles"
    try:
        with TestClient(timed, base_url="http://testserver") as client:
            for label, path in console_pages(platform).items():
                for _ in range(warmups):
                    response = client.get(path)
                    if response.status_code != 200:
                        raise SystemExit(f"{path}: {response.status_code}\n{response.text[:2000]}")
                samples, counts, full = [], [], []
                for _ in range(requests):
                    before, passes = statements.count, len(collections.durations)
                    client.get(path)
                    samples.append(timed.last * 1000)
                    counts.append(statements.count - before)
                    full.append(sum(collections.durations[passes:]) * 1000)
                clean = [ms for ms, gc_ms in zip(samples, full, strict=True) if not gc_ms]
                slowest = max(range(len(samples)), key=samples.__getitem__)
                figures: dict[str, Any] = {
                    "path": path,
                    "p50_ms": statistics.median(samples),
                    "p99_ms": percentile(samples, 99),
                    "max_ms": max(samples),
                    "statements": statistics.median(counts),
                    "kib": len(response.content) / 1024,
                    "full_gcs": sum(1 for ms in full if ms),
                    "full_gc_ms": statistics.median([ms for ms in full if ms] or [0.0]),
                    "slowest_gc_ms": full[slowest],
                    "p99_without_gc_ms": percentile(clean, 99) if clean else None,
                }
                if figures["p99_ms"] > TARGET_P99_MS:
                    calls = 10
                    profiling["profile"], profiling["seconds"] = cProfile.Profile(), 0.0
                    for _ in range(calls):
                        client.get(path)
                    current = profiling["profile"]
                    profiling["profile"] = None
                    stats = pstats.Stats(current)
                    figures["handler_ms"] = profiling["seconds"] / calls * 1000
                    figures["profile"] = profile_summary(stats, profiling["seconds"], calls)
                    dump.mkdir(parents=True, exist_ok=True)
                    name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "overview"
                    stats.dump_stats(str(dump / f"{name}.prof"))
                results[label] = figures
                log(
                    f"  {label:40} p50 {figures['p50_ms']:6.1f} ms  p99 {figures['p99_ms']:6.1f}"
                    f" ms  {figures['statements']:.0f} SQL statements, {figures['full_gcs']}"
                    f" full GCs ({figures['full_gc_ms']:.0f} ms)"
                    + (f"\n      profile: {figures['profile']}" if "profile" in figures else "")
                )
            objects = len(gc.get_objects())
            # The pages whose slowest request still had a full collection, again, with
            # everything allocated since start-up frozen too.
            gc.freeze()
            for label, figures in results.items():
                if figures["p99_ms"] <= TARGET_P99_MS or not figures["slowest_gc_ms"]:
                    continue
                samples, passes = [], len(collections.durations)
                for _ in range(requests):
                    client.get(figures["path"])
                    samples.append(timed.last * 1000)
                frozen = collections.durations[passes:]
                figures["p99_frozen_ms"] = percentile(samples, 99)
                figures["full_gc_frozen_ms"] = max(frozen) * 1000 if frozen else 0.0
                log(
                    f"  {label:40} with the heap frozen: p99 {figures['p99_frozen_ms']:.1f} ms,"
                    f" {len(frozen)} full GCs (at most {figures['full_gc_frozen_ms']:.1f} ms)"
                )
            gc.unfreeze()
        results["_process"] = {"gc_objects": objects}
    finally:
        fastapi_routing._run_sync_endpoint = run_sync
        collections.close()
        services.close()
    return results


# -- 5. the report ------------------------------------------------------------------------------

# Why a page misses its target, written after reading its profile (bench/.data/
# console-profiles/*.prof); shown only while it still misses.
EXPLAINED: dict[str, str] = {}

# Written by hand after reading a run's figures and profiles; kept below the tables.
NOTES = """\
Notes (by hand, after the run of 2026-12-07 11:26):

- **Fixed: `Endpoints.list` ran three queries per endpoint** (its configs, its newest config,
  the gateways' loads), an N+1 that the dashboard, the endpoints list and both model pages
  (which show where each version is served) all went through. It now describes every
  endpoint with three queries whatever their number (`Endpoints._endpoints`, also behind
  `describe`; tests/serving/test_endpoint_listing.py checks it answers as `describe` does,
  with as many statements for 5 endpoints as for 3). Same data, same process, before and
  after: `/` p50 24.6 → 15.3 ms (83 → 26 statements), `/models/<m>/versions/1` 25.8 → 14.7
  ms (96 → 39), `/endpoints` 26.8 → 16.8 ms (145 → 88).
- **Fixed: Python's full garbage collections were what remained over the p99 target**,
  not the pages: the control plane's process holds ~430,000 tracked objects (MLflow,
  SQLAlchemy, pandas, Jinja...), a full pass over them took 120-180 ms on this machine and
  came every few dozen requests of a page like `/` (7 in 200 in a separate check), in
  whichever request was allocating then (`/` p99 133 ms, `/models/<m>` 196 ms). The control
  plane now freezes its heap (`gc.freeze()`, as the gateway's workers do) once started and
  again after its 16th, 64th, 256th, 1,024th and 4,096th request, so what its first requests load lazily
  (MLflow's client, caches) is frozen too (`slipway.api.heap`; freezing at start-up alone
  still left 50 ms passes on three pages); this benchmark starts it the same way. What
  is left over the target: the two model pages, which allocate the most (every version's
  MLflow run is read, `registry.mlflow_store.run_data`), still get a 40-50 ms full pass
  over what is not frozen in 1 of 50 requests; their p99 without it is 17-31 ms. Not
  fixed here: the next step is reading the versions' metrics and parameters in one MLflow
  search instead of one run each.
- **Fixed: the overview read the last 500 events to show 20** (`core.events.read`, about
  half of its handler's time); it now reads the newest 20 of its workspace
  (`EventLog.recent`).
- Within target, left as they are: `/endpoints` calls
  `Endpoints.stats` once per endpoint (20 calls of 4 statements, ~70 % of its handler); a model's
  page reads each version's MLflow run (`MlflowStore.run_data`, one `get_run` per version,
  ~45 %), so it grows with the model's versions (4 here).
- The console's first load is its server-rendered HTML (~30 KiB), a stylesheet and a
  script (42 KiB in all). MLflow's UI transfers ~5.2 MiB before it shows the models, its
  main script alone 4.2 MiB, served uncompressed; parsing and running it is most of its
  second.
"""


def _each(values: list[float]) -> str:
    return "/".join(f"{v / 1000:.2f}" for v in values)


def report(
    platform: Platform,
    loads: dict[str, Any],
    pages: dict[str, Any],
    context: dict[str, Any],
) -> str:
    c, m = loads["console"], loads["mlflow"]
    met = "✅" if c["median_ms"] <= TARGET_FIRST_LOAD_S * 1000 else "❌"
    counts = platform.counts
    lines = [
        SECTION,
        "",
        f"Measured {context['when']} UTC by `bench/console.py`; {context['machine']}."
        f" Chromium {context['chromium']}, Playwright {version('playwright')}, MLflow"
        f" {version('mlflow')}.",
        "",
        f"Data: a fresh home on the embedded defaults (SQLite), populated through the"
        f" platform's services in {platform.seconds:.0f} s: {counts['models']} registered"
        f" models with {counts['versions']} versions (registered from {RUNS} real MLflow runs"
        " that logged a small scikit-learn model; v1 and v3 of every model Approved, v2 of"
        " every third Rejected, an alias on each), "
        f"{counts['endpoints']} endpoints on them (two variants on every other one; status"
        f" when measured: {context['endpoint_statuses']}), 2 pipelines with"
        f" {counts['executions']:,} executions (no worker: {len(platform.cancelled)} cancelled,"
        f" the rest pending) and {counts['audit entries']:,} audit entries.",
        "",
        "### First load of the overview, console vs MLflow's UI",
        "",
        f"`slipway up --workers 0` on that home (auth off); headless Chromium, a fresh"
        f" browser context per load (empty cache, no cookies), {context['repeats']} loads of"
        " each page, alternating. Time from navigation start to the table's rows being in the"
        " document, by the page's own clock (`performance.now()` from a MutationObserver"
        " installed before any of the page's scripts); every load in seconds in brackets."
        f" Load average when the loads started: {context['load_browser']:.2f}.",
        "",
        "| page | waits for | median | p90 | requests, transferred | target |",
        "|---|---|---|---|---|---|",
        f"| console `/` (model dashboard) | `{c['selector']}` ({c['rows']} rows)"
        f" | {c['median_ms'] / 1000:.2f} s ({_each([x['rows_ms'] for x in c['loads']])})"
        f" | {c['p90_ms'] / 1000:.2f} s | {c['requests']:.0f}, {c['kib']:,.0f} KiB"
        f" | ≤ {TARGET_FIRST_LOAD_S:g} s {met} |",
        f"| MLflow UI `{MLFLOW_PATH}` (registered models) | `{m['selector']}` ({m['rows']} rows)"
        f" | {m['median_ms'] / 1000:.2f} s ({_each([x['rows_ms'] for x in m['loads']])})"
        f" | {m['p90_ms'] / 1000:.2f} s | {m['requests']:.0f}, {m['kib']:,.0f} KiB | — |",
        "",
        "MLflow's UI is served by the tracking server `slipway up` starts: MLflow's own server"
        " app and UI build behind Slipway's gate (which, auth off, passes requests on), set up"
        " as MLflow's docs advise when the UI is slow — a database backend store rather than"
        " files (https://mlflow.org/docs/latest/self-hosting/troubleshooting) — here the"
        " platform's SQLite file in WAL mode with `synchronous=NORMAL`, artifacts proxied by"
        " the server, one uvicorn worker on this 2-core machine and the job runner off (see"
        " *MLflow tracking server* above). With workspaces on (Slipway's are MLflow's) the UI"
        " needs the workspace in its URL, or it shows a workspace picker; its list shows 25"
        " models a page by default, the console's 50."
        " The model dashboard's figure includes its server-rendered HTML and the stylesheet"
        " and script; MLflow's includes its JavaScript bundles (no cache: a first visit) and"
        " the `registered-models/search` call its page makes.",
        "",
        "### Server time per console page",
        "",
        "The control plane (`create_app`, FastAPI's TestClient) in a process of its own that"
        " holds only it and the platform's services, as `slipway server`'s does, on the same"
        f" home once `slipway up` had stopped; each page {context['requests']} times after"
        f" {context['warmups']} warm-ups, the time from the request entering the ASGI app to"
        f" its last body byte (p99 of {context['requests']} by nearest rank: the slowest)."
        " *SQL* is the statements executed per request (Slipway's engine and MLflow's), the"
        " median; *full GCs* the requests during which Python's garbage collector made a full"
        " (generation 2) pass, and its median duration. Load average when they started:"
        f" {context['load_server']:.2f}; the process then held {context['gc_objects']:,}"
        " objects tracked by the garbage collector.",
        "",
        "| page | p50 | p99 | p99 without a full GC | SQL statements | full GCs | HTML"
        " | p99 ≤ 50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    misses = []
    for label, f in pages.items():
        ok = f["p99_ms"] <= TARGET_P99_MS
        clean = f["p99_without_gc_ms"]
        lines.append(
            f"| `{label}` | {f['p50_ms']:.1f} ms | {f['p99_ms']:.1f} ms"
            f" | {'—' if clean is None else f'{clean:.1f} ms'} | {f['statements']:.0f}"
            f" | {f['full_gcs']}"
            + (f" ({f['full_gc_ms']:.0f} ms)" if f["full_gcs"] else "")
            + f" | {f['kib']:.0f} KiB | {'✅' if ok else '❌'} |"
        )
        if not ok:
            misses.append((label, f))
    lines.append("")
    if not misses:
        lines += ["Every page is within its target.", "", NOTES]
        return "\n".join(lines)
    lines += ["Where the time of each page over its target goes:", ""]
    for label, f in misses:
        clean, frozen = f["p99_without_gc_ms"], f.get("p99_frozen_ms")
        if f["slowest_gc_ms"]:
            cause = (
                f"a full garbage collection ({f['slowest_gc_ms']:.0f} ms: a pass over every"
                f" object the process holds, made by whichever request allocates when it falls"
                f" due) fell in its slowest request ({f['full_gcs']} of"
                f" {context['requests']} had one); without it the p99 is"
                f" {'—' if clean is None else f'{clean:.0f} ms'}"
                + (
                    f", and with what it allocated since start-up frozen too {frozen:.0f} ms"
                    if frozen is not None
                    else ""
                )
            )
        else:
            cause = f"its slowest request ({f['max_ms']:.0f} ms) had no full garbage collection"
        lines.append(
            f"- `{label}`: {cause}. Its handler under cProfile (which slows it):"
            f" {f.get('handler_ms', 0):.0f} ms"
            f" a call ({f['statements']:.0f} SQL statements), most in"
            f" {f.get('profile', '—')}. {EXPLAINED.get(label, '')}".rstrip()
        )
    lines += ["", NOTES]
    return "\n".join(lines)


def replace_section(document: str, section: str) -> str:
    """``document`` with its ``## Console`` section (up to the next ``## `` heading)
    replaced by ``section``, or ``section`` appended; nothing else changes."""
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = section.rstrip("\n") + "\n"
    if pattern.search(document):
        return pattern.sub(lambda _m: text + "\n", document, count=1).rstrip("\n") + "\n"
    return document.rstrip("\n") + "\n\n" + text


def write(text: str, out: Path) -> None:
    out.write_text(text)
    if out == OUT:
        BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), text))
        log(f"wrote {out} and the {SECTION!r} section of BENCHMARKS.md")
    print(text)


def rerender(out: Path) -> None:
    """The section again from the last run's figures (``RAW``), e.g. after editing NOTES."""
    saved = json.loads(RAW.read_text())
    platform = saved["platform"]
    platform["home"], platform["config"] = Path(platform["home"]), Path(platform["config"])
    write(report(Platform(**platform), saved["loads"], saved["pages"], saved["context"]), out)


def pages_only(home: Path, requests: int, warmups: int, answer: Path | None) -> None:
    """Time the pages on a populated home, in a process that holds only the control plane
    and its services (as ``slipway server``'s does: what a full garbage collection walks
    is that process's heap); with ``answer``, the figures are written there as JSON."""
    saved = json.loads((home / "platform.json").read_text())
    saved["home"], saved["config"] = Path(saved["home"]), Path(saved["config"])
    platform = Platform(**saved)
    os.environ.update(
        {
            "SLIPWAY_HOME": str(platform.home),
            "SLIPWAY_CONFIG": str(platform.config),
            "SLIPWAY_SERVER__ALLOWED_HOSTS": "testserver",
        }
    )
    results = server_times(platform, requests, warmups)
    if answer is not None:
        answer.write_text(json.dumps(results))


def chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.split()[1]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="first loads of each page")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument("--models", type=int, default=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--endpoints", type=int, default=ENDPOINTS, help=argparse.SUPPRESS)
    parser.add_argument("--executions", type=int, default=EXECUTIONS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--pages-only",
        type=Path,
        metavar="HOME",
        help="only time the pages, on a home an earlier --keep run left",
    )
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--render", action="store_true", help="only write the section again from the last run"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    if args.render:
        rerender(args.out)
        return
    if args.pages_only:
        pages_only(args.pages_only, args.requests, args.warmups, args.answer)
        return
    folder = Path(tempfile.mkdtemp(prefix="slipway-bench-console-"))
    home = folder / "home"
    home.mkdir()
    ports = {"server": free_port(), "tracking": free_port(), "gateway": free_port()}
    config = home / "slipway.yaml"
    config.write_text(
        json.dumps(
            {
                "server": {"port": ports["server"], "auth": False},
                "tracking": {"port": ports["tracking"]},
                "serving": {"port": ports["gateway"]},
            }
        )
    )
    os.environ.update(
        {
            "SLIPWAY_HOME": str(home),
            "SLIPWAY_CONFIG": str(config),
            # The in-process control plane is reached as http://testserver.
            "SLIPWAY_SERVER__ALLOWED_HOSTS": "testserver",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    log(f"home {home}")
    log(f"populating: {args.models} models x {VERSIONS_EACH} versions, {args.endpoints}"
        f" endpoints, {args.executions:,} pipeline executions ...")  # fmt: skip
    platform = populate(home, config, args.models, args.endpoints, args.executions)
    (home / "platform.json").write_text(json.dumps(platform.__dict__, default=str))
    shots = folder / "screenshots"
    shots.mkdir()
    context: dict[str, Any] = {
        "repeats": args.repeats,
        "requests": args.requests,
        "warmups": args.warmups,
        "chromium": chromium_version(),
    }
    log("slipway up ...")
    with slipway_up(platform, ports) as up:
        statuses = endpoints_settled(up, platform.endpoints, timeout=180)
        context["endpoint_statuses"] = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        log(f"endpoints: {context['endpoint_statuses']}")
        context["load_browser"] = wait_quiet(120)
        log(f"first loads (load average {context['load_browser']:.2f}) ...")
        loads = first_loads(up, args.repeats, shots)
    log("slipway up stopped")
    context["load_server"] = wait_quiet(60)
    log(f"server time per page (load average {context['load_server']:.2f}) ...")
    answer = folder / "pages.json"
    timing = [sys.executable, __file__, "--pages-only", str(home), "--answer", str(answer)]
    timing += ["--requests", str(args.requests), "--warmups", str(args.warmups)]
    subprocess.run(timing, check=True)
    pages = json.loads(answer.read_text())
    context["gc_objects"] = pages.pop("_process")["gc_objects"]
    context["when"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
    context["machine"] = machine()
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text(
        json.dumps(
            {"platform": platform.__dict__, "loads": loads, "pages": pages, "context": context},
            indent=2,
            default=str,
        )
    )
    write(report(platform, loads, pages, context), args.out)
    log(f"screenshots: {shots}")
    if not args.keep:
        import shutil

        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
