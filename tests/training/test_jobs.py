"""Training jobs: SageMaker script mode, MLflow runs, retries, memory cap, checkpoints."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.core.errors import Conflict, InvalidInput
from slipway.core.settings import load_settings
from slipway.services import Services
from slipway.workers.handlers import DEFAULT_QUEUES
from slipway.workers.worker import Worker
from tests.pipelines.test_recovery import _worker

SCRIPTS = str(Path(__file__).parent / "scripts")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    opened = Services.open(
        load_settings(home=tmp_path / "home", workers={"lease_seconds": 2, "poll_seconds": 0.05})
    )
    yield opened
    opened.close()


@pytest.fixture
def worker(services: Services) -> Iterator[None]:
    runner = Worker(services, queues=DEFAULT_QUEUES, worker_id="in-process")
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    yield
    runner.stopping.set()
    thread.join(timeout=60)


@pytest.fixture
def train_channel(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["label"] = (frame["a"] > frame["b"]).astype(int)
    folder = tmp_path / "train"
    folder.mkdir()
    frame.to_csv(folder / "train.csv", index=False)
    return folder


def _log(services: Services, name: str) -> str:
    return "".join(r.text for r in services.training.logs(name))


def test_unmodified_sagemaker_script_runs_as_a_job(
    services: Services, worker: None, train_channel: Path
) -> None:
    services.training.submit(
        {
            "name": "rf",
            "script": "train_rf.py",
            "source_dir": SCRIPTS,
            "hyperparameters": {"n_estimators": 7, "max_depth": 2},
            "channels": {"train": str(train_channel)},
        }
    )
    job = services.training.wait("rf", timeout=180)
    assert job.state == "Succeeded", (job.error, _log(services, "rf"))
    assert services.artifacts.exists("jobs/rf/model/model.joblib")
    metrics = json.loads(services.artifacts.get_bytes("jobs/rf/output/metrics.json"))
    assert metrics["accuracy"] > 0.8
    log = _log(services, "rf")
    assert "trained 7 trees" in log and "channels ['train']" in log
    run = services.registry.mlflow.client.get_run(job.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"n_estimators": "7", "max_depth": "2"}
    assert run.data.metrics["train_accuracy"] > 0.8
    with pytest.raises(Conflict):
        services.training.submit({"name": "rf", "module": "x"})


def test_script_failures_are_retried_then_fail(services: Services, worker: None) -> None:
    services.training.submit(
        {
            "name": "flaky",
            "script": "epochs.py",
            "source_dir": SCRIPTS,
            "hyperparameters": {"epochs": 1, "seconds": 0.05, "fail_times": 1},
            "retries": 1,
        }
    )
    job = services.training.wait("flaky", timeout=120)
    assert job.state == "Succeeded" and job.attempts == 2
    services.training.submit(
        {
            "name": "doomed",
            "script": "epochs.py",
            "source_dir": SCRIPTS,
            "hyperparameters": {"fail_times": 5},
            "retries": 1,
        }
    )
    failed = services.training.wait("doomed", timeout=120)
    assert failed.state == "Failed" and failed.failures == 2
    assert "failing on purpose" in _log(services, "doomed")
    run = services.registry.mlflow.client.get_run(failed.mlflow_run_id)
    assert run.info.status == "FAILED"


def test_memory_cap_is_enforced(services: Services, worker: None) -> None:
    services.training.submit(
        {"name": "hog", "script": "hog.py", "source_dir": SCRIPTS, "memory_mb": 400}
    )
    job = services.training.wait("hog", timeout=120)
    assert job.state == "Failed"
    assert "MemoryError" in _log(services, "hog")


def test_bad_specs_are_refused(services: Services) -> None:
    for spec, field in [
        ({"name": "Bad Name", "module": "x"}, "name"),
        ({"name": "two", "module": "x", "function": "y:z"}, "body"),
        ({"name": "escape", "script": "../../etc/x.py", "source_dir": "/tmp"}, "body"),
        ({"name": "hp", "module": "x", "hyperparameters": {"bad key!": 1}}, "hyperparameters"),
        ({"name": "cores", "module": "x", "cpus": 0}, "cpus"),
    ]:
        with pytest.raises(InvalidInput) as info:
            services.training.submit(spec)
        assert info.value.field == field, spec
    assert services.training.jobs() == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killed_job_resumes_from_its_checkpoint(services: Services, signum: int) -> None:
    """SIGKILL: the spot instance is gone and its lease expires. SIGTERM: the worker stops
    and hands the job back at once, its attempt not counted. Either way the next worker
    resumes from the last checkpoint."""
    home = services.settings.home
    services.training.submit(
        {
            "name": "long",
            "script": "epochs.py",
            "source_dir": SCRIPTS,
            "hyperparameters": {"epochs": 8, "seconds": 0.5},
            "checkpoint_sync_seconds": 0.3,
        }
    )
    doomed = _worker(home, "spot-instance")
    key = "jobs/long/checkpoints/state.json"
    deadline = time.monotonic() + 90
    while True:
        assert time.monotonic() < deadline, "no checkpoint was saved"
        if (
            services.artifacts.exists(key)
            and json.loads(services.artifacts.get_bytes(key))["epoch"] >= 3
        ):
            break
        time.sleep(0.1)
    os.kill(doomed.pid, signum)
    assert doomed.wait(timeout=30) == (-signal.SIGKILL if signum == signal.SIGKILL else 0)
    survivor = _worker(home, "replacement")
    try:
        job = services.training.wait("long", timeout=120)
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=30)
    assert job.state == "Succeeded", (job.error, _log(services, "long"))
    handed_back = signum == signal.SIGTERM
    attempts = 1 if handed_back else 2
    assert job.resumed_from_checkpoint and job.attempts == attempts and job.failures == 0
    state = json.loads(services.artifacts.get_bytes("jobs/long/model/state.json"))
    assert state["epoch"] == 8 and state["attempts"] == [1, attempts]
    log = _log(services, "long")
    resumed_at = int(log.split("resuming from epoch ")[1].split()[0])
    assert resumed_at >= 3
    # The second attempt did not start over: epoch 1 ran once, in the first attempt.
    assert log.count("epoch 1 done") == 1 and "epoch 8 done" in log


def test_jobs_of_the_same_name_in_two_workspaces_stay_apart(
    services: Services, worker: None, train_channel: Path
) -> None:
    """Each workspace's ``rf``: its own row, MLflow run (in that workspace's experiment,
    where the unmodified script's ``mlflow.start_run()`` joins it), files and logs."""
    services.workspaces.create("fraud", actor="test")
    theirs = services.training.in_workspace("fraud")
    spec = {
        "name": "rf",
        "script": "train_rf.py",
        "source_dir": SCRIPTS,
        "experiment": "forest",
        "channels": {"train": str(train_channel)},
    }
    services.training.submit(spec | {"hyperparameters": {"n_estimators": 3}})
    theirs.submit(spec | {"hyperparameters": {"n_estimators": 5}})
    ours_done = services.training.wait("rf", timeout=180)
    theirs_done = theirs.wait("rf", timeout=180)
    assert ours_done.state == theirs_done.state == "Succeeded", (ours_done.error, theirs_done.error)
    assert ours_done.model_key == "jobs/rf/model"
    assert theirs_done.model_key == "workspaces/fraud/jobs/rf/model"
    assert services.artifacts.exists("workspaces/fraud/jobs/rf/model/model.joblib")
    assert "trained 3 trees" in _log(services, "rf")
    assert "trained 5 trees" in "".join(r.text for r in theirs.logs("rf"))
    fraud_mlflow = services.registry.mlflow.in_workspace("fraud")
    with fraud_mlflow.scope():
        run = fraud_mlflow.client.get_run(theirs_done.mlflow_run_id)
        experiment = fraud_mlflow.client.get_experiment(run.info.experiment_id)
    assert run.data.params == {"n_estimators": "5"} and run.data.metrics["train_accuracy"] > 0.8
    assert (experiment.name, experiment.workspace) == ("forest", "fraud")
    # From the default workspace the other team's run is not there.
    assert services.registry.mlflow.run_data(theirs_done.mlflow_run_id) == ({}, {}, None)
    assert [j.name for j in theirs.jobs()] == ["rf"]
    theirs.submit(spec | {"name": "only-theirs", "module": None})
    assert [j.name for j in services.training.jobs()] == ["rf"]
    entries = {e.resource for e in services.audit.list(action="training_job.submit")}
    assert entries == {
        "training-job/rf",
        "workspaces/fraud/training-job/rf",
        "workspaces/fraud/training-job/only-theirs",
    }
