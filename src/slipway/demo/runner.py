"""Run the demo end to end and print its summary (``slipway demo``)."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from slipway.demo.platform import running
from slipway.demo.scenario import ENDPOINT, Options, Outcome, Scenario


def run_demo(home: Path, *, quick: bool = False, console: Console | None = None) -> Outcome:
    """The whole loop on a fresh home folder at ``home`` (a previous demo's is replaced)."""
    console = console or Console(soft_wrap=True)
    # The demo speaks for itself: MLflow's notes on environments and pickles stay quiet.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    options = Options(quick=quick, sample=0.15 if quick else 0.35, per_day=8 if quick else 12)
    started = time.monotonic()
    with running(home) as platform:
        scenario = Scenario(platform, options, console)
        scenario.ingest()
        champion = scenario.train()
        scenario.deploy(champion)
        scenario.baseline_and_monitor(champion)
        scenario.replay()
        scenario.skew_check()
        scenario.challenger(champion)
        scenario.batch(champion, str(home / "batch"))
        scenario.drift_loop(champion)
        outcome = scenario.outcome
        outcome.seconds = time.monotonic() - started
        summary(console, outcome, home)
        # For scripts (and the demo's own test): what happened, as JSON.
        (home / "demo-outcome.json").write_text(
            json.dumps(dataclasses.asdict(outcome), indent=2, default=str)
        )
    return outcome


def summary(console: Console, outcome: Outcome, home: Path) -> None:
    console.rule("[bold]Summary")
    versions = Table("version", "role", "ROC AUC", "accuracy", "approval", title="flight-delay")
    for v in outcome.versions:
        versions.add_row(
            str(v["version"]),
            v["role"],
            f"{v['roc_auc']:.3f}",
            f"{v['accuracy']:.3f}",
            v["approval"],
        )
    console.print(versions)
    gates = Table(
        "version", "compared with", "rows", "ROC AUC", "reference", "verdict", title="gate"
    )
    for v in outcome.versions:
        c = v.get("comparison")
        if c and c.get("reference"):
            gates.add_row(
                str(v["version"]),
                c["reference"]["model"],
                f"{c['rows']:,}",
                f"{c['candidate']['roc_auc']:.3f}",
                f"{c['reference']['roc_auc']:.3f}",
                "passed" if c["passed"] else "Rejected",
            )
    if gates.row_count:
        console.print(gates)
    drift = Table("feature", "PSI", "drifted", title="drift, baseline vs July-December")
    for name, score in sorted(outcome.drift.items(), key=lambda kv: -kv[1]):
        drift.add_row(name, f"{score:.3f}", "yes" if name in outcome.drifted else "")
    console.print(drift)
    if outcome.skew:
        skew = Table(
            "feature",
            "mismatch share",
            title=f"served vs recomputed ({outcome.skew['rows']:,} rows)",
        )
        for name, share in sorted(outcome.skew["shares"].items()):
            skew.add_row(name, f"{share:.2%}")
        console.print(skew)
    history = Table("config", "outcome", "reason", title=f"{ENDPOINT} deployments")
    for entry in outcome.history:
        history.add_row(str(entry["version"]), entry["outcome"], entry.get("outcome_reason") or "")
    console.print(history)
    console.print(
        f"feature rows {sum(outcome.groups.values()):,} · replayed {outcome.replayed:,} flights · "
        f"batch {outcome.batch.get('rows', 0):,} rows · alerts {outcome.alerts} · "
        f"retraining executions {len(outcome.retrain_executions)} · "
        f"promoted v{outcome.promoted} · shuffled-label model "
        f"{outcome.rejected.get('approval', '?')} · broken candidate rolled back: "
        f"{outcome.rolled_back}"
    )
    console.print(
        f"done in {outcome.seconds:.0f} s. Workspace: {home} — explore it with "
        f"`SLIPWAY_HOME={home} slipway up` (REST API and docs, MLflow UI, the gateway), "
        "or run the demo with --keep."
    )
