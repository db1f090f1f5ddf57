"""A small but complete platform to back up, and what a restore must give back.

Two feature groups with several ingests, a third one a writer keeps ingesting into while
a backup runs, a training set joined from the first two, a registered model version, an
endpoint serving it and a monitor on the endpoint: each kind of state an archive carries
(database rows, Delta tables, MLflow's and Slipway's artifacts, the online store).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from slipway.features.offline.training import TrainingSet
from slipway.registry.models import ApprovalStatus
from slipway.services import Services
from tests.registry.logged import register_classifier

BASE = datetime(2024, 1, 1, tzinfo=UTC)
FEATURES = ["weather:temp", "weather:wind", "planes:seats"]
TICKS = "ticks"


def weather_rows(day: int) -> list[dict[str, Any]]:
    return [
        {
            "origin": origin,
            "time_hour": BASE + timedelta(days=day, hours=hour),
            "temp": 20.0 + day + hour / 10 + n,
            "wind": hour + n,
        }
        for n, origin in enumerate(["JFK", "LGA", "EWR"])
        for hour in range(0, 24, 6)
    ]


def entities() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "origin": rng.choice(["JFK", "LGA", "EWR"], size=40),
            "tailnum": rng.choice(["N1", "N2", "N3"], size=40),
            "event_timestamp": [BASE + timedelta(hours=int(h)) for h in rng.integers(0, 96, 40)],
        }
    )


def create_groups(services: Services) -> None:
    fs = services.features
    fs.create_group(
        {
            "name": "weather",
            "record_identifiers": [{"name": "origin"}],
            "event_time": "time_hour",
            "features": [{"name": "temp", "type": "float"}, {"name": "wind", "type": "int"}],
            "tags": {"source": "test"},
        }
    )
    fs.create_group(
        {
            "name": "planes",
            "record_identifiers": [{"name": "tailnum"}],
            "event_time": "updated",
            "features": [{"name": "seats", "type": "int"}, {"name": "model", "type": "string"}],
        }
    )
    fs.create_group(
        {
            "name": TICKS,
            "record_identifiers": [{"name": "k"}],
            "event_time": "at",
            "features": [{"name": "n", "type": "int"}],
        }
    )
    for day in range(3):
        fs.ingest("weather", weather_rows(day))
    fs.ingest(
        "planes",
        [
            {"tailnum": f"N{n}", "updated": BASE, "seats": 100 + n, "model": f"A3{n}"}
            for n in range(1, 4)
        ],
    )


@dataclass
class Snapshot:
    """What the source platform showed just before the backup."""

    groups: dict[str, Any]
    counts: dict[str, int]
    training: TrainingSet
    versions: list[Any]
    predictions: list[Any]
    endpoint: dict[str, Any]
    monitor: dict[str, Any]
    online: Any
    ticks_before: int


def build(services: Services, monkeypatch: pytest.MonkeyPatch) -> Snapshot:
    create_groups(services)
    training = services.features.training_set(entities(), FEATURES)
    version = register_classifier(services, monkeypatch, "clf", status=ApprovalStatus.APPROVED)
    services.endpoints.create(
        {"name": "clf-ep", "variants": [{"name": "main", "model": f"clf:{version}"}]},
        actor="test",
    )
    services.monitoring.create(
        {
            "name": "clf-quality",
            "kind": "model_quality",
            "endpoint": "clf-ep",
            "model_quality": {"problem_type": "binary_classification"},
        },
        actor="test",
    )
    return Snapshot(
        groups={g.spec.name: g.spec for g in services.features.list_groups()},
        counts={
            name: services.features.read_offline(name).num_rows for name in ("weather", "planes")
        },
        training=training,
        versions=[(v.version, v.digest) for v in services.registry.versions("clf")],
        predictions=predict(services),
        endpoint=services.endpoints.describe("clf-ep"),
        monitor=services.monitoring.get("clf-quality"),
        online=services.features.get_record("weather", "JFK"),
        ticks_before=0,
    )


def predict(services: Services) -> list[Any]:
    model = services.registry.load("clf", 1)
    frame = pd.DataFrame({"a": [0.5, -1.0, 2.0], "b": [0.1, 0.2, -3.0]})
    return list(model.predict(frame))


@dataclass
class Writer:
    """Ingests into ``ticks`` in a loop, one small batch at a time, until stopped."""

    services: Services
    stop: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                n = self.done
                self.services.features.ingest(
                    TICKS,
                    [{"k": f"k{k}", "at": BASE + timedelta(seconds=n), "n": n} for k in range(5)],
                )
                self.done += 1
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def __enter__(self) -> Writer:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
