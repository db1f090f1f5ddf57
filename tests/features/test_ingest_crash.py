"""A feature ingest killed with SIGKILL at a random point, then sent again, writes once.

Each round ingests one batch (a history of updates, many events per key, event times
interleaved with the other rounds') under an idempotency key in a real child process,
kills it after a random delay — before it starts, while it validates, during the Delta
write, between the commit and the online upserts, after it finished — sometimes kills a
second attempt too, and then retries the same batch with the same key the way a client
would. After every round: one ingestion record for the key, succeeded, with the batch's
row count and a Delta version that holds the rows; every row of the batch in the offline
store exactly once. At the end: no duplicate offline row, and the online store holds the
newest event of each key over all rounds — as if every batch had been sent once.

On the old code (no key, no resumable claim) the retry appended the batch a second time
whenever the killed attempt had committed, and left a record stuck in "running".
"""

from __future__ import annotations

import functools
import json
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pds
import pytest
from sqlalchemy import select

from slipway.api.app import create_app
from slipway.core.errors import Conflict, InvalidInput
from slipway.core.settings import load_settings
from slipway.features.definitions import FeatureGroup
from slipway.features.repository import Claim, Ingest
from slipway.features.store import FeatureStore
from slipway.features.tables import FeatureIngestRow
from slipway.services import Services
from tests.conftest import REPO, service_url
from tests.waiting import eventually

# 50,000 rows a batch: an ingest long enough (validation, Delta commit, online upserts)
# that kills spread over it land in each part, short enough for make test's budget.
ROUNDS = 3
KEYS = 5_000
EVENTS_PER_KEY = 10
STALE_AFTER = 1.0  # short, so a retry may take over a killed attempt's claim quickly
BASE = datetime(2024, 1, 1, tzinfo=UTC)

GROUP = {
    "record_identifiers": [{"name": "sensor"}],
    "event_time": "ts",
    "features": [
        {"name": "reading", "type": "float"},
        {"name": "origin", "type": "string"},
    ],
}


@functools.cache
def batch(round_: int) -> pa.Table:
    """Round ``round_``'s records. Event hours are ``ROUNDS * n + round_``, so no two
    rounds share a (key, time) and each key's newest event can come from any round."""
    rng = np.random.default_rng(round_)
    # Per key, EVENTS_PER_KEY distinct n out of four times as many.
    n = np.argsort(rng.random((KEYS, EVENTS_PER_KEY * 4)), axis=1)[:, :EVENTS_PER_KEY]
    hours = (ROUNDS * n + round_).ravel()
    keys = np.repeat(np.arange(KEYS), EVENTS_PER_KEY)
    base = np.datetime64(BASE.replace(tzinfo=None), "us")
    return pa.table(
        {
            "sensor": pa.array(np.char.add("s", keys.astype(str))),
            "ts": pa.array(base + hours.astype("timedelta64[h]"), pa.timestamp("us", tz="UTC")),
            "reading": keys + hours / 1000,
            "origin": pa.array([f"r{round_}"] * len(keys)),
        }
    )


def open_store(config: dict[str, Any]) -> tuple[Services, FeatureStore]:
    """The platform's services on the test's workspace, with a short staleness so a
    retry can take over a killed attempt's claim within a second."""
    settings = load_settings(
        home=Path(config["home"]),
        database={"url": config["database"]},
        online_store={"url": config["online"]},
    )
    services = Services.open(settings)
    fs = services.features
    store = FeatureStore(
        fs.repo, fs.offline, fs.online, fs.events, fs.audit, ingest_stale_after=STALE_AFTER
    )
    return services, store


# The child: opens the store, says so, then ingests one round under its key.
CHILD = """
import json, sys
from tests.features.test_ingest_crash import batch, open_store
config = json.loads(sys.argv[1])
services, store = open_store(config)
records = batch(config["round"])
print("ready", flush=True)
store.ingest(config["group"], records, idempotency_key=config["key"], source="crash-test")
print("done", flush=True)
"""


@dataclass
class Attempt:
    delay: float
    finished: bool


def run_and_kill(config: dict[str, Any], delay: float) -> Attempt:
    """Start an attempt, let it run ``delay`` seconds past its setup, then SIGKILL it
    (unless it has exited by then: the kill may also land after the work is done)."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return Attempt(delay, finished=False)
        assert proc.returncode == 0, f"attempt failed on its own (exit {proc.returncode})"
        return Attempt(delay, finished=True)


def keyed(store: FeatureStore, group: str, key: str) -> list[Ingest]:
    return [i for i in store.ingests(group, limit=500) if i.idempotency_key == key]


def claimable(store: FeatureStore, group: str, key: str) -> bool:
    """No attempt of ``key`` still counts as alive (its heartbeat is stale), so the next
    attempt resumes the ingestion instead of being told it is in progress."""
    records = keyed(store, group, key)
    if not records or records[0].state != "running":
        return True
    db = store.repo._db  # the heartbeat is not part of the Ingest record
    with db.session() as session:
        beat = session.scalar(
            select(FeatureIngestRow.heartbeat_at).where(FeatureIngestRow.id == records[0].id)
        )
    return beat is None or datetime.now(UTC) - beat > timedelta(seconds=STALE_AFTER)


def retry(store: FeatureStore, group: str, key: str, round_: int) -> Ingest | None:
    """Send the batch again with its key; ``None`` while a killed attempt's claim is
    still fresh — the answer a client gets as 409 and retries after."""
    try:
        return store.ingest(group, batch(round_), idempotency_key=key, source="crash-test")
    except Conflict:
        return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres])])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """SQLite metadata with the SQLite online store (the embedded default), or PostgreSQL
    with Redis (production); a group name of its own keeps Redis keys apart."""
    if request.param == "sqlite":
        database = request.getfixturevalue("sqlite_url")
        online = f"sqlite:///{tmp_path / 'online.db'}"
    else:
        database = request.getfixturevalue("postgres_url")
        online = service_url("redis")
    yield {
        "home": str(tmp_path / "home"),
        "database": database,
        "online": online,
        "group": f"crash_{uuid.uuid4().hex[:10]}",
    }


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_ingest_sent_again_is_written_once(config: dict[str, Any]) -> None:
    services, store = open_store(config)
    group = config["group"]
    store.create_group({"name": group, **GROUP})
    rng = random.Random(17)
    seen: list[str] = []
    try:
        span = calibrate(store, group)
        seen.append(f"an uninterrupted ingest takes {span:.2f}s here")
        for round_ in range(ROUNDS):
            seen.append(one_round(store, config, round_, rng, span))
        check_all(store, group)
    finally:
        print("attempts per round:", *seen, sep="\n  ")
        store.online.drop_group(group)
        services.close()


def calibrate(store: FeatureStore, group: str) -> float:
    """Seconds one uninterrupted ingest of a batch takes on this machine now (validation,
    Delta commit, online upserts), timed on a scratch group: kills are spread over it."""
    scratch = f"{group}_calibration"
    store.create_group({"name": scratch, **GROUP})
    try:
        started = time.monotonic()
        store.ingest(scratch, batch(0), idempotency_key="calibration")
        return time.monotonic() - started
    finally:
        store.online.drop_group(scratch)


def one_round(
    store: FeatureStore, config: dict[str, Any], round_: int, rng: random.Random, span: float
) -> str:
    """Kill one or two attempts of the round's batch, retry it, check it; says what the
    attempts did (killed after how long, or done before the kill)."""
    group, key = config["group"], f"batch-{round_}"
    child = config | {"round": round_, "key": key}
    said: list[str] = []
    for n in range(1 if rng.random() < 0.5 else 2):
        if n:
            # The first retry is killed too: a resumed attempt must be resumable.
            eventually(lambda: claimable(store, group, key), what="a stale claim", timeout=30)
        # Kills spread over an ingest's time land in each part of it, sometimes after.
        attempt = run_and_kill(child, rng.uniform(0, span))
        verb = "finished" if attempt.finished else "killed"
        said.append(f"{verb} at {attempt.delay:.2f}s ({progress(store, group, key)})")
    result = eventually(
        lambda: retry(store, group, key, round_), what=f"retry of {key}", timeout=60
    )
    check_round(store, group, key, result, round_)
    return f"{key}: " + "; ".join(said)


def progress(store: FeatureStore, group: str, key: str) -> str:
    """How far the attempt got, as its traces show."""
    records = keyed(store, group, key)
    if not records:
        return "no record yet"
    if records[0].state == "succeeded":
        return "succeeded"
    offline = store.offline.committed_version(group, records[0].id)
    return f"{records[0].state}, " + (
        "committed offline" if offline is not None else "nothing offline"
    )


def check_round(store: FeatureStore, group: str, key: str, result: Ingest, round_: int) -> None:
    expected = batch(round_)
    records = keyed(store, group, key)
    assert [r.id for r in records] == [result.id], "one ingestion record per key"
    assert result.state == "succeeded" and result.error is None
    assert result.rows == expected.num_rows
    assert result.offline_version is not None
    # Sending it once more is a replay: the same record, nothing written.
    again = store.ingest(group, expected, idempotency_key=key, source="crash-test")
    assert again.id == result.id and again.state == "succeeded"
    mine = pds.field("_ingest_id") == result.id
    written = store.offline.dataset(group).count_rows(filter=mine)
    assert written == expected.num_rows, "the batch's rows, each once"
    at_version = store.offline.dataset(group, version=result.offline_version)
    assert at_version.count_rows(filter=mine) == expected.num_rows


def check_all(store: FeatureStore, group: str) -> None:
    offline = store.read_offline(group)
    assert offline.num_rows == ROUNDS * KEYS * EVENTS_PER_KEY
    distinct = offline.group_by(["sensor", "ts"]).aggregate([([], "count_all")])
    assert distinct.num_rows == offline.num_rows, "no duplicate row in the offline store"
    assert [i.state for i in store.ingests(group, limit=500)] == ["succeeded"] * ROUNDS
    every = pa.concat_tables(batch(r) for r in range(ROUNDS))
    latest = every.group_by("sensor").aggregate([("ts", "max")]).rename_columns(["sensor", "ts"])
    newest = {
        row["sensor"]: (row["ts"], row["reading"], row["origin"])
        for row in latest.join(every, ["sensor", "ts"]).to_pylist()
    }
    keys = sorted(newest)
    online = store.get_records(group, [[k] for k in keys])
    got = {
        k: (r.event_time, r.values["reading"], r.values["origin"])
        for k, r in zip(keys, online, strict=True)
        if r is not None
    }
    assert got == newest, "the online store holds each key's newest event"


# -- the idempotency key's rules, without processes -------------------------------------

RIDES = [
    {"origin": "JFK", "time_hour": "2024-01-01T05:00:00Z", "temp": 1.0},
    {"origin": "EWR", "time_hour": "2024-01-01T06:00:00Z", "temp": 2.0},
]


def test_a_repeat_with_the_same_key_answers_the_first_ingestion(
    fs: FeatureStore, weather: FeatureGroup
) -> None:
    first = fs.ingest("weather", RIDES, idempotency_key="rides-1")
    again = fs.ingest("weather", RIDES, idempotency_key="rides-1")
    assert again == first and first.idempotency_key == "rides-1"
    assert fs.read_offline("weather").num_rows == 2
    other = fs.ingest("weather", RIDES, idempotency_key="rides-2")
    assert other.id != first.id
    assert fs.read_offline("weather").num_rows == 4
    assert [i.idempotency_key for i in fs.ingests("weather")] == ["rides-2", "rides-1"]


def test_a_live_attempt_is_not_doubled_and_a_dead_one_is_resumed(
    services: Services, weather: FeatureGroup
) -> None:
    fs = services.features
    claim = fs.repo.claim_ingest("weather", "ingest", "sdk", "rides-1", stale_after=60)
    assert isinstance(claim, Claim) and not claim.resumed
    with pytest.raises(Conflict, match="in progress"):
        fs.ingest("weather", RIDES, idempotency_key="rides-1")
    # Presumed dead once its heartbeat is older than the store's staleness.
    impatient = FeatureStore(
        fs.repo, fs.offline, fs.online, fs.events, fs.audit, ingest_stale_after=0
    )
    resumed = impatient.ingest("weather", RIDES, idempotency_key="rides-1")
    assert (resumed.id, resumed.state, resumed.rows) == (claim.id, "succeeded", 2)
    assert fs.read_offline("weather").num_rows == 2
    # The attempt that was presumed dead learns so at its next heartbeat and stops.
    with pytest.raises(Conflict, match="taken over"):
        fs.repo.renew_ingest(claim)


def test_a_failed_attempt_is_retried_under_the_same_record(
    fs: FeatureStore, weather: FeatureGroup
) -> None:
    bad = [{"origin": None, "time_hour": "2024-01-01T05:00:00Z", "temp": 1.0}]
    with pytest.raises(InvalidInput):
        fs.ingest("weather", bad, idempotency_key="rides-1")
    [failed] = fs.ingests("weather")
    assert failed.state == "failed"
    fixed = fs.ingest("weather", RIDES, idempotency_key="rides-1")
    assert (fixed.id, fixed.state, fixed.error) == (failed.id, "succeeded", None)
    assert fs.read_offline("weather").num_rows == 2


@pytest.mark.parametrize("key", ["", " rides", "a b", "x" * 256, "ключ"])
def test_a_malformed_key_is_refused_before_anything_is_written(
    fs: FeatureStore, weather: FeatureGroup, key: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        fs.ingest("weather", RIDES, idempotency_key=key)
    assert raised.value.field == "idempotency_key"
    assert fs.ingests("weather") == []


def test_the_rest_api_takes_the_key_as_the_idempotency_key_header(
    services: Services, weather: FeatureGroup
) -> None:
    from fastapi.testclient import TestClient  # here: the attempts import this module

    with TestClient(create_app(services)) as client:
        url = "/api/v1/feature-groups/weather/records"
        headers = {"Idempotency-Key": "rides-1"}
        first = client.post(url, json={"records": RIDES}, headers=headers)
        again = client.post(url, json={"records": RIDES}, headers=headers)
        bad = client.post(url, json={"records": RIDES}, headers={"Idempotency-Key": "a b"})
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and first.json()["idempotency_key"] == "rides-1"
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "idempotency_key"
    assert services.features.read_offline("weather").num_rows == 2
