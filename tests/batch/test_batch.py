"""Batch transform on real workers: files to files, resumption after a killed worker,
and Kafka delivery accounted message by message against a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Consumer

from tests.batch.conftest import FEATURES, BatchPlatform
from tests.waiting import eventually


def _spec(
    platform: BatchPlatform, name: str, output: dict[str, object], **extra: object
) -> dict[str, object]:
    return {
        "name": name,
        "model": platform.model,
        "input": {"files": {"path": str(platform.inputs)}},
        "output": output,
        "id_column": "record_id",
        "keep_columns": ["city"],
        "chunk_rows": 1000,
        **extra,
    }


def _expected(platform: BatchPlatform) -> pd.DataFrame:
    frame = platform.frame[["record_id", "city"]].copy()
    frame["prediction"] = platform.booster.predict(platform.frame[FEATURES])
    return frame.sort_values("record_id").reset_index(drop=True)


def _read_parts(folder: Path, kind: str) -> pd.DataFrame:
    parts = sorted(p for p in folder.iterdir() if p.name.startswith("part-"))
    if kind == "parquet":
        frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    elif kind == "csv":
        frame = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    else:
        frame = pd.concat([pd.read_json(p, lines=True) for p in parts], ignore_index=True)
    return frame.sort_values("record_id").reset_index(drop=True)


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_files_to_files(
    platform: BatchPlatform, batch_workers: None, tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "out"
    job = platform.services.batch.submit(
        _spec(platform, f"files-{kind}", {"files": {"path": str(out), "format": kind}}), actor="t"
    )
    assert job.chunks_total == 12  # 3 files x 4 row groups of 1,000 rows
    done = platform.services.batch.wait(job.name, timeout=120)
    assert done.state == "Completed", done.error
    assert done.rows_done == 12_000 and done.chunks_done == 12
    result = _read_parts(out, kind)
    expected = _expected(platform)
    assert list(result["record_id"]) == list(expected["record_id"])  # every row once
    assert list(result["city"]) == list(expected["city"])
    assert np.allclose(result["prediction"], expected["prediction"])
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["rows"] == 12_000 and len(manifest["chunks"]) == 12
    assert manifest["model"]["digest"] == done.digest


@pytest.mark.s3
def test_files_on_s3_to_files_on_s3(
    platform: BatchPlatform, s3_root: str, batch_workers: None, tmp_path: Path
) -> None:
    """Input folder and output folder on the S3 test server; the job reads row groups by
    range from S3 and writes its parts and manifest there."""
    import s3fs

    bucket = s3fs.S3FileSystem(skip_instance_cache=True)
    source = f"{s3_root}/in"
    for path in sorted(platform.inputs.iterdir()):
        bucket.put_file(str(path), f"{source.removeprefix('s3://')}/{path.name}")
    out = f"{s3_root}/out"
    spec = _spec(platform, "files-s3", {"files": {"path": out}})
    spec["input"] = {"files": {"path": source}}
    done = platform.services.batch.wait(
        platform.services.batch.submit(spec, actor="t").name, timeout=120
    )
    assert done.state == "Completed", done.error
    assert done.rows_done == 12_000 and done.chunks_done == 12
    local = tmp_path / "out"
    bucket.get(out.removeprefix("s3://"), str(local), recursive=True)
    result = _read_parts(local, "parquet")
    expected = _expected(platform)
    assert list(result["record_id"]) == list(expected["record_id"])
    assert np.allclose(result["prediction"], expected["prediction"])
    assert json.loads((local / "_manifest.json").read_text())["rows"] == 12_000


def test_manifest_exists_before_the_job_reads_completed(
    platform: BatchPlatform, batch_workers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever sees the job Completed must find ``_manifest.json``: the file is written
    while the state committed is still Running (it used to be written after the commit)."""
    from slipway.batch.sinks import FileSink
    from slipway.batch.tables import BatchJobRow

    states: list[str] = []
    write_manifest = FileSink.manifest

    def observed(sink: FileSink, manifest: dict[str, object]) -> None:
        with platform.services.db.session() as session:  # what other readers see now
            row = session.get(BatchJobRow, ("default", str(manifest["job"])))
            states.append(row.state if row is not None else "absent")
        write_manifest(sink, manifest)

    monkeypatch.setattr(FileSink, "manifest", observed)
    out = tmp_path / "out"
    spec = _spec(platform, "manifest-order", {"files": {"path": str(out)}})
    done = platform.services.batch.wait(
        platform.services.batch.submit(spec, actor="t").name, timeout=120
    )
    assert done.state == "Completed", done.error
    assert states == ["Running"]
    assert (out / "_manifest.json").exists()


def test_csv_input(platform: BatchPlatform, batch_workers: None, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    platform.frame.head(2500).to_csv(csv, index=False)
    out = tmp_path / "out"
    spec = _spec(platform, "from-csv", {"files": {"path": str(out)}})
    spec["input"] = {"files": {"path": str(csv)}}
    job = platform.services.batch.wait(
        platform.services.batch.submit(spec, actor="t").name, timeout=120
    )
    assert job.state == "Completed", job.error
    result = _read_parts(out, "parquet")
    expected = platform.booster.predict(platform.frame.head(2500)[FEATURES])
    assert np.allclose(
        result["prediction"], expected[np.argsort(platform.frame.head(2500)["record_id"])]
    )


def test_bad_specs_write_nothing(platform: BatchPlatform, tmp_path: Path) -> None:
    from slipway.core.errors import InvalidInput

    batch = platform.services.batch
    before = len(batch.list())
    for bad, field in (
        ({"chunk_rows": 5}, "chunk_rows"),
        ({"input": {"files": {"path": str(tmp_path / "nope")}}}, "input.files.path"),
        ({"keep_columns": ["missing"]}, "missing"),
        ({"output": {"kafka": {"topic": "t"}}, "id_column": None}, "id_column"),
        ({"input": {"files": {"path": "http://example.com/x.parquet"}}}, "input.files.path"),
    ):
        spec = _spec(platform, "bad", {"files": {"path": str(tmp_path / "o")}}) | bad
        with pytest.raises(InvalidInput) as caught:
            batch.submit(spec, actor="t")
        assert field in str(caught.value.details.get("field")), (bad, caught.value.details)
    assert len(batch.list()) == before


def test_list_pages_with_an_offset_and_count(platform: BatchPlatform, tmp_path: Path) -> None:
    """The console pages the list: ``offset`` skips the newest, ``count`` says how many
    there are in all. The jobs are stopped before any worker scores them."""
    from slipway.core.errors import InvalidInput

    batch = platform.services.batch
    before = batch.count()
    names = [f"paged-{n}" for n in range(3)]
    for name in names:
        batch.submit(_spec(platform, name, {"files": {"path": str(tmp_path / name)}}), actor="t")
        batch.stop(name, actor="t")
    assert batch.count() == before + 3 == len(batch.list(500))
    assert [j.name for j in batch.list(2)] == ["paged-2", "paged-1"]
    assert [j.name for j in batch.list(2, offset=1)] == ["paged-1", "paged-0"]
    with pytest.raises(InvalidInput):
        batch.list(2, offset=-1)


@pytest.mark.slow
def test_killed_worker_resumes_and_output_equals_an_uninterrupted_run(
    platform: BatchPlatform, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = platform.services.batch.submit(
        _spec(platform, "killed", {"files": {"path": str(out)}}), actor="t"
    )
    env = os.environ | platform.services.settings.as_env() | {
        "SLIPWAY_WORKERS__LEASE_SECONDS": "3", "SLIPWAY_WORKERS__POLL_SECONDS": "0.1"
    }  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "slipway", "worker", "--queue", "batch", "--id", "doomed"], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while platform.services.batch.get(job.name).chunks_done < 3:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert platform.services.batch.get(job.name).state == "Running"
    # New workers pick up the rest, including the chunk the killed worker held.
    import threading

    from slipway.workers.worker import Worker

    pool = [Worker(platform.services, queues=("batch",), worker_id=f"r{n}") for n in range(2)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in pool]
    for thread in threads:
        thread.start()
    try:
        done = platform.services.batch.wait(job.name, timeout=120)
    finally:
        for w in pool:
            w.stopping.set()
        for thread in threads:
            thread.join(timeout=60)
    assert done.state == "Completed", done.error
    result = _read_parts(out, "parquet")
    expected = _expected(platform)
    assert len(result) == 12_000  # no chunk twice
    assert list(result["record_id"]) == list(expected["record_id"])
    assert np.allclose(result["prediction"], expected["prediction"])


def _consume(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[object]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
        end = time.monotonic() + 2  # and nothing more arrives
        while time.monotonic() < end:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages


@pytest.mark.kafka
def test_kafka_delivery_is_counted_and_documented(
    platform: BatchPlatform, batch_workers: None, kafka_topic: str, kafka_bootstrap: str
) -> None:
    job = platform.services.batch.submit(
        _spec(platform, "to-kafka", {"kafka": {"topic": kafka_topic}}), actor="t"
    )
    done = platform.services.batch.wait(job.name, timeout=120)
    assert done.state == "Completed", done.error
    assert done.delivered == 12_000 and done.failed == 0
    messages = _consume(kafka_bootstrap, kafka_topic, 12_000)
    assert len(messages) == done.delivered
    expected = _expected(platform).set_index("record_id")
    first = messages[0]
    value = json.loads(first.value())
    assert set(value) == {
        "id",
        "city",
        "prediction",
        "model_name",
        "model_version",
        "inference_id",
        "time",
    }
    assert first.key().decode() == value["id"]
    assert value["model_name"] == "scorer" and value["prediction"] == pytest.approx(
        expected.loc[value["id"], "prediction"]
    )
    headers = dict(first.headers())
    assert headers["slipway-model"].decode() == platform.model
    assert headers["slipway-digest"].decode() == done.digest
    assert len({m.key() for m in messages}) == 12_000


@pytest.mark.kafka
def test_broker_away_fails_loudly_and_resume_sends_only_the_rest(
    platform: BatchPlatform, kafka_topic: str, kafka_bootstrap: str
) -> None:
    import socket
    import threading

    from slipway.workers.worker import Worker

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens here
    spec = _spec(
        platform, "kafka-away", {"kafka": {"topic": kafka_topic, "delivery_timeout_seconds": 3}}
    )
    job = platform.services.batch.submit(spec, actor="t")
    kafka = platform.services.settings.kafka
    real = kafka.bootstrap_servers

    def run_workers() -> None:
        pool = [Worker(platform.services, queues=("batch",), worker_id=f"k{n}") for n in range(2)]
        threads = [threading.Thread(target=w.run, daemon=True) for w in pool]
        for thread in threads:
            thread.start()
        try:
            platform.services.batch.wait(job.name, timeout=120)
        finally:
            for w in pool:
                w.stopping.set()
            for thread in threads:
                thread.join(timeout=60)

    # Half the chunks reach the broker; then it is away.
    from slipway.batch import outputs

    original = outputs.KafkaSink
    calls = {"n": 0}

    class FlakySink(original):  # type: ignore[misc, valid-type]
        def __init__(self, settings, output, **chunk):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] > 6:
                settings = settings.model_copy(update={"bootstrap_servers": dead})
            super().__init__(settings, output, **chunk)

    outputs.KafkaSink = FlakySink  # type: ignore[misc]
    try:
        run_workers()
    finally:
        outputs.KafkaSink = original  # type: ignore[misc]
    failed = platform.services.batch.get(job.name)
    assert failed.state == "Failed"
    chunks = platform.services.batch.chunks(job.name)
    done_chunks = [c for c in chunks if c.state == "done"]
    assert failed.delivered == sum(c.rows for c in done_chunks) + sum(
        c.delivered for c in chunks if c.state != "done"
    )
    assert failed.failed > 0
    assert "messages acknowledged" in (failed.error or "")
    # The broker is back: resume sends only the chunks that were not fully acknowledged.
    assert kafka.bootstrap_servers == real
    platform.services.batch.resume(job.name)
    run_workers()
    finished = platform.services.batch.get(job.name)
    assert finished.state == "Completed", finished.error
    messages = _consume(kafka_bootstrap, kafka_topic, 12_000)
    assert len(messages) == 12_000  # acknowledged chunks were not sent again
    assert len({m.key() for m in messages}) == 12_000
    assert finished.delivered == 12_000


def test_feature_store_query_input(
    platform: BatchPlatform, batch_workers: None, tmp_path: Path
) -> None:
    """A batch job over SQL on feature groups: the query's rows are scored."""
    from datetime import UTC, datetime

    services = platform.services
    services.features.create_group(
        {
            "name": "accounts",
            "record_identifiers": [{"name": "record_id"}],
            "features": [{"name": n, "type": "float"} for n in FEATURES]
            + [{"name": "city", "type": "string"}],
        }
    )
    rows = platform.frame.head(1500).assign(event_time=datetime.now(UTC))
    services.features.ingest("accounts", rows)
    out = tmp_path / "out"
    spec = _spec(platform, "from-query", {"files": {"path": str(out)}})
    spec["input"] = {"query": {"sql": "SELECT * FROM accounts WHERE city <> 'lima'"}}
    job = services.batch.wait(services.batch.submit(spec, actor="t").name, timeout=120)
    assert job.state == "Completed", job.error
    result = _read_parts(out, "parquet")
    kept = rows[rows["city"] != "lima"].sort_values("record_id").reset_index(drop=True)
    assert list(result["record_id"]) == list(kept["record_id"])
    assert np.allclose(result["prediction"], platform.booster.predict(kept[FEATURES]))


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_killed_mid_job_then_restarted(platform: BatchPlatform, tmp_path: Path) -> None:
    """A real broker dies under a running job: the job fails loudly with exact counts; the
    broker comes back (same ports, same data) and a resume completes it without sending
    any fully acknowledged chunk again."""
    import threading
    from collections import Counter

    from slipway.workers.worker import Worker
    from tests.batch.broker import Broker

    broker = Broker(tmp_path / "broker")
    broker.start()
    kafka = platform.services.settings.kafka
    real = kafka.bootstrap_servers
    kafka.bootstrap_servers = broker.bootstrap
    topic = f"killed-{uuid.uuid4().hex[:8]}"
    pool: list[Worker] = []
    threads: list[threading.Thread] = []

    def start_workers() -> None:
        pool[:] = [
            Worker(platform.services, queues=("batch",), worker_id=f"x{n}") for n in range(2)
        ]
        threads[:] = [threading.Thread(target=w.run, daemon=True) for w in pool]
        for thread in threads:
            thread.start()

    def stop_workers() -> None:
        for worker in pool:
            worker.stopping.set()
        for thread in threads:
            thread.join(timeout=60)

    try:
        spec = _spec(
            platform, "broker-killed", {"kafka": {"topic": topic, "delivery_timeout_seconds": 4}}
        )
        job = platform.services.batch.submit(spec, actor="t")
        start_workers()
        try:
            deadline = time.monotonic() + 120
            while platform.services.batch.get(job.name).chunks_done < 3:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            broker.kill()
            failed = platform.services.batch.wait(job.name, timeout=120)
            # Chunks still running when the job failed finish failing and add their counts.
            eventually(
                lambda: all(c.state != "running" for c in platform.services.batch.chunks(job.name)),
                what="no chunk of the failed job is still running",
                timeout=60,
            )
        finally:
            stop_workers()
        failed = platform.services.batch.get(job.name)
        chunks = platform.services.batch.chunks(job.name)
        assert failed.state == "Failed" and failed.failed > 0, failed.error
        done_before = {c.index for c in chunks if c.state == "done"}
        assert failed.delivered == sum(c.delivered for c in chunks)
        assert "acknowledged" in (failed.error or "")
        broker.start()  # the same ports and data: acknowledged messages are still there
        platform.services.batch.resume(job.name)
        start_workers()
        try:
            finished = platform.services.batch.wait(job.name, timeout=180)
        finally:
            stop_workers()
        assert finished.state == "Completed", finished.error
        messages = _consume(broker.bootstrap, topic, 12_000)
        keys = Counter(m.key().decode() for m in messages)
        assert len(keys) == 12_000  # every record arrived
        by_chunk = Counter(m.headers()[3][1].decode() for m in messages)  # slipway-chunk
        for index in done_before:  # fully acknowledged before the failure: sent once
            assert by_chunk[str(index)] == 1000, (index, by_chunk)
    finally:
        kafka.bootstrap_servers = real
        broker.kill()


def test_batch_jobs_of_the_same_name_in_two_workspaces_score_their_own_models(
    platform: BatchPlatform, batch_workers: None, tmp_path: Path
) -> None:
    """``score`` in two workspaces, each naming model ``scorer``: each job scores its own
    workspace's model, and each workspace lists its own job."""
    import lightgbm
    import mlflow
    import mlflow.lightgbm

    from tests.batch.conftest import make_frame

    services = platform.services
    if not services.workspaces.exists("fraud"):
        services.workspaces.create("fraud", actor="t")
    theirs = services.batch.in_workspace("fraud")
    registry = services.registry.in_workspace("fraud")
    train = make_frame(2000, 7)
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 7},
        lightgbm.Dataset(train[FEATURES], train["f1"] * -3),
        num_boost_round=10,
    )
    experiment = registry.mlflow.experiment_id("batch", services.settings.artifact_root)
    with registry.mlflow.scope(), mlflow.start_run(experiment_id=experiment) as run:
        mlflow.lightgbm.log_model(
            booster,
            name="model",
            pip_requirements=["lightgbm"],
            signature=mlflow.models.infer_signature(
                train[FEATURES], booster.predict(train[FEATURES])
            ),
        )
    version = registry.register("scorer", f"runs:/{run.info.run_id}/model", actor="t")
    registry.set_approval("scorer", version.version, "Approved", actor="t")

    outputs = {"default": tmp_path / "ours", "fraud": tmp_path / "theirs"}
    for jobs, workspace in ((services.batch, "default"), (theirs, "fraud")):
        spec = _spec(
            platform,
            "score-here",
            {"files": {"path": str(outputs[workspace])}},
            model=f"scorer:{version.version}" if workspace == "fraud" else platform.model,
            chunk_rows=4000,
        )
        jobs.submit(spec, actor="t")
    ours_done = services.batch.wait("score-here", timeout=120)
    theirs_done = theirs.wait("score-here", timeout=120)
    assert ours_done.state == theirs_done.state == "Completed", (ours_done.error, theirs_done.error)
    assert theirs_done.digest == version.digest != ours_done.digest
    expected = platform.frame.sort_values("record_id").reset_index(drop=True)
    ours, their = (
        _read_parts(outputs["default"], "parquet"),
        _read_parts(outputs["fraud"], "parquet"),
    )
    assert np.allclose(ours["prediction"], platform.booster.predict(expected[FEATURES]))
    assert np.allclose(their["prediction"], booster.predict(expected[FEATURES]))
    assert "score-here" in [j.name for j in theirs.list()]
    assert [c.index for c in theirs.chunks("score-here")] == [0, 1, 2]
    resources = {e.resource for e in services.audit.list(action="batch_job.submit", limit=500)}
    assert {"batch-job/score-here", "workspaces/fraud/batch-job/score-here"} <= resources


def test_a_process_keeps_loaded_models_by_their_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two platforms in one process (a worker moved to another database, tests) may each
    have a ``scorer`` version 1: a chunk scores with the files its job pinned, not with
    whichever of them the process loaded first."""
    from slipway.batch import runner

    loads: list[tuple[str, int]] = []

    def load(registry: object, name: str, version: int) -> object:
        loads.append((name, version))
        return object()

    class Deps:
        class registry:  # a stand-in with the one method used
            @staticmethod
            def in_workspace(workspace: str) -> object:
                return workspace

    monkeypatch.setattr(runner, "load_model", load)
    monkeypatch.setattr(runner, "_models", {})
    first = runner._model(Deps, "default", "scorer", 1, "aaa")  # type: ignore[arg-type]
    assert runner._model(Deps, "default", "scorer", 1, "aaa") is first  # type: ignore[arg-type]
    other = runner._model(Deps, "default", "scorer", 1, "bbb")  # type: ignore[arg-type]
    assert other is not first and loads == [("scorer", 1), ("scorer", 1)]
