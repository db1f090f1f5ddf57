"""Baselines from the feature store: a training set, and a model version's own training
data rebuilt through its lineage (the Delta versions it read, not today's data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from slipway.registry.lineage import Lineage
from tests.monitoring.conftest import FEATURES, FlightPlatform


@pytest.fixture(scope="module")
def flight_features(
    flight_platform: FlightPlatform, tmp_path_factory: pytest.TempPathFactory
) -> dict:  # type: ignore[type-arg]
    services = flight_platform.services
    services.features.create_group(
        {
            "name": "flight-inputs",
            "record_identifiers": [{"name": "flight_id", "type": "string"}],
            "features": [{"name": n, "type": "int" if n == "hour" else "float"} for n in FEATURES],
        }
    )
    rows = flight_platform.first_half.head(2000).reset_index(drop=True)
    when = datetime(2024, 1, 1, tzinfo=UTC)
    frame = rows[FEATURES].assign(flight_id=[f"f{i}" for i in range(len(rows))], event_time=when)
    first = services.features.ingest("flight-inputs", frame)
    # A later correction of the same records: a model trained before it never saw it.
    services.features.ingest(
        "flight-inputs",
        frame.assign(temp=frame["temp"] + 100.0, event_time=when + timedelta(hours=1)),
    )
    entities = tmp_path_factory.mktemp("entities") / "entities.parquet"
    pd.DataFrame(
        {"flight_id": frame["flight_id"], "event_time": when + timedelta(days=1)}
    ).to_parquet(entities)
    return {"entities": str(entities), "version": first.offline_version, "frame": frame}


def test_baseline_from_a_training_set(
    flight_platform: FlightPlatform,
    flight_features: dict,  # type: ignore[type-arg]
) -> None:
    made = flight_platform.services.baselines.create(
        "from-training-set",
        source={
            "training_set": {
                "entities": flight_features["entities"],
                "features": [f"flight-inputs:{n}" for n in FEATURES],
                "timestamp_column": "event_time",
            }
        },
        columns=FEATURES,
        actor="test",
    )
    assert made.rows == 2000
    temp = flight_platform.services.baselines.statistics("from-training-set").columns["temp"]
    # As of each entity row's time: the corrected values.
    assert temp["numeric"]["mean"] == pytest.approx(flight_features["frame"]["temp"].mean() + 100)


def test_baseline_from_a_model_versions_lineage_reads_what_training_read(
    flight_platform: FlightPlatform,
    flight_features: dict,  # type: ignore[type-arg]
) -> None:
    services = flight_platform.services
    trained = services.registry.get(*flight_platform.model.split(":"))
    lineage = Lineage(
        run_id=trained.run_id,
        training_set={
            "entities": flight_features["entities"],
            "feature_refs": [f"flight-inputs:{n}" for n in FEATURES],
            "timestamp_column": "event_time",
            "group_versions": {"flight-inputs": flight_features["version"]},
        },
    )
    version = services.registry.register(
        "flight-delay-lineage", f"runs:/{trained.run_id}/model", actor="test", lineage=lineage
    )
    made = services.baselines.create(
        "from-lineage",
        source={"model_version": True},
        model=f"flight-delay-lineage:{version.version}",
        actor="test",
    )
    assert made.rows == 2000 and made.model == f"flight-delay-lineage:{version.version}"
    columns = services.baselines.statistics("from-lineage").columns
    # The Delta version pinned in the lineage: before the correction.
    assert columns["temp"]["numeric"]["mean"] == pytest.approx(
        flight_features["frame"]["temp"].mean()
    )
    assert "prediction" in columns
