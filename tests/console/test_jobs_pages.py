"""The console's jobs pages: training, tuning and batch transform jobs listed by kind and
paged, each job's page (state, logs, a tuning job's objective chart and best trial, a batch
job's progress chunk by chunk), the live region of a running job, and Stop."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import optuna
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from slipway.console.pages.jobs import best_trial, duration, log_tail, objective_series
from slipway.core.logsink import LogLine
from slipway.registry.models import ApprovalStatus
from slipway.services import Services
from slipway.tuning.resources import Trial, TuningJob
from slipway.tuning.study import open_study
from slipway.workers.worker import Worker
from tests.console.conftest import act, csrf_of, sign_in
from tests.registry.logged import register_classifier
from tests.waiting import eventually

SCRIPTS = str(Path(__file__).resolve().parents[1] / "training" / "scripts")
REPO = str(Path(__file__).resolve().parents[2])
ROWS = re.compile(r"<tbody>(.*?)</tbody>", re.S)


def _rows(html: str) -> int:
    """How many rows the page's first table body has."""
    found = ROWS.search(html)
    return found.group(1).count("<tr") if found else 0


def _stop(client: TestClient, kind: str, name: str) -> httpx.Response:
    """Press a job page's Stop button (as the console's script sends it)."""
    answer = act(client, f"/jobs/{kind}/{name}/stop", _page=f"/jobs/{kind}/{name}")
    assert isinstance(answer, httpx.Response)
    return answer


def _pending(services: Services, name: str) -> None:
    """A training job no worker picks up: it stays Pending."""
    services.training.submit({"name": name, "function": "math:sqrt"}, actor="test")


# -- the list -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "message", "command"),
    [
        ("training", "No training jobs", "slipway jobs submit -f job.yaml"),
        ("tuning", "No tuning jobs", "slipway tuning submit -f tuning.yaml"),
        ("batch", "No batch transform jobs", "slipway batch submit -f batch.yaml"),
    ],
)
def test_each_kind_says_how_to_submit_a_first_job(
    console: TestClient, kind: str, message: str, command: str
) -> None:
    page = console.get("/jobs", params={"kind": kind})
    assert page.status_code == 200
    assert "<h1>Jobs</h1>" in page.text
    assert message in page.text and f"<code>{command}</code>" in page.text
    assert f'href="/jobs?kind={kind}" aria-current="page"' in page.text


def test_the_list_is_paged_on_the_server_newest_first(
    console: TestClient, services: Services
) -> None:
    for n in range(52):
        _pending(services, f"job-{n:02d}")
    first = console.get("/jobs")
    assert first.status_code == 200
    assert _rows(first.text) == 50
    assert "1-50 of 52" in first.text
    # Newest first: the last submitted leads; the two oldest are on page 2.
    assert first.text.index("job-51") < first.text.index("job-50")
    assert "job-01" not in first.text and 'href="/jobs?kind=training&amp;page=2"' in first.text
    second = console.get("/jobs", params={"page": 2})
    assert _rows(second.text) == 2 and "51-52 of 52" in second.text
    assert ">job-00<" in second.text and ">job-01<" in second.text
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    # The tabs count each kind.
    assert re.search(r'Training jobs <span class="count">52</span>', first.text)
    assert re.search(r'Tuning jobs <span class="count">0</span>', first.text)


def test_a_bad_kind_or_page_is_a_400_page(console: TestClient) -> None:
    assert console.get("/jobs", params={"kind": "spark"}).status_code == 400
    assert console.get("/jobs", params={"page": "0"}).status_code == 400


def test_each_workspace_lists_its_own_jobs(console: TestClient, services: Services) -> None:
    services.workspaces.create("fraud", actor="test")
    _pending(services.in_workspace("fraud"), "theirs")
    _pending(services, "ours")
    ours = console.get("/jobs")
    theirs = console.get("/jobs", params={"ws": "fraud"})
    assert ">ours<" in ours.text and ">theirs<" not in ours.text
    assert ">theirs<" in theirs.text and ">ours<" not in theirs.text
    assert 'href="/jobs/training/theirs?ws=fraud"' in theirs.text
    assert "<code>slipway --workspace fraud jobs submit -f job.yaml</code>" in theirs.text
    assert console.get("/jobs/training/theirs").status_code == 404
    assert console.get("/jobs/training/theirs", params={"ws": "fraud"}).status_code == 200


@pytest.mark.parametrize("kind", ["training", "tuning", "batch"])
def test_an_unknown_job_is_a_404_page(console: TestClient, kind: str) -> None:
    for name in ("nope", "Not A Name"):
        page = console.get(f"/jobs/{kind}/{name}")
        assert page.status_code == 404, page.text
        assert "does not exist" in page.text and "Traceback" not in page.text
        assert console.get(f"/jobs/{kind}/{name}/live").status_code == 404


# -- a training job -----------------------------------------------------------------------


def test_a_training_job_page_follows_the_job_to_its_end(
    console: TestClient, services: Services, workers: None
) -> None:
    services.training.submit(
        {
            "name": "epochs",
            "script": "epochs.py",
            "source_dir": SCRIPTS,
            "hyperparameters": {"epochs": 2, "seconds": 0.05},
        },
        actor="test",
    )
    job = services.training.wait("epochs", timeout=120)
    assert job.state == "Succeeded", job.error
    page = console.get("/jobs/training/epochs")
    assert page.status_code == 200
    assert "<h1>Training job epochs</h1>" in page.text
    assert "status-succeeded" in page.text and "epochs.py" in page.text
    assert "epoch 1 done" in page.text and "epoch 2 done" in page.text  # its logs
    assert job.mlflow_run_id and job.mlflow_run_id in page.text
    # Finished: nothing polls, and the fragment says it is final.
    assert "data-live" not in page.text and "Stop job" not in page.text
    assert "data-final" in console.get("/jobs/training/epochs/live").text
    listed = console.get("/jobs")
    assert 'href="/jobs/training/epochs"' in listed.text and "status-succeeded" in listed.text


def test_a_pending_training_job_is_live_and_stops(console: TestClient, services: Services) -> None:
    _pending(services, "waiting")
    page = console.get("/jobs/training/waiting")
    assert 'data-live="/jobs/training/waiting/live"' in page.text
    assert "status-pending" in page.text and "No output yet" in page.text
    live = console.get("/jobs/training/waiting/live")
    assert live.status_code == 200 and "data-final" not in live.text
    assert "<html" not in live.text  # a fragment, not a page
    answer = _stop(console, "training", "waiting")
    assert answer.status_code == 200, answer.text
    assert answer.json()["location"] == "/jobs/training/waiting"
    assert services.training.get("waiting").state == "Stopped"
    assert "data-final" in console.get("/jobs/training/waiting/live").text
    again = _stop(console, "training", "waiting")
    assert again.status_code == 409
    assert "already Stopped" in again.json()["error"]


def test_stopping_a_job_needs_an_editor_and_a_csrf_token(
    auth_console: TestClient, auth_services: Services
) -> None:
    _pending(auth_services, "guarded")
    viewer = auth_services.tokens.create("ann", "viewer", created_by="test")[1]
    editor = auth_services.tokens.create("eve", "editor", created_by="test")[1]
    sign_in(auth_console, viewer)
    page = auth_console.get("/jobs/training/guarded")
    assert page.status_code == 200 and "Stop job" not in page.text  # not offered
    refused = _stop(auth_console, "training", "guarded")
    assert refused.status_code == 403
    sign_in(auth_console, editor)
    assert "Stop job" in auth_console.get("/jobs/training/guarded").text
    forged = auth_console.post(
        "/jobs/training/guarded/stop", headers={"accept": "application/json"}
    )
    assert forged.status_code == 403 and "CSRF" in forged.json()["error"]
    assert auth_services.training.get("guarded").state == "Pending"
    done = _stop(auth_console, "training", "guarded")
    assert done.status_code == 200
    assert auth_services.training.get("guarded").state == "Stopped"
    [entry] = auth_services.audit.list(action="training_job.stop")
    assert (entry.actor, entry.resource) == ("eve", "training-job/guarded")


# -- a tuning job -------------------------------------------------------------------------


def _tuning(services: Services, name: str, values: list[float | None]) -> None:
    """A tuning job with finished trials of these objective values (None: a failed
    trial), recorded in its study as its trial processes would, without running them."""
    job = services.tuning.submit(
        {
            "name": name,
            "trial": "tests.tuning.objectives:quadratic",
            "parameter_ranges": {"x": {"type": "continuous", "min": -5, "max": 5}},
            "max_jobs": 10,
            "code_paths": [REPO],
        },
        actor="test",
    )
    study = open_study(services.db, job.spec)
    space = {"x": optuna.distributions.FloatDistribution(-5, 5)}
    for n, value in enumerate(values):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": float(n)},
                distributions=space,
                value=value,
                state=optuna.trial.TrialState.COMPLETE
                if value is not None
                else optuna.trial.TrialState.FAIL,
                user_attrs={"error": "boom"} if value is None else {},
            )
        )


def test_a_tuning_job_charts_its_objective_and_marks_the_best_trial(
    console: TestClient, services: Services
) -> None:
    _tuning(services, "search", [1.0, 3.0, None, 2.0, 5.0])
    page = console.get("/jobs/tuning/search")
    assert page.status_code == 200
    assert "<h1>Tuning job search</h1>" in page.text
    chart = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    objective = re.search(r'data-series="objective">(.*?)</g>', chart, re.S)
    best = re.search(r'data-series="best so far">(.*?)</g>', chart, re.S)
    assert objective and best
    assert objective.group(1).count('class="point"') == 4  # the failed trial has no value
    assert best.group(1).count('class="point"') == 4
    # Best so far climbs 1, 3, 3, 5 over trials 0, 1, 3, 4.
    assert re.findall(r"best so far at (\d+): ([\d.]+)", best.group(1)) == [
        ("0", "1"),
        ("1", "3"),
        ("3", "3"),
        ("4", "5"),
    ]
    # The best trial is highlighted in the trial table, and named above it.
    assert re.search(r'<tr class="best" id="trial-4">', page.text)
    assert page.text.count('class="best"') == 1
    assert "#4: objective = 5" in page.text and "(so far)" in page.text
    assert "status-fail" in page.text and "boom" in page.text
    assert "5 of 10 trials" in page.text
    # Running: the live region polls; stopping it makes the fragment final.
    assert 'data-live="/jobs/tuning/search/live?page=1"' in page.text
    live = console.get("/jobs/tuning/search/live")
    assert "data-final" not in live.text and 'data-series="best so far"' in live.text
    answer = _stop(console, "tuning", "search")
    assert answer.status_code == 200
    assert services.tuning.get("search").state == "Stopped"
    assert "data-final" in console.get("/jobs/tuning/search/live").text
    listed = console.get("/jobs", params={"kind": "tuning"})
    assert 'href="/jobs/tuning/search"' in listed.text and "status-stopped" in listed.text


def test_a_tuning_job_without_finished_trials_says_so(
    console: TestClient, services: Services
) -> None:
    _tuning(services, "fresh", [])
    page = console.get("/jobs/tuning/fresh")
    assert page.status_code == 200
    assert "no trial has finished yet" in page.text and 'class="point"' not in page.text
    assert "No trial has started yet" in page.text


def test_the_best_trial_follows_the_direction() -> None:
    now = datetime.now(UTC)
    spec = {
        "name": "low",
        "trial": "m:f",
        "direction": "minimize",
        "parameter_ranges": {"x": {"type": "integer", "min": 0, "max": 9}},
    }
    job = TuningJob.model_validate(
        {"name": "low", "state": "Running", "spec": spec, "created_at": now}
    )
    trials = [
        {"number": n, "state": "COMPLETE", "value": v, "params": {}, "intermediate": {}}
        for n, v in enumerate([4.0, 2.0, 3.0])
    ]
    parsed = [Trial.model_validate(t) for t in trials]
    assert best_trial(job, parsed) == 1
    assert objective_series(job, parsed)["best so far"] == [(0, 4.0), (1, 2.0), (2, 2.0)]


# -- a batch transform job ----------------------------------------------------------------


def test_a_batch_job_page_shows_its_progress_chunk_by_chunk(
    console: TestClient,
    services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = register_classifier(services, monkeypatch, "scorer", status=ApprovalStatus.APPROVED)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    frame.insert(0, "id", [f"r{i}" for i in range(3000)])
    source = tmp_path / "input.parquet"
    pq.write_table(pa.Table.from_pandas(frame), source, row_group_size=1000)
    out = tmp_path / "out"
    services.batch.submit(
        {
            "name": "nightly",
            "model": f"scorer:{version}",
            "input": {"files": {"path": str(source)}},
            "output": {"files": {"path": str(out)}},
            "id_column": "id",
            "chunk_rows": 1000,
        },
        actor="test",
    )
    page = console.get("/jobs/batch/nightly")
    assert page.status_code == 200
    assert "<h1>Batch job nightly</h1>" in page.text
    assert "0 of 3 chunks done" in page.text
    assert '<progress id="progress-nightly" max="3" value="0">' in page.text
    assert 'data-live="/jobs/batch/nightly/live?page=1"' in page.text
    assert str(out) in page.text and 'href="/models/scorer"' in page.text
    chunks = page.text[page.text.index('<table class="chunks">') :]
    assert _rows(chunks) == 3 and chunks.count("status-pending") == 3

    worker = Worker(services, queues=("batch",), worker_id="console-batch")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        eventually(
            lambda: services.batch.get("nightly").state == "Completed",
            what="the batch job completes",
            timeout=120,
        )
    finally:
        worker.stopping.set()
        thread.join(timeout=60)
    done = console.get("/jobs/batch/nightly")
    assert "3 of 3 chunks done" in done.text and "3,000 rows" in done.text
    assert '<progress id="progress-nightly" max="3" value="3">' in done.text
    assert "data-live" not in done.text and "Stop job" not in done.text
    assert "3,000 rows in 3 chunks" in done.text  # the manifest
    assert "data-final" in console.get("/jobs/batch/nightly/live").text
    listed = console.get("/jobs", params={"kind": "batch"})
    assert f"scorer:{version}" in listed.text and "3 / 3" in listed.text


# -- the pieces ---------------------------------------------------------------------------


def test_durations_read_as_a_person_says_them() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert duration(None, None) == "—"
    assert duration(start, None) == "—"  # not running, never finished
    assert duration(start, start + timedelta(milliseconds=300)) == "< 1 s"
    assert duration(start, start + timedelta(seconds=65)) == "1 min 5 s"
    assert duration(start, start + timedelta(hours=26, minutes=3)) == "1 d 2 h"
    assert duration(datetime.now(UTC) - timedelta(seconds=30), None, running=True).endswith("s")


def test_a_long_log_shows_its_end() -> None:
    now = datetime.now(UTC)
    lines = [
        LogLine(id=n, step=f"trial-{n}", attempt=1, time=now, text=f"line {n}\n" + "x" * 20_000)
        for n in range(5)
    ]
    text, cut = log_tail(lines, steps=True)
    assert cut and text.startswith("[trial-2]") and len(text) <= 64_000
    assert log_tail(lines[:1]) == (lines[0].text, False)


def test_the_live_fragment_of_a_page_keeps_its_csrf_token(
    console: TestClient, services: Services
) -> None:
    _pending(services, "tokens")
    token = csrf_of(console, "/jobs/training/tokens")
    assert f'value="{token}"' in console.get("/jobs/training/tokens/live").text
