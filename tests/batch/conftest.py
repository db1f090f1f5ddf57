"""A platform with a registered LightGBM model, Parquet inputs and in-process workers."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest

from slipway.core.settings import load_settings
from slipway.services import Services
from slipway.workers.worker import Worker
from tests.conftest import service_url

FEATURES = ["f1", "f2", "f3"]


@dataclass
class BatchPlatform:
    services: Services
    model: str  # "name:version"
    booster: lightgbm.Booster
    inputs: Path  # a folder of Parquet files
    frame: pd.DataFrame  # everything in it


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in FEATURES})
    frame.insert(0, "record_id", [f"r{seed}-{i:06d}" for i in range(rows)])
    frame["city"] = rng.choice(["oslo", "rome", "lima"], size=rows)
    return frame


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchPlatform]:
    root = tmp_path_factory.mktemp("batch")
    settings = load_settings(
        home=root / "home",
        database={"url": f"sqlite:///{root}/meta.db"},
        kafka={"bootstrap_servers": service_url("kafka")},
        workers={"lease_seconds": 3.0, "poll_seconds": 0.1},
    )
    services = Services.open(settings)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        train = make_frame(2000, 99)
        booster = lightgbm.train(
            {"objective": "regression", "verbose": -1, "num_leaves": 15},
            lightgbm.Dataset(train[FEATURES], train["f1"] * 2 + train["f2"]),
            num_boost_round=20,
        )
        experiment = services.registry.mlflow.experiment_id("batch", settings.artifact_root)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.lightgbm.log_model(
                booster,
                name="model",
                pip_requirements=["lightgbm"],  # stated: inferring them takes seconds
                signature=mlflow.models.infer_signature(
                    train[FEATURES], booster.predict(train[FEATURES])
                ),
            )
        version = services.registry.register("scorer", f"runs:/{run.info.run_id}/model", actor="t")
        services.registry.set_approval("scorer", version.version, "Approved", actor="t")
        inputs = root / "inputs"
        inputs.mkdir()
        frames = []
        for index in range(3):
            frame = make_frame(4000, index)
            frame.to_parquet(inputs / f"part-{index}.parquet", row_group_size=1000)
            frames.append(frame)
        yield BatchPlatform(
            services,
            f"scorer:{version.version}",
            booster,
            inputs,
            pd.concat(frames, ignore_index=True),
        )
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        services.close()


@pytest.fixture
def batch_workers(platform: BatchPlatform) -> Iterator[None]:
    """Two in-process workers serving the batch queue."""
    pool = [Worker(platform.services, queues=("batch",), worker_id=f"b{n}") for n in range(2)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in pool]
    for thread in threads:
        thread.start()
    yield
    for worker in pool:
        worker.stopping.set()
    for thread in threads:
        thread.join(timeout=60)
