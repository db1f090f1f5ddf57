"""One platform for the serving tests with real registered models, and a real gateway on it
(each test uses endpoints of its own names).

The gateway runs in this process (uvicorn on a free loopback port, its own threads) so
tests can reach its state; the process-level behaviour (worker replacement) is tested
against ``slipway serve`` in a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import mlflow
import pytest
import uvicorn
import xgboost
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression

from slipway.core.settings import load_settings
from slipway.services import Services, open_gateway
from slipway.serving.gateway import http
from slipway.serving.gateway.app import Gateway
from slipway.serving.gateway.server import worker_socket
from slipway.serving.resources import Endpoint
from tests.serving import models as test_models


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Platform:
    services: Services
    refs: dict[str, str]  # short name -> "model:version"

    def deploy(self, spec: dict[str, Any], *, timeout: float = 60.0) -> Endpoint:
        self.services.endpoints.create(spec, actor="test")
        return self.settle(spec["name"], timeout=timeout)

    def settle(self, name: str, *, timeout: float = 60.0) -> Endpoint:
        """Run the deployment controller until the endpoint stops moving."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.services.deployments.tick()
            described = self.services.endpoints.describe(name)
            if described.status in ("InService", "Failed") and not described.target_version:
                return described
            time.sleep(0.2)
        raise AssertionError(f"endpoint {name} did not settle: {described}")


# Stated, not inferred: MLflow infers a model's requirements in a subprocess (~7 s a
# model), and nothing here builds an environment from them.
SKLEARN = ["scikit-learn"]
PYFUNC = ["pandas"]


def _register(services: Services, name: str, run_id: str) -> str:
    version = services.registry.register(name, f"runs:/{run_id}/model", actor="test")
    services.registry.set_approval(name, version.version, "Approved", actor="test", comment="ok")
    return f"{name}:{version.version}"


def _train_all(services: Services) -> dict[str, str]:
    experiment = services.registry.mlflow.experiment_id(
        "serving-tests", services.settings.artifact_root
    )
    x = test_models.frame()
    refs: dict[str, str] = {}

    def log(name: str, logger: Callable[[], None]) -> None:
        with mlflow.start_run(experiment_id=experiment) as run:
            logger()
        refs[name] = _register(services, name.split("-")[0], run.info.run_id)

    signature = mlflow.models.infer_signature(x, test_models.target(x, 3.0))
    for slope in (3.0, -3.0, 5.0):
        model = LinearRegression().fit(x, test_models.target(x, slope))
        log(
            {3.0: "linear", -3.0: "linear-v2", 5.0: "spare"}[slope],
            lambda m=model: mlflow.sklearn.log_model(
                m, name="model", signature=signature, pip_requirements=SKLEARN
            ),
        )
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 7},
        lightgbm.Dataset(x, test_models.target(x, 3.0)),
        num_boost_round=20,
    )
    log(
        "lgbm",
        lambda: mlflow.lightgbm.log_model(
            booster, name="model", signature=signature, pip_requirements=["lightgbm"]
        ),
    )
    xgb = xgboost.train(
        {"max_depth": 3}, xgboost.DMatrix(x, label=test_models.target(x, 3.0)), num_boost_round=10
    )
    log(
        "xgb",
        lambda: mlflow.xgboost.log_model(
            xgb, name="model", signature=signature, pip_requirements=["xgboost"]
        ),
    )
    hgb = HistGradientBoostingRegressor(max_iter=20).fit(x, test_models.target(x, 3.0))
    trusted = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    log(
        "hgb",
        lambda: mlflow.sklearn.log_model(
            hgb,
            name="model",
            signature=signature,
            skops_trusted_types=trusted,
            pip_requirements=SKLEARN,
        ),
    )
    for name, python_model in (
        ("failing", test_models.Failing()),
        ("nans", test_models.NaNs()),
        ("slow", test_models.Slow()),
    ):
        log(
            name,
            lambda pm=python_model: mlflow.pyfunc.log_model(
                name="model", python_model=pm, signature=signature, pip_requirements=PYFUNC
            ),
        )
    echo_input = test_models.pd.DataFrame({"city": ["oslo", "rome"], "n": [1, 2]})
    echo_signature = mlflow.models.infer_signature(
        echo_input, test_models.Echo().predict(None, echo_input)
    )
    log(
        "echo",
        lambda: mlflow.pyfunc.log_model(
            name="model",
            python_model=test_models.Echo(),
            signature=echo_signature,
            pip_requirements=PYFUNC,
        ),
    )
    return refs


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("serving") / "home"
    settings = load_settings(home=home, database={"url": f"sqlite:///{home.parent}/meta.db"})
    services = Services.open(settings)
    # Only while training: the platform lives for the whole session, and a tracking URI
    # left in the environment would send other modules' runs to this platform's MLflow.
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        refs = _train_all(services)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    try:
        yield Platform(services, refs)
    finally:
        services.close()


@dataclass
class RunningGateway:
    gateway: Gateway
    url: str


@contextmanager
def own_http_server(gateway: Gateway) -> Iterator[tuple[str, int]]:
    """``gateway`` on the gateway workers' own HTTP server (the one `slipway serve` runs,
    gateway/http.py) in a thread, at the address yielded; stopped gracefully after."""
    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    sock = worker_socket("127.0.0.1", port)
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(http.serve(gateway, sock, stop)), daemon=True
    )
    thread.start()
    try:
        yield ("127.0.0.1", port)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


def start_gateway(services: Services) -> tuple[RunningGateway, Callable[[], None]]:
    gateway = open_gateway(services.settings)
    port = free_port()
    config = uvicorn.Config(
        gateway, host="127.0.0.1", port=port, lifespan="on", log_level="warning", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the gateway did not start")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    return RunningGateway(gateway, f"http://127.0.0.1:{port}"), stop


@pytest.fixture(scope="session")
def gateway(platform: Platform) -> Iterator[RunningGateway]:
    running, stop = start_gateway(platform.services)
    yield running
    stop()


@pytest.fixture
def home(platform: Platform) -> Path:
    return platform.services.settings.home
