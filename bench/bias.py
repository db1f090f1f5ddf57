"""Bias monitoring: a ``bias`` monitor run over 1M captured rows with their ground truth.

The data (seeded, written once to ``bench/.data/bias/``): 1,000,000 captured predictions
of a credit model in the gateway's capture layout (100 files of 10k rows across 4 hours,
``capture/endpoint=loans/variant=main/hour=.../``), each its own one-row request (1M
distinct inference ids: the join's worst case), with four inputs — ``sex`` (f/m/x, the
facet), ``age``, ``income``, ``region`` (12 values) — and a score; and a label for every
one of them, sent as 10 ground-truth uploads of 100k (``monitoring/ground-truth/...``).

Slipway's side (the project's virtualenv, a fresh process per repetition): create a
``bias`` monitor (facet ``sex`` in ["f", "x"], scores >= 0.5 predicted positive, DI >= 0.8),
``run`` it over the window and ``execute`` the run — the timed figure: read the capture
files, read the ground truth (newest label per prediction), join them by (inference id,
row), split by the facet, compute the ten metrics, check thresholds, write the report and
the run's outcome. The parts are timed again afterwards, one by one.

Writes ``bench/bias_results.md`` and ``bench/.data/bias.json`` (BENCHMARKS.md is not
touched).

    .venv/bin/python bench/bias.py [--runs 3] [--no-wait]
    .venv/bin/python bench/bias.py --render   # re-render from bench/.data/bias.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, DATA, emit, machine, peak_rss_mb

REPO = BENCH.parent
OUT = BENCH / "bias_results.md"
RAW = DATA / "bias.json"
HERE = DATA / "bias"
ARTIFACTS = HERE / "artifacts"
MANIFEST = HERE / "manifest.json"

ENDPOINT = "loans"
WINDOW_START = datetime(2026, 11, 2, 8, tzinfo=UTC)
HOURS = 4
SEED = 20261206
FACET = {"facet": "sex", "facet_values": ["f", "x"]}
TARGET_S = 10.0
REGIONS = [f"region_{i:02d}" for i in range(12)]


# -- data ------------------------------------------------------------------------------------


def write_data(rows: int, files: int, uploads: int) -> dict[str, Any]:
    """The capture files and the ground-truth uploads (skipped when already written with
    the same parameters)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from slipway.core.artifacts import ArtifactStore
    from slipway.monitoring import ground_truth

    wanted = {"rows": rows, "files": files, "uploads": uploads, "seed": SEED, "hours": HOURS,
              "window_start": WINDOW_START.isoformat(), "version": 1}  # fmt: skip
    if MANIFEST.exists() and json.loads(MANIFEST.read_text()).get("params") == wanted:
        return dict(json.loads(MANIFEST.read_text()))
    print(f"writing {rows:,} captured rows and their labels ...", flush=True)
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    sex = np.asarray(["f", "m", "x"], dtype=object)[rng.choice(3, rows, p=[0.45, 0.5, 0.05])]
    age = rng.integers(18, 80, rows)
    income = rng.lognormal(10.6 - 0.15 * (sex != "m"), 0.5, rows)
    region = np.asarray(REGIONS, dtype=object)[rng.integers(0, len(REGIONS), rows)]
    logit = 1.2 * (np.log(income) - 10.5) + 0.01 * (age - 45) + rng.normal(0, 0.8, rows)
    score = 1 / (1 + np.exp(-logit))
    label = (rng.random(rows) < 1 / (1 + np.exp(-(logit + rng.normal(0, 0.5, rows))))).astype(
        np.int64
    )
    raw = rng.bytes(16 * rows)
    ids = np.asarray([raw[i : i + 16].hex() for i in range(0, 16 * rows, 16)], dtype=object)

    features = [pa.array(sex, pa.string()), pa.array(age, pa.int64()),
                pa.array(income, pa.float64()), pa.array(region, pa.string())]  # fmt: skip
    names = ["sex", "age", "income", "region"]
    per_file, per_hour = rows // files, files // HOURS
    for index in range(files):
        start, stop = index * per_file, rows if index == files - 1 else (index + 1) * per_file
        n = stop - start
        hour = WINDOW_START + timedelta(hours=index // per_hour)
        slot = index % per_hour
        offsets = np.sort(rng.random(n)) * (3600 / per_hour) + slot * (3600 / per_hour)
        micros = int(hour.timestamp() * 1e6) + (offsets * 1e6).astype(np.int64)
        table = pa.table(
            {
                "inference_id": pa.array(ids[start:stop], pa.string()),
                "row": pa.array(np.zeros(n, dtype=np.int32)),
                "time": pa.array(micros, pa.timestamp("us", tz="UTC")),
                "config_version": pa.array(np.ones(n, dtype=np.int32)),
                "model_name": pa.array(["credit"] * n, pa.string()),
                "model_version": pa.array(np.full(n, 2, dtype=np.int32)),
                "kind": pa.array(["production"] * n, pa.string()),
                "features": pa.StructArray.from_arrays(
                    [a.slice(start, n) for a in features], names=names
                ),
                "prediction": pa.array(score[start:stop], pa.float64()),
            }
        )
        key = (ARTIFACTS / "capture" / f"endpoint={ENDPOINT}" / "variant=main"
               / f"hour={hour:%Y-%m-%dT%H}" / f"gw-{index:08d}.parquet")  # fmt: skip
        key.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, key, compression="zstd")
    store = ArtifactStore(str(ARTIFACTS))
    per_upload = rows // uploads
    for index in range(uploads):
        part = slice(index * per_upload, rows if index == uploads - 1 else (index + 1) * per_upload)
        count = len(ids[part])
        labels = label[part]
        ground_truth.write(
            store,
            ENDPOINT,
            pa.table(
                {
                    "inference_id": pa.array(ids[part], pa.string()),
                    "row": pa.array(np.zeros(count, dtype=np.int32)),
                    "label": pa.array(labels.astype(str), pa.string()),
                    "label_number": pa.array(labels.astype(np.float64)),
                }
            ),
        )
    capture_mib = sum(p.stat().st_size for p in (ARTIFACTS / "capture").rglob("*.parquet"))
    labels_mib = sum(p.stat().st_size for p in (ARTIFACTS / "monitoring").rglob("*.parquet"))
    manifest = {"params": wanted, "capture_mib": capture_mib / 2**20,
                "labels_mib": labels_mib / 2**20}  # fmt: skip
    MANIFEST.write_text(json.dumps(manifest, indent=2))
    return manifest


# -- Slipway's side (a child process) --------------------------------------------------------


def slipway_side(repetition: int) -> None:
    from slipway.core.settings import load_settings
    from slipway.monitoring import bias, bias_monitor, capture, ground_truth
    from slipway.monitoring.spec import Bias
    from slipway.services import Services

    home = HERE / f"slipway-{repetition}"
    shutil.rmtree(home, ignore_errors=True)
    services = Services.open(
        load_settings(
            home=home,
            database={"url": f"sqlite:///{home / 'slipway.db'}"},
            artifacts={"root": str(ARTIFACTS)},
        )
    )
    monitor = f"loans-bias-{repetition}"
    settings = FACET | {"probability_threshold": 0.5, "thresholds": {"DI": {"min": 0.8}}}
    services.monitoring.create(
        {"name": monitor, "kind": "bias", "endpoint": ENDPOINT, "window_hours": HOURS,
         "bias": settings},
        actor="bench",
    )  # fmt: skip
    end = WINDOW_START + timedelta(hours=HOURS)
    run = services.monitoring.run(monitor, actor="bench", start=WINDOW_START, end=end)
    clock = time.perf_counter()
    done = services.monitoring.execute(run["id"])
    execute_s = time.perf_counter() - clock
    peak = peak_rss_mb()
    if done["state"] != "completed":
        raise RuntimeError(f"run {run['id']}: {done['state']}: {done['error']}")
    report = services.monitoring.report(run["id"])

    # The run in its parts (after the measurement: the peak above is the run's own).
    parts: dict[str, float] = {}
    clock = time.perf_counter()
    captured = capture.read_window(services.artifacts, ENDPOINT, WINDOW_START, end)
    parts["read_capture_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    labels = ground_truth.read(services.artifacts, ENDPOINT, WINDOW_START)
    parts["read_ground_truth_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    pairs = bias_monitor.join(captured, labels, "sex")
    parts["join_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    bias_monitor.evaluate(captured, labels, Bias.model_validate(settings))
    parts["evaluate_s"] = time.perf_counter() - clock  # join + split + metrics
    clock = time.perf_counter()
    split = bias.groups(pairs["facet"], bias.Facet("sex", values=("f", "x")))
    positive, _ = bias.positives(pairs["label_number"], 1)
    predicted = pairs["prediction"].to_numpy() >= 0.5
    bias.compute(split.in_d, positive, predicted, keep=split.known)
    parts["metrics_s"] = time.perf_counter() - clock
    services.close()
    emit(
        {
            "repetition": repetition,
            "execute_s": execute_s,
            "peak_rss_mib": peak,
            "rows": report["rows"],
            "labelled": report["labelled"],
            "status": report["status"],
            "metrics": report["metrics"],
            "groups": {g: report["groups"][g]["rows"] for g in ("a", "d")},
            "violations": [v["metric"] for v in report["violations"]],
            **parts,
        }
    )


# -- the driver -----------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from run import run_step

    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "data": write_data(args.rows, args.files, args.uploads),
        "runs": [],
    }
    python = REPO / ".venv" / "bin" / "python"
    for k in range(1, args.runs + 1):
        step = run_step(
            f"bias-{k}", [str(python), str(Path(__file__).resolve()), "--side", "slipway",
                          "--repetition", str(k)],
            timeout=600, quiet=not args.no_wait,
        )  # fmt: skip
        entry: dict[str, Any] = {
            "label": f"bias-{k}",
            "ok": step.ok and bool(step.results),
            "error": step.error,
            "other_cores": step.other_cores,
            "load": os.getloadavg()[0],
        }
        if step.results:
            entry |= step.results[-1]
        results["runs"].append(entry)
        if entry["ok"]:
            print(f"  execute {entry['execute_s']:.2f} s, peak RSS {entry['peak_rss_mib']:,.0f}"
                  f" MiB", flush=True)  # fmt: skip
        else:
            print(f"  FAILED: {entry['error']}", flush=True)
    return results


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _each(runs: list[dict[str, Any]], key: str) -> str:
    return "/".join(f"{r[key]:.2f}" for r in runs)


def report(r: dict[str, Any]) -> str:
    ok = [x for x in r["runs"] if x["ok"]]
    params = r["data"]["params"]
    lines = [
        "## Monitoring: a bias run over 1M captured rows with ground truth",
        "",
        f"Measured {r['measured_at']} by `.venv/bin/python bench/bias.py` on {r['machine']}.",
        "",
        f"Data (seeded, `bench/bias.py`): {params['rows']:,} captured predictions in"
        f" {params['files']} capture files of the gateway's layout over {params['hours']} hours"
        f" ({r['data']['capture_mib']:.0f} MiB, zstd), one-row requests (as many distinct"
        f" inference ids), four inputs and a score; a label for each, in {params['uploads']}"
        f" ground-truth uploads ({r['data']['labels_mib']:.0f} MiB). Monitor: facet `sex` in"
        ' ["f", "x"], scores >= 0.5 predicted positive, `DI >= 0.8`. A fresh process per'
        " repetition; peak RSS is the process's own maximum (`ru_maxrss`), imports included.",
        "",
        "| run | rows | time: median (each) | peak RSS | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    if ok:
        n = ok[0]["rows"]
        median = _median(ok, "execute_s")
        met = "yes" if median <= TARGET_S else "**no**"
        lines.append(
            f"| **bias run** (`execute`: read capture + read ground truth + join + metrics +"
            f" checks + write report) | {n:,} | **{median:.2f} s** ({_each(ok, 'execute_s')}) |"
            f" {max(x['peak_rss_mib'] for x in ok):,.0f} MiB | ≤ {TARGET_S:g} s | {met} |"
        )
        for key, label in (
            ("read_capture_s", "… part: read the window (`capture.read_window`)"),
            ("read_ground_truth_s", "… part: read the labels, newest per prediction"
             " (`ground_truth.read`)"),
            ("join_s", "… part: join by (inference id, row) (`bias_monitor.join`)"),
            ("metrics_s", "… part: facet split + positives + the ten metrics (`bias`)"),
            ("evaluate_s", "… parts together: join + split + metrics + checks"
             " (`bias_monitor.evaluate`)"),
        ):  # fmt: skip
            lines.append(
                f"| {label} | {n:,} | {_median(ok, key):.2f} s ({_each(ok, key)}) | — | — | — |"
            )
        first = ok[0]
        metrics = ", ".join(
            f"{name} {value:.3f}" if value is not None else f"{name} —"
            for name, value in first["metrics"].items()
        )
        lines += [
            "",
            f"Report: status `{first['status']}`, {first['labelled']:,} labelled rows, group a"
            f" {first['groups']['a']:,} rows, group d {first['groups']['d']:,}; {metrics};"
            f" violated: {', '.join(first['violations']) or 'none'}.",
        ]
    for x in r["runs"]:
        if not x["ok"]:
            lines.append(f"- {x['label']} did not finish: {x['error']}.")
    busy = [f"{x['label']} {x['other_cores']:.2f}" for x in r["runs"] if x["other_cores"] >= 0.25]
    lines += [
        "",
        "Other processes used ≥ 0.25 of a core during (cores): " + ", ".join(busy) + "."
        if busy
        else "Other processes used less than a quarter of a core during each run.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-wait", action="store_true",
                        help="do not wait for a quiet machine before each run")  # fmt: skip
    parser.add_argument("--render", action="store_true", help="re-render from bench/.data")
    parser.add_argument("--side", choices=["slipway"], help=argparse.SUPPRESS)
    parser.add_argument("--repetition", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "slipway":
        slipway_side(args.repetition)
        return
    if args.render:
        results = json.loads(RAW.read_text())
    else:
        results = bench(args)
        RAW.write_text(json.dumps(results, indent=2, default=str))
    OUT.write_text(report(results))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
