"""Training and tuning jobs through slipway.Client over HTTP and in process: the same
tests on both (the ``platform`` fixture), run by ``slipway up``'s workers. A training job
is submitted, waited on to Succeeded and its log read; a tuning job runs its trials to
Completed; jobs are stopped; bad specs are the same typed error naming the field on both
sides, and write nothing.

A job's code is named by where the workers find it: the training entry point is a small
module written beside the test (its ``source_dir``), the tuning objective lives in this
repository (its ``code_paths``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.logsink import LogLine
from slipway.core.resource import Listing
from slipway.training.resources import TrainingJob
from slipway.training.spec import TrainingJobSpec
from slipway.tuning.resources import BestTrial, Trial, TuningJob
from tests.client import flows

REPO = str(Path(__file__).resolve().parents[2])


def _source(tmp_path: Path, name: str) -> str:
    folder = tmp_path / "code"
    folder.mkdir(exist_ok=True)
    (folder / "tiny_train.py").write_text(flows.training_module(name))
    return str(folder)


def test_training_job_submit_wait_logs(platform: Any, side: str, tmp_path: Path) -> None:
    name = f"tiny-{side}"
    spec = TrainingJobSpec(
        name=name,
        function="tiny_train:fit",
        source_dir=_source(tmp_path, name),
        hyperparameters={"epochs": 3},
    )
    submitted = platform.training.submit(spec)
    assert isinstance(submitted, TrainingJob)
    if side == "remote":
        # The client shipped the folder as a code bundle: the job runs what was uploaded.
        shipped = submitted.spec.source_dir
        assert shipped is not None and shipped.startswith("bundle:sha256:")
        assert submitted.spec == spec.model_copy(update={"source_dir": shipped})
        assert platform.code.get(shipped).top_level == ["tiny_train"]
    else:
        assert submitted.spec == spec
    assert submitted.state in ("Pending", "Running", "Succeeded")
    done = platform.training.wait(name, timeout=180)
    assert done.state == "Succeeded", (
        done.error,
        [line.text for line in platform.training.logs(name)],
    )
    assert done.model_key and done.mlflow_run_id and done.finished_at
    assert platform.training.get(name) == done
    jobs = platform.training.jobs()
    assert isinstance(jobs, Listing) and name in [j.name for j in jobs]
    logs = platform.training.logs(name)
    assert all(isinstance(line, LogLine) and line.step == "job" for line in logs)
    text = "".join(line.text for line in logs)
    assert "epoch 0" in text and "epoch 2" in text
    assert platform.training.logs(name, after=logs[-1].id) == []
    with pytest.raises(Conflict):
        platform.training.stop(name)  # finished already
    with pytest.raises(Conflict):
        platform.training.submit(spec)  # names are unique


def test_training_job_stop(platform: Any, side: str, tmp_path: Path) -> None:
    name = f"sleepy-{side}"
    platform.training.submit(
        {
            "name": name,
            "function": "tiny_train:fit",
            "source_dir": _source(tmp_path, name),
            "hyperparameters": {"seconds": 120},
        }
    )
    platform.training.stop(name)
    stopped = platform.training.wait(name, timeout=60)
    assert stopped.state == "Stopped" and stopped.finished_at is not None


def test_bad_training_specs_name_the_field(platform: Any, side: str) -> None:
    name = f"bad-job-{side}"
    cases = [
        ({"name": "Bad Name", "module": "m"}, "name"),
        ({"name": name, "module": "m", "retries": -1}, "retries"),
        ({"name": name, "module": "m", "colour": "red"}, "colour"),
        ({"name": name, "module": "m", "hyperparameters": {"bad key!": 1}}, "hyperparameters"),
    ]
    for spec, field in cases:
        with pytest.raises(InvalidInput) as bad:
            platform.training.submit(spec)
        assert bad.value.field == field, (spec, bad.value)
    assert name not in [j.name for j in platform.training.jobs()]
    with pytest.raises(NotFound):
        platform.training.get(name)
    with pytest.raises(NotFound):
        platform.training.logs(name)


def _tuning(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "trial": "tests.tuning.objectives:quadratic",
        "parameter_ranges": {
            "x": {"type": "continuous", "min": 0, "max": 4},
            "y": {"type": "integer", "min": 0, "max": 3},
        },
        "static_parameters": {"pause": 0.0},
        "strategy": "random",
        "max_jobs": 2,
        "seed": 7,
        "code_paths": [REPO],
        **overrides,
    }


def test_tuning_job_runs_its_trials(platform: Any, side: str) -> None:
    name = f"tune-{side}"
    submitted = platform.tuning.submit(_tuning(name))
    assert isinstance(submitted, TuningJob) and submitted.spec.max_jobs == 2
    done = platform.tuning.wait(name, timeout=240)
    assert done.state == "Completed", done.error
    trials = platform.tuning.trials(name)
    assert isinstance(trials, Listing) and len(trials) == 2
    assert all(isinstance(t, Trial) and t.state == "COMPLETE" for t in trials)
    assert isinstance(done.best, BestTrial)
    assert done.best.value == max(t.value for t in trials if t.value is not None)
    assert platform.tuning.get(name) == done
    assert name in [j.name for j in platform.tuning.jobs()]
    assert all(line.step.startswith("trial-") for line in platform.tuning.logs(name))
    with pytest.raises(Conflict):
        platform.tuning.stop(name)


def test_tuning_job_stop_and_bad_specs(platform: Any, side: str) -> None:
    name = f"tune-stop-{side}"
    platform.tuning.submit(_tuning(name, max_jobs=50, static_parameters={"pause": 1.0}))
    platform.tuning.stop(name)
    assert platform.tuning.get(name).state == "Stopped"
    with pytest.raises(Conflict):
        platform.tuning.stop(name)
    bad = f"tune-bad-{side}"
    for spec, field in [
        (_tuning(bad, parameter_ranges={}), "parameter_ranges"),
        (_tuning(bad, max_jobs=0), "max_jobs"),
        (_tuning(bad, strategy="psychic"), "strategy"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            platform.tuning.submit(spec)
        assert refused.value.field == field, (spec, refused.value)
    with pytest.raises(NotFound):
        platform.tuning.get(bad)
    with pytest.raises(NotFound):
        platform.tuning.submit(_tuning(bad, warm_start_from=[f"nowhere-{side}"]))
    with pytest.raises(NotFound):
        platform.tuning.get(bad)
