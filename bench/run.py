"""Run the feature-store benchmarks, Slipway and Feast side by side, and write BENCHMARKS.md.

    .venv/bin/python bench/run.py            # everything (what `make bench` runs)
    .venv/bin/python bench/run.py --only online,http   # some sections, on the state
                                                        # a full run left behind

Every measurement runs in a fresh subprocess: Slipway's in the project's virtualenv,
Feast's in bench/.venv-feast (created here on first use). A watchdog kills a step that
runs past its time limit or whose process tree grows past a memory limit, and the step is
reported as not finished. Results go to bench/.data/results.json and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BENCH,
    BIG_CSV,
    DATA,
    FLIGHTS,
    FLIGHTS_SAMPLE,
    QUARTER_CSV,
    RESULT_PREFIX,
    SYN_FEATURE_NAMES,
    SYN_FEATURES,
    SYN_KEYS,
)

ROOT = BENCH.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
SLIPWAY_CLI = ROOT / ".venv" / "bin" / "slipway"
FEAST_VENV = BENCH / ".venv-feast"
FEAST_PYTHON = FEAST_VENV / "bin" / "python"
FEAST_CLI = FEAST_VENV / "bin" / "feast"
FEAST_REQUIREMENTS = BENCH / "feast-requirements.txt"
RUN = DATA / "run"
LOGS = RUN / "logs"
RESULTS = DATA / "results.json"
SECTIONS = ["training", "ingest", "synthetic", "online", "http", "file"]

# Redis databases of the test Redis server used by the benchmarks (tests use db 0).
SLIPWAY_REDIS_DB = 15
FEAST_REDIS_DB = 14
# A step whose process tree grows past this is killed (the machine is shared).
RSS_LIMIT_MB = 18_000
HTTP_SECONDS = 15
HTTP_CONNECTIONS = 16


@dataclass
class Step:
    label: str
    ok: bool
    seconds: float
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    tree_peak_rss_mb: float = 0.0
    other_cores: float = 0.0  # average CPU cores other processes used meanwhile
    waited_s: float = 0.0  # how long the step waited for the machine to be quiet


class OtherLoad:
    """How much CPU the rest of the machine used while a step ran (the machine may be
    shared): the whole machine's busy time, less this driver's children (every step,
    server and wrk is one) and the Redis server's own time."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.busy = _machine_busy()
        self.ours = _children_cpu()
        self.redis = _redis_cpu()

    def cores(self) -> float:
        wall = time.monotonic() - self.start
        other = (
            (_machine_busy() - self.busy)
            - (_children_cpu() - self.ours)
            - (_redis_cpu() - self.redis)
        )
        return max(0.0, other / wall) if wall > 0 else 0.0


def _machine_busy() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _redis_cpu() -> float:
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "redis-server":
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


_WAIT_BUDGET = [900.0]  # seconds of waiting left for the whole run


def wait_quiet(label: str, limit: float = 240.0) -> float:
    """Wait (up to ``limit`` s, and 15 min per run) until other processes use less than
    0.3 of a core."""
    start = time.monotonic()
    limit = min(limit, _WAIT_BUDGET[0])
    while time.monotonic() - start < limit:
        load = OtherLoad()
        time.sleep(3)
        cores = load.cores()
        if cores < 0.3:
            break
        log(f"{label}: waiting for the machine to be quiet (others use {cores:.1f} cores)")
        time.sleep(2)
    waited = time.monotonic() - start
    _WAIT_BUDGET[0] = max(0.0, _WAIT_BUDGET[0] - waited)
    return waited


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_step(
    label: str,
    cmd: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    rss_limit_mb: float = RSS_LIMIT_MB,
    quiet: bool = True,
) -> Step:
    """Run ``cmd`` in its own process group, watching time and memory; collect results.
    With ``quiet``, first wait for the (possibly shared) machine to be quiet."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out_path, err_path = LOGS / f"{label}.out", LOGS / f"{label}.log"
    waited = wait_quiet(label) if quiet else 0.0
    log(f"{label}: {' '.join(Path(c).name if c.startswith('/') else c for c in cmd[:4])} ...")
    load = OtherLoad()
    start = time.monotonic()
    peak = 0.0
    error = None
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
            start_new_session=True,
        )
        while proc.poll() is None:
            time.sleep(0.2)
            peak = max(peak, _tree_rss_mb(proc.pid))
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                error = f"did not finish within {timeout:.0f} s (stopped)"
            elif peak > rss_limit_mb:
                error = f"stopped at {peak / 1024:.1f} GiB of memory (limit {rss_limit_mb} MiB)"
            if error:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
    seconds = time.monotonic() - start
    results = [
        json.loads(line[len(RESULT_PREFIX) :])
        for line in out_path.read_text().splitlines()
        if line.startswith(RESULT_PREFIX)
    ]
    if error is None and proc.returncode != 0:
        error = _last_error(err_path) or f"exit status {proc.returncode}"
    step = Step(label, error is None, seconds, results, error, peak, load.cores(), waited)
    other = f" (other processes: {step.other_cores:.2f} cores)" if step.other_cores > 0.1 else ""
    log(f"{label}: {'ok' if step.ok else 'FAILED: ' + str(error)} in {seconds:.1f} s{other}")
    return step


def _tree_cpu_total(pid: int) -> float:
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = p.cpu_times()
            # children_*: workers the server already replaced and reaped (feast serve).
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _tree_rss_mb(pid: int) -> float:
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


def _last_error(path: Path) -> str | None:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    for line in reversed(lines):
        if line and ("Error" in line or "Exception" in line):
            return line[:400]
    return lines[-1][:400] if lines else None


def slipway(label: str, *args: str, timeout: float = 600, **kw: Any) -> Step:
    return run_step(
        label, [str(PYTHON), str(BENCH / "slipway_side.py"), *args], timeout=timeout, **kw
    )


def feast(label: str, *args: str, timeout: float = 600, **kw: Any) -> Step:
    return run_step(
        label, [str(FEAST_PYTHON), str(BENCH / "feast_side.py"), *args], timeout=timeout, **kw
    )


# -- environment ---------------------------------------------------------------------------


def ensure_feast() -> None:
    if FEAST_PYTHON.exists():
        return
    log("creating bench/.venv-feast and installing Feast")
    subprocess.run([sys.executable, "-m", "venv", str(FEAST_VENV)], check=True)
    pip = [str(FEAST_PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(FEAST_REQUIREMENTS)], check=True)


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    log("installing wrk (apt-get)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def redis_base_url() -> str:
    """The test Redis (scripts/services start reuses a running one)."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "services"), "start"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("SLIPWAY_TEST_REDIS_URL="):
            return line.split("=", 1)[1].rsplit("/", 1)[0]
    raise SystemExit("scripts/services start printed no SLIPWAY_TEST_REDIS_URL")


def flush_redis(base: str) -> None:
    import redis

    for db in (SLIPWAY_REDIS_DB, FEAST_REDIS_DB):
        client = redis.Redis.from_url(f"{base}/{db}")
        client.flushdb()
        client.close()


@dataclass
class Context:
    redis: str  # redis://host:port (no db)
    results: dict[str, Any]

    @property
    def slipway_redis(self) -> str:
        return f"{self.redis}/{SLIPWAY_REDIS_DB}"

    @property
    def feast_redis(self) -> str:
        return f"{self.redis}/{FEAST_REDIS_DB}"

    def home(self, kind: str) -> str:
        return str(RUN / f"slipway-{kind}")

    def online_url(self, kind: str) -> str:
        if kind == "redis":
            return self.slipway_redis
        return f"sqlite:///{RUN / 'slipway-sqlite' / 'online.db'}"

    def repo(self, kind: str) -> str:
        return str(RUN / f"feast-{kind}")


def reset_state(ctx: Context) -> None:
    if RUN.exists():
        shutil.rmtree(RUN)
    LOGS.mkdir(parents=True)
    flush_redis(ctx.redis)


def setup(ctx: Context) -> dict[str, Any]:
    steps = [
        slipway("setup-slipway-flights", "setup-flights", ctx.home("sqlite"), quiet=False),
        feast("setup-feast-sqlite", "setup", ctx.repo("sqlite"), "duckdb", "sqlite", quiet=False),
        feast(
            "setup-feast-redis", "setup", ctx.repo("redis"), "duckdb", ctx.feast_redis, quiet=False
        ),
        feast("setup-feast-file", "setup", ctx.repo("file"), "file", "sqlite", quiet=False),
    ]
    failed = [s for s in steps if not s.ok]
    if failed:
        raise SystemExit(f"set-up failed: {failed[0].label}: {failed[0].error}")
    return {s.label: s.seconds for s in steps}


# -- sections ------------------------------------------------------------------------------


def section_training(ctx: Context) -> dict[str, Any]:
    from compare import compare_files, compare_with_oracle

    out: dict[str, Any] = {}
    paths = {name: str(RUN / f"training-{name}.parquet") for name in _TRAINING_OUTPUTS}
    home = ctx.home("sqlite")
    out["slipway_full"] = slipway("training-slipway-full", "training", home, "full", paths["sf"])
    out["slipway_sample"] = slipway(
        "training-slipway-sample", "training", home, "sample", paths["ss"]
    )
    out["feast_duckdb_full"] = feast(
        "training-feast-duckdb-full",
        "training",
        ctx.repo("sqlite"),
        "full",
        paths["fdf"],
        "1",
        "0",
        timeout=420,
    )
    out["feast_duckdb_sample"] = feast(
        "training-feast-duckdb-sample", "training", ctx.repo("sqlite"), "sample", paths["fds"]
    )
    # Feast's file (Dask) store: one run, no warm-up (it takes over a minute per run).
    out["feast_file_sample"] = feast(
        "training-feast-file-sample",
        "training",
        ctx.repo("file"),
        "sample",
        paths["ffs"],
        "1",
        "0",
        timeout=420,
    )
    out["profile"] = slipway("training-slipway-profile", "profile-training", home)
    checks: dict[str, Any] = {}
    if out["slipway_full"].ok:
        checks["slipway_full_vs_oracle"] = compare_with_oracle(FLIGHTS, paths["sf"])
    if out["slipway_sample"].ok:
        checks["slipway_sample_vs_oracle"] = compare_with_oracle(FLIGHTS_SAMPLE, paths["ss"])
    for key, path, other in (
        ("feast_duckdb_full_vs_slipway", "fdf", "sf"),
        ("feast_duckdb_sample_vs_slipway", "fds", "ss"),
        ("feast_file_sample_vs_slipway", "ffs", "ss"),
    ):
        if Path(paths[path]).exists() and Path(paths[other]).exists():
            checks[key] = compare_files(paths[other], paths[path])
    out["checks"] = checks
    return out


_TRAINING_OUTPUTS = ["sf", "ss", "fdf", "fds", "ffs"]


def section_ingest(ctx: Context) -> dict[str, Any]:
    return {
        # Slipway's offline ingestion also loads the group that benchmark 2 reads.
        "slipway_offline": slipway("ingest-slipway-offline", "setup-synthetic", ctx.home("sqlite")),
        "feast_offline": feast("ingest-feast-offline", "ingest-offline", ctx.repo("sqlite")),
        "slipway_redis": slipway(
            "ingest-slipway-redis", "ingest-online", ctx.home("redis"), ctx.slipway_redis, "redis"
        ),
        "feast_redis": feast(
            "ingest-feast-redis", "ingest-online", ctx.repo("redis"), "redis", timeout=900
        ),
        "slipway_sqlite": slipway(
            "ingest-slipway-sqlite",
            "ingest-online",
            ctx.home("sqlite"),
            ctx.online_url("sqlite"),
            "sqlite",
        ),
        "feast_sqlite": feast(
            "ingest-feast-sqlite", "ingest-online", ctx.repo("sqlite"), "sqlite", timeout=900
        ),
    }


def section_synthetic(ctx: Context) -> dict[str, Any]:
    return {
        "slipway": slipway("synthetic-slipway", "synthetic", ctx.home("sqlite")),
        # Feast is given about five minutes.
        "feast": feast("synthetic-feast-duckdb", "synthetic", ctx.repo("sqlite"), timeout=300),
    }


def section_online(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("sqlite", "redis"):
        out[f"slipway_{kind}"] = slipway(
            f"online-slipway-{kind}", "online", ctx.home(kind), ctx.online_url(kind), kind
        )
        out[f"feast_{kind}"] = feast(f"online-feast-{kind}", "online", ctx.repo(kind), kind)
        out[f"profile_{kind}"] = slipway(
            f"online-slipway-profile-{kind}",
            "profile-online",
            ctx.home(kind),
            ctx.online_url(kind),
            kind,
        )
    return out


def section_file(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in (("quarter", QUARTER_CSV), ("full", BIG_CSV)):
        home = str(RUN / f"slipway-file-{name}")
        out[name] = slipway(
            f"file-ingest-slipway-{name}", "file-ingest", home, str(path), timeout=1200
        )
        shutil.rmtree(home, ignore_errors=True)  # up to ~1 GB of Delta files
    return out


# -- 4. HTTP -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server not ready at {url} after {timeout:.0f} s")


def _post(url: str, body: str) -> Any:
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _expected(key: int) -> dict[str, float]:
    """The latest values of ``key`` in the synthetic data (what both stores must serve)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(SYN_FEATURES, filters=[("entity_id", "=", key)])
    latest = table.take(pc.sort_indices(table, [("event_time", "descending")])).slice(0, 1)
    return {name: latest.column(name)[0].as_py() for name in SYN_FEATURE_NAMES}


def _wrk(url: str, body: str, seconds: int) -> dict[str, Any]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{HTTP_CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(BENCH / "post.lua"),
        url,
    ]
    env = {**os.environ, "BENCH_BODY": body, "BENCH_KEYS": str(SYN_KEYS)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("WRK-JSON "):
            result: dict[str, Any] = json.loads(line[len("WRK-JSON ") :])
            result["req_per_s"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"wrk printed no summary: {done.stdout[-500:]} {done.stderr[-500:]}")


def _serve(
    label: str, cmd: list[str], env: dict[str, str], health: str, url: str, body: str, parse: Any
) -> dict[str, Any]:
    waited = wait_quiet(label)
    log(f"{label}: starting server")
    with (LOGS / f"{label}.log").open("w") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=err,
            stderr=err,
            cwd=ROOT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    try:
        _wait_http(health, proc)
        key = 4242
        served = parse(_post(url, body % key))
        expected = _expected(key)
        correct = all(abs(served[n] - expected[n]) < 1e-12 for n in SYN_FEATURE_NAMES)
        _wrk(url, body, 3)  # warm-up
        server_cpu = _tree_cpu_total(proc.pid)
        load = OtherLoad()
        result = _wrk(url, body, HTTP_SECONDS)
        # The running server's CPU is not yet a waited child's: subtract it by hand.
        server_cpu = _tree_cpu_total(proc.pid) - server_cpu
        wall = time.monotonic() - load.start
        result["other_cores"] = max(0.0, load.cores() - server_cpu / wall)
        result["waited_s"] = waited
        result["server_rss_mb"] = _tree_rss_mb(proc.pid)
        result["correct"] = correct
        log(f"{label}: {result['req_per_s']:.0f} req/s, p99 {result['p99_us'] / 1000:.1f} ms")
        return result
    except Exception as exc:  # reported in the table as not measured
        log(f"{label}: FAILED: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def section_http(ctx: Context) -> dict[str, Any]:
    refs = json.dumps([f"syn:{n}" for n in SYN_FEATURE_NAMES])
    slipway_body = f'{{"feature_refs": {refs}, "entity_rows": [{{"entity_id": %d}}]}}'
    feast_body = f'{{"features": {refs}, "entities": {{"entity_id": [%d]}}}}'

    def slipway_values(reply: Any) -> dict[str, float]:
        return dict(reply["vectors"][0]["values"])

    def feast_values(reply: Any) -> dict[str, float]:
        names = reply["metadata"]["feature_names"]
        return {n: r["values"][0] for n, r in zip(names, reply["results"], strict=True)}

    out: dict[str, Any] = {}
    for kind in ("sqlite", "redis"):
        port = _free_port()
        out[f"slipway_{kind}"] = _serve(
            f"http-slipway-{kind}",
            [str(SLIPWAY_CLI), "server", "--port", str(port)],
            {"SLIPWAY_HOME": ctx.home(kind), "SLIPWAY_ONLINE_STORE__URL": ctx.online_url(kind)},
            f"http://127.0.0.1:{port}/api/v1/health/live",
            f"http://127.0.0.1:{port}/api/v1/online-features",
            slipway_body,
            slipway_values,
        )
        # The data plane's feature server: the gateway (`slipway serve`, its lean HTTP
        # server, one worker per core) answers the same contract at /online-features.
        port = _free_port()
        out[f"slipway_gateway_{kind}"] = _serve(
            f"http-slipway-gateway-{kind}",
            [str(SLIPWAY_CLI), "serve", "--port", str(port)],
            {
                "SLIPWAY_HOME": ctx.home(kind),
                "SLIPWAY_ONLINE_STORE__URL": ctx.online_url(kind),
                "SLIPWAY_SERVING__WORKERS": "2",
                "SLIPWAY_SERVING__MAX_WORKERS": "2",
            },
            f"http://127.0.0.1:{port}/ping",
            f"http://127.0.0.1:{port}/online-features",
            slipway_body,
            slipway_values,
        )
        # feast serve runs one gunicorn worker that, by default, is replaced after every
        # ~1,000 requests (--max-requests 1000); measured as shipped and without that.
        for variant, extra in (("", []), ("_norecycle", ["--max-requests", "0"])):
            port = _free_port()
            out[f"feast_{kind}{variant}"] = _serve(
                f"http-feast-{kind}{variant.replace('_', '-')}",
                [
                    str(FEAST_CLI),
                    "-c",
                    ctx.repo(kind),
                    "serve",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "--no-access-log",
                    *extra,
                ],
                {"PYTHONWARNINGS": "ignore"},
                f"http://127.0.0.1:{port}/health",
                f"http://127.0.0.1:{port}/get-online-features",
                feast_body,
                feast_values,
            )
    return out


# -- machine and versions ------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()}"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": os_name,
        "disk_free_gib": round(shutil.disk_usage(DATA).free / 2**30),
    }


def versions(ctx: Context) -> dict[str, Any]:
    import importlib.metadata as md
    import sqlite3

    import redis

    slipway_side = {
        "python": platform.python_version(),
        **{p: md.version(p) for p in ("slipway", "duckdb", "pyarrow", "deltalake", "pandas")},
        "redis-py": md.version("redis"),
        "sqlite": sqlite3.sqlite_version,
    }
    code = (
        "import importlib.metadata as md, platform, sqlite3, json;"
        "print(json.dumps({'python': platform.python_version(), "
        "**{p: md.version(p) for p in ('feast', 'duckdb', 'ibis-framework', 'pyarrow', "
        "'pandas', 'dask')}, 'redis-py': md.version('redis'), 'sqlite': sqlite3.sqlite_version}))"
    )
    feast_side = json.loads(
        subprocess.run(
            [str(FEAST_PYTHON), "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )
    client = redis.Redis.from_url(ctx.slipway_redis)
    server = str(client.info("server")["redis_version"])
    client.close()
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()
    return {
        "slipway": slipway_side,
        "feast": feast_side,
        "redis_server": server,
        "wrk": wrk[1] if len(wrk) > 1 else "unknown",
    }


# -- main ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Step):
        return asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    only = args.only.split(",") if args.only else SECTIONS
    unknown = set(only) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")

    started = time.monotonic()
    ensure_feast()
    ensure_wrk()
    log("preparing data (bench/.data)")
    subprocess.run([str(PYTHON), str(BENCH / "data.py"), "--csv"], check=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() and args.only else {}
    ctx = Context(redis=redis_base_url(), results=previous)
    if not args.only:
        reset_state(ctx)
        ctx.results["setup"] = setup(ctx)
    else:  # the state of an earlier run: point Feast at today's test Redis
        step = feast(
            "configure-feast-redis",
            "configure",
            ctx.repo("redis"),
            "duckdb",
            ctx.feast_redis,
            quiet=False,
        )
        if not step.ok:
            raise SystemExit(f"set-up failed: {step.label}: {step.error}")
    ctx.results["machine"] = machine()
    ctx.results["versions"] = versions(ctx)
    sections = {
        "training": section_training,
        "ingest": section_ingest,
        "synthetic": section_synthetic,
        "online": section_online,
        "http": section_http,
        "file": section_file,
    }
    for name in SECTIONS:
        if name in only:
            ctx.results[name] = _plain(sections[name](ctx))
            RESULTS.write_text(json.dumps(ctx.results, indent=1, default=str))
    ctx.results["total_minutes"] = round((time.monotonic() - started) / 60, 1)
    ctx.results["finished_at"] = time.strftime("%Y-%m-%d %H:%M %Z")
    RESULTS.write_text(json.dumps(ctx.results, indent=1, default=str))
    flush_redis(ctx.redis)  # leave the shared test Redis as we found it
    if not args.no_report:
        from report import write_report

        write_report(ctx.results, ROOT / "BENCHMARKS.md")
        log("wrote BENCHMARKS.md")
    log(f"done in {ctx.results['total_minutes']} min")


if __name__ == "__main__":
    main()
