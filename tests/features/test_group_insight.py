"""The reads the console shows of a group: ingestion history with Delta versions and
actors, freshness and record counts, and the profile of an ingestion."""

from __future__ import annotations

import pytest

from slipway.core.errors import NotFound
from slipway.features.definitions import FeatureGroup
from slipway.features.store import FeatureStore
from tests.features.conftest import WEATHER, t


def _rows(day: int, n: int, *, desc: str = "sunny") -> list[dict[str, object]]:
    return [
        {
            "origin": f"A{i}",
            "time_hour": t(day, i % 24),
            "temp": float(i),
            "wind": i % 3,
            "storm": i % 2 == 0,
            "desc": desc if i % 4 else None,
        }
        for i in range(n)
    ]


def test_history_pages_newest_first_with_versions_and_actors(
    fs: FeatureStore, weather: FeatureGroup
) -> None:
    for day in (1, 2, 3):
        fs.ingest("weather", _rows(day, 2), actor=f"user{day}")
    fs.ingest_stream_batch("weather", _rows(4, 1), source="topic/0")
    page, total = fs.ingest_history("weather", offset=0, limit=3)
    assert total == 4
    assert [(i.kind, i.offline_version) for i in page] == [
        ("stream", 3),
        ("ingest", 2),
        ("ingest", 1),
    ]
    older, _ = fs.ingest_history("weather", offset=3, limit=3)
    assert [i.offline_version for i in older] == [0]
    actors = fs.ingest_actors("weather", [*page, *older])
    assert actors == {page[1].id: "user3", page[2].id: "user2", older[0].id: "user1"}
    with pytest.raises(NotFound):
        fs.ingest_history("nope", offset=0, limit=3)


def test_summaries_count_records_and_freshness(fs: FeatureStore, weather: FeatureGroup) -> None:
    fs.create_group(WEATHER | {"name": "archive", "online": False})
    fs.create_group(WEATHER | {"name": "idle"})
    fs.ingest("weather", _rows(5, 4))
    fs.ingest("weather", _rows(2, 6))  # a backfill: older events, later ingestion
    fs.ingest("archive", _rows(1, 3))
    fs.ingest("archive", _rows(2, 3))
    summaries = fs.summaries(fs.list_groups())
    weather_now = summaries["weather"]
    assert (weather_now.records, weather_now.records_kind) == (6, "online")  # keys A0-A5
    assert weather_now.activity.ingests == 2 and weather_now.activity.rows_ingested == 10
    assert weather_now.activity.newest_event_time == t(5, 3)
    last = fs.ingests("weather")[0].finished_at
    assert weather_now.activity.last_ingest_at == last
    assert (summaries["archive"].records, summaries["archive"].records_kind) == (6, "offline")
    assert fs.offline_rows("archive") == 6
    idle = summaries["idle"]
    assert idle.activity.ingests == 0 and idle.activity.newest_event_time is None
    assert idle.records == 0 and fs.offline_rows("idle") is None


def test_profile_of_latest_ingest_from_offline_rows(
    fs: FeatureStore, weather: FeatureGroup
) -> None:
    assert fs.ingest_profile("weather") is None
    first = fs.ingest("weather", _rows(1, 8, desc="rain"))
    fs.ingest("weather", _rows(2, 12))
    profile = fs.ingest_profile("weather")
    assert profile is not None and profile.profiled == 12 and not profile.sampled
    by_name = {f.name: f for f in profile.features}
    temp = by_name["temp"]
    assert (temp.count, temp.missing, temp.minimum, temp.maximum) == (12, 0, 0.0, 11.0)
    assert temp.mean == pytest.approx(5.5)
    assert temp.histogram is not None and sum(temp.histogram.counts) == 12
    assert len(temp.histogram.edges) == len(temp.histogram.counts) + 1
    wind = by_name["wind"]  # three integer values: one bin each
    assert wind.histogram is not None
    assert wind.histogram.edges == [0.0, 1.0, 2.0, 3.0] and wind.histogram.counts == [4, 4, 4]
    desc = by_name["desc"]
    assert (desc.count, desc.missing, desc.top, desc.distinct) == (9, 3, [("sunny", 9)], 1)
    assert by_name["storm"].top == [("False", 6), ("True", 6)]
    older = fs.ingest_profile("weather", first.id, sample=5)
    assert older is not None and older.profiled == 5 and older.sampled
    assert {f.name: f.top for f in older.features}["desc"][0][0] == "rain"
    with pytest.raises(NotFound):
        fs.ingest_profile("weather", first.id + 100)


def test_online_only_group_profiles_its_stored_figures(fs: FeatureStore) -> None:
    fs.create_group(WEATHER | {"name": "live", "offline": False})
    fs.ingest("live", _rows(1, 4))
    profile = fs.ingest_profile("live")
    assert profile is not None and profile.profiled == 0
    temp = {f.name: f for f in profile.features}["temp"]
    assert (temp.count, temp.missing, temp.minimum, temp.maximum) == (4, 0, 0.0, 3.0)
    assert temp.mean == pytest.approx(1.5) and temp.histogram is None
