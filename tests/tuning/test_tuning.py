"""Tuning on Optuna: parallel trials in worker processes, pruning, warm start, nested runs."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.core.errors import Conflict, InvalidInput
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.pipelines.test_recovery import _worker
from tests.waiting import eventually

REPO = str(Path(__file__).resolve().parents[2])
RANGES = {
    "x": {"type": "continuous", "min": -5, "max": 5},
    "y": {"type": "integer", "min": -3, "max": 3},
    "kind": {"type": "categorical", "values": ["good", "plain"]},
}


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    opened = Services.open(
        load_settings(home=tmp_path / "home", workers={"lease_seconds": 10, "poll_seconds": 0.05})
    )
    yield opened
    opened.close()


def _job(name: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "trial": "tests.tuning.objectives:quadratic",
        "parameter_ranges": RANGES,
        "max_jobs": 8,
        "max_parallel_jobs": 2,
        "seed": 7,
        "code_paths": [REPO],
    } | extra


@pytest.mark.slow
def test_parallel_trials_nested_runs_and_warm_start(services: Services, workers: None) -> None:
    services.tuning.submit(_job("first"))
    job = services.tuning.wait("first", timeout=240)
    assert job.state == "Completed", job.error
    trials = services.tuning.trials("first")
    assert len(trials) == 8 and all(t.state == "COMPLETE" for t in trials)
    # Seeded, two slots: each draws its own trials (the same seed twice drew duplicates).
    drawn = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(drawn)) == len(drawn)
    assert job.best is not None and job.best.value == max(t.value for t in trials)
    # Two trials ran at once: some pair of trials overlapped in time.
    client = services.registry.mlflow.client
    runs = [client.get_run(t.run_id) for t in trials]
    spans = sorted((r.info.start_time, r.info.end_time) for r in runs)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))
    assert all(r.data.tags["mlflow.parentRunId"] == job.mlflow_run_id for r in runs)
    assert all("seen_by_trial" in r.data.params for r in runs)
    assert client.get_run(job.mlflow_run_id).info.status == "FINISHED"

    services.tuning.submit(_job("second", warm_start_from=["first"], max_jobs=4))
    second = services.tuning.wait("second", timeout=240)
    assert second.state == "Completed"
    warm = [t for t in services.tuning.trials("second") if t.warm_start_from == "first"]
    own = [t for t in services.tuning.trials("second") if t.warm_start_from is None]
    assert len(warm) == 8 and len(own) == 4
    assert second.best is not None
    assert second.best.value >= job.best.value  # it started from what first knew


@pytest.mark.slow
def test_early_stopping_prunes_bad_trials(services: Services, workers: None) -> None:
    services.tuning.submit(
        {
            "name": "pruned",
            "trial": "tests.tuning.objectives:slow_bad",
            "parameter_ranges": {"x": {"type": "continuous", "min": 0, "max": 1}},
            "max_jobs": 8,
            "max_parallel_jobs": 1,
            "early_stopping": True,
            "strategy": "random",
            "seed": 3,
            "code_paths": [REPO],
        }
    )
    job = services.tuning.wait("pruned", timeout=240)
    assert job.state == "Completed"
    states = [t.state for t in services.tuning.trials("pruned")]
    assert "PRUNED" in states and states.count("COMPLETE") >= 2


def test_grid_strategy_and_bad_specs(services: Services, workers: None) -> None:
    services.tuning.submit(
        {
            "name": "grid",
            "trial": "tests.tuning.objectives:quadratic",
            "strategy": "grid",
            "parameter_ranges": {
                "y": {"type": "integer", "min": 0, "max": 2},
                "kind": {"type": "categorical", "values": ["good", "plain"]},
            },
            "static_parameters": {"x": 2.0, "pause": 0},
            "max_jobs": 50,
            "max_parallel_jobs": 2,
            "code_paths": [REPO],
        }
    )
    job = services.tuning.wait("grid", timeout=240)
    assert job.state == "Completed"
    assert len(services.tuning.trials("grid")) == 6  # the grid, not max_jobs
    assert job.best is not None and job.best.params == {"y": 1, "kind": "good"}
    with pytest.raises(Conflict):
        services.tuning.submit(_job("grid"))
    for bad, field in [
        (
            _job("a", parameter_ranges={"x": {"type": "continuous", "min": 3, "max": 1}}),
            "parameter_ranges.x",
        ),
        (_job("b", strategy="grid"), "body"),
        (
            _job(
                "c",
                parameter_ranges={"x": {"type": "continuous", "min": 0, "max": 1, "scale": "log"}},
            ),
            "parameter_ranges.x",
        ),
        (_job("Bad Name"), "name"),
    ]:
        with pytest.raises(InvalidInput) as info:
            services.tuning.submit(bad)
        assert info.value.field == field


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_trial_interrupted_with_its_worker_runs_exactly_once_more(
    tmp_path: Path, signum: int
) -> None:
    """A worker killed (or stopped) mid-trial leaves the trial RUNNING; the slot's next
    holder fails it as interrupted and runs the same parameters once more, so the job ends
    with exactly ``max_jobs`` trials of its own and the best of them."""
    home = tmp_path / "home"
    services = Services.open(load_settings(home=home))
    try:
        ranges = RANGES | {"pause": {"type": "categorical", "values": [1.0]}}
        services.tuning.submit(
            _job("crashy", parameter_ranges=ranges, max_jobs=3, max_parallel_jobs=1)
        )
        doomed = _worker(home, "doomed")
        running = eventually(
            lambda: [
                t
                for t in services.tuning.trials("crashy")
                if t.state == "RUNNING" and t.run_id is not None
            ],
            what="a trial is running",
            timeout=120,
        )
        os.kill(doomed.pid, signum)
        doomed.wait(timeout=30)
        survivor = _worker(home, "survivor")
        try:
            job = services.tuning.wait("crashy", timeout=240)
        finally:
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(timeout=30)
        assert job.state == "Completed", job.error
        trials = services.tuning.trials("crashy")
        interrupted = [t for t in trials if t.interrupted]
        own = [t for t in trials if not t.interrupted]
        assert [t.number for t in interrupted] == [running[0].number]
        assert interrupted[0].state == "FAIL"
        assert len(own) == 3 and all(t.state == "COMPLETE" for t in own)
        [again] = [t for t in own if t.retry_of == running[0].number]
        assert again.params == running[0].params
        client = services.registry.mlflow.client
        killed = client.get_run(running[0].run_id)
        assert killed.info.status == "KILLED", (killed.info, killed.data.tags)
        assert job.best is not None and job.best.value == max(t.value for t in own)
    finally:
        services.close()


def test_tuning_jobs_of_the_same_name_in_two_workspaces_stay_apart(
    services: Services, workers: None
) -> None:
    """Each workspace's ``search``: its own study, trials, MLflow runs (the trial's own
    ``mlflow`` logging lands in its workspace) and logs."""
    services.workspaces.create("fraud", actor="test")
    theirs = services.tuning.in_workspace("fraud")
    small = {"max_jobs": 3, "max_parallel_jobs": 1}
    services.tuning.submit(_job("search", **small))
    theirs.submit(_job("search", **small | {"seed": 11}))
    ours, their = services.tuning.wait("search", timeout=240), theirs.wait("search", timeout=240)
    assert ours.state == their.state == "Completed", (ours.error, their.error)
    our_trials, their_trials = services.tuning.trials("search"), theirs.trials("search")
    assert len(our_trials) == len(their_trials) == 3
    assert {t.run_id for t in our_trials}.isdisjoint({t.run_id for t in their_trials})
    fraud_mlflow = services.registry.mlflow.in_workspace("fraud")
    with fraud_mlflow.scope():
        runs = [fraud_mlflow.client.get_run(t.run_id) for t in their_trials]
        parent = fraud_mlflow.client.get_run(their.mlflow_run_id)
    assert all(r.data.tags["mlflow.parentRunId"] == their.mlflow_run_id for r in runs)
    assert all("seen_by_trial" in r.data.params for r in runs)
    assert parent.info.status == "FINISHED"
    # The default workspace sees none of the other's runs.
    assert services.registry.mlflow.run_data(their.mlflow_run_id) == ({}, {}, None)
    assert [j.name for j in theirs.jobs()] == ["search"] == [j.name for j in services.tuning.jobs()]
    assert {e.resource for e in services.audit.list(action="tuning_job.submit")} == {
        "tuning-job/search",
        "workspaces/fraud/tuning-job/search",
    }


def test_jobs_page_with_an_offset_and_count(services: Services) -> None:
    """The console pages the list: ``offset`` skips the newest, ``count`` says how many
    there are in all, each per workspace (no trial runs: no worker here)."""
    for name in ("one", "two", "three"):
        services.tuning.submit(_job(name))
        services.tuning.stop(name)
    services.workspaces.create("fraud", actor="test")
    services.tuning.in_workspace("fraud").submit(_job("theirs"))
    assert services.tuning.count() == 3 and services.tuning.in_workspace("fraud").count() == 1
    assert [j.name for j in services.tuning.jobs(2)] == ["three", "two"]
    assert [j.name for j in services.tuning.jobs(2, offset=2)] == ["one"]
    assert services.tuning.jobs(2, offset=3) == []
