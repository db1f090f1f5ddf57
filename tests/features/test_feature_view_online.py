"""Reading a feature view online, on SQLite and on Redis: stored features, windows over
the events the online store keeps (backfilled when the view is defined, kept by every
ingestion after), row-level transformations over request fields; deletions and late
events; bad requests named."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Producer
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import KafkaSettings, load_settings
from slipway.features.online.redis import RedisOnlineStore
from slipway.features.store import FeatureStore
from slipway.features.stream import StreamIngestor
from slipway.features.views.horizons import HorizonCache
from slipway.features.views.service import LOOKUP_SECONDS, FeatureViews
from slipway.services import Services
from tests.conftest import service_url

T0 = datetime(2026, 1, 1, tzinfo=UTC)

VIEW: dict[str, Any] = {
    "name": "rider",
    "features": ["riders:age"],
    "request_fields": {"distance": "float"},
    "transformations": [
        {"name": "trips_1h", "window": {"group": "trips", "function": "count", "duration": "1h"}},
        {
            "name": "fare_sum_24h",
            "window": {"group": "trips", "column": "fare", "function": "sum", "duration": "24h"},
        },
        {
            "name": "last_fare",
            "window": {"group": "trips", "column": "fare", "function": "last", "duration": "7d"},
        },
        {"name": "senior", "expression": "age >= 60", "type": "bool"},
        {"name": "per_km", "expression": "fare_sum_24h / distance", "type": "float"},
    ],
}


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    services = Services.open(load_settings(home=tmp_path / "home"))
    if request.param == "redis":
        # Tests share one Redis server: each gets its own key namespace.
        services.online_store = RedisOnlineStore(
            service_url("redis"), prefix=f"t{uuid.uuid4().hex[:8]}"
        )
        services.features = FeatureStore(
            services.features.repo,
            services.features.offline,
            services.online_store,
            services.events,
            services.audit,
            horizons=HorizonCache,
        )
        services.feature_views = FeatureViews(
            services.db, services.features, services.events, services.audit
        )
    for group in (
        {
            "name": "riders",
            "record_identifiers": [{"name": "rider_id"}],
            "features": [{"name": "age", "type": "int"}],
        },
        {
            "name": "trips",
            "record_identifiers": [{"name": "rider_id"}],
            "features": [{"name": "fare", "type": "float"}],
        },
    ):
        services.features.create_group(group)
    services.features.ingest(
        "riders",
        pd.DataFrame({"rider_id": ["a", "b"], "event_time": [T0, T0], "age": [30, 65]}),
    )
    yield services
    services.close()


def trips(rows: list[tuple[str, timedelta, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rider_id": [r[0] for r in rows],
            "event_time": [T0 + r[1] for r in rows],
            "fare": [r[2] for r in rows],
        }
    )


def read(platform: Services, at: timedelta, *keys: str) -> list[dict[str, Any]]:
    rows = [{"rider_id": k, "distance": 4.0} for k in keys]
    return platform.feature_views.get_online("rider", rows, at=T0 + at)


def test_events_ingested_before_the_view_are_backfilled(platform: Services) -> None:
    platform.features.ingest(
        "trips",
        trips(
            [
                ("a", timedelta(0), 10.0),
                ("a", timedelta(minutes=30), 20.0),
                ("a", timedelta(hours=2), 30.0),
                ("b", timedelta(0), 5.0),
            ]
        ),
    )
    platform.feature_views.apply(VIEW)
    a, b, nobody = read(platform, timedelta(hours=2, minutes=10), "a", "b", "zz")
    assert a == {
        "age": 30,
        "trips_1h": 1,  # only the 2:00 trip is within [1:10, 2:10]
        "fare_sum_24h": 60.0,
        "last_fare": 30.0,
        "senior": False,
        "per_km": 15.0,
    }
    assert b == {
        "age": 65,
        "trips_1h": 0,
        "fare_sum_24h": 5.0,
        "last_fare": 5.0,
        "senior": True,
        "per_km": 1.25,
    }
    assert nobody == {
        "age": None,
        "trips_1h": 0,
        "fare_sum_24h": None,
        "last_fare": None,
        "senior": None,
        "per_km": None,
    }


def test_ingestion_after_the_view_keeps_the_events(platform: Services) -> None:
    platform.feature_views.apply(VIEW)
    platform.features.ingest("trips", trips([("a", timedelta(0), 10.0)]))
    platform.features.ingest(
        "trips",
        trips([("a", timedelta(minutes=20), 20.0), ("a", timedelta(minutes=40), None)]),
    )
    [a] = read(platform, timedelta(minutes=50), "a")
    assert (a["trips_1h"], a["fare_sum_24h"], a["last_fare"]) == (3, 30.0, None)
    # A correction of an event (same key and event time) replaces it.
    platform.features.ingest("trips", trips([("a", timedelta(minutes=40), 5.0)]))
    [a] = read(platform, timedelta(minutes=50), "a")
    assert (a["trips_1h"], a["fare_sum_24h"], a["last_fare"]) == (3, 35.0, 5.0)
    # Windows end at the read's time: an hour later the first trips have left the hour.
    [a] = read(platform, timedelta(hours=1, minutes=30), "a")
    assert (a["trips_1h"], a["fare_sum_24h"]) == (1, 35.0)
    # Deleted records are gone from the windows too.
    platform.features.delete_records("trips", [{"rider_id": "a"}], actor="t")
    [a] = read(platform, timedelta(minutes=50), "a")
    assert (a["trips_1h"], a["fare_sum_24h"], a["last_fare"]) == (0, None, None)


def test_bad_requests_name_the_field(platform: Services) -> None:
    platform.feature_views.apply(VIEW)
    with pytest.raises(InvalidInput) as caught:
        platform.feature_views.get_online("rider", [{"rider_id": "a"}], at=T0)
    assert caught.value.field == "distance"
    with pytest.raises(InvalidInput) as caught:
        platform.feature_views.get_online("rider", [{"rider_id": "a", "distance": "far"}], at=T0)
    assert caught.value.field == "distance"
    with pytest.raises(InvalidInput) as caught:
        platform.feature_views.get_online("rider", [], at=T0)
    assert caught.value.field == "entity_rows"
    with pytest.raises(InvalidInput) as caught:
        platform.feature_views.get_online(
            "rider", [{"rider_id": "a", "distance": 1.0}], at=datetime(2026, 1, 1)
        )
    assert caught.value.field == "at"


def test_over_rest(platform: Services) -> None:
    platform.features.ingest("trips", trips([("a", timedelta(0), 10.0)]))
    platform.feature_views.apply(VIEW)
    embedded = read(platform, timedelta(minutes=5), "a", "b")
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        body = {
            "entity_rows": [{"rider_id": k, "distance": 4.0} for k in ("a", "b")],
            "at": (T0 + timedelta(minutes=5)).isoformat(),
        }
        answer = client.post("/api/v1/feature-views/rider/online", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"view": "rider", "version": 1, "rows": embedded}
        missing = client.post(
            "/api/v1/feature-views/rider/online", json={**body, "entity_rows": [{"rider_id": "a"}]}
        )
        assert missing.status_code == 400
        assert missing.json()["error"]["details"]["field"] == "distance"
        naive = client.post(
            "/api/v1/feature-views/rider/online", json={**body, "at": "2026-01-01T00:05:00"}
        )
        assert naive.status_code == 400


def _stream(platform: Services, bootstrap: str, topic: str, events: pd.DataFrame) -> None:
    """Send ``events`` to ``topic`` as JSON and ingest them with the Kafka stream
    ingestor, in micro-batches of three, until all are consumed (one consumer group per
    topic: a second call resumes where the first committed)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for record in events.to_dict("records"):
        value = {**record, "event_time": record["event_time"].isoformat()}
        if pd.isna(value["fare"]):
            value["fare"] = None
        producer.produce(topic, value=json.dumps(value).encode(), key=record["rider_id"])
    assert producer.flush(30) == 0
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    with StreamIngestor(
        platform.features, settings, "trips", topic=topic, group_id=f"g-{topic}", batch_records=3
    ) as ingestor:
        stats = ingestor.run(max_records=len(events), idle_timeout=60)
    assert (stats.consumed, stats.ingested, stats.dead_lettered) == (len(events), len(events), 0)


@pytest.mark.parametrize("ingestion", ["batch", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_offline_and_online_give_the_same_values(
    platform: Services, ingestion: str, request: pytest.FixtureRequest
) -> None:
    """The same view, read offline (a training set at time t) and online (after ingesting
    everything up to t, in batches or from a Kafka topic by the stream ingestor), gives
    identical values for every stored, window and row-level column."""
    platform.feature_views.apply(VIEW)  # before the data: ingestion keeps the events
    events = trips(
        [
            ("a", timedelta(minutes=m), float(m) if m % 3 else None)
            for m in (0, 10, 25, 40, 55, 70, 95, 130, 300, 1500)
        ]
        + [("b", timedelta(minutes=m), 1.5 * m) for m in (5, 65, 125)]
    )
    fix = trips([("a", timedelta(minutes=25), 99.0)])  # a correction, ingested after
    if ingestion == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        topic = request.getfixturevalue("kafka_topic")
        # Late events: the stream carries them newest first.
        _stream(platform, bootstrap, topic, events.iloc[::-1])
        _stream(platform, bootstrap, topic, fix)
    else:
        platform.features.ingest("trips", events)
        platform.features.ingest("trips", fix)
    assert platform.features.read_offline("trips").num_rows == len(events) + 1  # all, once
    at = T0 + timedelta(minutes=1500)
    rows = [{"rider_id": k, "distance": d} for k, d in (("a", 3.0), ("b", 0.5), ("c", 2.0))]
    online = platform.feature_views.get_online("rider", rows, at=at)
    entities = pd.DataFrame(rows).assign(event_timestamp=at)
    built = platform.feature_views.training_set("rider", entities)
    offline = built.data.to_pylist()
    columns = list(online[0])
    assert columns == ["age", "trips_1h", "fare_sum_24h", "last_fare", "senior", "per_km"]
    for got, want in zip(offline, online, strict=True):
        for column in columns:
            if isinstance(want[column], float):
                assert got[column] == pytest.approx(want[column], rel=1e-12), column
            else:
                assert got[column] == want[column], column
    assert built.definition.feature_view == {
        "name": "rider",
        "version": 1,
        "digest": platform.feature_views.get("rider").digest,
    }
    # A training set "as known at" an earlier time leaves out what was ingested later.
    early = platform.feature_views.training_set(
        "rider", entities.assign(event_timestamp=T0), as_known_at=True
    )
    assert [r["fare_sum_24h"] for r in early.data.to_pylist()] == [None, None, None]


def test_a_view_defined_by_another_process_counts_from_the_next_ingestion(
    tmp_path: Path,
) -> None:
    """Two platforms on one home stand for two processes: the one ingesting had looked up
    the group's horizon (none) just before the other defined a view; its very next
    ingestion keeps the events, and what it wrote before is backfilled."""
    settings = load_settings(home=tmp_path / "home")
    writer, definer = Services.open(settings), Services.open(settings)
    try:
        definer.features.create_group(
            {
                "name": "trips",
                "record_identifiers": [{"name": "rider_id"}],
                "features": [{"name": "fare", "type": "float"}],
            }
        )
        writer.features.ingest("trips", trips([("a", timedelta(0), 1.0)]))  # no view yet
        definer.feature_views.apply(
            {
                "name": "fares",
                "transformations": [
                    {
                        "name": "fares_1h",
                        "window": {"group": "trips", "function": "count", "duration": "1h"},
                    }
                ],
            }
        )
        writer.features.ingest("trips", trips([("a", timedelta(minutes=5), 2.0)]))
        rows = [{"rider_id": "a"}]
        at = T0 + timedelta(minutes=10)
        assert definer.feature_views.get_online("fares", rows, at=at) == [{"fares_1h": 2}]
    finally:
        writer.close()
        definer.close()


def test_a_new_version_counts_at_once_here_and_within_the_lookup_time_elsewhere(
    tmp_path: Path,
) -> None:
    """get_online caches which version a name means (LOOKUP_SECONDS): a version this
    process applies or deletes counts at its next read; one another process applies,
    once the look-up is that old — and reads in between answer the version they knew."""
    settings = load_settings(home=tmp_path / "home")
    reader, other = Services.open(settings), Services.open(settings)
    try:
        reader.features.create_group(
            {
                "name": "trips",
                "record_identifiers": [{"name": "rider_id"}],
                "features": [{"name": "fare", "type": "float"}],
            }
        )
        reader.features.ingest(
            "trips", trips([("a", timedelta(0), 1.0), ("a", timedelta(minutes=5), 3.0)])
        )

        def view(function: str) -> dict[str, Any]:
            window = {"group": "trips", "column": "fare", "function": function, "duration": "1h"}
            return {"name": "fares", "transformations": [{"name": "fare", "window": window}]}

        rows = [{"rider_id": "a"}]
        at = T0 + timedelta(minutes=10)
        reader.feature_views.apply(view("sum"))
        assert reader.feature_views.get_online("fares", rows, at=at) == [{"fare": 4.0}]
        reader.feature_views.apply(view("max"))  # this process: at once
        assert reader.feature_views.get_online("fares", rows, at=at) == [{"fare": 3.0}]
        other.feature_views.apply(view("mean"))  # another: within LOOKUP_SECONDS
        asked = time.monotonic()
        seen = reader.feature_views.get_online("fares", rows, at=at)
        while seen != [{"fare": 2.0}]:
            assert seen == [{"fare": 3.0}], seen  # the version it knew, nothing else
            assert time.monotonic() - asked < LOOKUP_SECONDS + 5, "the new version never counted"
            seen = reader.feature_views.get_online("fares", rows, at=at)
        # A pinned version is a look-up of its own; a deleted view is gone here at once.
        assert reader.feature_views.get_online("fares", rows, version=1, at=at) == [{"fare": 4.0}]
        reader.feature_views.delete("fares")
        with pytest.raises(NotFound):
            reader.feature_views.get_online("fares", rows, at=at)
    finally:
        reader.close()
        other.close()
