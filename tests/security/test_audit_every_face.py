"""Every change is audited by the service that makes it, whichever face made it.

Each test makes one capability's changes three ways on one platform: through the CLI in
process (actor ``cli:<user>``), through the SDK in process (``Services``, actor
``local:<user>``) and over HTTP with auth on (the token's holder). It then reads the
service's own entries back (the middleware's ``METHOD /path`` entries left out) and
checks who, what, on which resource, and the details that say which change it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from slipway.api.app import create_app
from slipway.cli.main import app as cli_app
from slipway.core.clock import utcnow
from slipway.core.errors import BackendUnavailable
from slipway.core.settings import load_settings
from slipway.security.audit import AuditLog, local_actor, local_user
from slipway.security.resources import AuditEntry
from slipway.services import Services
from tests.api.conftest import bearer
from tests.monitoring.synthetic import write_baseline
from tests.pipelines import sample
from tests.registry.logged import register_classifier

CLI = f"cli:{local_user()}"
SDK = local_actor()
EDITOR = "t-editor"
ADMIN = "t-admin"
API = "/api/v1"

runner = CliRunner()


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """The platform the three faces share: the CLI opens it from ``SLIPWAY_HOME``."""
    settings = load_settings(
        home=tmp_path / "home", server={"auth": True}, data={"allowed_roots": [str(tmp_path)]}
    )
    opened = Services.open(settings)
    monkeypatch.setenv("SLIPWAY_HOME", str(settings.home))
    monkeypatch.setenv("COLUMNS", "200")
    yield opened
    opened.close()


@pytest.fixture
def http(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def editor(services: Services) -> dict[str, str]:
    return bearer(services.tokens.create(EDITOR, "editor", created_by="test")[1])


@pytest.fixture
def admin(services: Services) -> dict[str, str]:
    return bearer(services.tokens.create(ADMIN, "admin", created_by="test")[1])


def cli(*args: str) -> str:
    result = runner.invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def ok(response: Any) -> Any:
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def entries(services: Services, prefix: str) -> list[AuditEntry]:
    """The services' own entries whose action starts with ``prefix``, oldest first."""
    return [e for e in reversed(services.audit.list(limit=1000)) if e.action.startswith(prefix)]


def trail(services: Services, prefix: str) -> list[tuple[str, str, str]]:
    """(actor, action, resource) of those entries, oldest first; all succeeded."""
    found = entries(services, prefix)
    assert {e.outcome for e in found} <= {"success"}
    return [(e.actor, e.action, e.resource) for e in found]


def details(services: Services, action: str, resource: str) -> list[dict[str, Any]]:
    return [e.details for e in entries(services, action) if e.resource == resource]


# -- feature groups -----------------------------------------------------------------------


def _group(name: str, *extra: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "record_identifiers": [{"name": "k"}],
        "event_time": "at",
        "features": [{"name": "v", "type": "float"}, *extra],
    }


def _records() -> list[dict[str, Any]]:
    return [
        {"k": "a", "at": "2024-01-01T00:00:00Z", "v": 1.0},
        {"k": "b", "at": "2024-01-01T00:00:00Z", "v": 2.0},
    ]


def test_feature_group_changes(
    services: Services, http: TestClient, editor: dict[str, str], tmp_path: Path
) -> None:
    wider = {"name": "w", "type": "float"}
    (tmp_path / "group.yaml").write_text(yaml.safe_dump(_group("cli-fg")))
    (tmp_path / "wider.yaml").write_text(yaml.safe_dump(_group("cli-fg", wider)))
    frame = pd.DataFrame(_records())
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame.to_parquet(tmp_path / "rows.parquet")
    cli("features", "create", "-f", str(tmp_path / "group.yaml"))
    cli("features", "update", "-f", str(tmp_path / "wider.yaml"))
    cli("features", "ingest", "cli-fg", str(tmp_path / "rows.parquet"))
    cli("features", "materialize", "cli-fg")
    cli("features", "delete", "cli-fg", "--yes")

    store = services.features
    store.create_group(_group("sdk-fg"))
    store.update_group(_group("sdk-fg", wider))
    store.ingest("sdk-fg", _records())
    store.materialize("sdk-fg")
    store.delete_group("sdk-fg")

    groups = f"{API}/feature-groups"
    ok(http.post(groups, json=_group("http-fg"), headers=editor))
    ok(http.put(f"{groups}/http-fg", json=_group("http-fg", wider), headers=editor))
    ok(http.post(f"{groups}/http-fg/records", json={"records": _records()}, headers=editor))
    ok(http.post(f"{groups}/http-fg/materialize", json={}, headers=editor))
    ok(http.delete(f"{groups}/http-fg", headers=editor))

    changes = ["create", "update", "ingest", "materialize", "delete"]
    assert trail(services, "feature_group.") == [
        (actor, f"feature_group.{change}", f"feature-group/{face}-fg")
        for actor, face in ((CLI, "cli"), (SDK, "sdk"), (EDITOR, "http"))
        for change in changes
    ]
    for face, source in (("cli", str(tmp_path / "rows.parquet")), ("sdk", "sdk"), ("http", "rest")):
        resource = f"feature-group/{face}-fg"
        [update] = details(services, "feature_group.update", resource)
        assert update == {"revision": 2, "added": ["w"]}
        [ingest] = details(services, "feature_group.ingest", resource)
        assert (ingest["rows"], ingest["source"], ingest["offline_version"]) == (2, source, 0)
        [materialized] = details(services, "feature_group.materialize", resource)
        assert (materialized["records"], materialized["applied"]) == (2, 2)


def test_a_stream_micro_batch_is_not_audited_but_an_ingest_is(services: Services) -> None:
    store = services.features
    store.create_group(_group("streamed"))
    store.ingest_stream_batch("streamed", _records(), source="kafka://topic")
    store.audit_stream("streamed", topic="topic", group_id="g", actor="cli:someone")
    assert trail(services, "feature_group.") == [
        (SDK, "feature_group.create", "feature-group/streamed"),
        ("cli:someone", "feature_group.stream", "feature-group/streamed"),
    ]
    assert [i.kind for i in store.ingests("streamed")] == ["stream"]


# -- pipelines, schedules and triggers -------------------------------------------------------


def _started(output: str) -> str:
    found = re.search(r"started execution ([0-9a-f]{32})", output)
    assert found is not None, output
    return found.group(1)


def test_pipeline_changes(services: Services, http: TestClient, editor: dict[str, str]) -> None:
    cli("pipelines", "register", "tests.pipelines.sample:fan")
    services.pipelines.register(sample.fan)
    by_cli = _started(cli("pipelines", "run", "fan", "-p", "n=3"))
    by_sdk = services.pipelines.start("fan", {"n": 2})
    started = ok(http.post(f"{API}/pipelines/fan/executions", json={}, headers=editor))
    by_http = started["id"]
    cli("pipelines", "cancel", by_cli)
    services.pipelines.cancel(by_sdk)
    ok(http.post(f"{API}/executions/{by_http}/cancel", headers=editor))
    cli("pipelines", "retry", by_cli)
    services.pipelines.retry(by_sdk)
    ok(http.post(f"{API}/executions/{by_http}/retry", headers=editor))

    executions = {CLI: by_cli, SDK: by_sdk, EDITOR: by_http}
    assert trail(services, "pipeline.") == [
        (CLI, "pipeline.create", "pipeline/fan"),
        (SDK, "pipeline.update", "pipeline/fan"),
        *[(actor, "pipeline.start", "pipeline/fan") for actor in executions],
        *[(actor, "pipeline.cancel", f"execution/{e}") for actor, e in executions.items()],
        *[(actor, "pipeline.retry", f"execution/{e}") for actor, e in executions.items()],
    ]
    starts = entries(services, "pipeline.start")
    assert [e.details["execution"] for e in starts] == list(executions.values())
    assert starts[2].details["trigger"] == {"type": "manual", "via": "rest"}
    digest = services.pipelines.get("fan").digest
    assert [e.details["digest"] for e in entries(services, "pipeline.create")] == [digest]


def test_schedule_and_trigger_changes(
    services: Services, http: TestClient, editor: dict[str, str]
) -> None:
    services.pipelines.register(sample.fan)
    for kind in ("schedules", "triggers"):
        if kind == "schedules":
            cli("schedules", "create", "cli-s", "--pipeline", "fan", "--cron", "0 2 * * *")
            services.schedules.create("sdk-s", "fan", "0 2 * * *")
            body: dict[str, Any] = {"name": "http-s", "pipeline": "fan", "cron": "0 2 * * *"}
        else:
            cli("triggers", "create", "cli-t", "--pipeline", "fan", "--event", "x.done")
            services.triggers.create("sdk-t", "fan", "x.done")
            body = {"name": "http-t", "pipeline": "fan", "event_type": "x.done"}
        suffix = kind[0]
        ok(http.post(f"{API}/{kind}", json=body, headers=editor))
        for action in ("disable", "enable"):
            cli(kind, action, f"cli-{suffix}")
            getattr(services, kind).set_enabled(f"sdk-{suffix}", action == "enable")
            ok(http.post(f"{API}/{kind}/http-{suffix}/{action}", headers=editor))
        cli(kind, "delete", f"cli-{suffix}")
        getattr(services, kind).delete(f"sdk-{suffix}")
        ok(http.delete(f"{API}/{kind}/http-{suffix}", headers=editor))

    for kind, noun in (("s", "schedule"), ("t", "trigger")):
        assert trail(services, f"{noun}.") == [
            (actor, f"{noun}.{change}", f"{noun}/{face}-{kind}")
            for change in ("create", "disable", "enable", "delete")
            for actor, face in ((CLI, "cli"), (SDK, "sdk"), (EDITOR, "http"))
        ]
    [created] = details(services, "schedule.create", "schedule/http-s")
    assert (created["pipeline"], created["cron"]) == ("fan", "0 2 * * *")


def test_the_scheduler_starts_pipelines_as_itself(services: Services) -> None:
    services.pipelines.register(sample.fan)
    services.schedules.create("nightly", "fan", "0 2 * * *")
    [fired] = services.schedules.tick(utcnow() + timedelta(days=2))
    services.triggers.create("on-done", "fan", "x.done")
    services.events.append("x.done", "thing/one")
    [started] = services.triggers.process()
    starts = entries(services, "pipeline.start")
    assert [(e.actor, e.resource) for e in starts] == [("scheduler", "pipeline/fan")] * 2
    by_schedule, by_trigger = (e.details for e in starts)
    assert by_schedule["execution"] == fired.execution_id
    assert by_schedule["trigger"]["schedule"] == "nightly"
    assert by_trigger["execution"] == started
    assert by_trigger["trigger"]["trigger"] == "on-done"


# -- training and tuning jobs ----------------------------------------------------------------


def _tuning(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "trial": "slipway.steps.nothing:trial",
        "parameter_ranges": {"x": {"type": "continuous", "min": 0.0, "max": 1.0}},
        "code_paths": [],
    }


def test_training_and_tuning_job_changes(
    services: Services, http: TestClient, editor: dict[str, str], tmp_path: Path
) -> None:
    for face in ("cli", "sdk", "http"):
        job = {"name": f"{face}-job", "module": "slipway.steps.nothing"}
        if face == "cli":
            (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
            (tmp_path / "tuning.yaml").write_text(yaml.safe_dump(_tuning("cli-tune")))
            cli("jobs", "submit", "-f", str(tmp_path / "job.yaml"))
            cli("jobs", "stop", "cli-job")
            cli("tuning", "submit", "-f", str(tmp_path / "tuning.yaml"))
            cli("tuning", "stop", "cli-tune")
        elif face == "sdk":
            services.training.submit(job)
            services.training.stop("sdk-job")
            services.tuning.submit(_tuning("sdk-tune"))
            services.tuning.stop("sdk-tune")
        else:
            ok(http.post(f"{API}/jobs", json=job, headers=editor))
            ok(http.post(f"{API}/jobs/http-job/stop", headers=editor))
            ok(http.post(f"{API}/tuning-jobs", json=_tuning("http-tune"), headers=editor))
            ok(http.post(f"{API}/tuning-jobs/http-tune/stop", headers=editor))

    faces = ((CLI, "cli"), (SDK, "sdk"), (EDITOR, "http"))
    assert trail(services, "training_job.") == [
        (actor, f"training_job.{change}", f"training-job/{face}-job")
        for actor, face in faces
        for change in ("submit", "stop")
    ]
    assert trail(services, "tuning_job.") == [
        (actor, f"tuning_job.{change}", f"tuning-job/{face}-tune")
        for actor, face in faces
        for change in ("submit", "stop")
    ]
    [submitted] = details(services, "training_job.submit", "training-job/http-job")
    assert submitted["entry_point"] == "slipway.steps.nothing"
    assert details(services, "training_job.stop", "training-job/sdk-job") == [{"state": "Pending"}]
    [tuned] = details(services, "tuning_job.submit", "tuning-job/cli-tune")
    assert (tuned["trial"], tuned["max_jobs"]) == ("slipway.steps.nothing:trial", 10)


# -- batch jobs ------------------------------------------------------------------------------


def test_batch_job_changes(
    services: Services,
    http: TestClient,
    editor: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_classifier(services, monkeypatch, "churn")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"id": np.arange(1500), "a": rng.normal(size=1500)})
    frame["b"] = rng.normal(size=1500)
    frame.to_parquet(tmp_path / "input.parquet", row_group_size=1000)

    def spec(face: str) -> dict[str, Any]:
        return {
            "name": f"{face}-batch",
            "model": "churn:1",
            "input": {"files": {"path": str(tmp_path / "input.parquet")}},
            "output": {"files": {"path": str(tmp_path / f"out-{face}")}},
            "id_column": "id",
            "chunk_rows": 1000,
        }

    (tmp_path / "batch.yaml").write_text(yaml.safe_dump(spec("cli")))
    cli("batch", "submit", "-f", str(tmp_path / "batch.yaml"))
    cli("batch", "stop", "cli-batch")
    cli("batch", "resume", "cli-batch")
    services.batch.submit(spec("sdk"), actor=SDK)  # its actor is required, as before
    services.batch.stop("sdk-batch")
    services.batch.resume("sdk-batch")
    ok(http.post(f"{API}/batch-jobs", json=spec("http"), headers=editor))
    ok(http.post(f"{API}/batch-jobs/http-batch/stop", headers=editor))
    ok(http.post(f"{API}/batch-jobs/http-batch/resume", headers=editor))

    assert trail(services, "batch_job.") == [
        (actor, f"batch_job.{change}", f"batch-job/{face}-batch")
        for actor, face in ((CLI, "cli"), (SDK, "sdk"), (EDITOR, "http"))
        for change in ("submit", "stop", "resume")
    ]
    for face in ("cli", "sdk", "http"):
        resource = f"batch-job/{face}-batch"
        assert details(services, "batch_job.submit", resource) == [
            {"model": "churn:1", "chunks": 2}
        ]
        assert details(services, "batch_job.resume", resource) == [
            {"from": "Stopped", "requeued_chunks": 2}
        ]


# -- monitoring ------------------------------------------------------------------------------


def test_baseline_monitor_and_ground_truth_changes(
    services: Services, http: TestClient, editor: dict[str, str], tmp_path: Path
) -> None:
    data = write_baseline(tmp_path / "baseline.parquet")
    labels = [{"inference_id": "i-1", "row": 0, "label": 1}]
    (tmp_path / "labels.json").write_text(json.dumps({"records": labels}))

    def monitor(face: str) -> dict[str, Any]:
        return {
            "name": f"{face}-mon",
            "kind": "data_quality",
            "endpoint": "shop",
            "baseline": f"{face}-base",
        }

    for face in ("cli", "sdk", "http"):
        (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(monitor(face)))
        if face == "cli":
            cli("monitors", "baseline", "create", "cli-base", "--data", data)
            current = services.baselines.constraints("cli-base").model_dump(mode="json")
            (tmp_path / "constraints.json").write_text(json.dumps(current))
            constraints = str(tmp_path / "constraints.json")
            cli("monitors", "baseline", "constraints", "cli-base", "--set", constraints)
            cli("monitors", "create", "-f", str(tmp_path / "monitor.yaml"))
            cli("monitors", "disable", "cli-mon")
            cli("monitors", "enable", "cli-mon")
            cli("monitors", "run", "cli-mon")
            cli("monitors", "delete", "cli-mon", "--yes")
            cli("monitors", "ground-truth", "shop", str(tmp_path / "labels.json"))
            cli("monitors", "baseline", "delete", "cli-base", "--yes")
        elif face == "sdk":
            # These methods' actor was required before and still is: the caller names itself.
            services.baselines.create("sdk-base", source={"file": data}, actor=SDK)
            current = services.baselines.constraints("sdk-base").model_dump(mode="json")
            services.baselines.set_constraints("sdk-base", current, actor=SDK)
            services.monitoring.create(monitor("sdk"), actor=SDK)
            services.monitoring.set_enabled("sdk-mon", False, actor=SDK)
            services.monitoring.set_enabled("sdk-mon", True, actor=SDK)
            services.monitoring.run("sdk-mon", actor=SDK)
            services.monitoring.delete("sdk-mon", actor=SDK)
            services.monitoring.put_ground_truth("shop", labels)
            services.baselines.delete("sdk-base")
        else:
            body = {"name": "http-base", "source": {"file": data}}
            ok(http.post(f"{API}/baselines", json=body, headers=editor))
            current = ok(http.get(f"{API}/baselines/http-base/constraints", headers=editor))
            ok(http.put(f"{API}/baselines/http-base/constraints", json=current, headers=editor))
            ok(http.post(f"{API}/monitors", json=monitor("http"), headers=editor))
            ok(http.post(f"{API}/monitors/http-mon/disable", headers=editor))
            ok(http.post(f"{API}/monitors/http-mon/enable", headers=editor))
            ok(http.post(f"{API}/monitors/http-mon/runs", json={}, headers=editor))
            ok(http.delete(f"{API}/monitors/http-mon", headers=editor))
            url = f"{API}/endpoints/shop/ground-truth"
            ok(http.post(url, json={"records": labels}, headers=editor))
            ok(http.delete(f"{API}/baselines/http-base", headers=editor))

    faces = ((CLI, "cli"), (SDK, "sdk"), (EDITOR, "http"))
    assert trail(services, "baseline.") == [
        entry
        for actor, face in faces
        for entry in (
            (actor, "baseline.create", f"baseline/{face}-base"),
            (actor, "baseline.set_constraints", f"baseline/{face}-base"),
            (actor, "baseline.delete", f"baseline/{face}-base"),
        )
    ]
    assert trail(services, "monitor.") == [
        (actor, f"monitor.{change}", f"monitor/{face}-mon")
        for actor, face in faces
        for change in ("create", "disable", "enable", "run", "delete")
    ]
    assert trail(services, "ground_truth.") == [
        (actor, "ground_truth.upload", "endpoint/shop") for actor, _ in faces
    ]
    for face in ("cli", "sdk", "http"):
        [created] = details(services, "baseline.create", f"baseline/{face}-base")
        assert (created["source"], created["rows"], created["columns"]) == ("file", 2000, 3)
        [run] = details(services, "monitor.run", f"monitor/{face}-mon")
        assert isinstance(run["run"], int) and run["start"] < run["end"]
    uploads = details(services, "ground_truth.upload", "endpoint/shop")
    assert [upload["records"] for upload in uploads] == [1, 1, 1]


# -- alerts ----------------------------------------------------------------------------------


def test_alert_channel_and_rule_changes(
    services: Services, http: TestClient, editor: dict[str, str]
) -> None:
    alerts = services.alerts
    rule = {"event_types": ["monitor.violations"], "severity": "warning"}
    for face in ("cli", "sdk", "http"):
        channel, name = f"{face}-ch", f"{face}-rule"
        if face == "cli":
            cli("alerts", "channels", "create", channel, "--kind", "log")
            cli("alerts", "channels", "test", channel)
            event = "monitor.violations"
            cli("alerts", "rules", "create", name, "--event", event, "--channel", channel)
            cli("alerts", "rules", "disable", name)
            cli("alerts", "rules", "enable", name)
            cli("alerts", "rules", "delete", name)
            cli("alerts", "channels", "delete", channel)
        elif face == "sdk":
            alerts.create_channel(channel, "log", {}, actor=SDK)
            alerts.update_channel(channel, {})
            alerts.test(channel)
            alerts.create_rule(rule | {"name": name, "channels": [channel]}, actor=SDK)
            alerts.update_rule(name, rule | {"channels": [channel], "severity": "critical"})
            alerts.set_rule_enabled(name, False)
            alerts.set_rule_enabled(name, True)
            alerts.delete_rule(name)
            alerts.delete_channel(channel)
        else:
            base = f"{API}/alerts"
            body = {"name": channel, "kind": "log", "config": {}}
            ok(http.post(f"{base}/channels", json=body, headers=editor))
            ok(http.put(f"{base}/channels/{channel}", json={"config": {}}, headers=editor))
            ok(http.post(f"{base}/channels/{channel}/test", headers=editor))
            body = rule | {"name": name, "channels": [channel]}
            ok(http.post(f"{base}/rules", json=body, headers=editor))
            ok(http.put(f"{base}/rules/{name}", json=body, headers=editor))
            ok(http.post(f"{base}/rules/{name}/disable", headers=editor))
            ok(http.post(f"{base}/rules/{name}/enable", headers=editor))
            ok(http.delete(f"{base}/rules/{name}", headers=editor))
            ok(http.delete(f"{base}/channels/{channel}", headers=editor))

    channels = trail(services, "alert_channel.")
    assert channels == [
        (CLI, "alert_channel.create", "alert-channel/cli-ch"),
        (CLI, "alert_channel.test", "alert-channel/cli-ch"),
        (CLI, "alert_channel.delete", "alert-channel/cli-ch"),
        *[
            (actor, f"alert_channel.{change}", f"alert-channel/{face}-ch")
            for actor, face in ((SDK, "sdk"), (EDITOR, "http"))
            for change in ("create", "update", "test", "delete")
        ],
    ]
    assert trail(services, "alert_rule.") == [
        (CLI, "alert_rule.create", "alert-rule/cli-rule"),
        (CLI, "alert_rule.disable", "alert-rule/cli-rule"),
        (CLI, "alert_rule.enable", "alert-rule/cli-rule"),
        (CLI, "alert_rule.delete", "alert-rule/cli-rule"),
        *[
            (actor, f"alert_rule.{change}", f"alert-rule/{face}-rule")
            for actor, face in ((SDK, "sdk"), (EDITOR, "http"))
            for change in ("create", "update", "disable", "enable", "delete")
        ],
    ]
    for face in ("cli", "sdk", "http"):
        tested = details(services, "alert_channel.test", f"alert-channel/{face}-ch")
        assert tested == [{"delivered": True, "status_code": None}]
        created = details(services, "alert_channel.create", f"alert-channel/{face}-ch")
        assert created == [{"kind": "log"}]  # never the channel's config


# -- tokens ----------------------------------------------------------------------------------


def test_token_changes(services: Services, http: TestClient, admin: dict[str, str]) -> None:
    made = json.loads(cli("tokens", "create", "cli-tok", "--role", "editor", "-o", "json"))
    cli("tokens", "invoke", "cli-tok", "*")
    cli("tokens", "rotate", "cli-tok")
    cli("tokens", "revoke", "cli-tok")
    tokens = services.tokens
    token, _ = tokens.create("sdk-tok", "viewer")
    tokens.set_invoke(token.id, ["*"])
    tokens.rotate(token.id)
    tokens.revoke(token.id)
    created = ok(http.post(f"{API}/tokens", json={"name": "http-tok"}, headers=admin))
    ok(http.put(f"{API}/tokens/{created['id']}/invoke", json={"endpoints": ["*"]}, headers=admin))
    ok(http.post(f"{API}/tokens/{created['id']}/rotate", json={}, headers=admin))
    ok(http.delete(f"{API}/tokens/{created['id']}", headers=admin))

    ids = {CLI: made["id"], SDK: token.id, ADMIN: created["id"]}
    ours = {f"token/{token_id}" for token_id in ids.values()}  # not the fixture's tokens
    assert [t for t in trail(services, "tokens.") if t[2] in ours] == [
        (actor, f"tokens.{change}", f"token/{token_id}")
        for actor, token_id in ids.items()
        for change in ("create", "invoke", "rotate", "revoke")
    ]
    secrets = {made["token"], created["token"]}
    for entry in entries(services, "tokens."):
        assert not secrets & set(map(str, entry.details.values()))
    [cli_created] = details(services, "tokens.create", f"token/{made['id']}")
    assert (cli_created["name"], cli_created["role"]) == ("cli-tok", "editor")
    assert tokens.list()[-1].created_by == ADMIN
    shown = json.loads(cli("audit", "--actor", CLI, "--action", "tokens.", "-o", "json"))
    assert [e["action"] for e in shown] == [
        f"tokens.{c}" for c in ("revoke", "rotate", "invoke", "create")
    ]


# -- what the entries promise ----------------------------------------------------------------


def test_a_change_and_its_entry_commit_together(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change recorded in its own transaction is not made when its entry cannot be
    written: the caller sees the error, and nothing half-reported is left."""
    services.pipelines.register(sample.fan)

    def unwritable(self: AuditLog, **_: Any) -> AuditEntry:
        raise BackendUnavailable("the audit table is away")

    monkeypatch.setattr(AuditLog, "record", unwritable)
    with pytest.raises(BackendUnavailable):
        services.schedules.create("nightly", "fan", "0 2 * * *")
    with pytest.raises(BackendUnavailable):
        services.training.submit({"name": "j", "module": "slipway.steps.nothing"})
    monkeypatch.undo()
    assert list(services.schedules.all()) == []
    assert list(services.training.jobs()) == []


def test_the_audit_log_cannot_be_changed_through_any_face(http: TestClient) -> None:
    """Entries are only appended: the REST API reads them (GET) and nothing else, and
    neither the CLI nor the client offers a way to edit or delete one (only the retention
    policy removes old entries, on the machine that runs the platform)."""
    paths = ok(http.get(f"{API}/openapi.json"))["paths"]
    audit_paths = {path: set(ops) for path, ops in paths.items() if "audit" in path}
    assert audit_paths == {f"{API}/audit": {"get"}}
    assert not [m for m in vars(AuditLog) if re.match(r"(delete|update|edit|remove|purge)", m)]
