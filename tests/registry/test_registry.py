"""The registry: registration with digest, signature and lineage; approvals; aliases;
compare; reverse lineage; tamper detection; unsafe sources; concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from slipway.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from slipway.registry.lineage import Lineage, code_revision
from slipway.registry.models import ApprovalStatus, ModelTampered
from slipway.registry.resources import ModelInput, RegisteredModel
from slipway.services import Services


def test_register_records_digest_signature_metrics_and_lineage(
    services: Services, log_model: Callable[..., str]
) -> None:
    run_id = log_model()
    lineage = Lineage(
        pipeline="train",
        pipeline_execution="exec-1",
        pipeline_step="register",
        training_set={
            "feature_refs": ["weather:temp", "planes:seats"],
            "group_versions": {"weather": 3, "planes": 1},
        },
        code_revision=code_revision(),
        data_digest="d" * 64,
    )
    version = services.registry.register(
        "delay", f"runs:/{run_id}/model", actor="alice", lineage=lineage
    )
    assert version.version == 1
    assert version.approval_status is ApprovalStatus.PENDING
    assert len(version.digest) == 64
    assert version.signature["inputs"]  # inferred from the input example
    assert version.metrics["accuracy"] > 0.5 and version.params == {"C": "1.0"}
    got = services.registry.get("delay", 1)
    assert got.lineage["run_id"] == run_id
    assert got.lineage["training_set"]["group_versions"] == {"weather": 3, "planes": 1}
    assert services.registry.trained_on("weather") == [
        ModelInput(model="delay", version=1, feature_group="weather", delta_version=3)
    ]
    assert services.registry.trained_on("weather", 2) == []
    assert [e.type for e in services.events.read()][-1] == "model.registered"
    model = services.registry.load("delay", 1)
    prediction = model.predict(pd.DataFrame({"a": [1.0], "b": [1.0]}))
    assert list(prediction) == [1]
    mlflow_version = services.registry.mlflow.client.get_model_version("delay", "1")
    assert mlflow_version.tags["slipway.approval_status"] == "PendingManualApproval"


def test_model_without_signature_or_example_is_refused(
    services: Services, log_model: Callable[..., str]
) -> None:
    run_id = log_model(example=False)
    with pytest.raises(InvalidInput) as info:
        services.registry.register("bare", f"runs:/{run_id}/model", actor="a")
    assert info.value.field == "signature"
    with pytest.raises(NotFound):
        services.registry.versions("bare")


def test_approval_transitions_are_recorded_and_gate_production(
    services: Services, log_model: Callable[..., str]
) -> None:
    registry = services.registry
    registry.register("m", f"runs:/{log_model(signature=True)}/model", actor="alice")
    with pytest.raises(Forbidden, match="Approved"):
        registry.check_deployable("m", 1, "production")
    registry.check_deployable("m", 1, "staging")
    registry.check_deployable("m", 1, "development")
    # Fail closed: only the declared sandboxes run unapproved versions, so an environment
    # nobody listed (a new "qa", a misspelt "prod") is held to approval like production.
    for environment in ("qa", "prod", "production-eu"):
        with pytest.raises(Forbidden, match="not a sandbox"):
            registry.check_deployable("m", 1, environment)
    registry.set_approval("m", 1, "Approved", actor="bob", comment="AUC 0.81 > 0.75")
    registry.check_deployable("m", 1, "qa")
    assert (
        registry.check_deployable("m", 1, "production").approval_status is ApprovalStatus.APPROVED
    )
    with pytest.raises(Conflict):
        registry.set_approval("m", 1, ApprovalStatus.APPROVED, actor="bob")
    registry.set_approval("m", 1, "rejected", actor="carol", comment="leaks labels")
    with pytest.raises(Forbidden, match="Rejected"):
        registry.check_deployable("m", 1, "production")
    with pytest.raises(Forbidden, match="Rejected"):
        registry.check_deployable("m", 1, "staging")
    history = registry.transitions("m", 1)
    assert [(t.from_status, t.to_status, t.actor) for t in history] == [
        (None, "PendingManualApproval", "alice"),
        ("PendingManualApproval", "Approved", "bob"),
        ("Approved", "Rejected", "carol"),
    ]
    assert history[1].comment == "AUC 0.81 > 0.75"
    audit = [(e.actor, e.action) for e in services.audit.list()]
    assert ("bob", "model.approved") in audit and ("carol", "model.rejected") in audit
    with pytest.raises(InvalidInput):
        registry.set_approval("m", 1, "Maybe", actor="x")
    with pytest.raises(NotFound):
        registry.set_approval("m", 9, "Approved", actor="x")


def test_aliases_compare_and_listing(services: Services, log_model: Callable[..., str]) -> None:
    registry = services.registry
    for c in (0.1, 1.0, 10.0):
        registry.register("m", f"runs:/{log_model(c=c)}/model", actor="a")
    registry.set_alias("m", "champion", 1, actor="a")
    registry.set_alias("m", "champion", 2, actor="a")
    registry.set_alias("m", "challenger", 3, actor="a")
    assert registry.get("m", "champion").version == 2
    assert registry.get("m", 2).aliases == ["champion"]
    with pytest.raises(NotFound):
        registry.get("m", "nobody")
    with pytest.raises(InvalidInput):
        registry.set_alias("m", "7", 1, actor="a")
    comparison = registry.compare("m", [1, "champion", "challenger"])
    assert comparison.versions == [1, 2, 3]
    assert comparison.params["C"] == ["0.1", "1.0", "10.0"]
    assert len(comparison.metrics["accuracy"]) == 3
    (listed,) = registry.models()
    assert listed == RegisteredModel(
        name="m",
        versions=3,
        latest=3,
        approved=[],
        latest_status=ApprovalStatus.PENDING,
        updated_at=registry.get("m", 3).registered_at,
    )
    registry.delete_alias("m", "challenger", actor="a")
    with pytest.raises(NotFound):
        registry.get("m", "challenger")


def test_concurrent_alias_moves_leave_exactly_one_winner(
    services: Services, log_model: Callable[..., str]
) -> None:
    registry = services.registry
    for _ in range(4):
        registry.register("m", f"runs:/{log_model()}/model", actor="a")
    errors: list[BaseException] = []

    def move(version: int) -> None:
        try:
            for _ in range(5):
                registry.set_alias("m", "champion", version, actor=f"t{version}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(v,)) for v in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    aliases = registry.mlflow.aliases("m")
    holders = [v for v, names in aliases.items() if "champion" in names]
    assert len(holders) == 1 and holders[0] in {1, 2, 3, 4}


def test_tampered_model_files_are_refused(
    services: Services, log_model: Callable[..., str]
) -> None:
    version = services.registry.register("m", f"runs:/{log_model()}/model", actor="a")
    services.registry.verify("m", 1)
    root = Path(services.settings.artifact_root)
    files = sorted((root / version.artifact_key).rglob("*"), key=lambda p: -p.stat().st_size)
    weights = next(p for p in files if p.is_file() and p.name != "MLmodel")
    weights.write_bytes(weights.read_bytes() + b"\x00")
    with pytest.raises(ModelTampered, match="digest mismatch"):
        services.registry.load("m", 1)
    assert services.events.read(types=["model.digest_mismatch"])


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/",
        "//proc/self/root",
        "http:///#/../../etc/",
        "../../x",
        "%2e%2e/%2e%2e/etc",
        "runs:/abc/model",
        "runs:/0123456789abcdef0123456789abcdef/../../../etc",
        "mlflow-artifacts://evil.example/x",
        "s3://bucket/model",
        "/etc/passwd",
        "models:/other/1",
    ],
)
def test_unsafe_sources_are_refused(services: Services, source: str) -> None:
    with pytest.raises(InvalidInput) as info:
        services.registry.register("m", source, actor="a")
    assert info.value.field == "source"


def test_model_names_are_validated(services: Services, log_model: Callable[..., str]) -> None:
    with pytest.raises(InvalidInput) as info:
        services.registry.register("Bad Name", f"runs:/{log_model()}/model", actor="a")
    assert info.value.field == "name"


@pytest.mark.slow
def test_concurrent_registrations_get_consecutive_versions(
    services: Services, log_model: Callable[..., str], database_url: str
) -> None:
    run_id = log_model()
    results: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            results.append(
                services.registry.register("busy", f"runs:/{run_id}/model", actor="t").version
            )
        except BaseException as exc:
            errors.append(exc)

    count = 50 if database_url.startswith("postgresql") else 10
    threads = [threading.Thread(target=register) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == list(range(1, count + 1))
    assert [v.version for v in services.registry.versions("busy")] == list(range(1, count + 1))
