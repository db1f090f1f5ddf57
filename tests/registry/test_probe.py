"""A model's own code runs at registration only in a child process (slipway.registry.probe):
never in the registering process, without the platform's environment, and a model that
fails, crashes or hangs there is refused naming the field, with nothing registered.

The attacks: model code that reports where it runs and what it can see — a pyfunc whose
``predict`` runs when its signature is inferred from its input example, and a
scikit-learn classifier whose *unpickling* runs code when it is declared to return
probabilities.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import load_settings
from slipway.registry import probe
from slipway.services import Services

SECRETS = {"SLIPWAY_PROBE_SECRET": "hunter2", "AWS_SECRET_ACCESS_KEY": "also-secret"}


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    settings = load_settings(
        home=tmp_path / "home", database={"url": f"sqlite:///{tmp_path / 'meta.db'}"}
    )
    opened = Services.open(settings)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", opened.registry.mlflow.uri)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    yield opened
    opened.close()


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})


def _pyfunc(services: Services, spy: Path, action: str) -> str:
    """Log a pyfunc without a signature (only an input example), so registering it must
    run its ``predict``; returns the model URI."""

    class Spying(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        # Defined here, so it is pickled by value: the child cannot import this module.
        def __init__(self, spy: str, action: str) -> None:
            self.spy, self.action = spy, action
            self.logged_by = os.getpid()  # MLflow runs predict on the example when logging

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            import os as os_
            import time as time_

            if os_.getpid() == self.logged_by:
                return model_input["a"].to_numpy()
            seen = {"pid": os_.getpid(), "env": sorted(os_.environ)}
            with open(self.spy, "w") as handle:
                json.dump(seen, handle)
            if self.action == "raise":
                raise RuntimeError("the model refuses")
            if self.action == "crash":
                os_._exit(3)
            if self.action == "hang":
                time_.sleep(3600)
            return model_input["a"].to_numpy()

    experiment = services.registry.mlflow.experiment_id(
        f"probe-{action}", services.settings.artifact_root
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.pyfunc.log_model(
            name="model",
            python_model=Spying(str(spy), action),
            input_example=_frame().head(3),
            signature=False,  # left to registration to infer
            pip_requirements=["pandas"],
        )
    return f"runs:/{run.info.run_id}/model"


def _seen_by_the_model(spy: Path) -> dict[str, Any]:
    seen: dict[str, Any] = json.loads(spy.read_text())
    return seen


def test_signature_inference_runs_the_model_in_a_child_without_secrets(
    services: Services, tmp_path: Path
) -> None:
    spy = tmp_path / "seen.json"
    uri = _pyfunc(services, spy, "answer")
    version = services.registry.register("spied", uri, actor="test")
    assert version.signature["inputs"]  # inferred, from the model's own prediction
    seen = _seen_by_the_model(spy)
    assert seen["pid"] != os.getpid()
    assert not set(SECRETS) & set(seen["env"])
    assert not [name for name in seen["env"] if name.startswith(("SLIPWAY_", "MLFLOW_TRACKING"))]


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("raise", "the model failed: RuntimeError: the model refuses"),
        ("crash", "ended with exit code 3 and no answer"),
        ("hang", "timed out after 6 s"),
    ],
)
def test_a_model_that_fails_crashes_or_hangs_is_refused_and_nothing_is_registered(
    services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    action: str,
    says: str,
) -> None:
    monkeypatch.setattr(probe, "TIMEOUT_SECONDS", 6.0)
    spy = tmp_path / "seen.json"
    uri = _pyfunc(services, spy, action)
    with pytest.raises(InvalidInput) as caught:
        services.registry.register("refused", uri, actor="test")
    assert caught.value.field == "signature" and says in caught.value.message
    assert _seen_by_the_model(spy)["pid"] != os.getpid()  # it did run, elsewhere
    assert _no_versions(services, "refused")


def _unpickling_classifier(spy: str) -> LogisticRegression:
    """A classifier whose unpickling writes where it runs and what it sees."""

    class Unpickled(LogisticRegression):
        def __setstate__(self, state: dict[str, Any]) -> None:
            import json as json_
            import os as os_

            with open(state["spy"], "w") as handle:
                json_.dump({"pid": os_.getpid(), "env": sorted(os_.environ)}, handle)
            super().__setstate__(state)

    model = Unpickled()
    x = _frame()
    model.fit(x, (x["a"] > 0).astype(int))
    model.spy = spy
    return model


def test_declaring_probabilities_unpickles_the_model_in_a_child(
    services: Services, tmp_path: Path
) -> None:
    spy = tmp_path / "unpickled.json"
    model = _unpickling_classifier(str(spy))
    experiment = services.registry.mlflow.experiment_id(
        "probe-classes", services.settings.artifact_root
    )
    x = _frame()
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=mlflow.models.infer_signature(x, model.predict_proba(x)),
            pip_requirements=["scikit-learn"],
            serialization_format="cloudpickle",  # a pickle: loading it runs code
        )
    spy.unlink(missing_ok=True)  # logging may have round-tripped it
    version = services.registry.register(
        "unpickled", f"runs:/{run.info.run_id}/model", actor="test", output="probabilities"
    )
    assert version.classes == [0, 1]
    seen = _seen_by_the_model(spy)
    assert seen["pid"] != os.getpid()
    assert not set(SECRETS) & set(seen["env"])


def test_the_child_answer_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Classes a child reports are labels, or the registration is refused."""
    from slipway.registry.outputs import checked_classes

    assert checked_classes([0, 1]) == [0, 1]
    for bad, says in (([], "no classes"), ([{"x": 1}], "not a label"), ([1, 1], "twice")):
        with pytest.raises(InvalidInput) as caught:
            checked_classes(bad)
        assert caught.value.field == "output" and says in caught.value.message


def test_the_child_environment_keeps_only_what_python_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", "postgresql://u:p@db/slipway")
    env = probe.child_environment()
    assert set(env) <= {*probe._KEPT, "MLFLOW_DISABLE_TELEMETRY", "PYTHONDONTWRITEBYTECODE"}
    assert "PATH" in env


def _no_versions(services: Services, name: str) -> bool:
    try:
        return services.registry.versions(name) == []
    except NotFound:
        return True


def test_a_baseline_scored_by_a_version_runs_it_in_a_child(
    services: Services, tmp_path: Path
) -> None:
    spy = tmp_path / "seen.json"
    services.registry.register("scorer", _pyfunc(services, spy, "answer"), actor="test")
    spy.unlink()  # registration ran it (in a child) to infer its signature
    data = tmp_path / "data.parquet"
    _frame().to_parquet(data)
    made = services.baselines.create(
        "scored", source={"file": str(data)}, actor="test", model="scorer:1"
    )
    assert made.rows == 40
    profile = services.baselines.statistics("scored").columns
    assert profile["prediction"]["role"] == "prediction"
    assert profile["prediction"]["numeric"]["mean"] == pytest.approx(float(_frame()["a"].mean()))
    seen = _seen_by_the_model(spy)
    assert seen["pid"] != os.getpid()
    assert not set(SECRETS) & set(seen["env"])


def test_a_baseline_whose_model_fails_is_refused_naming_the_model(
    services: Services, tmp_path: Path
) -> None:
    spy = tmp_path / "seen.json"
    model = _pyfunc(services, spy, "answer")
    services.registry.register("flaky", model, actor="test")
    data = tmp_path / "data.parquet"
    _frame().drop(columns=["b"]).assign(b="text").to_parquet(data)  # b is not a number
    with pytest.raises(InvalidInput) as caught:
        services.baselines.create(
            "never", source={"file": str(data)}, actor="test", model="flaky:1"
        )
    assert caught.value.field == "model"
    assert services.baselines.list() == []


def test_a_step_sandbox_checks_the_model_in_place(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline step's child already runs user code; it checks a model it registers
    itself (probe.already_sandboxed) instead of starting another interpreter."""
    monkeypatch.setattr(probe, "_sandboxed", True)  # what slipway.pipelines.runner declares
    spy = tmp_path / "seen.json"
    version = services.registry.register("in-step", _pyfunc(services, spy, "answer"), actor="t")
    assert version.signature["inputs"]
    # The model writes its spy file only from another process than the one that logged it:
    # none was written, so it ran here.
    assert not spy.exists()
