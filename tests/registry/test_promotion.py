"""Promotion between two real Slipway platforms: the shared ``slipway up`` (the source,
"dev") and a second one started for these tests ("prod"), both with auth on.

What arrives is checked against what left: the same digest, signature, metrics, params
and predictions on the same rows, PendingManualApproval, the source's approval history,
lineage that names the source instead of linking into it. Promoting twice is a no-op; an
archive changed in transit, a member escaping its folder, a bad manifest, a missing
version are refused with nothing registered.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import uuid
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from slipway.api.app import create_app
from slipway.core.errors import Forbidden, InvalidInput, NotFound
from slipway.core.settings import load_settings
from slipway.registry import card
from slipway.registry.archive import MANIFEST, ModelExport, sha256_of
from slipway.registry.lineage import Lineage
from slipway.registry.models import ApprovalStatus, ModelTampered
from slipway.registry.promotion import promote
from slipway.services import Services
from tests.client.models import _mlflow_answers
from tests.registry.second_platform import Platform
from tests.shared_platform import SharedPlatform
from tests.waiting import eventually

ROWS = pd.DataFrame({"a": [0.3, -1.2, 2.0, 0.0, -0.4], "b": [0.1, 0.5, -3.0, 0.2, 0.9]})


@pytest.fixture
def dev(shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch) -> SharedPlatform:
    """The source, once its MLflow server (which makes MLflow's tables) answers."""
    eventually(
        lambda: _mlflow_answers(shared_platform.tracking_url),
        what="the shared platform's MLflow server answered",
        timeout=120,
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared_platform.services.registry.mlflow.uri)
    return shared_platform


def _name() -> str:
    return f"promo_{uuid.uuid4().hex[:8]}"


def _registered(services: Services, name: str, *, approve: bool = True) -> int:
    """A classifier trained here on generated data, logged with a metric and a param,
    registered by bob with probabilities, approved by alice with a comment."""
    registry = services.registry
    experiment = registry.mlflow.experiment_id("promotion", services.settings.artifact_root)
    rng = np.random.default_rng(7)
    x = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    y = (x["a"] - 0.5 * x["b"] > 0).astype(int)
    model = LogisticRegression(C=0.7).fit(x, y)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_param("C", 0.7)
        mlflow.log_metric("accuracy", float(model.score(x, y)))
        mlflow.sklearn.log_model(
            model, name="model", input_example=x.head(3), pip_requirements=["scikit-learn"]
        )
    version = registry.register(
        name,
        f"runs:/{run.info.run_id}/model",
        actor="bob",
        output="probabilities",
        owner="risk-team",
        lineage=Lineage(pipeline="train-churn", data_digest="d" * 64),
    )
    if approve:
        registry.set_approval(name, version.version, "Approved", actor="alice", comment="AUC ok")
    return version.version


def _probabilities(services: Services, name: str, version: int) -> np.ndarray:
    model = services.registry.load(name, version, loader=mlflow.sklearn.load_model)
    return np.asarray(model.predict_proba(ROWS))


def test_a_version_arrives_whole_from_the_embedded_source(
    dev: SharedPlatform, prod_platform: Platform
) -> None:
    name = _name()
    number = _registered(dev.services, name)
    source = dev.services.registry.get(name, number)
    with prod_platform.client() as prod:
        result = promote(dev.services, prod, name, number, actor="cli:carol")
        assert result.created
        arrived = result.version
        assert arrived.digest == source.digest
        assert arrived.signature == source.signature
        assert arrived.classes == source.classes == [0, 1]
        assert arrived.output == source.output and arrived.owner == "risk-team"
        assert arrived.approval_status is ApprovalStatus.PENDING
        assert arrived.metrics == source.metrics and arrived.metrics["accuracy"] > 0.5
        assert arrived.params == {"C": "0.7"}
        # Lineage names the source; the run it was trained in is that platform's, not one here.
        origin = arrived.lineage["promoted_from"]
        assert origin["platform"] == dev.url  # what the source's settings say it serves on
        assert (origin["name"], origin["version"], origin["digest"]) == (
            name,
            number,
            source.digest,
        )
        assert origin["run_id"] == source.run_id != arrived.run_id
        assert origin["lineage"]["pipeline"] == "train-churn"
        assert arrived.lineage["pipeline"] is None and arrived.lineage["training_set"] is None
        # The approval history: the source's, its actors named with their platform, then this.
        history = prod.registry.transitions(name, arrived.version)
        assert [(t.from_status, t.to_status) for t in history] == [
            (None, ApprovalStatus.PENDING),
            (ApprovalStatus.PENDING, ApprovalStatus.APPROVED),
            (ApprovalStatus.APPROVED, ApprovalStatus.PENDING),
        ]
        assert history[1].actor == f"alice at {dev.url} (default)"
        assert history[1].comment == "AUC ok"
        assert history[1].time == dev.services.registry.transitions(name, number)[1].time
        assert history[2].actor == "prod-admin"  # the token's holder, not what the caller said
        assert f"promoted from {dev.url}" in history[2].comment

        # The same rows, the same answers, from the model each platform loads.
        np.testing.assert_allclose(
            _probabilities(prod_platform.services, name, arrived.version),
            _probabilities(dev.services, name, number),
        )
        prod.registry.verify(name, arrived.version)
        # Its card tells where it came from, and what it was trained on there.
        built = card.build(prod_platform.services.registry, name, arrived.version)
        assert built["promoted_from"]["platform"] == dev.url
        assert built["training_data"]["pipeline"] == "train-churn"
        assert f"**Promoted from**: {dev.url} (default)" in card.markdown(built)

        # Twice is once.
        again = promote(dev.services, prod, name, number, actor="cli:carol")
        assert not again.created and again.version.version == arrived.version
        assert len(prod.registry.versions(name)) == 1


def test_remote_to_remote_and_by_alias(dev: SharedPlatform, prod_platform: Platform) -> None:
    name = _name()
    number = _registered(dev.services, name, approve=False)
    dev.services.registry.set_alias(name, "champion", number, actor="bob")
    with dev.client() as source, prod_platform.client() as prod:
        result = promote(source, prod, name, "champion", actor="ignored")
        assert result.created and result.version.digest == source.registry.get(name, 1).digest
        origin = result.version.lineage["promoted_from"]
        assert (
            origin["platform"] == dev.url and origin["approval_status"] == "PendingManualApproval"
        )
        # Nothing it refers to is looked up here: the source's run is unknown to prod.
        assert prod_platform.services.registry.mlflow.run_data(origin["run_id"]) == ({}, {}, None)
        assert not promote(source, prod, name, number, actor="x").created
    np.testing.assert_allclose(
        _probabilities(prod_platform.services, name, result.version.version),
        _probabilities(dev.services, name, number),
    )


def _post(
    platform: Platform, name: str, data: bytes, sha256: str, role: str = "admin"
) -> httpx.Response:
    return httpx.post(
        f"{platform.url}/api/v1/models/{name}/imports",
        params={"sha256": sha256},
        content=data,
        headers={
            "Authorization": f"Bearer {platform.tokens[role]}",
            "content-type": "application/gzip",
        },
        timeout=60,
    )


def _nothing_registered(platform: Platform, name: str) -> None:
    with platform.client() as prod, pytest.raises(NotFound):
        prod.registry.versions(name)


def _repacked(exported: ModelExport, change: dict[str, bytes | None]) -> bytes:
    """The archive with members replaced (bytes) or dropped (None), consistently packed."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(exported.data), mode="r:gz") as old,
        tarfile.open(fileobj=out, mode="w") as new,
    ):
        for member in old:
            handle = old.extractfile(member)
            data = handle.read() if handle else b""
            if member.name in change:
                if change[member.name] is None:
                    continue
                data = change[member.name] or b""
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue())


def test_an_archive_changed_in_transit_is_refused_whole(
    dev: SharedPlatform, prod_platform: Platform
) -> None:
    name = _name()
    exported = dev.services.registry.export_version(name, _registered(dev.services, name))
    tampered = bytearray(exported.data)
    tampered[len(tampered) // 2] ^= 0xFF
    answer = _post(prod_platform, name, bytes(tampered), exported.sha256)
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "model_tampered" and error["details"]["field"] == "sha256"
    assert "changed in transit" in error["message"]
    _nothing_registered(prod_platform, name)

    # Consistent bytes, but a model file that is not the one the source's digest covers.
    weights = next(p for p in exported.manifest.files if p.startswith("model."))
    swapped = _repacked(exported, {f"model/{weights}": b"not the model"})
    answer = _post(prod_platform, name, swapped, sha256_of(swapped))
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["details"]["files"]["changed"] == [weights]
    _nothing_registered(prod_platform, name)

    # Through the client, the bytes are checked against the SHA-256 declared at export.
    with prod_platform.client() as prod, pytest.raises(ModelTampered):
        prod.registry.import_version(name, swapped, sha256=exported.sha256)
    _nothing_registered(prod_platform, name)


def _archive(members: list[tarfile.TarInfo], manifest: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return gzip.compress(out.getvalue())


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("member", "says"),
    [
        (_file("model/../../evil"), "is not a relative path"),
        (_file("/etc/evil"), "is not a relative path"),
        (_file("../evil"), "is not a relative path"),
        (_file("elsewhere/evil"), "neither manifest.json nor under model/"),
        (_link("model/escape", "/etc/passwd"), "is not a plain file"),
        (_link("model/hard", "model/MLmodel", tarfile.LNKTYPE), "is not a plain file"),
    ],
    ids=["dotdot", "absolute", "parent", "outside", "symlink", "hardlink"],
)
def test_members_escaping_the_model_folder_are_refused(
    prod_platform: Platform, member: tarfile.TarInfo, says: str
) -> None:
    name = _name()
    data = _archive([_file("model/MLmodel"), member], b"{}")
    answer = _post(prod_platform, name, data, sha256_of(data))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["details"]["field"] == "archive" and says in error["message"]
    _nothing_registered(prod_platform, name)


def test_bad_input_names_the_field(dev: SharedPlatform, prod_platform: Platform) -> None:
    name = _name()
    exported = dev.services.registry.export_version(name, _registered(dev.services, name))
    manifest = exported.manifest.model_dump(mode="json")
    manifest["digest"] = "not hex"
    bad = _repacked(exported, {MANIFEST: json.dumps(manifest).encode()})
    answer = _post(prod_platform, name, bad, sha256_of(bad))
    assert answer.status_code == 400 and answer.json()["error"]["details"]["field"] == (
        "manifest.digest"
    )
    no_manifest = _repacked(exported, {MANIFEST: None})
    answer = _post(prod_platform, name, no_manifest, sha256_of(no_manifest))
    assert answer.status_code == 400 and "holds no manifest.json" in answer.text
    answer = _post(prod_platform, name, b"not a tar", sha256_of(b"not a tar"))
    assert answer.status_code == 400 and answer.json()["error"]["details"]["field"] == "archive"
    answer = _post(prod_platform, name, exported.data, "abc")
    assert answer.json()["error"]["details"]["field"] == "sha256"
    answer = _post(prod_platform, "Bad Name", exported.data, exported.sha256)
    assert answer.status_code == 400 and answer.json()["error"]["details"]["field"] == "name"
    answer = httpx.post(
        f"{prod_platform.url}/api/v1/models/{name}/imports",
        params={"sha256": exported.sha256},
        json={"archive": "no"},
        headers={"Authorization": f"Bearer {prod_platform.tokens['admin']}"},
    )
    assert answer.status_code == 415
    # Importing is registering: a viewer may not.
    assert _post(prod_platform, name, exported.data, exported.sha256, "viewer").status_code == 403
    _nothing_registered(prod_platform, name)

    with prod_platform.client() as prod:
        with pytest.raises(NotFound, match="has no version 99"):
            promote(dev.services, prod, name, 99, actor="x")
        with pytest.raises(NotFound):
            promote(dev.services, prod, "no-such-model", 1, actor="x")
        dev.services.registry.set_approval(name, 1, "Rejected", actor="alice", comment="bias")
        with pytest.raises(Forbidden, match="Rejected"):
            promote(dev.services, prod, name, 1, actor="x")
    _nothing_registered(prod_platform, name)
    # Only an import writes where a version was promoted from.
    with pytest.raises(InvalidInput) as info:
        dev.services.registry.register(
            name,
            dev.services.registry.get(name, 1).source,
            actor="x",
            lineage=Lineage(promoted_from={"platform": "forged"}),
        )
    assert info.value.field == "lineage.promoted_from"


def test_the_targets_policy_may_keep_the_sources_approval(
    dev: SharedPlatform, tmp_path: Path
) -> None:
    """``registry.promotion_status: Approved`` keeps an approval made at the source, for
    a caller who may approve here: in process, or an approver's token; an editor's token
    (who may import, not approve) gets PendingManualApproval."""
    name = _name()
    number = _registered(dev.services, name)
    settings = load_settings(
        home=tmp_path / "stage",
        server={"auth": True},
        registry={"promotion_status": "Approved"},
    )
    stage = Services.open(settings)
    try:
        assert promote(dev.services, stage, name, number, actor="ci").version.approval_status is (
            ApprovalStatus.APPROVED
        )
        exported = dev.services.registry.export_version(name, number)
        editor = stage.tokens.create("stage-editor", "editor", created_by="t")[1]
        with TestClient(create_app(stage), base_url="http://127.0.0.1") as api:
            answer = api.post(
                f"/api/v1/models/{name}-b/imports",
                params={"sha256": exported.sha256},
                content=exported.data,
                headers={"Authorization": f"Bearer {editor}", "content-type": "application/gzip"},
            )
        assert answer.status_code == 201, answer.text
        assert answer.json()["version"]["approval_status"] == "PendingManualApproval"
    finally:
        stage.close()
