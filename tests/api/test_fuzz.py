"""Schemathesis over every operation of the control plane's own OpenAPI document.

Hand-written bad-input tests cover the cases someone thought of; these derive requests
from ``/api/v1/openapi.json`` itself (valid ones, and ones that break the documented
schema) and check every answer with tests/fuzzing.py: never a 5xx, every 4xx in the
platform's error shape with 400s naming their field, status and body as documented.

One pass carries an admin token, so the authorised code paths run; one carries none,
and every operation but the public ones must answer 401 in the same shape. A few real
resources named ``fuzz`` are seeded (a feature group with a record, a registered and
approved model with an alias, an endpoint, an alert channel and rule), and path
parameters are sometimes replaced by those names, so requests reach existing objects
and not only 404s. The platform runs in process (ASGI), on an embedded workspace.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis import Case, Response
from schemathesis.core.parameters import ParameterLocation

from slipway.api.app import PUBLIC_PATHS, create_app
from slipway.core.settings import load_settings
from slipway.registry.models import ApprovalStatus
from slipway.services import Services
from tests import fuzzing
from tests.registry.logged import register_classifier

pytestmark = pytest.mark.slow

KNOWN = "fuzz"
OPERATIONS = 144  # in the document; a new route must show up here, and be fuzzed
# Path parameters that name a seeded resource, by parameter name. Token ids are left
# out on purpose: revoking the fuzzer's own token would turn the rest into 401s.
SEEDED: dict[str, str] = {
    "name": KNOWN,
    "group": KNOWN,
    "endpoint": KNOWN,
    "version": "1",
    "ref": "1",
    "alias": "champion",
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str]]:
    """The control plane with auth on, a few resources named ``fuzz``, an admin token."""
    home = tmp_path_factory.mktemp("fuzz-api") / "home"
    services = Services.open(load_settings(home=home, server={"auth": True}))
    try:
        _, admin = services.tokens.create("fuzz-admin", "admin", created_by="test")
        _seed(services)
        yield create_app(services), admin
    finally:
        services.close()


def _seed(services: Services) -> None:
    services.features.create_group(
        {
            "name": KNOWN,
            "record_identifiers": [{"name": "id"}],
            "event_time": "ts",
            "features": [{"name": "x", "type": "float"}],
        }
    )
    services.features.ingest(KNOWN, [{"id": "a", "ts": "2024-01-01T00:00:00Z", "x": 1.0}])
    with pytest.MonkeyPatch.context() as monkeypatch:
        register_classifier(services, monkeypatch, KNOWN, status=ApprovalStatus.APPROVED)
    services.registry.set_alias(KNOWN, "champion", 1, actor="test")
    services.endpoints.create(
        {"name": KNOWN, "variants": [{"name": "main", "model": f"{KNOWN}:1"}]}, actor="test"
    )
    services.alerts.create_channel(KNOWN, "log", {}, actor="test")
    services.alerts.create_rule(
        {"name": KNOWN, "event_types": ["endpoint.*"], "channels": [KNOWN]}, actor="test"
    )


def _load(app: FastAPI, headers: dict[str, str] | None, checks: tuple[str, ...]) -> Any:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)

    @schema.hook
    def flatmap_case(context: Any, case: Case) -> Any:
        path = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
        if not case.path_parameters or path is None or not path.mode.is_positive:
            return st.just(case)  # a schema-breaking path parameter stays as generated
        return st.booleans().map(lambda known: _known(case) if known else case)

    return fuzzing.configure(schema, headers=headers, checks=checks)


def _known(case: Case) -> Case:
    """``case`` with its path naming the seeded resources."""
    assert case.path_parameters is not None
    case.path_parameters = {k: SEEDED.get(k, v) for k, v in case.path_parameters.items()}
    return case


@schemathesis.check
def private_routes_answer_401(ctx: Any, response: Response, case: Case) -> bool | None:
    """Without a token, every route but the public ones is a 401 in the error shape."""
    # Routing comes first: an undocumented method is a 405 with or without a token.
    if case.formatted_path not in PUBLIC_PATHS and case.method == case.operation.method.upper():
        assert response.status_code == 401, f"{response.status_code} without a token"
        assert fuzzing.error_body(response)["code"] == "unauthorized"
    return None


def _assert_clean(report: fuzzing.Report, operations: int) -> None:
    if report.findings or report.errors:
        pytest.fail(report.summary(), pytrace=False)
    assert len(report.operations) == operations, sorted(report.operations)


# Hypothesis warns when it prints a huge generated value; that is about the input.
quiet = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@quiet
def test_every_operation_with_an_admin_token(platform: tuple[FastAPI, str]) -> None:
    app, admin = platform
    schema = _load(app, {"Authorization": f"Bearer {admin}"}, ())
    # Revoking its own token (its id is in the secret, which Schemathesis reuses) would
    # turn the rest of the run into 401s; revocation is tested in test_auth.py.
    # Rotating it would, too.
    schema = schema.exclude(method="DELETE", path="/api/v1/tokens/{token_id}").exclude(
        method="POST", path="/api/v1/tokens/{token_id}/rotate"
    )
    report = fuzzing.run(schema)
    _assert_clean(report, OPERATIONS - 2)
    # Authorised paths were reached: many operations succeeded, not only refused.
    assert len(report.succeeded) >= OPERATIONS // 3, sorted(report.succeeded)


@quiet
def test_every_operation_without_a_token(platform: tuple[FastAPI, str]) -> None:
    report = fuzzing.run(_load(platform[0], None, ("private_routes_answer_401",)))
    _assert_clean(report, OPERATIONS)
    assert report.statuses.get(401, 0) > len(report.operations), report.statuses
