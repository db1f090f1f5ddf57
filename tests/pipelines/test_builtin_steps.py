"""Built-in steps: evaluation gates registration; a training job as a step."""

from __future__ import annotations

from slipway.services import Services
from tests.pipelines import sample
from tests.pipelines.test_engine import _states


def test_train_evaluate_gate_register(services: Services, workers: None) -> None:
    services.pipelines.register(sample.train_register)
    run = services.pipelines.start("train-register")
    done = services.pipelines.wait(run, timeout=240)
    assert done.state == "Succeeded", done
    outputs = {s.name: s.outputs for s in done.steps}
    assert outputs["evaluate"]["value"]["roc_auc"] > 0.9
    registered = outputs["register-model"]["value"]
    assert registered["approval_status"] == "Approved"
    version = services.registry.get("sample-model", registered["version"])
    assert version.lineage["pipeline"] == "train-register"
    assert version.lineage["pipeline_execution"] == run
    assert version.lineage["pipeline_step"] == "register-model"
    assert version.metrics["roc_auc"] > 0.9
    history = services.registry.transitions("sample-model", registered["version"])
    assert [t.actor for t in history] == ["pipeline:train-register"] * 2
    gated = services.pipelines.wait(services.pipelines.start("train-register", {"min_auc": 1.5}))
    assert _states(gated)["register-model"] == "Skipped"


def test_training_job_as_a_step(services: Services, workers: None) -> None:
    services.pipelines.register(sample.job_step)
    done = services.pipelines.wait(services.pipelines.start("job-step"), timeout=240)
    assert done.state == "Succeeded", done
    result = done.steps[0].outputs["value"]
    assert result["job"].startswith("inner-") and result["model_key"].endswith("/model")
