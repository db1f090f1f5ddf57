"""Monitoring: a data-quality + drift run over 1M captured rows x 20 features, side by side
with Evidently's data-drift report on the same data.

The data (seeded, written once to ``bench/.data/monitoring/``): a reference set of 200k
rows and a current window of 1M rows of 20 features (14 numeric, integers among them, and
6 categorical with 3-50 categories) plus a ``prediction``. In the current window a known
subset of features drifted — some strongly, some mildly, some not at all (:data:`FEATURES`
is the ground truth). The current window is written as the gateway's capture files (100
files of 10k rows across 4 hours, ``capture/endpoint=churn/variant=main/hour=.../``) under
a workspace's artifact root, the reference as one Parquet file.

Slipway's side (the project's virtualenv, a fresh process per repetition): create the
baseline from the reference file (timed on its own), create a ``data_quality`` monitor,
``run`` it over the window and ``execute`` the run — the end-to-end run time is the
``execute`` call: read the capture files, profile, drift, checks, write the report.

Evidently's side (``bench/.venv-evidently``, created on first use from
``bench/evidently-requirements.txt``, a fresh process per repetition): read the same capture
files and the reference into pandas, run ``Report([DataDriftPreset(...)])`` with every
column's stat test set to PSI at threshold 0.2 (so the decisions compare with Slipway's
default rule), and once more with Evidently's defaults; save the snapshot as JSON.

Writes ``bench/monitoring_results.md`` (and BENCHMARKS.md through ``bench/report.py``).

    .venv/bin/python bench/monitoring.py [--runs 3] [--evidently-runs 3] [--profile]
    .venv/bin/python bench/monitoring.py --render   # re-render from bench/.data/monitoring.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, DATA, emit

REPO = BENCH.parent
OUT = BENCH / "monitoring_results.md"
HERE = DATA / "monitoring"
ARTIFACTS = HERE / "artifacts"  # the workspaces' shared artifact root (capture files)
REFERENCE = HERE / "reference.parquet"
MANIFEST = HERE / "manifest.json"  # what was generated, with which parameters
EVIDENTLY_VENV = BENCH / ".venv-evidently"
EVIDENTLY_PYTHON = EVIDENTLY_VENV / "bin" / "python"
EVIDENTLY_REQUIREMENTS = BENCH / "evidently-requirements.txt"

ENDPOINT = "churn"
VARIANT = "main"
WINDOW_START = datetime(2026, 11, 2, 8, tzinfo=UTC)
HOURS = 4
THRESHOLD = 0.2  # PSI, Slipway's default rule and the one Evidently is configured with
SEED = 20261102

# The ground truth: name -> (kind, drift class, what changed between reference and current).
# "strong" changes are meant to cross PSI 0.2; "mild" ones are real shifts meant to stay
# below it (a PSI-0.2 rule should not flag them); "none" columns are drawn identically.
FEATURES: dict[str, tuple[str, str, str]] = {
    "age": ("int", "none", "unchanged: round(N(42, 12)) clipped 18-90"),
    "income": ("float", "strong", "lognormal, scale x1.5 (log-mean +0.68 sd)"),
    "balance": ("float", "mild", "N(1000, 300): mean +0.15 sd"),
    "tenure_months": ("int", "none", "unchanged: Poisson(24)"),
    "num_products": ("int", "strong", "1-6, shares 35/30/18/10/5/2% -> 18/24/22/17/12/7%"),
    "credit_score": ("int", "mild", "round(N(650, 80)) clipped 300-850: mean -0.25 sd"),
    "txn_amount": ("float", "strong", "heavy tail (Lomax a=2.5), scale x2.2"),
    "session_seconds": ("float", "none", "unchanged: Exp(300)"),
    "latency_ms": ("float", "strong", "Gamma: same mean 100, shape 2 -> 0.8 (wider)"),
    "utilization": ("float", "mild", "Beta(2, 5) -> Beta(2.2, 5)"),
    "temperature": ("float", "none", "unchanged: N(20, 5), 0.5% missing"),
    "discount": ("float", "strong", "zero-inflated: zeros 60% -> 30%, rest U(0.05, 0.5)"),
    "score_a": ("float", "none", "unchanged: U(0, 1)"),
    "clicks": ("int", "mild", "NegBin(3, 0.30) -> NegBin(3, 0.28) (mean 7.0 -> 7.7)"),
    "country": ("string", "none", "unchanged: 12 categories, Zipf-like"),
    "device": ("string", "strong", "3 categories: 50/40/10% -> 75/20/5%"),
    "channel": ("string", "mild", "6 categories, two shares +/-3 points"),
    "plan": ("string", "none", "unchanged: 4 categories"),
    "merchant_category": ("string", "strong", "50 categories; 8% of rows in 5 new ones"),
    "region": ("string", "mild", "25 categories, five of them x1.3 more frequent"),
}
PREDICTION = "prediction"
NUMERIC = [n for n, (kind, _, _) in FEATURES.items() if kind in ("int", "float")]
CATEGORICAL = [n for n, (kind, _, _) in FEATURES.items() if kind == "string"]
COLUMNS = [*FEATURES, PREDICTION]

COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "AU", "ES", "IT", "MX"]
DEVICES = ["mobile", "desktop", "tablet"]
CHANNELS = ["organic", "paid_search", "social", "email", "referral", "display"]
PLANS = ["free", "basic", "pro", "enterprise"]
MERCHANTS = [f"mcc_{i:02d}" for i in range(50)]
NEW_MERCHANTS = [f"mcc_new_{i}" for i in range(1, 6)]
REGIONS = [f"region_{i:02d}" for i in range(25)]


# -- data ------------------------------------------------------------------------------------


def _weights(values: list[float]) -> Any:
    import numpy as np

    w = np.asarray(values, dtype=np.float64)
    return w / w.sum()


def generate(n: int, rng: Any, *, current: bool) -> dict[str, Any]:
    """``n`` rows of the 20 features and the prediction, as numpy arrays (strings as
    object arrays); ``current`` applies the drifts of :data:`FEATURES`."""
    import numpy as np

    def ints(values: Any, low: int, high: int) -> Any:
        return np.clip(np.round(values), low, high).astype(np.int64)

    def pick(names: list[str], weights: Any) -> Any:
        return np.asarray(names, dtype=object)[rng.choice(len(names), size=n, p=weights)]

    c = current
    data: dict[str, Any] = {}
    data["age"] = ints(rng.normal(42, 12, n), 18, 90)
    data["income"] = rng.lognormal(10.5 + (np.log(1.5) if c else 0.0), 0.6, n)
    data["balance"] = rng.normal(1045 if c else 1000, 300, n)
    data["tenure_months"] = rng.poisson(24, n).astype(np.int64)
    products = [0.18, 0.24, 0.22, 0.17, 0.12, 0.07] if c else [0.35, 0.30, 0.18, 0.10, 0.05, 0.02]
    data["num_products"] = rng.choice(np.arange(1, 7), size=n, p=_weights(products))
    data["credit_score"] = ints(rng.normal(630 if c else 650, 80, n), 300, 850)
    data["txn_amount"] = (110.0 if c else 50.0) * rng.pareto(2.5, n)
    data["session_seconds"] = rng.exponential(300, n)
    data["latency_ms"] = rng.gamma(0.8, 125, n) if c else rng.gamma(2.0, 50, n)
    data["utilization"] = rng.beta(2.2 if c else 2.0, 5, n)
    temperature = rng.normal(20, 5, n)
    temperature[rng.random(n) < 0.005] = np.nan
    data["temperature"] = temperature
    zero = rng.random(n) < (0.30 if c else 0.60)
    data["discount"] = np.where(zero, 0.0, rng.uniform(0.05, 0.5, n))
    data["score_a"] = rng.random(n)
    data["clicks"] = rng.negative_binomial(3, 0.28 if c else 0.30, n).astype(np.int64)
    data["country"] = pick(COUNTRIES, _weights([1 / (k + 1.5) for k in range(12)]))
    data["device"] = pick(DEVICES, _weights([0.75, 0.20, 0.05] if c else [0.5, 0.4, 0.1]))
    channels = [0.30, 0.25, 0.20, 0.12, 0.08, 0.05]
    if c:
        channels = [0.27, 0.28, 0.20, 0.12, 0.08, 0.05]
    data["channel"] = pick(CHANNELS, _weights(channels))
    data["plan"] = pick(PLANS, _weights([0.45, 0.30, 0.18, 0.07]))
    merchants = pick(MERCHANTS, _weights([1 / (k + 5) for k in range(50)]))
    if c:
        new = rng.random(n) < 0.08
        merchants[new] = np.asarray(NEW_MERCHANTS, dtype=object)[rng.integers(0, 5, int(new.sum()))]
    data["merchant_category"] = merchants
    regions = [1.3 if (c and k < 5) else 1.0 for k in range(25)]
    data["region"] = pick(REGIONS, _weights(regions))
    # A churn score: drifts with income, num_products and device (its inputs that drifted).
    device_effect = np.select(
        [data["device"] == "mobile", data["device"] == "tablet"], [0.3, -0.2], 0.0
    )
    logit = (
        -1.0
        - 0.9 * (np.log(data["income"]) - 10.5) / 0.6
        + 0.25 * (data["num_products"] - 2)
        + device_effect
        - 0.004 * (data["credit_score"] - 650)
        + rng.normal(0, 0.5, n)
    )
    data[PREDICTION] = 1 / (1 + np.exp(-logit))
    return data


def _arrow(data: dict[str, Any], names: list[str]) -> list[Any]:
    import numpy as np
    import pyarrow as pa

    arrays = []
    for name in names:
        values = data[name]
        if values.dtype == object:
            arrays.append(pa.array(values, pa.string()))
        elif np.issubdtype(values.dtype, np.floating):
            arrays.append(pa.array(values, pa.float64(), from_pandas=True))  # NaN -> null
        else:
            arrays.append(pa.array(values, pa.int64()))
    return arrays


def write_data(rows: int, reference_rows: int, files: int) -> dict[str, Any]:
    """The reference Parquet file and the capture files (skipped when already written with
    the same parameters)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = {"rows": rows, "reference_rows": reference_rows, "files": files, "seed": SEED,
              "hours": HOURS, "window_start": WINDOW_START.isoformat(), "version": 1}  # fmt: skip
    if MANIFEST.exists() and json.loads(MANIFEST.read_text()).get("params") == wanted:
        return dict(json.loads(MANIFEST.read_text()))
    print(f"writing {reference_rows:,} reference rows and {rows:,} captured rows ...", flush=True)
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    reference = generate(reference_rows, rng, current=False)
    pq.write_table(
        pa.table(_arrow(reference, COLUMNS), names=COLUMNS), REFERENCE, compression="zstd"
    )
    current = generate(rows, rng, current=True)
    feature_arrays = _arrow(current, list(FEATURES))
    prediction = pa.array(current[PREDICTION], pa.float64())
    per_file = rows // files
    per_hour = files // HOURS
    written = 0
    for index in range(files):
        start, stop = index * per_file, rows if index == files - 1 else (index + 1) * per_file
        n = stop - start
        hour = WINDOW_START + timedelta(hours=index // per_hour)
        slot = index % per_hour  # files of one hour cover consecutive slices of it
        offsets = np.sort(rng.random(n)) * (3600 / per_hour) + slot * (3600 / per_hour)
        micros = int(hour.timestamp() * 1e6) + (offsets * 1e6).astype(np.int64)
        raw = rng.bytes(16 * n)
        ids = [raw[i : i + 16].hex() for i in range(0, 16 * n, 16)]
        table = pa.table(
            {
                "inference_id": pa.array(ids, pa.string()),
                "row": pa.array(np.zeros(n, dtype=np.int32)),
                "time": pa.array(micros, pa.timestamp("us", tz="UTC")),
                "config_version": pa.array(np.ones(n, dtype=np.int32)),
                "model_name": pa.array(["churn-model"] * n, pa.string()),
                "model_version": pa.array(np.full(n, 3, dtype=np.int32)),
                "kind": pa.array(["production"] * n, pa.string()),
                "features": pa.StructArray.from_arrays(
                    [a.slice(start, n) for a in feature_arrays], names=list(FEATURES)
                ),
                "prediction": prediction.slice(start, n),
            }
        )
        writer = "gw-a" if index % 2 == 0 else "gw-b"
        key = (ARTIFACTS / "capture" / f"endpoint={ENDPOINT}" / f"variant={VARIANT}"
               / f"hour={hour:%Y-%m-%dT%H}" / f"{writer}-{index:08d}.parquet")  # fmt: skip
        key.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, key, compression="zstd")
        written += n
    manifest = {
        "params": wanted,
        "capture_rows": written,
        "capture_files": files,
        "capture_mib": sum(p.stat().st_size for p in (ARTIFACTS / "capture").rglob("*.parquet"))
        / 2**20,
        "reference_mib": REFERENCE.stat().st_size / 2**20,
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2))
    return manifest


# -- Slipway's side (a child process in the project's virtualenv) ----------------------------


def _peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def slipway_side(repetition: int, profile: bool) -> None:
    started = time.perf_counter()
    from slipway.core.settings import load_settings
    from slipway.monitoring import capture, data_quality
    from slipway.services import Services

    home = HERE / f"slipway-{repetition}"
    shutil.rmtree(home, ignore_errors=True)
    settings = load_settings(
        home=home,
        database={"url": f"sqlite:///{home / 'slipway.db'}"},
        artifacts={"root": str(ARTIFACTS)},
    )
    services = Services.open(settings)
    setup_s = time.perf_counter() - started
    setup_rss = _peak_mib()
    baseline, monitor = f"churn-ref-{repetition}", f"churn-dq-{repetition}"

    clock = time.perf_counter()
    services.baselines.create(
        baseline, source={"file": str(REFERENCE)}, actor="bench", prediction_column=PREDICTION
    )
    baseline_s = time.perf_counter() - clock
    baseline_rss = _peak_mib()
    services.monitoring.create(
        {"name": monitor, "kind": "data_quality", "endpoint": ENDPOINT, "baseline": baseline,
         "window_hours": HOURS},
        actor="bench",
    )  # fmt: skip
    end = WINDOW_START + timedelta(hours=HOURS)
    run = services.monitoring.run(monitor, actor="bench", start=WINDOW_START, end=end)

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    clock = time.perf_counter()
    done = services.monitoring.execute(run["id"])
    execute_s = time.perf_counter() - clock
    if profiler is not None:
        profiler.disable()
    execute_rss = _peak_mib()
    if done["state"] != "completed":
        raise RuntimeError(f"run {run['id']}: {done['state']}: {done['error']}")
    report = services.monitoring.report(run["id"])

    # The same run in its parts (after the measurement: the peak above is the run's own).
    clock = time.perf_counter()
    captured = capture.read_window(services.artifacts, ENDPOINT, WINDOW_START, end)
    read_s = time.perf_counter() - clock
    stats = services.baselines.statistics(baseline)
    constraints = services.baselines.constraints(baseline)
    clock = time.perf_counter()
    data_quality.evaluate(stats, constraints, captured)
    evaluate_s = time.perf_counter() - clock
    del captured

    columns = {}
    for name, entry in report["columns"].items():
        drift = entry.get("drift") or {}
        histogram = drift.get("histogram", {})
        columns[name] = {
            "psi": drift.get("psi"),
            "ks_statistic": drift.get("ks_statistic"),
            "chi2_p_value": drift.get("chi2_p_value"),
            "drifted": bool(entry.get("drifted")),
            "bins": len(histogram["edges"]) + 1 if "edges" in histogram else None,
            "categories": len(histogram["categories"]) if "categories" in histogram else None,
        }
    checks: dict[str, list[str]] = {}
    for violation in report["violations"]:
        checks.setdefault(violation["check"], []).append(violation["column"])
    result: dict[str, Any] = {
        "repetition": repetition,
        "setup_s": setup_s,
        "baseline_s": baseline_s,
        "execute_s": execute_s,
        "read_s": read_s,
        "evaluate_s": evaluate_s,
        "rows": report["rows"],
        "status": report["status"],
        "drifted": report["drifted"],
        "violations": checks,
        "columns": columns,
        "rss_after_setup_mib": setup_rss,
        "rss_after_baseline_mib": baseline_rss,
        "peak_rss_mib": execute_rss,
        "report_bytes": len(
            services.artifacts.get_bytes(f"monitoring/reports/{monitor}/{run['id']}.json")
        ),
    }
    if profiler is not None:
        result["profile"] = _profile_rows(profiler)
    services.close()
    emit(result)


def _profile_rows(profiler: Any) -> dict[str, list[list[Any]]]:
    """The top functions by own time and by cumulative time."""
    import pstats

    stats = pstats.Stats(profiler)
    rows: dict[str, list[list[Any]]] = {}
    entries = stats.stats  # type: ignore[attr-defined]
    for key, order in (("tottime", 2), ("cumtime", 3)):
        ranked = sorted(entries.items(), key=lambda item: item[1][order], reverse=True)[:30]
        rows[key] = [
            [f"{Path(f).name}:{line}({name})", calls, round(tot, 4), round(cum, 4)]
            for (f, line, name), (_, calls, tot, cum, _) in ranked
        ]
    return rows


# -- Evidently's side (a child process in bench/.venv-evidently) ----------------------------


def evidently_side(repetition: int, mode: str) -> None:
    started = time.perf_counter()
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    import_s = time.perf_counter() - started

    # Read: the same capture files, the same window, flattened the way Slipway flattens them.
    clock = time.perf_counter()
    end = WINDOW_START + timedelta(hours=HOURS)
    files = sorted(
        (ARTIFACTS / "capture" / f"endpoint={ENDPOINT}").glob("variant=*/hour=*/*.parquet")
    )
    tables = []
    for path in files:
        table = pq.read_table(path)
        keep = pc.and_(
            pc.and_(
                pc.greater_equal(
                    table["time"], pa.scalar(WINDOW_START, pa.timestamp("us", tz="UTC"))
                ),
                pc.less(table["time"], pa.scalar(end, pa.timestamp("us", tz="UTC"))),
            ),
            pc.equal(table["kind"], "production"),
        )
        table = table.filter(keep)
        features = table["features"].combine_chunks()
        columns = {f.name: features.field(i) for i, f in enumerate(features.type)}
        columns[PREDICTION] = table["prediction"]
        tables.append(pa.table(columns))
    current = pa.concat_tables(tables).to_pandas()
    del tables
    reference = pd.read_parquet(REFERENCE)
    read_s = time.perf_counter() - clock
    read_rss = _peak_mib()

    definition = DataDefinition(
        numerical_columns=[*NUMERIC, PREDICTION], categorical_columns=list(CATEGORICAL)
    )
    if mode == "psi":
        preset = DataDriftPreset(
            per_column_method={c: "psi" for c in COLUMNS},
            per_column_threshold={c: THRESHOLD for c in COLUMNS},
        )
    else:
        preset = DataDriftPreset()
    clock = time.perf_counter()
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    report_s = time.perf_counter() - clock
    clock = time.perf_counter()
    out = HERE / f"evidently-{mode}-{repetition}.json"
    snapshot.save_json(str(out))
    save_s = time.perf_counter() - clock
    peak = _peak_mib()

    document = snapshot.dict()
    columns_out: dict[str, dict[str, Any]] = {}
    for metric in document["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            columns_out[config["column"]] = {
                "score": float(metric["value"]),
                "method": config.get("method"),
                "threshold": config.get("threshold"),
            }
    for test in document["tests"]:
        params = test["metric_config"]["params"]
        if test["id"] == "drift" and params.get("column") in columns_out:
            status = str(test["status"]).rsplit(".", 1)[-1].split(":")[0].strip("<' ")
            columns_out[params["column"]]["drifted"] = status == "FAIL"
    # How Evidently's PSI binned each numeric column (outside the timed part): more than
    # 20 distinct reference values -> equal-width Sturges bins over reference + current.
    binning: dict[str, Any] = {}
    for name in [*NUMERIC, PREDICTION]:
        ref, cur = reference[name].dropna(), current[name].dropna()
        distinct = int(ref.nunique())
        if distinct > 20:
            edges = np.histogram_bin_edges(
                np.concatenate([ref.to_numpy(), cur.to_numpy()]), bins="sturges"
            )
            shares = np.histogram(ref, edges)[0] / len(ref)
            binning[name] = {"kind": "sturges", "bins": len(edges) - 1,
                             "largest_reference_bin": float(shares.max())}  # fmt: skip
        else:
            binning[name] = {"kind": "values", "bins": distinct}
    emit(
        {
            "repetition": repetition,
            "mode": mode,
            "import_s": import_s,
            "read_s": read_s,
            "report_s": report_s,
            "save_s": save_s,
            "total_s": read_s + report_s + save_s,
            "rows": len(current),
            "reference_rows": len(reference),
            "rss_after_read_mib": read_rss,
            "peak_rss_mib": peak,
            "report_bytes": out.stat().st_size,
            "columns": columns_out,
            "binning": binning,
            "versions": _versions(["evidently", "pandas", "numpy", "scipy", "pyarrow"]),
        }
    )
    out.unlink()


def _versions(names: list[str]) -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in names}


# -- the driver -----------------------------------------------------------------------------


def machine() -> str:
    import psutil

    cpu = platform.processor() or "unknown CPU"
    info = Path("/proc/cpuinfo")
    if info.exists():
        names = [x.split(":", 1)[1].strip() for x in info.read_text().splitlines()
                 if x.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    memory = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def ensure_evidently() -> None:
    if EVIDENTLY_PYTHON.exists():
        return
    print("creating bench/.venv-evidently and installing Evidently ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    pip = [str(EVIDENTLY_PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(EVIDENTLY_REQUIREMENTS)], check=True)


def child(label: str, python: Path, args: list[str], timeout: float) -> dict[str, Any]:
    """One measurement in a fresh process (bench/run.py's watchdog: time and memory limits,
    a wait for a quiet machine, the CPU other processes used meanwhile)."""
    from run import run_step

    step = run_step(
        f"monitoring-{label}", [str(python), str(Path(__file__).resolve()), *args],
        timeout=timeout,
    )  # fmt: skip
    result: dict[str, Any] = {
        "label": label,
        "ok": step.ok and bool(step.results),
        "error": step.error,
        "wall_s": step.seconds,
        "tree_peak_rss_mib": step.tree_peak_rss_mb,
        "other_cores": step.other_cores,
        "load": os.getloadavg()[0],
    }
    if step.results:
        result |= step.results[-1]
    return result


def bench(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_before": os.getloadavg(),
        "data": write_data(args.rows, args.reference_rows, args.files),
        "versions": _versions(["pyarrow", "numpy", "scipy", "pandas"]),
    }
    python = REPO / ".venv" / "bin" / "python"
    results["slipway"] = []
    for k in range(1, args.runs + 1):
        print(f"slipway: baseline + data-quality run {k}/{args.runs} ...", flush=True)
        r = child(f"slipway-{k}", python, ["--side", "slipway", "--repetition", str(k)], 900)
        results["slipway"].append(r)
        if r["ok"]:
            print(f"  execute {r['execute_s']:.2f} s, baseline {r['baseline_s']:.2f} s,"
                  f" peak RSS {r['peak_rss_mib']:,.0f} MiB", flush=True)  # fmt: skip
        else:
            print(f"  FAILED: {r['error']}", flush=True)
    if args.profile:
        print("slipway: the run under cProfile ...", flush=True)
        r = child("slipway-profile", python,
                  ["--side", "slipway", "--repetition", "99", "--profile"], 900)  # fmt: skip
        results["profile"] = r
    if not args.skip_evidently:
        ensure_evidently()
        results["evidently"] = {"psi": [], "default": []}
        for mode, count in (("psi", args.evidently_runs), ("default", 1)):
            for k in range(1, count + 1):
                print(f"evidently ({mode}): read + DataDriftPreset {k}/{count} ...", flush=True)
                r = child(f"evidently-{mode}-{k}", EVIDENTLY_PYTHON,
                          ["--side", "evidently", "--repetition", str(k), "--mode", mode],
                          args.evidently_timeout)  # fmt: skip
                results["evidently"][mode].append(r)
                if not r["ok"]:
                    print(f"  FAILED: {r['error']}", flush=True)
                    break
                print(f"  read {r['read_s']:.1f} s, report {r['report_s']:.1f} s, save"
                      f" {r['save_s']:.1f} s, peak RSS {r['peak_rss_mib']:,.0f} MiB",
                      flush=True)  # fmt: skip
                if r["total_s"] > args.evidently_budget:  # one slow run is enough to report
                    break
    results["load_after"] = os.getloadavg()
    return results


# -- the report -----------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _each(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _secs(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:,.0f} s"


def _score(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value - THRESHOLD) < 0.0005:  # show which side of the threshold it is on
        return f"{value:.5f}"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _share(value: float) -> str:
    return "over 99%" if value > 0.99 else f"{value:.0%}"


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _other(runs: list[dict[str, Any]]) -> str:
    busy = [f"{r['label']} {r['other_cores']:.2f}" for r in runs if r.get("other_cores", 0) >= 0.25]
    return ", ".join(busy)


def explain(name: str, s: dict[str, Any], e: dict[str, Any], binning: dict[str, Any]) -> str:
    """Why Slipway's and Evidently's PSI decisions differ on one column."""
    kind = FEATURES[name][0] if name in FEATURES else "float"
    if kind == "string":
        return (
            f"`{name}`: both compare category frequencies; Slipway's PSI {_score(s['psi'])} vs"
            f" Evidently's {_score(e['score'])} straddle 0.2 — the floors for empty categories"
            " differ (Slipway 1e-4, Evidently 1e-4 or a millionth of the smallest share)."
        )
    info = binning.get(name, {})
    ours = f"Slipway bins by the baseline's deciles ({s['bins']} bins after merging ties)"
    if info.get("kind") == "sturges":
        theirs = (
            f"Evidently bins by {info['bins']} equal-width (Sturges) bins over the range of"
            " reference and current together, and"
            f" {_share(info['largest_reference_bin'])} of the reference falls in one of them"
        )
        if info["largest_reference_bin"] > 0.5:
            theirs += ", so a shift inside that bin is invisible to it"
    else:
        theirs = f"Evidently gives each of the {info.get('bins', '?')} distinct values its own bin"
    return f"`{name}` (PSI {_score(s['psi'])} vs {_score(e['score'])}): {ours}; {theirs}."


def report(r: dict[str, Any]) -> str:
    slip = [x for x in r["slipway"] if x["ok"]]
    ev = r.get("evidently") or {}
    ev_psi = [x for x in ev.get("psi", []) if x["ok"]]
    ev_default = [x for x in ev.get("default", []) if x["ok"]]
    lines = [
        "## Monitoring: data quality and drift vs Evidently",
        "",
        f"Measured {r['measured_at']} by `.venv/bin/python bench/monitoring.py` on {r['machine']}."
        f" Load average (1 min) {r['load_before'][0]:.2f} before, {r['load_after'][0]:.2f} after.",
        "",
        "Data (seeded, `bench/monitoring.py`): a reference of"
        f" {r['data']['params']['reference_rows']:,} rows"
        f" ({r['data']['reference_mib']:.0f} MiB Parquet) and a current window of"
        f" {r['data']['capture_rows']:,} captured rows in {r['data']['capture_files']} capture"
        f" files of the gateway's layout over {HOURS} hours ({r['data']['capture_mib']:.0f} MiB,"
        f" zstd), 20 features (14 numeric, 5 of them integers; 6 categorical with 3-50"
        " categories) and the prediction. Each side runs in a fresh process per repetition;"
        " peak RSS is the process's own maximum (`ru_maxrss`), imports included.",
        "",
    ]
    rows = [
        "| run | rows | time: median (each) | peak RSS | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]

    def row(label: str, count: int, times: list[float], rss: float | None, target: str = "—",
            met: str = "—", bold: bool = False) -> None:  # fmt: skip
        median = f"**{_secs(_median(times))}**" if bold else _secs(_median(times))
        memory = f"{rss:,.0f} MiB" if rss is not None else "—"
        rows.append(
            f"| {label} | {count:,} | {median} ({_each(times)}) | {memory} | {target} | {met} |"
        )

    if slip:
        execute = [x["execute_s"] for x in slip]
        peak = max(x["peak_rss_mib"] for x in slip)
        n = slip[0]["rows"]
        row("Slipway: baseline from the reference file (profile + constraints)",
            r["data"]["params"]["reference_rows"], [x["baseline_s"] for x in slip],
            max(x["rss_after_baseline_mib"] for x in slip))  # fmt: skip
        row("**Slipway: data-quality run** (`execute`: read capture + profile + drift + checks"
            " + write report)", n, execute, peak, "≤ 10 s, ≤ 2 GB",
            _mark(_median(execute) <= 10 and peak <= 2048), bold=True)  # fmt: skip
        row("… part, timed again after the run: read the window (`capture.read_window`)", n,
            [x["read_s"] for x in slip], None)  # fmt: skip
        row(
            "… part, timed again after the run: `data_quality.evaluate`",
            n,
            [x["evaluate_s"] for x in slip],
            None,
        )
    for label, runs in (("PSI 0.2 on every column", ev_psi), ("defaults", ev_default)):
        if not runs:
            continue
        n = runs[0]["rows"]
        row(f"Evidently `DataDriftPreset`, {label}: read + report + save JSON", n,
            [x["total_s"] for x in runs], max(x["peak_rss_mib"] for x in runs))  # fmt: skip
        row("… of which: read the capture files and the reference into pandas", n,
            [x["read_s"] for x in runs], max(x["rss_after_read_mib"] for x in runs))  # fmt: skip
        row("… without the read: `Report.run` + `save_json`", n,
            [x["report_s"] + x["save_s"] for x in runs], None)  # fmt: skip
    failed = [x for x in (*r["slipway"], *ev.get("psi", []), *ev.get("default", [])) if not x["ok"]]
    lines += rows
    lines.append("")
    for x in failed:
        lines.append(f"- {x['label']} did not finish: {x['error']} (after {x['wall_s']:.0f} s).")
    if failed:
        lines.append("")
    if slip and ev_psi:
        ours = _median([x["execute_s"] for x in slip])
        theirs = _median([x["total_s"] for x in ev_psi])
        theirs_report = _median([x["report_s"] + x["save_s"] for x in ev_psi])
        ratio, ratio_report = theirs / ours, theirs_report / ours
        lines += [
            f"Speed: Slipway's run is **{ratio:.0f}x** Evidently's (PSI configuration) end to end,"
            f" each reading the same capture files and writing a report (target ≥ 30x:"
            f" {'**met**' if ratio >= 30 else '**missed**'}); against Evidently's report alone"
            f" (its data already in pandas, not counting the read) it is {ratio_report:.0f}x"
            + (
                f"; against Evidently's defaults (Wasserstein and Jensen-Shannon tests) end to"
                f" end, {_median([x['total_s'] for x in ev_default]) / ours:.0f}x."
                if ev_default
                else "."
            )
            + f" Peak RSS: Slipway {max(x['peak_rss_mib'] for x in slip):,.0f} MiB, Evidently"
            f" {max(x['peak_rss_mib'] for x in ev_psi):,.0f} MiB. Evidently profiles the reference"
            " again on every report; Slipway profiled it once, when the baseline was created"
            " (row 1), and a run reads its stored statistics.",
            "",
        ]
    busy = _other([*r["slipway"], *ev.get("psi", []), *ev.get("default", [])])
    lines += [
        "Each measurement waited for the machine to be quiet first; "
        + (
            f"other processes still used ≥ 0.25 of a core during (cores): {busy}."
            if busy
            else "other processes used less than a quarter of a core during each."
        ),
        "",
    ]

    # Per-feature decisions.
    if slip and ev_psi:
        s_cols, e_cols = slip[0]["columns"], ev_psi[0]["columns"]
        d_cols = ev_default[0]["columns"] if ev_default else {}
        binning = ev_psi[0]["binning"]
        lines += [
            f"### Per-feature drift decisions ({slip[0]['rows']:,} current vs"
            f" {r['data']['params']['reference_rows']:,} reference rows)",
            "",
            "Expected: the strong drifts flagged, the mild and absent ones not (the mild"
            " ones are real shifts sized to stay under PSI 0.2). Slipway: PSI over the"
            " baseline's deciles (categories: frequencies), threshold 0.2 — its default rule."
            " Evidently: `DataDriftPreset(per_column_method=psi, per_column_threshold=0.2)`, and"
            " its defaults (for more than 1,000 reference rows: normed Wasserstein distance for"
            " numbers, Jensen-Shannon distance for categories, both at 0.1).",
            "",
            "| column | type | truth | what changed | Slipway PSI | Slipway | Evidently PSI |"
            " Evidently (PSI 0.2) | Evidently defaults: score | defaults |",
            "|---|---|---|---|---:|---|---:|---|---:|---|",
        ]
        # Per tool and drift class: how many columns it flagged.
        flagged = {
            t: {"strong": 0, "mild": 0, "none": 0} for t in ("slipway", "evidently", "default")
        }
        disagreements = []
        for name in COLUMNS:
            kind, truth, change = FEATURES.get(
                name,
                ("float", "derived", "churn score from income, num_products, device, credit_score"),
            )
            s, e, d = s_cols.get(name, {}), e_cols.get(name, {}), d_cols.get(name, {})

            def flag(value: bool | None, tool: str, truth: str = truth) -> str:
                expected = truth == "strong"
                if value is None:
                    return "—"
                if value and truth in flagged[tool]:
                    flagged[tool][truth] += 1
                text = "drift" if value else "no drift"
                return text if truth == "derived" or value == expected else f"**{text}**"

            method = (d.get("method") or "").replace("Wasserstein distance (normed)", "Wasserstein")
            method = method.replace("Jensen-Shannon distance", "JS")
            lines.append(
                f"| {name} | {kind} | {truth} | {change} | {_score(s.get('psi'))} |"
                f" {flag(s.get('drifted'), 'slipway')} | {_score(e.get('score'))} |"
                f" {flag(e.get('drifted'), 'evidently')} |"
                f" {method} {_score(d.get('score'))} | {flag(d.get('drifted'), 'default')} |"
            )
            if s and e and s.get("drifted") != e.get("drifted"):
                disagreements.append(explain(name, s, e, binning))
        classes = {
            c: sum(1 for v in FEATURES.values() if v[1] == c) for c in ("strong", "mild", "none")
        }

        def tally(tool: str) -> str:
            f = flagged[tool]
            return (f"{f['strong']}/{classes['strong']} strong, {f['mild']}/{classes['mild']} mild,"
                    f" {f['none']}/{classes['none']} unchanged")  # fmt: skip

        lines += [
            "",
            "Bold marks a decision other than the expected one. Columns flagged as drifted —"
            f" Slipway: {tally('slipway')}; Evidently with PSI 0.2: {tally('evidently')}"
            + (f"; Evidently's defaults: {tally('default')}" if d_cols else "")
            + ". Evidently's default tests are stricter by design: a normed Wasserstein distance"
            " of 0.1 is a shift of a tenth of the reference's standard deviation, so they flag"
            " the mild shifts too (a PSI of 0.2 is roughly a shift of 0.45 standard deviations"
            " of a normal column).",
            "",
            f"Slipway's report: {len(slip[0]['drifted'])} column(s) drifted"
            f" ({', '.join(slip[0]['drifted']) or 'none'}); its other violations:"
            + (
                "".join(
                    f" {check} ({', '.join(cols)})"
                    for check, cols in slip[0]["violations"].items()
                    if check != "drift"
                )
                or " none"
            )
            + f"; report {slip[0]['report_bytes'] / 1024:.0f} KiB of JSON.",
            "",
        ]
        if disagreements:
            lines += ["Where Slipway's and Evidently's PSI decisions differ:", ""]
            lines += [f"- {text}" for text in disagreements]
            lines.append("")
    if "profile" in r and r["profile"].get("ok") and "profile" in r["profile"]:
        lines += [
            "### Where the run's time goes (cProfile, execute"
            f" {r['profile']['execute_s']:.2f} s under the profiler)",
            "",
            "| function | calls | own time | cumulative |",
            "|---|---:|---:|---:|",
        ]
        for fn, calls, tot, cum in r["profile"]["profile"]["tottime"][:15]:
            lines.append(f"| `{fn}` | {calls:,} | {tot:.3f} s | {cum:.3f} s |")
        lines.append("")
    versions = r["versions"]
    ev_versions = (ev_psi or ev_default or [{}])[0].get("versions", {})
    lines.append(
        f"Versions: Slipway side pyarrow {versions['pyarrow']}, numpy {versions['numpy']}, scipy"
        f" {versions['scipy']}; Evidently side (`bench/.venv-evidently`,"
        " `bench/evidently-requirements.txt`) "
        + ", ".join(f"{k} {v}" for k, v in ev_versions.items())
        + "."
    )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3, help="Slipway repetitions")
    parser.add_argument("--evidently-runs", type=int, default=3)
    parser.add_argument("--evidently-timeout", type=float, default=3600)
    parser.add_argument("--evidently-budget", type=float, default=900,
                        help="after a run slower than this (s), stop repeating")  # fmt: skip
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also run once under cProfile")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--render", action="store_true",
                        help="re-render from the last run's figures")  # fmt: skip
    parser.add_argument("--side", choices=["slipway", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--repetition", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["psi", "default"], default="psi", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "slipway":
        slipway_side(args.repetition, args.profile)
        return
    if args.side == "evidently":
        evidently_side(args.repetition, args.mode)
        return
    if args.render:
        results = json.loads((DATA / "monitoring.json").read_text())
    else:
        results = bench(args)
        (DATA / "monitoring.json").write_text(json.dumps(results, indent=2, default=str))
    args.out.write_text(report(results))
    print(f"wrote {args.out}")
    if args.out == OUT and (DATA / "results.json").exists():
        subprocess.run([sys.executable, str(BENCH / "report.py")], check=True)
        print("updated BENCHMARKS.md")


if __name__ == "__main__":
    main()
