"""Schemathesis over the gateway's own OpenAPI document (``GET /openapi.json``).

The document is checked first: Schemathesis loads it as valid OpenAPI 3, it lists every
route the gateway answers, and every route it lists is answered (no "no route" 404).
Then every phase of Schemathesis runs over it against the real gateway (uvicorn on
loopback, tests/serving/conftest.py) twice: with path parameters naming a deployed
linear model's endpoint, so fuzzed bodies and headers reach input validation and the
model, and with path parameters as generated (unknown, empty, odd names). The checks
are tests/fuzzing.py's: never a 5xx, every 4xx in the error shape naming its field,
answers as documented, schema-breaking input refused.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.specs.openapi.schemas import OpenApiSchema

from slipway.serving.gateway import inputs
from slipway.serving.gateway.openapi import DATATYPES, DOCUMENT
from tests import fuzzing
from tests.serving.conftest import Platform, RunningGateway

pytestmark = pytest.mark.slow

KNOWN = "fuzz"
SEEDED = {"endpoint": KNOWN, "model": KNOWN, "version": "1"}
# What the gateway answers (DESIGN.md section 4, and app.py's routing), one request each.
ROUTES = {
    ("GET", "/ping"),
    ("POST", "/endpoints/{endpoint}/invocations"),
    ("POST", "/endpoints/{endpoint}/explain"),
    ("GET", "/v2"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2/models/{model}"),
    ("GET", "/v2/models/{model}/ready"),
    ("POST", "/v2/models/{model}/infer"),
    ("GET", "/v2/models/{model}/versions/{version}"),
    ("GET", "/v2/models/{model}/versions/{version}/ready"),
    ("POST", "/v2/models/{model}/versions/{version}/infer"),
    ("POST", "/online-features"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
}


@pytest.fixture(scope="module")
def url(platform: Platform, gateway: RunningGateway) -> str:
    platform.deploy({"name": KNOWN, "variants": [{"name": "main", "model": "linear:1"}]})
    return gateway.url


def _load(url: str, parameters: dict[str, str] | None = None) -> OpenApiSchema:
    return fuzzing.configure(
        schemathesis.openapi.from_url(f"{url}/openapi.json"), parameters=parameters
    )


def test_the_document_is_openapi_and_lists_every_route(url: str) -> None:
    schema = _load(url)
    schema.validate()
    assert httpx.get(f"{url}/openapi.json").json() == DOCUMENT
    assert set(DATATYPES) == set(inputs._OIP_TYPES)  # the tensor types the gateway reads
    listed = {
        (method.upper(), path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert listed == ROUTES
    # Schemathesis leaves out the operation that served the document; it has all others.
    assert {(op.method.upper(), op.path) for op in _operations(schema)} == ROUTES - {
        ("GET", "/openapi.json")
    }
    for method, path in sorted(ROUTES):
        concrete = path.format(**SEEDED)
        response = httpx.request(method, f"{url}{concrete}", json={})
        body = response.json() if "json" in response.headers["content-type"] else {}
        assert "no route" not in str(body), (method, concrete, body)


def _operations(schema: OpenApiSchema) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_every_operation_on_the_deployed_endpoint(url: str) -> None:
    """Path parameters name the deployed endpoint: bodies reach validation and the model."""
    report = _fuzz(url, {"endpoint": KNOWN, "model": KNOWN})
    # Fuzzed bodies reached the model: predictions were made, not only refusals.
    assert "POST /endpoints/{endpoint}/invocations" in report.succeeded, report.statuses
    assert "POST /v2/models/{model}/infer" in report.succeeded, report.statuses


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_every_operation_on_any_name(url: str) -> None:
    """Path parameters as generated: unknown, empty, odd names and versions."""
    report = _fuzz(url, None)
    assert report.statuses.get(404, 0) > 0, report.statuses


def _fuzz(url: str, parameters: dict[str, str] | None) -> fuzzing.Report:
    report = fuzzing.run(_load(url, parameters))
    if report.findings or report.errors:
        pytest.fail(report.summary(), pytrace=False)
    # Schemathesis leaves out the operation that served the document.
    assert len(report.operations) == len(ROUTES) - 1, sorted(report.operations)
    return report
