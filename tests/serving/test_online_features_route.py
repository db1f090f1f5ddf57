"""The gateway's feature server: ``POST /online-features``, the control plane's contract."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.serving.conftest import Platform, RunningGateway


@pytest.fixture(scope="module")
def group(platform: Platform) -> str:
    platform.services.features.create_group(
        {
            "name": "route-accounts",
            "record_identifiers": [{"name": "account_id", "type": "int"}],
            "features": [
                {"name": "balance", "type": "float"},
                {"name": "tier", "type": "string"},
                {"name": "opened", "type": "timestamp"},
            ],
        }
    )
    platform.services.features.ingest(
        "route-accounts",
        [
            {
                "account_id": n,
                "balance": 10.0 * n,
                "tier": "gold" if n % 2 else "silver",
                "opened": datetime(2020, 1, n, tzinfo=UTC),
                "event_time": datetime(2024, 1, 1, tzinfo=UTC),
            }
            for n in range(1, 6)
        ],
    )
    return "route-accounts"


def test_vectors_match_the_sdk(platform: Platform, gateway: RunningGateway, group: str) -> None:
    refs = [f"{group}:balance", f"{group}:tier", f"{group}:opened"]
    rows = [{"account_id": 3}, {"account_id": 99}, {"account_id": "4"}]
    response = httpx.post(
        f"{gateway.url}/online-features",
        json={"feature_refs": refs, "entity_rows": rows, "full_feature_names": True},
    )
    assert response.status_code == 200, response.text
    vectors = response.json()["vectors"]
    expected = platform.services.features.get_online_features(refs, rows, full_feature_names=True)
    assert [v["missing"] for v in vectors] == [e.missing for e in expected]
    assert vectors[0]["values"] == {
        f"{group}__balance": 30.0,
        f"{group}__tier": "gold",
        f"{group}__opened": "2020-01-03T00:00:00+00:00",
    }
    assert vectors[1]["values"][f"{group}__balance"] is None  # unknown entity: missing
    assert vectors[2]["values"][f"{group}__balance"] == 40.0  # "4" coerced to the int key


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"entity_rows": [{"account_id": 1}]}, 400, "feature_refs"),
        ({"feature_refs": ["route-accounts:balance"], "entity_rows": []}, 400, "entity_rows"),
        ({"feature_refs": ["route-accounts:balance"], "entity_rows": [1]}, 400, "entity_rows"),
        (
            {
                "feature_refs": ["route-accounts:balance"],
                "entity_rows": [{"account_id": 1}],
                "x": 1,
            },
            400,
            "x",
        ),
        ({"feature_refs": ["route-accounts:nope"], "entity_rows": [{"account_id": 1}]}, 400, None),
        ({"feature_refs": ["route-accounts:balance"], "entity_rows": [{"other": 1}]}, 400, None),
        ({"feature_refs": ["no-such-group:x"], "entity_rows": [{"account_id": 1}]}, 404, None),
    ],
)
def test_bad_requests_name_the_problem(
    gateway: RunningGateway, group: str, body: dict[str, object], status: int, field: str | None
) -> None:
    response = httpx.post(f"{gateway.url}/online-features", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is not None:
        assert error["details"]["field"] == field


def test_only_post(gateway: RunningGateway) -> None:
    assert httpx.get(f"{gateway.url}/online-features").status_code == 405
