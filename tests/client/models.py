"""A registered model on the shared platform, for the endpoint and batch workflows.

Registered with the embedded registry (setup, not what those tests check), once ``slipway
up``'s MLflow server answers: it creates MLflow's tables as it starts, and an embedded
registry opening the same store at that moment races it.
"""

from __future__ import annotations

import httpx
import pytest

from tests.registry.logged import register_classifier
from tests.shared_platform import SharedPlatform
from tests.waiting import eventually


def _mlflow_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def registered(shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch, name: str) -> int:
    """A new version of the classifier ``name`` (columns a and b), its number."""
    eventually(
        lambda: _mlflow_answers(shared_platform.tracking_url),
        what="slipway up's MLflow server answered",
        timeout=120,
    )
    return register_classifier(shared_platform.services, monkeypatch, name)
