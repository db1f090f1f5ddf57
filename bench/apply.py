"""Plan and apply of 200 resources: ``slipway plan`` / ``slipway apply`` over a spec set of
50 feature groups, 50 endpoints, 50 monitors and 50 alert rules (plus the baseline and the
alert channel they refer to), on the embedded platform (SQLite) and against a control
plane over HTTP (``slipway server``, auth on, through ``slipway.Client``).

    .venv/bin/python bench/apply.py            # writes bench/apply_results.md and the
                                               # '## Plan and apply' section of BENCHMARKS.md

What is timed, each repeated (median and slowest reported):
- *plan, no changes*: read and validate the files, read the platform (one listing per
  kind, the ownership records, the model the endpoints name), diff: what CI runs on every
  pull request;
- *apply, no changes*: the same plan, then apply's pass over it (nothing to do);
- *plan, one change*: an alert rule's cool-down edited;
- the first plan (202 creations) and the first apply (which creates them all), once;
- the whole ``slipway plan`` command as a process (Python's start-up and imports included).

There is no peer to run here (Terraform has no Slipway provider); the table states what a
``terraform plan`` of as many resources does for comparison: one refresh call per
resource before it diffs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "apply_results.md"
BENCHMARKS = BENCH.parent / "BENCHMARKS.md"
SECTION = "## Plan and apply (infrastructure as code)"
EACH = 50
REPEATS = 7
MODEL = "scorer"


def log(message: str) -> None:
    print(f"[apply-bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def register_model(services: Any) -> None:
    """One real MLflow run logging a small classifier, registered Approved as the
    ``champion`` of ``scorer``: what the 50 endpoints serve."""
    import logging
    import warnings

    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from slipway.registry.models import ApprovalStatus

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    experiment = services.registry.mlflow.experiment_id(
        "apply-bench", services.settings.artifact_root
    )
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    model = LogisticRegression().fit(x, (x["a"] + x["b"] > 0).astype(int))
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(model, name="model", input_example=x.head(2))
    version = services.registry.register(MODEL, f"runs:/{run.info.run_id}/model", actor="bench")
    services.registry.set_approval(
        MODEL, version.version, ApprovalStatus.APPROVED, actor="bench", comment=""
    )
    services.registry.set_alias(MODEL, "champion", version.version, actor="bench")


def write_specs(folder: Path, reference: Path) -> None:
    """The spec set: 50 of each kind, one file per kind, as a team would keep them."""
    folder.mkdir(parents=True)
    (folder / "spec-set.yaml").write_text("kind: SpecSet\nname: bench\n")
    groups = [
        {
            "kind": "FeatureGroup",
            "name": f"group-{i:02d}",
            "record_identifiers": [{"name": "id", "type": "string"}],
            "features": [{"name": f"f{j}", "type": "float"} for j in range(10)],
            "description": f"group {i}",
        }
        for i in range(EACH)
    ]
    endpoints = [
        {
            "kind": "Endpoint",
            "name": f"endpoint-{i:02d}",
            "variants": [{"name": "main", "model": f"{MODEL}@champion"}],
            "data_capture": {"enabled": True, "sampling_percent": 10},
            "deployment": {
                "strategy": "canary",
                "canary_percent": 10,
                "alarms": [{"name": "errors", "metric": "error_rate", "threshold": 0.05}],
            },
        }
        for i in range(EACH)
    ]
    monitors = [{"kind": "Baseline", "name": "reference", "source": {"file": str(reference)}}] + [
        {
            "kind": "Monitor",
            "name": f"monitor-{i:02d}",
            "type": "data_quality",
            "endpoint": f"endpoint-{i:02d}",
            "baseline": "reference",
            "schedule": "0 * * * *",
        }
        for i in range(EACH)
    ]
    alerts = [{"kind": "AlertChannel", "name": "ops-log", "type": "log"}] + [
        {
            "kind": "AlertRule",
            "name": f"rule-{i:02d}",
            "event_types": ["monitor.violations"],
            "channels": ["ops-log"],
            "filters": {"resource": f"monitor/monitor-{i:02d}"},
            "cooldown_seconds": 600,
        }
        for i in range(EACH)
    ]
    for name, documents in (
        ("features", groups),
        ("endpoints", endpoints),
        ("monitors", monitors),
        ("alerts", alerts),
    ):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def repeat(call: Callable[[], Any], times: int = REPEATS) -> list[float]:
    return [timed(call)[0] for _ in range(times)]


def side(specs: Path, platform: Any) -> dict[str, Any]:
    """The timings on one platform (embedded services or a client)."""
    from slipway.apply.execute import apply
    from slipway.apply.plan import plan
    from slipway.apply.specset import load_spec_set

    out: dict[str, Any] = {}
    out["load"] = repeat(lambda: load_spec_set(specs))
    seconds, first = timed(lambda: plan(load_spec_set(specs), platform))
    out["first_plan"], out["first_plan_changes"] = seconds, len(first.pending())
    spec_set = load_spec_set(specs)
    seconds, applied = timed(lambda: apply(first, spec_set, platform, actor="bench"))
    assert applied.ok, applied.error
    out["first_apply"], out["created"] = seconds, len(applied.done)

    def no_change_plan() -> None:
        planned = plan(load_spec_set(specs), platform)
        assert not planned.has_changes, planned.pending()[:3]

    def no_change_apply() -> None:
        loaded = load_spec_set(specs)
        planned = plan(loaded, platform)
        assert apply(planned, loaded, platform, actor="bench").done == []

    out["plan"] = repeat(no_change_plan)
    out["apply"] = repeat(no_change_apply)
    alerts = specs / "alerts.yaml"
    original = alerts.read_text()
    alerts.write_text(original.replace("cooldown_seconds: 600", "cooldown_seconds: 900", 1))
    try:
        out["plan_one_change"] = repeat(lambda: len(plan(load_spec_set(specs), platform).pending()))
        out["one_change_count"] = len(plan(load_spec_set(specs), platform).pending())
    finally:
        alerts.write_text(original)
    return out


@contextmanager
def server(home: Path, config: Path) -> Iterator[tuple[str, str]]:
    """``slipway server`` on the home (auth on) and an admin's token."""
    from slipway.core.settings import load_settings
    from slipway.services import Services

    os.environ["SLIPWAY_HOME"], os.environ["SLIPWAY_CONFIG"] = str(home), str(config)
    services = Services.open(load_settings())
    token = services.tokens.create("bench", "admin", created_by="bench")[1]
    services.close()
    log_file = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "slipway", "server"],
        env=os.environ | {"SLIPWAY_HOME": str(home), "SLIPWAY_CONFIG": str(config)},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{yaml.safe_load(config.read_text())['server']['port']}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, "slipway server exited"
        try:
            if httpx.get(f"{url}/api/v1/health/live", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "slipway server did not answer"
        time.sleep(0.2)  # a benchmark's start-up wait, not a test's
    try:
        yield url, token
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        log_file.close()


def cli_plan(specs: Path, env: dict[str, str]) -> list[float]:
    """The whole ``slipway plan`` command, as CI runs it: exit 0 (no changes) expected."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "slipway", "plan", str(specs)],
            env=os.environ | env,
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stdout + done.stderr
    return times


def measure() -> dict[str, Any]:
    import pandas as pd

    from slipway.client import Client
    from slipway.core.settings import load_settings
    from slipway.services import Services

    root = Path(tempfile.mkdtemp(prefix="apply-bench-"))
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    try:
        reference = root / "reference.parquet"
        pd.DataFrame({"a": [0.1 * i for i in range(200)], "b": [0.5] * 200}).to_parquet(reference)
        for name in ("embedded", "remote"):
            home = root / name / "home"
            home.mkdir(parents=True)
            config = home / "slipway.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "server": {"port": free_port(), "auth": True},
                        "data": {"allowed_roots": [str(root)]},
                    }
                )
            )
            specs = root / name / "specs"
            write_specs(specs, reference)
            os.environ["SLIPWAY_HOME"], os.environ["SLIPWAY_CONFIG"] = str(home), str(config)
            services = Services.open(load_settings())
            log(f"{name}: registering the model")
            register_model(services)
            if name == "embedded":
                log("embedded: timing")
                results[name] = side(specs, services)
                services.close()
                results["cli"] = cli_plan(
                    specs, {"SLIPWAY_HOME": str(home), "SLIPWAY_CONFIG": str(config)}
                )
                continue
            services.close()
            with server(home, config) as (url, token):
                log("remote: timing")
                with Client(url, token=token) as client:
                    results[name] = side(specs, client)
                results["cli_remote"] = cli_plan(
                    specs, {"SLIPWAY_URL": url, "SLIPWAY_TOKEN": token}
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def report(r: dict[str, Any]) -> str:
    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} s"

    def worst(values: list[float]) -> str:
        return f"{max(values):.3f} s"

    def target(values: list[float], limit: float) -> str:
        return f"≤ {limit:g} s {'✅' if max(values) <= limit else '❌'}"

    rows = []
    for label, key, limit in (
        ("plan, no changes", "plan", 2.0),
        ("apply, no changes", "apply", 2.0),
        ("plan, one alert rule changed", "plan_one_change", None),
        ("read and validate the files only", "load", None),
    ):
        for name in ("embedded", "remote"):
            values = r[name][key]
            rows.append(
                f"| {label} | {name} | {med(values)} | {worst(values)} |"
                f" {target(values, limit) if limit else '—'} |"
            )
    once = [
        f"| first plan (202 to create) | {name} | {r[name]['first_plan']:.3f} s | — | — |"
        for name in ("embedded", "remote")
    ] + [
        f"| first apply ({r[name]['created']} created) | {name} |"
        f" {r[name]['first_apply']:.1f} s | — | — |"
        for name in ("embedded", "remote")
    ]
    cli = [
        f"| `slipway plan` as a process, no changes | embedded | {med(r['cli'])} |"
        f" {worst(r['cli'])} | — |",
        f"| `slipway plan` as a process, no changes | remote | {med(r['cli_remote'])} |"
        f" {worst(r['cli_remote'])} | — |",
    ]
    lines = [
        SECTION,
        "",
        f"Measured {r['measured_at']} by `bench/apply.py` on {r['machine']}.",
        "",
        "A spec set of 202 resources — 50 feature groups (10 features each), 50 endpoints"
        " (a canary deployment with an alarm, data capture), 50 data-quality monitors on"
        " them, 50 alert rules, and the baseline and alert channel they refer to — planned"
        " and applied on the embedded platform (SQLite, in process) and against"
        " `slipway server` (auth on) through `slipway.Client` over loopback HTTP. Each"
        f" figure is {REPEATS} runs (median, slowest) unless it says once; *plan* includes"
        " reading and validating the 6 files, one listing per kind, the ownership records,"
        " the deployability check of the model the endpoints name, and the diff; *apply,"
        " no changes* is that plan and apply's pass over it.",
        "",
        "| what | platform | median | slowest | target |",
        "|---|---|---|---|---|",
        *rows,
        *once,
        *cli,
        "",
        "No peer runs here: there is no Terraform provider for Slipway. For scale,"
        " `terraform plan` refreshes every resource in its state with one read call to the"
        " provider's API before diffing (202 calls here, where Slipway's plan makes one"
        " listing per kind: 10 calls remotely, whatever the number of resources), and"
        " applies changes with a parallelism of 10 by default; Slipway applies in"
        " dependency order one change at a time, each through the capability's service"
        " (validation, audit, events), so the first apply's time is mostly the 202"
        " creations themselves.",
    ]
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str) -> str:
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = section.rstrip("\n") + "\n"
    if pattern.search(document):
        return pattern.sub(lambda _m: text + "\n", document, count=1).rstrip("\n") + "\n"
    return document.rstrip("\n") + "\n\n" + text


def main() -> None:
    raw = BENCH / ".data" / "apply.json"
    if "--rerender" in sys.argv:
        results = json.loads(raw.read_text())
    else:
        results = measure()
        raw.parent.mkdir(exist_ok=True)
        raw.write_text(json.dumps(results))
    text = report(results)
    OUT.write_text(text)
    BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), text))
    print(text)


if __name__ == "__main__":
    main()
