"""Model cards: written from what the platform recorded (owner and intended use given at
registration, lineage, run, gate comparison, reports, approvals), as JSON and Markdown,
through the service, REST and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from slipway.api.app import create_app
from slipway.cli.main import app as cli
from slipway.core.errors import InvalidInput, NotFound
from slipway.registry import card
from slipway.registry.lineage import Lineage
from slipway.services import Services

COMPARISON = {
    "metric": "roc_auc",
    "direction": "maximize",
    "min_improvement": 0.0,
    "rows": 1234,
    "candidate": {"model": "candidate", "roc_auc": 0.71},
    "reference": {"model": "delay:1", "roc_auc": 0.69},
    "improvement": 0.02,
    "passed": True,
    "reason": "candidate beats delay:1 on roc_auc (maximize): 0.7100 vs 0.6900",
}
LINEAGE = Lineage(
    pipeline="train-delay",
    pipeline_execution="exec-1",
    training_set={
        "group_versions": {"weather": 7, "planes": 2},
        "feature_refs": ["weather:temp", "planes:seats"],
        "rows": 5000,
    },
    data_digest="abc123",
    comparison=COMPARISON,
    reports={
        "bias": {"facet": "origin", "pre_training": {"ci": 0.25, "dpl": -0.05}},
        "importance": {"importance": {"a": 0.4, "b": 0.1}, "rows": 60},
    },
)


def _register(services: Services, log_model: Callable[..., str]) -> int:
    version = services.registry.register(
        "delay",
        f"runs:/{log_model()}/model",
        actor="alice",
        lineage=LINEAGE,
        owner="team-forecasting",
        intended_use="Ranking flights by delay risk for staffing; not for passenger notices.",
    )
    services.registry.set_approval(
        "delay", version.version, "Approved", actor="bob", comment="reviewed the gate"
    )
    return version.version


def test_the_card_is_written_from_what_the_platform_recorded(
    services: Services, log_model: Callable[..., str]
) -> None:
    version = _register(services, log_model)
    built = card.build(services.registry, "delay", version)
    assert built["owner"] == "team-forecasting"
    assert built["intended_use"].startswith("Ranking flights")
    assert built["training_data"]["feature_groups"] == {"planes": 2, "weather": 7}
    assert built["training_data"]["pipeline_execution"] == "exec-1"
    assert built["parameters"] == {"C": "1.0"} and "accuracy" in built["metrics"]
    assert built["comparison"]["reference"]["model"] == "delay:1"
    assert built["bias"]["pre_training"]["ci"] == 0.25
    assert built["importance"]["importance"] == {"a": 0.4, "b": 0.1}
    assert [(t["to"], t["actor"]) for t in built["approvals"]] == [
        ("PendingManualApproval", "alice"),
        ("Approved", "bob"),
    ]
    assert {i["name"] for i in built["inputs"]} == {"a", "b"}
    text = card.markdown(built)
    for heading in (
        "# Model card: delay version 1",
        "## Intended use",
        "## Training data",
        "| weather | 7 |",
        "## Compared with the champion",
        "| delay:1 | 0.69 | 1,234 |",
        "## Bias",
        "| pre_training.ci | 0.25 |",
        "## Global importance (mean |SHAP|)",
        "| a | 0.4 |",
        "## Approval history",
        "reviewed the gate",
    ):
        assert heading in text, heading


def test_a_version_registered_without_card_fields_still_has_a_card(
    services: Services, log_model: Callable[..., str]
) -> None:
    version = services.registry.register("plain", f"runs:/{log_model()}/model", actor="carol")
    built = card.build(services.registry, "plain", version.version)
    assert built["owner"] == "carol"  # who registered it answers for it
    assert built["comparison"] is None and built["bias"] is None
    text = card.markdown(built)
    assert "_Not stated at registration._" in text and "## Compared" not in text


def test_card_fields_are_checked_and_nothing_is_registered(
    services: Services, log_model: Callable[..., str]
) -> None:
    source = f"runs:/{log_model()}/model"
    for field, kwargs in (
        ("owner", {"owner": "x" * 256}),
        ("intended_use", {"intended_use": "y" * 5001}),
    ):
        with pytest.raises(InvalidInput) as caught:
            services.registry.register("checked", source, actor="t", **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
    with pytest.raises(NotFound):  # not even the model was created
        services.registry.versions("checked")


def test_the_card_over_rest_and_the_cli(
    services: Services,
    log_model: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = _register(services, log_model)
    client = TestClient(create_app(services), raise_server_exceptions=False)
    url = f"/api/v1/models/delay/versions/{version}/card"
    as_json = client.get(url)
    assert as_json.status_code == 200 and as_json.json()["owner"] == "team-forecasting"
    as_markdown = client.get(url, params={"format": "markdown"})
    assert as_markdown.status_code == 200
    assert as_markdown.headers["content-type"].startswith("text/markdown")
    assert "## Compared with the champion" in as_markdown.text
    assert client.get(url, params={"format": "pdf"}).status_code == 400
    assert client.get("/api/v1/models/delay/versions/99/card").status_code == 404
    registered = client.post(
        "/api/v1/models/delay/versions",
        json={"source": f"runs:/{log_model()}/model", "owner": "o" * 300},
    )
    assert registered.status_code == 400
    assert registered.json()["error"]["details"]["field"].endswith("owner")

    monkeypatch.setenv("SLIPWAY_HOME", str(services.settings.home))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", services.settings.database_url)
    runner = CliRunner()
    markdown = runner.invoke(cli, ["models", "card", "delay", str(version)])
    assert markdown.exit_code == 0, markdown.output
    assert markdown.stdout.startswith("# Model card: delay version 1")
    data = runner.invoke(cli, ["models", "card", "delay", str(version), "--format", "json"])
    assert json.loads(data.stdout)["intended_use"].startswith("Ranking flights")
    missing = runner.invoke(cli, ["models", "card", "delay", "42"])
    assert missing.exit_code == 1
