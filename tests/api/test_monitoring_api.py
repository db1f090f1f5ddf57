"""Monitoring over REST on both engines, auth on: baselines, monitors, runs executed by a
worker, reports, ground truth as JSON, JSON lines and CSV; bad input is a 400 naming the
field (or record) and writes nothing; unknown names are 404s; duplicates 409s.

Traffic is written straight into the capture layout (tests.monitoring.synthetic), so no
model or gateway is needed and each run takes milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from slipway.core.settings import load_settings
from slipway.services import Services
from tests.api.conftest import bearer
from tests.monitoring.synthetic import WINDOW, capture, execute_queued, write_baseline

API = "/api/v1"
GROUND_TRUTH = "monitoring/ground-truth"


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(
        home=tmp_path / "home",
        database={"url": database_url},
        server={"auth": True},
        data={"allowed_roots": [str(tmp_path)]},  # baselines are read from there
    )
    opened = Services.open(settings)
    yield opened
    opened.close()


@pytest.fixture
def editor(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["editor"])


@pytest.fixture
def data(tmp_path: Path) -> str:
    return write_baseline(tmp_path / "baseline.parquet")


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def _created(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _baseline(client: TestClient, headers: dict[str, str], data: str, name: str = "base") -> Any:
    body = {"name": name, "source": {"file": data}, "prediction_column": "score"}
    return _created(client.post(f"{API}/baselines", json=body, headers=headers))


def _monitor(name: str = "dq", **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "data_quality", "endpoint": "shop", "baseline": "base"} | extra


def test_openapi_documents_every_monitoring_path(client: TestClient) -> None:
    document = client.get(f"{API}/openapi.json").json()
    paths = document["paths"]
    expected = {
        "/api/v1/baselines": {"get", "post"},
        "/api/v1/baselines/{name}": {"get", "delete"},
        "/api/v1/baselines/{name}/statistics": {"get"},
        "/api/v1/baselines/{name}/constraints": {"get", "put"},
        "/api/v1/monitors": {"get", "post"},
        "/api/v1/monitors/{name}": {"get", "put", "delete"},
        "/api/v1/monitors/{name}/enable": {"post"},
        "/api/v1/monitors/{name}/disable": {"post"},
        "/api/v1/monitors/{name}/runs": {"get", "post"},
        "/api/v1/monitor-runs/{run_id}": {"get"},
        "/api/v1/monitor-runs/{run_id}/report": {"get"},
        "/api/v1/endpoints/{endpoint}/ground-truth": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    upload = paths["/api/v1/endpoints/{endpoint}/ground-truth"]["post"]["requestBody"]
    assert set(upload["content"]) == {
        "application/json",
        "application/x-ndjson",
        "text/csv",
        "application/vnd.apache.arrow.stream",
    }
    schemas = document["components"]["schemas"]
    assert {"MonitorSpec", "Monitor", "MonitorRun", "MonitorReport", "Baseline"} <= set(schemas)
    assert schemas["MonitorRun"]["properties"]["state"]["description"]
    assert paths["/api/v1/monitors/{name}/runs"]["post"]["responses"].keys() >= {"202"}


def test_baseline_monitor_run_and_report_show_drift(
    client: TestClient,
    services: Services,
    editor: dict[str, str],
    tokens: dict[str, str],
    data: str,
) -> None:
    viewer = bearer(tokens["viewer"])
    baseline = _baseline(client, editor, data)
    assert (baseline["rows"], baseline["columns"], baseline["model"]) == (2000, 3, None)
    assert baseline["created_by"] == "t-editor" and baseline["source"] == {"file": data}
    again = _error(client.post(f"{API}/baselines", json={"name": "base", "source": {}}), 401)
    assert again["code"] == "unauthorized"
    same = {"name": "base", "source": {"file": data}}
    duplicate = _error(client.post(f"{API}/baselines", json=same, headers=editor), 409)
    assert "exists" in duplicate["message"]
    assert [b["name"] for b in client.get(f"{API}/baselines", headers=viewer).json()] == ["base"]
    assert (
        client.get(f"{API}/baselines/base", headers=viewer).json()["digest"] == baseline["digest"]
    )
    statistics = client.get(f"{API}/baselines/base/statistics", headers=viewer).json()
    assert list(statistics["columns"]) == ["a", "b", "prediction"]
    assert statistics["columns"]["prediction"]["role"] == "prediction"
    constraints = client.get(f"{API}/baselines/base/constraints", headers=viewer).json()
    assert constraints["columns"]["a"]["drift"] == {"method": "psi", "threshold": 0.2}

    # Switch a to the KS statistic; everything left out takes its default.
    edited = constraints["columns"] | {"a": {"drift": {"method": "ks_statistic"}}}
    put = client.put(f"{API}/baselines/base/constraints", json={"columns": edited}, headers=editor)
    assert put.status_code == 200, put.text
    assert put.json()["columns"]["a"]["drift"] == {"method": "ks_statistic", "threshold": 0.1}
    assert put.json()["checks"]["out_of_range_tolerance"] == 0.01
    forbidden = client.put(f"{API}/baselines/base/constraints", json={}, headers=viewer)
    assert _error(forbidden, 403)["code"] == "forbidden"

    monitor = _created(client.post(f"{API}/monitors", json=_monitor(), headers=editor))
    assert (monitor["kind"], monitor["enabled"], monitor["runs"]) == ("data_quality", True, 0)
    twice = client.post(f"{API}/monitors", json=_monitor(), headers=editor)
    assert "exists" in _error(twice, 409)["message"]
    listed = client.get(f"{API}/monitors", params={"endpoint": "shop"}, headers=viewer).json()
    assert [m["name"] for m in listed] == ["dq"]
    assert client.get(f"{API}/monitors", params={"endpoint": "other"}, headers=viewer).json() == []

    capture(services, "shop", shift=1.5)
    run = _created(client.post(f"{API}/monitors/dq/runs", json=WINDOW, headers=editor), 202)
    assert (run["state"], run["trigger"], run["created_by"]) == ("queued", "manual", "t-editor")
    assert run["window_start"].startswith("2024-05-01T10:00:00")
    not_yet = _error(client.get(f"{API}/monitor-runs/{run['id']}/report", headers=viewer), 404)
    assert "no report" in not_yet["message"]

    assert execute_queued(services) == 1
    done = client.get(f"{API}/monitor-runs/{run['id']}", headers=viewer).json()
    assert (done["state"], done["status"], done["rows"]) == ("completed", "violations", 500)
    assert done["summary"]["drifted"] == ["a"]
    report = client.get(f"{API}/monitor-runs/{run['id']}/report", headers=viewer).json()
    assert report["drifted"] == ["a"] and report["status"] == "violations"
    assert report["baseline"] == "base" and "metrics" not in report
    assert report["columns"]["a"]["drift"]["rule"] == {"method": "ks_statistic", "threshold": 0.1}
    assert report["columns"]["a"]["drifted"] and not report["columns"]["b"]["drifted"]
    assert {(v["column"], v["check"]) for v in report["violations"]} >= {("a", "drift")}
    runs = client.get(f"{API}/monitors/dq/runs", headers=viewer).json()
    assert [r["id"] for r in runs] == [run["id"]]
    assert client.get(f"{API}/monitors/dq", headers=viewer).json()["last_status"] == "violations"

    # Without a body the run reads the monitor's window before now.
    default = _created(client.post(f"{API}/monitors/dq/runs", headers=editor), 202)
    assert default["state"] == "queued"
    assert (
        len(client.get(f"{API}/monitors/dq/runs", params={"limit": 1}, headers=viewer).json()) == 1
    )

    off = _created(client.post(f"{API}/monitors/dq/disable", headers=editor), 200)
    assert off["enabled"] is False
    on = _created(client.post(f"{API}/monitors/dq/enable", headers=editor), 200)
    assert on["enabled"] is True

    in_use = _error(client.delete(f"{API}/baselines/base", headers=editor), 409)
    assert "dq" in in_use["message"]
    assert client.delete(f"{API}/monitors/dq", headers=editor).status_code == 204
    assert client.delete(f"{API}/baselines/base", headers=editor).status_code == 204
    _error(client.get(f"{API}/baselines/base", headers=viewer), 404)
    assert client.get(f"{API}/monitors", headers=viewer).json() == []


def _labels(served: list[tuple[str, int, float]]) -> list[dict[str, Any]]:
    """A label per prediction: the prediction plus a known error (0.1 or -0.2)."""
    return [
        {"inference_id": i, "row": r, "label": round(p + (0.1 if r % 2 else -0.2), 6)}
        for i, r, p in served
    ]


def test_ground_truth_as_json_ndjson_and_csv_then_a_model_quality_run(
    client: TestClient, services: Services, editor: dict[str, str]
) -> None:
    served = capture(services, "shop", rows=30)
    labels = _labels(served)
    url = f"{API}/endpoints/shop/ground-truth"

    as_json = client.post(url, json={"records": labels[:10]}, headers=editor)
    assert _created(as_json)["records"] == 10
    lines = b"\n".join(orjson.dumps(record) for record in labels[10:20]) + b"\n\n"
    ndjson = client.post(
        url, content=lines, headers=editor | {"Content-Type": "application/x-ndjson"}
    )
    assert _created(ndjson)["records"] == 10
    rows = "".join(f"{r['inference_id']},{r['row']},{r['label']}\r\n" for r in labels[20:])
    csv = client.post(
        url,
        content=f"inference_id,row,label\r\n{rows}".encode(),
        headers=editor | {"Content-Type": "text/csv; charset=utf-8"},
    )
    stored = _created(csv)
    assert stored["records"] == 10 and stored["endpoint"] == "shop"
    assert stored["key"].startswith(f"{GROUND_TRUTH}/endpoint=shop/")
    assert len(services.artifacts.list(GROUND_TRUTH)) == 3

    spec = {
        "name": "quality",
        "kind": "model_quality",
        "endpoint": "shop",
        "model_quality": {"problem_type": "regression", "thresholds": {"mae": {"max": 0.1}}},
    }
    _created(client.post(f"{API}/monitors", json=spec, headers=editor))
    run = _created(client.post(f"{API}/monitors/quality/runs", json=WINDOW, headers=editor), 202)
    assert execute_queued(services) == 1
    report = client.get(f"{API}/monitor-runs/{run['id']}/report", headers=editor).json()
    assert (report["kind"], report["labelled"], report["unlabelled"]) == ("model_quality", 30, 0)
    assert math.isclose(report["metrics"]["mae"], 0.15, abs_tol=1e-5)
    assert "drifted" not in report and "columns" not in report
    assert [(v["check"], v["metric"]) for v in report["violations"]] == [("model_quality", "mae")]
    assert client.get(f"{API}/monitor-runs/{run['id']}", headers=editor).json()["status"] == (
        "violations"
    )


JSON = "application/json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
GOOD = b'{"inference_id": "a", "row": 0, "label": 1}'


BAD_GROUND_TRUTH = [
    (JSON, b"[1, 2]", "body", "records"),
    (JSON, b"{}", "body", "records"),
    (JSON, b'{"records": [], "extra": 1}', "extra", "extra"),
    (JSON, b'{"records": [], "": 1}', "body", "unknown keys"),  # found by tests/api/test_fuzz
    (JSON, b'{"records": {"a": 1}}', "records", "list"),
    (JSON, b'{"records": []}', "records", "no ground-truth records"),
    (JSON, b"{not json", "body", "JSON"),
    (JSON, b'{"records": [' + GOOD + b', {"inference_id": "b"}]}', "records",
     "records[1].label"),
    (JSON, b'{"records": [{"inference_id": "", "label": 1}]}', "records",
     "records[0].inference_id"),
    (JSON, b'{"records": [{"inference_id": "a", "row": -1, "label": 1}]}', "records",
     "records[0].row"),
    (JSON, b'{"records": [{"inference_id": "a", "label": 1, "score": 2}]}', "records",
     "records[0]: unknown keys"),
    (JSON, b'{"records": [' + GOOD + b', 5]}', "records", "records[1]: must be an object"),
    (NDJSON, GOOD + b"\n{oops\n", "records", "records[1] (line 2)"),
    (NDJSON, GOOD + b'\n{"inference_id": "b", "label": [1]}\n', "records",
     "records[1].label"),
    (CSV, b"inference_id,label,weight\na,1,2\n", "body", "CSV columns"),
    (CSV, b"inference_id,row\na,1\n", "body", "CSV columns"),
    (CSV, b"", "body", "empty"),
    (CSV, b"inference_id,row,label\na,0,1\nb,1\n", "records", "records[1] (line 3)"),
    (CSV, b"inference_id,row,label\na,first,1\n", "records", "records[0].row"),
    (CSV, b"inference_id,row,label\na,0,\n", "records", "records[0].label"),
    (CSV, b"inference_id,row,label\n\xff,0,1\n", "body", "UTF-8"),
]  # fmt: skip


def test_bad_ground_truth_is_a_400_naming_the_record_and_stores_nothing(
    client: TestClient, services: Services, editor: dict[str, str]
) -> None:
    for content_type, body, field, names in BAD_GROUND_TRUTH:
        response = client.post(
            f"{API}/endpoints/shop/ground-truth",
            content=body,
            headers=editor | {"Content-Type": content_type},
        )
        error = _error(response, 400)
        case = (content_type, body, error)
        assert error["code"] == "invalid_input", case
        assert error["details"]["field"] == field, case
        assert names in error["message"], case
        if "problems" in error["details"]:
            assert any(names.split(":")[0] in p for p in error["details"]["problems"]), case
        assert services.artifacts.list(GROUND_TRUTH) == [], case


def test_ground_truth_content_type_name_size_and_role_are_checked(
    client: TestClient, services: Services, editor: dict[str, str], tokens: dict[str, str]
) -> None:
    url = f"{API}/endpoints/shop/ground-truth"
    plain = client.post(url, content=GOOD, headers=editor | {"Content-Type": "text/plain"})
    assert _error(plain, 415)["code"] == "unsupported_media_type"
    bad_url = f"{API}/endpoints/Shop/ground-truth"
    bad_name = client.post(bad_url, json={"records": []}, headers=editor)
    assert _error(bad_name, 400)["details"]["field"] == "endpoint"
    limit = services.settings.server.max_body_bytes
    huge = client.post(url, content=b" " * (limit + 1), headers=editor | {"Content-Type": NDJSON})
    assert _error(huge, 413)["code"] == "payload_too_large"
    unknown_token = client.post(url, json={"records": []}, headers=bearer("slw_unknown"))
    assert _error(unknown_token, 401)["code"] == "unauthorized"
    # Its OpenAPI extra documents the body; it does not make the route a read.
    labels = {"records": [{"inference_id": "a", "label": 1}]}
    viewer = client.post(url, json=labels, headers=bearer(tokens["viewer"]))
    assert _error(viewer, 403)["code"] == "forbidden"
    assert services.artifacts.list(GROUND_TRUTH) == []


BAD_BASELINES: list[tuple[dict[str, Any], str]] = [
    ({"name": "Not A Name"}, "name"),
    ({"source": {}}, "source"),
    ({"source": {"file": "x.parquet", "query": "select 1"}}, "source"),
    ({"source": {"file": "http://host/x.parquet"}}, "source.file"),
    ({"source": {"file": "/nowhere/x.parquet"}}, "source.file"),
    ({"prediction_column": "nope"}, "prediction_column"),
    ({"columns": ["a", "nope"]}, "nope"),
    ({"model": "churn"}, "model"),
    ({"extra": 1}, "extra"),
    ({"source": "x.parquet"}, "source"),
]


def test_a_bad_baseline_is_a_400_naming_the_field_and_stores_nothing(
    client: TestClient, services: Services, editor: dict[str, str], data: str
) -> None:
    for change, field in BAD_BASELINES:
        body = {"name": "base", "source": {"file": data}} | change
        error = _error(client.post(f"{API}/baselines", json=body, headers=editor), 400)
        assert error["code"] == "invalid_input", (change, error)
        assert error["details"]["field"] == field, (change, error)
        assert client.get(f"{API}/baselines", headers=editor).json() == []
        assert services.artifacts.list("monitoring/baselines") == []


BAD_CONSTRAINTS: list[tuple[Any, str]] = [
    ([1], "body"),
    ({"columns": []}, "constraints.columns"),
    ({"columns": {"nope": {}}}, "constraints.columns.nope"),
    ({"columns": {"a": {"range": {"min": "low"}}}}, "constraints.columns.a.range.min"),
    ({"columns": {"a": {"drift": {"method": "chi2_p_value"}}}},
     "constraints.columns.a.drift.method"),
    ({"columns": {"b": {"range": {"min": 0}}}}, "constraints.columns.b.range"),
    ({"columns": {"a": {"completeness": 2}}}, "constraints.columns.a.completeness"),
    ({"columns": {}, "checks": {"types": "yes"}}, "constraints.checks.types"),
]  # fmt: skip


def test_bad_constraints_are_a_400_naming_the_field_and_change_nothing(
    client: TestClient, editor: dict[str, str], data: str
) -> None:
    _baseline(client, editor, data)
    before = client.get(f"{API}/baselines/base/constraints", headers=editor).json()
    for document, field in BAD_CONSTRAINTS:
        response = client.put(f"{API}/baselines/base/constraints", json=document, headers=editor)
        error = _error(response, 400)
        assert error["details"]["field"] == field, (document, error)
        assert client.get(f"{API}/baselines/base/constraints", headers=editor).json() == before


BAD_MONITORS: list[tuple[dict[str, Any], str]] = [
    ({"name": "Bad"}, "name"),
    ({"kind": "latency"}, "kind"),
    ({"endpoint": "Shop"}, "endpoint"),
    ({"schedule": "every hour"}, "schedule"),
    ({"window_hours": 0}, "window_hours"),
    ({"baseline": "nobody"}, "baseline"),
    ({"drift": {"nope": {"method": "psi"}}}, "drift.nope"),
    ({"drift": {"a": {"method": "chi2_p_value"}}}, "drift.a.method"),
    ({"drift": {"a": {"method": "wasserstein"}}}, "drift.a.method"),
    ({"surprise": True}, "surprise"),
    ({"baseline": None}, "body"),
    ({"kind": "model_quality", "baseline": None,
      "model_quality": {"problem_type": "regression", "thresholds": {"auc": {"min": 1}}}},
     "model_quality"),
]  # fmt: skip


def test_a_bad_monitor_is_a_400_naming_the_field_and_stores_nothing(
    client: TestClient, services: Services, editor: dict[str, str], data: str
) -> None:
    _baseline(client, editor, data)
    for change, field in BAD_MONITORS:
        response = client.post(f"{API}/monitors", json=_monitor() | change, headers=editor)
        error = _error(response, 400)
        assert error["code"] == "invalid_input", (change, error)
        assert error["details"]["field"] == field, (change, error)
        assert client.get(f"{API}/monitors", headers=editor).json() == []


def test_a_monitor_is_updated_in_place_keeping_its_runs(
    client: TestClient, services: Services, editor: dict[str, str], data: str
) -> None:
    _baseline(client, editor, data)
    _created(client.post(f"{API}/monitors", json=_monitor(), headers=editor))
    capture(services, "shop", shift=1.5)
    run = _created(client.post(f"{API}/monitors/dq/runs", json=WINDOW, headers=editor), 202)
    assert execute_queued(services) == 1
    _created(client.post(f"{API}/monitors/dq/disable", headers=editor), 200)

    # The name may be left out (the path's) or repeated.
    change = {"schedule": "0 6 * * *", "window_hours": 2, "description": "by ops"}
    for body in ({k: v for k, v in _monitor(**change).items() if k != "name"}, _monitor(**change)):
        updated = _created(client.put(f"{API}/monitors/dq", json=body, headers=editor), 200)
        assert (updated["name"], updated["schedule"], updated["enabled"]) == (
            "dq",
            "0 6 * * *",
            False,
        )
        assert updated["spec"]["window_hours"] == 2 and updated["spec"]["description"] == "by ops"
        assert (updated["runs"], updated["last_status"]) == (1, "violations")
        assert updated["next_run_at"] is not None
    assert client.get(f"{API}/monitors/dq", headers=editor).json() == updated
    runs = client.get(f"{API}/monitors/dq/runs", headers=editor).json()
    assert [r["id"] for r in runs] == [run["id"]]
    entries = services.audit.list(action="monitor.update", limit=10)
    assert [(e.actor, e.resource) for e in entries] == [("t-editor", "monitor/dq")] * 2


def test_a_bad_monitor_update_is_a_400_naming_the_field_and_changes_nothing(
    client: TestClient,
    services: Services,
    editor: dict[str, str],
    tokens: dict[str, str],
    data: str,
) -> None:
    _baseline(client, editor, data)
    before = _created(client.post(f"{API}/monitors", json=_monitor(), headers=editor))
    renamed = ({"name": "other"}, "name")
    kind = ({"kind": "bias", "bias": {"facet": "b", "facet_values": ["x"]}}, "kind")
    for change, field in [*BAD_MONITORS, renamed, kind]:
        response = client.put(f"{API}/monitors/dq", json=_monitor() | change, headers=editor)
        error = _error(response, 400)
        assert error["details"]["field"] == field, (change, error)
    missing = client.put(f"{API}/monitors/nobody", json=_monitor("nobody"), headers=editor)
    assert "nobody" in _error(missing, 404)["message"]
    viewer = bearer(tokens["viewer"])
    _error(client.put(f"{API}/monitors/dq", json=_monitor(), headers=viewer), 403)
    assert client.get(f"{API}/monitors", headers=editor).json() == [before]
    assert services.audit.list(action="monitor.update", limit=10) == []


BAD_WINDOWS: list[tuple[dict[str, Any], str]] = [
    ({"start": "2024-05-01T10:00:00"}, "start"),
    ({"end": "2024-05-01 11:00"}, "end"),
    ({"start": "yesterday"}, "start"),
    (WINDOW | {"start": WINDOW["end"]}, "end"),
    ({"window": 3}, "window"),
]


def test_a_bad_run_window_is_a_400_and_queues_nothing(
    client: TestClient, services: Services, editor: dict[str, str], data: str
) -> None:
    _baseline(client, editor, data)
    _created(client.post(f"{API}/monitors", json=_monitor(), headers=editor))
    for body, field in BAD_WINDOWS:
        response = client.post(f"{API}/monitors/dq/runs", json=body, headers=editor)
        assert _error(response, 400)["details"]["field"] == field, body
    assert client.get(f"{API}/monitors/dq/runs", headers=editor).json() == []
    assert services.queue.list(queue="monitoring") == []
    limit = client.get(f"{API}/monitors/dq/runs", params={"limit": 0}, headers=editor)
    assert _error(limit, 400)["details"]["field"] == "query.limit"


def test_unknown_names_are_404s(client: TestClient, editor: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/baselines/nobody"),
        ("GET", "/baselines/nobody/statistics"),
        ("GET", "/baselines/nobody/constraints"),
        ("PUT", "/baselines/nobody/constraints"),
        ("DELETE", "/baselines/nobody"),
        ("GET", "/monitors/nobody"),
        ("POST", "/monitors/nobody/enable"),
        ("POST", "/monitors/nobody/disable"),
        ("DELETE", "/monitors/nobody"),
        ("POST", "/monitors/nobody/runs"),
        ("GET", "/monitors/nobody/runs"),
        ("GET", "/monitor-runs/999"),
        ("GET", "/monitor-runs/999/report"),
    ]:
        body: dict[str, Any] | None = {"columns": {}} if method == "PUT" else None
        response = client.request(method, f"{API}{path}", json=body, headers=editor)
        error = _error(response, 404)
        assert error["code"] == "not_found", (method, path, error)
        assert "nobody" in error["message"] or "999" in error["message"], (method, path, error)
    # The endpoints router's own routes are untouched by the ground-truth route.
    assert _error(client.get(f"{API}/endpoints/shop", headers=editor), 404)["code"] == "not_found"
    wrong_method = client.get(f"{API}/endpoints/shop/ground-truth", headers=editor)
    assert wrong_method.status_code == 405
