"""Pipelines the tests register and run (importable by worker processes)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from slipway.pipelines.dsl import condition, pipeline, step


@step
def numbers(n: int) -> pd.DataFrame:
    print(f"making {n} numbers")
    return pd.DataFrame({"x": list(range(n))})


@step
def scale(frame: pd.DataFrame, factor: int) -> pd.DataFrame:
    return frame.assign(x=frame["x"] * factor)


@step
def total(*frames: pd.DataFrame) -> dict[str, float]:
    return {"sum": float(sum(f["x"].sum() for f in frames)), "parts": len(frames)}


@step
def publish(metrics: dict[str, float], label: str) -> dict[str, str]:
    return {"published": f"{label}:{metrics['sum']}"}


@pipeline(name="fan")
def fan(n: int = 4, threshold: float = 10.0) -> None:
    data = numbers(n)
    parts = [scale(data, factor) for factor in (1, 2, 3)]
    metrics = total(*parts)
    with condition(metrics["sum"] >= threshold):
        publish(metrics, "big")
    with condition(metrics["sum"] < threshold):
        publish(metrics, "small")


@step(retries=3, backoff_seconds=0.1)
def flaky(marker: str, failures: int) -> int:
    path = Path(marker)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count < failures:
        raise RuntimeError(f"flaky failure {count + 1}")
    return count + 1


@step
def boom(value: int) -> int:
    raise ValueError(f"bad value {value}")


@pipeline(name="retrying")
def retrying(marker: str = "", failures: int = 2) -> None:
    flaky(marker, failures)


@pipeline(name="broken")
def broken(marker: str = "", fail: bool = True) -> None:
    first = flaky(marker, 0)
    if_failed = boom(first)
    total(numbers(2))
    del if_failed


@step
def sleepy(seconds: float, marker: str) -> dict[str, int]:
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return {"slept": int(seconds)}


@pipeline(name="slow")
def slow(seconds: float = 3.0, marker: str = "") -> None:
    result = sleepy(seconds, marker)
    publish({"sum": 1.0}, "after")
    del result


@step(timeout_seconds=1.0)
def hangs() -> int:
    time.sleep(30)
    return 1


@pipeline(name="timeouts")
def timeouts() -> None:
    hangs()


@step
def make_data(rows: int) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    frame["label"] = (frame["a"] + 0.5 * frame["b"] > 0).astype(int)
    return frame


@step
def fit(frame: pd.DataFrame, c: float) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c).fit(frame[["a", "b"]], frame["label"])


@pipeline(name="train-register")
def train_register(rows: int = 300, c: float = 1.0, min_auc: float = 0.75) -> None:
    from slipway.steps import evaluate, register_model

    data = make_data(rows)
    model = fit(data, c)
    metrics = evaluate(model, data, "label")
    with condition(metrics["roc_auc"] >= min_auc):
        register_model(model, "sample-model", metrics, "Approved")


@step
def holdout_data(rows: int, seed: int) -> pd.DataFrame:
    """Rows from the same distribution as :func:`make_data`, drawn with another seed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    frame["label"] = (frame["a"] + 0.5 * frame["b"] > 0).astype(int)
    return frame


@step
def shuffled(frame: pd.DataFrame, shuffle: bool) -> pd.DataFrame:
    """``frame`` with its labels shuffled (a model fitted on it learns nothing)."""
    if not shuffle:
        return frame
    labels = frame["label"].sample(frac=1.0, random_state=3).to_numpy()
    return frame.assign(label=labels)


@step
def challenger_model(rows: int, c: float, shuffle: bool) -> object:
    """One step for data, shuffling and fitting (plain calls inside a step): each step is
    a process, and this pipeline runs three times in its test."""
    return fit(shuffled(make_data(rows), shuffle), c)


@pipeline(name="challenge")
def challenge(
    rows: int = 300,
    c: float = 1.0,
    shuffle: bool = False,
    reference: str = "sample-model@champion",
    min_improvement: float = 0.0,
    metric: str = "roc_auc",
) -> None:
    """Train, compare with ``reference`` on a holdout, register (Rejected if worse)."""
    from slipway.steps import compare_models, register_model

    model = challenger_model(rows, c, shuffle)
    later = holdout_data(rows, 11)
    comparison = compare_models(model, later, "label", reference, metric, min_improvement)
    register_model(model, "sample-model", None, "Approved", comparison=comparison)


@pipeline(name="job-step")
def job_step(epochs: int = 1) -> None:
    from slipway.steps import training_job

    training_job(
        {
            "name": "inner",
            "script": "epochs.py",
            "source_dir": str(Path(__file__).parents[1] / "training" / "scripts"),
            "hyperparameters": {"epochs": epochs, "seconds": 0.05},
        }
    )


@step(cpus=1, cache=False)
def affinity() -> dict[str, object]:
    return {"cores": len(os.sched_getaffinity(0)), "omp": os.environ.get("OMP_NUM_THREADS")}


@pipeline(name="capped")
def capped() -> None:
    affinity()


@step(cache=False)
def whereami() -> dict[str, object]:
    """The workspace this step runs in, as the platform it opens sees it."""
    from slipway.steps.platform import platform

    with platform() as services:
        groups = [g.name for g in services.features.list_groups()]
        workspace = services.registry.workspace
    return {
        "env": os.environ.get("SLIPWAY_WORKSPACE"),
        "mlflow": os.environ.get("MLFLOW_WORKSPACE"),
        "platform": workspace,
        "groups": groups,
    }


@pipeline(name="whereami")
def whereami_pipeline() -> None:
    whereami()
