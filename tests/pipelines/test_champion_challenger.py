"""A relative gate in a real pipeline: each candidate is compared with the champion on the
same holdout in the same step; a worse one is registered Rejected with the reason and both
figures in its lineage, and cannot be deployed."""

from __future__ import annotations

import mlflow
import pytest

from slipway.core.errors import Forbidden
from slipway.services import Services
from tests.pipelines import sample


def _run(services: Services, **parameters: object) -> dict[str, dict[str, object]]:
    done = services.pipelines.wait(services.pipelines.start("challenge", parameters), timeout=240)
    assert done.state == "Succeeded", done
    return {s.name: s.outputs["value"] for s in done.steps if "value" in s.outputs}


def test_only_a_better_model_is_approved(services: Services, workers: None) -> None:
    services.pipelines.register(sample.challenge)

    # No champion yet: the first model passes, and the reason says why.
    first = _run(services, shuffle=True)
    assert first["compare-models"]["passed"] is True
    assert first["compare-models"]["reference"] is None
    v1 = first["register-model"]["version"]
    assert first["register-model"]["approval_status"] == "Approved"
    services.registry.set_alias("sample-model", "champion", v1, actor="test")  # type: ignore[arg-type]

    # A model that learned something beats it on the same holdout.
    better = _run(services)
    comparison = better["compare-models"]
    assert comparison["passed"] is True
    assert comparison["reference"]["model"] == f"sample-model:{v1}"  # type: ignore[index]
    assert comparison["improvement"] > 0.3  # type: ignore[operator]
    v2 = better["register-model"]["version"]
    assert better["register-model"]["approval_status"] == "Approved"
    services.registry.set_alias("sample-model", "champion", v2, actor="test")  # type: ignore[arg-type]

    # A model trained on shuffled labels does not: Rejected, with both figures recorded.
    worse = _run(services, shuffle=True)
    refused = worse["compare-models"]
    assert refused["passed"] is False and refused["rows"] == comparison["rows"]
    registered = worse["register-model"]
    assert registered["approval_status"] == "Rejected"
    version = services.registry.get("sample-model", registered["version"])  # type: ignore[arg-type]
    assert version.lineage["comparison"]["reference"]["model"] == f"sample-model:{v2}"
    assert version.lineage["comparison"]["candidate"]["roc_auc"] == refused["candidate"]["roc_auc"]  # type: ignore[index]
    history = services.registry.transitions("sample-model", version.version)
    assert history[-1].to_status == "Rejected"
    assert history[-1].comment == refused["reason"] and "does not beat" in history[-1].comment
    run = mlflow.MlflowClient(services.registry.mlflow.uri).get_run(version.run_id)
    assert run.data.metrics["reference_roc_auc"] == pytest.approx(
        refused["reference"]["roc_auc"]  # type: ignore[index]
    )
    with pytest.raises(Forbidden):
        services.registry.check_deployable("sample-model", version.version, "staging")
