"""The registry with its artifact root on S3 (the local S3 test server): MLflow writes the
run's model there, the registry copies it into its own store, digests it, verifies it on
load, and refuses it once tampered with — as on a local root."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import s3fs

from slipway.core.errors import InvalidInput
from slipway.core.settings import load_settings
from slipway.registry.models import ModelTampered
from slipway.registry.sources import key_for_uri
from slipway.services import Services

pytestmark = pytest.mark.s3


@pytest.fixture
def services(s3_root: str, tmp_path: Path) -> Iterator[Services]:
    """Overrides ``tests/registry/conftest.py``'s: SQLite metadata, artifacts on S3."""
    opened = Services.open(load_settings(home=tmp_path / "home", artifacts={"root": s3_root}))
    yield opened
    opened.close()


def test_register_load_and_tamper_check_on_s3(
    services: Services, log_model: Callable[..., str], s3_root: str
) -> None:
    run_id = log_model()
    version = services.registry.register("delay", f"runs:/{run_id}/model", actor="alice")
    assert len(version.digest) == 64
    services.registry.verify("delay", 1)
    model = services.registry.load("delay", 1)
    assert list(model.predict(pd.DataFrame({"a": [1.0], "b": [1.0]}))) == [1]

    bucket = s3fs.S3FileSystem(skip_instance_cache=True)
    prefix = f"{s3_root.removeprefix('s3://')}/{version.artifact_key}"
    files = [(p, bucket.size(p)) for p in bucket.find(prefix) if not p.endswith("/MLmodel")]
    weights = max(files, key=lambda pair: pair[1])[0]
    bucket.pipe(weights, bucket.cat(weights) + b"\x00")
    with pytest.raises(ModelTampered, match="digest mismatch"):
        services.registry.load("delay", 1)


@pytest.mark.parametrize(
    "uri",
    [
        "s3://other-bucket/slipway/mlflow/1/run/artifacts",  # another bucket
        "s3://ml/slipway-evil/mlflow/1",  # a sibling prefix sharing the root's first letters
        "s3://ml/slipway/mlflow/../../elsewhere",
        "s3://ml/slipway/mlflow/%2e%2e/x",
        "s3://ml/slipway",  # the root itself is no model
        "gs://ml/slipway/mlflow/1",
    ],
)
def test_locations_outside_an_object_store_root_are_refused(uri: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        key_for_uri("runs:/x/model", uri, "s3://ml/slipway")
    assert caught.value.field == "source"


def test_locations_under_an_object_store_root_become_keys() -> None:
    assert key_for_uri(
        "runs:/x/model", "s3://ml/slipway/mlflow/1/m/artifacts/", "s3://ml/slipway/"
    ) == ("mlflow/1/m/artifacts")
