"""Two ingests into one feature group at once, with interleaved event times.

Two writer threads start together on a new group (so they also race to create its Delta
table): one ingests the even hours of every entity, the other the odd hours, newest first,
so older events keep arriving after newer ones. Afterwards the online store holds each
entity's newest event, whichever writer wrote it and whenever; the offline store holds
every row exactly once, each batch in a Delta version of its own; every ingestion is
recorded as succeeded. On SQLite and Redis online stores, and on SQLite and PostgreSQL
metadata.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipway.features.store import FeatureStore
from slipway.services import Services
from tests.features.conftest import WEATHER

ENTITIES = [f"A{n:02d}" for n in range(40)]
HOURS = 24
PER_BATCH = 3  # hours per batch: four batches per writer
START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def metadata_url(database_url: str) -> str:
    """Both metadata engines (see tests/features/conftest.py)."""
    return database_url


def _temp(hour: int, entity: int) -> float:
    return hour * 1000.0 + entity


def _rows(hours: list[int]) -> list[dict[str, Any]]:
    return [
        {
            "origin": origin,
            "time_hour": START + timedelta(hours=hour),
            "temp": _temp(hour, index),
            "wind": hour,
            "storm": hour % 2 == 1,
            "desc": f"{origin}@{hour}",
        }
        for hour in hours
        for index, origin in enumerate(ENTITIES)
    ]


def _writer(
    fs: FeatureStore,
    hours: list[int],
    start: threading.Barrier,
    spans: list[tuple[float, float]],
    errors: list[BaseException],
) -> None:
    try:
        start.wait(timeout=30)
        for at in range(0, len(hours), PER_BATCH):
            began = time.monotonic()
            fs.ingest("weather", _rows(hours[at : at + PER_BATCH]))
            spans.append((began, time.monotonic()))
    except BaseException as exc:
        errors.append(exc)


def test_two_writers_at_once_keep_the_newest_online_and_every_row_offline(
    services: Services, fs: FeatureStore
) -> None:
    fs.create_group(WEATHER)
    evens = list(range(0, HOURS, 2))
    odds = list(range(HOURS - 1, 0, -2))  # newest first: older events arrive later
    start = threading.Barrier(2)
    spans: dict[str, list[tuple[float, float]]] = {"even": [], "odd": []}
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(fs, hours, start, spans[name], errors))
        for name, hours in (("even", evens), ("odd", odds))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "an ingest did not finish"
    assert errors == []
    # The two writers really ran at once: some ingest of one overlapped one of the other.
    assert any(a0 < b1 and b0 < a1 for a0, a1 in spans["even"] for b0, b1 in spans["odd"])

    batches = len(spans["even"]) + len(spans["odd"])
    ingests = fs.ingests("weather", limit=100)
    assert [i.state for i in ingests] == ["succeeded"] * batches
    assert sorted(i.offline_version for i in ingests) == list(range(batches))
    assert fs.offline.version("weather") == batches - 1

    offline = fs.read_offline("weather").to_pylist()
    got = sorted((r["origin"], r["time_hour"], r["temp"]) for r in offline)
    expected = sorted(
        (origin, START + timedelta(hours=hour), _temp(hour, index))
        for hour in range(HOURS)
        for index, origin in enumerate(ENTITIES)
    )
    assert got == expected  # every row, once

    newest = HOURS - 1
    records = fs.get_records("weather", [[origin] for origin in ENTITIES])
    for index, (origin, record) in enumerate(zip(ENTITIES, records, strict=True)):
        assert record is not None, origin
        assert record.event_time == START + timedelta(hours=newest), origin
        assert record.values["temp"] == _temp(newest, index), origin
        assert record.values["desc"] == f"{origin}@{newest}"
