"""Feature views through slipway.Client and embedded, on one platform: the same
definitions, versions and online values, and the same errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from slipway.core.errors import InvalidInput, NotFound
from slipway.core.resource import Listing
from slipway.features.views.resources import FeatureView
from tests.shared_platform import SharedPlatform

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def test_define_version_and_read_online(
    platform: Any, shared_platform: SharedPlatform, side: str
) -> None:
    group, name = f"fv-trips-{side}", f"fv-rider-{side}"
    shared_platform.services.features.create_group(
        {
            "name": group,
            "record_identifiers": [{"name": "rider_id"}],
            "features": [{"name": "fare", "type": "float"}],
        }
    )
    shared_platform.services.features.ingest(
        group,
        pd.DataFrame(
            {
                "rider_id": ["a", "a", "b"],
                "event_time": [T0, T0 + timedelta(minutes=30), T0],
                "fare": [10.0, 20.0, 5.0],
            }
        ),
    )
    spec = {
        "name": name,
        "request_fields": {"distance": "float"},
        "transformations": [
            {"name": "n_1h", "window": {"group": group, "function": "count", "duration": "1h"}},
            {
                "name": "fare_sum",
                "window": {"group": group, "column": "fare", "function": "sum", "duration": "1d"},
            },
            {"name": "per_km", "expression": "fare_sum / distance", "type": "float"},
        ],
    }
    views = platform.feature_views
    first = views.apply(spec, actor="tests")
    assert isinstance(first, FeatureView) and first.version == 1
    assert first.columns == {"n_1h": "int", "fare_sum": "float", "per_km": "float"}
    assert views.apply(spec).version == 1
    assert views.apply({**spec, "description": "recent trips"}).version == 2
    assert isinstance(views.list(), Listing) and name in [v.name for v in views.list()]
    assert [v.version for v in views.versions(name)] == [1, 2]
    rows = [{"rider_id": "a", "distance": 2.0}, {"rider_id": "b", "distance": 5.0}]
    assert views.get_online(name, rows, at=T0 + timedelta(minutes=45)) == [
        {"n_1h": 2, "fare_sum": 30.0, "per_km": 15.0},
        {"n_1h": 1, "fare_sum": 5.0, "per_km": 1.0},
    ]
    with pytest.raises(InvalidInput) as caught:
        views.get_online(name, [{"rider_id": "a"}], at=T0)
    assert caught.value.field == "distance"
    with pytest.raises(InvalidInput) as caught:
        views.apply(
            {
                **spec,
                "transformations": [
                    {
                        "name": "x",
                        "window": {"group": "nowhere", "function": "count", "duration": "1h"},
                    }
                ],
            }
        )
    assert caught.value.field == "transformations.0.window.group"
    views.delete(name)
    with pytest.raises(NotFound):
        views.get(name)
