"""Every kind of bad request gets a 4xx that names the problem; nothing reaches the model."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.serving.conftest import Platform, RunningGateway


@pytest.fixture(scope="module")
def url(platform: Platform, gateway: RunningGateway) -> Iterator[str]:
    platform.deploy(
        {
            "name": "strict",
            "variants": [{"name": "main", "model": platform.refs["linear"]}],
            "max_batch_rows": 5,
        }
    )
    yield f"{gateway.url}/endpoints/strict/invocations"


def _error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataframe_records": [{"x1": 1.0}]}, "x2"),
        ({"dataframe_records": [{"x1": 1.0, "x2": 2.0, "x3": 3.0}]}, "x3"),
        ({"dataframe_records": [{"x1": "one", "x2": 2.0}]}, "x1"),
        ({"dataframe_records": [{"x1": True, "x2": 2.0}]}, "x1"),
        ({"dataframe_records": [{"x1": None, "x2": 2.0}]}, "x1"),
        ({"dataframe_records": []}, "inputs"),
        ({"dataframe_split": {"columns": ["x1", "x2"], "data": [[1.0]]}}, "dataframe_split.data"),
        ({"instances": [[1.0, 2.0, 3.0]]}, "inputs"),
        ({"rows": [{"x1": 1.0, "x2": 2.0}]}, "rows"),
        ({"instances": [{"x1": 1.0, "x2": 2.0}], "inputs": {}}, "body"),
        ([1, 2, 3], "body"),
    ],
    ids=[
        "missing-column",
        "extra-column",
        "string-for-number",
        "bool-for-number",
        "null-required",
        "empty",
        "ragged-split",
        "too-many-values",
        "unknown-format",
        "two-formats",
        "not-an-object",
    ],
)
def test_bad_json_bodies(url: str, body: object, field: str) -> None:
    error = _error(httpx.post(url, json=body), 400)
    assert error["details"]["field"] == field  # type: ignore[index]


def test_nan_and_infinity(url: str) -> None:
    for text in ("nan", "inf", "-inf"):
        response = httpx.post(
            url, content=f"x1,x2\n{text},1\n", headers={"content-type": "text/csv"}
        )
        assert _error(response, 400)["details"]["field"] == "x1"  # type: ignore[index]
    # JSON has no NaN; a body using the non-standard literal is not JSON.
    response = httpx.post(
        url,
        content=b'{"dataframe_records": [{"x1": NaN, "x2": 1}]}',
        headers={"content-type": "application/json"},
    )
    assert _error(response, 400)["details"]["field"] == "body"  # type: ignore[index]


def test_bad_csv(url: str) -> None:
    response = httpx.post(url, content="x1,x2\n1,oops\n", headers={"content-type": "text/csv"})
    assert _error(response, 400)["details"]["field"] == "x2"  # type: ignore[index]
    response = httpx.post(url, content="x1,x2\n1\n", headers={"content-type": "text/csv"})
    assert _error(response, 400)["details"]["field"] == "body"  # type: ignore[index]


def test_oversized_batch_and_body(url: str, gateway: RunningGateway) -> None:
    rows = [{"x1": 1.0, "x2": 2.0}] * 6
    error = _error(httpx.post(url, json={"dataframe_records": rows}), 413)
    assert error["details"]["max_rows"] == 5  # type: ignore[index]
    limits = gateway.gateway.limits
    previous = limits.max_body_bytes
    limits.max_body_bytes = 2048
    try:
        big = {"dataframe_records": [{"x1": 1.0, "x2": 2.0}] * 100}
        _error(httpx.post(url, json=big), 413)
    finally:
        limits.max_body_bytes = previous


def test_content_type_depth_and_malformed_json(url: str) -> None:
    _error(httpx.post(url, content=b"x1=1", headers={"content-type": "text/plain"}), 415)
    _error(httpx.post(url, content=b"{}"), 415)  # no content type at all
    deep = b'{"inputs": ' + b"[" * 100 + b"]" * 100 + b"}"
    error = _error(httpx.post(url, content=deep, headers={"content-type": "application/json"}), 400)
    assert "nests" in str(error["message"])
    error = _error(
        httpx.post(url, content=b'{"inputs": [', headers={"content-type": "application/json"}), 400
    )
    assert error["details"]["field"] == "body"  # type: ignore[index]


def test_unknown_endpoint_and_route_and_method(gateway: RunningGateway) -> None:
    _error(httpx.post(f"{gateway.url}/endpoints/nope/invocations", json={}), 404)
    _error(httpx.get(f"{gateway.url}/nowhere"), 404)
    _error(httpx.get(f"{gateway.url}/endpoints/strict/invocations"), 405)
    _error(httpx.get(f"{gateway.url}/v2/models/nope"), 404)


def test_overload_answers_429_with_retry_after(url: str, gateway: RunningGateway) -> None:
    router = gateway.gateway.router
    router.in_flight += router.limits.max_in_flight
    try:
        response = httpx.post(url, json={"dataframe_records": [{"x1": 1.0, "x2": 2.0}]})
    finally:
        router.in_flight -= router.limits.max_in_flight
    error = _error(response, 429)
    assert error["code"] == "overloaded" and error["details"] == {"retry_after": 1}
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("tensor", "field"),
    [
        ({"name": "x1", "shape": [2], "datatype": "FP64", "data": [1.0]}, "inputs[0].data"),
        ({"name": "x1", "shape": [1], "datatype": "FLOAT", "data": [1.0]}, "inputs[0].datatype"),
        ({"name": "x1", "shape": "1", "datatype": "FP64", "data": [1.0]}, "inputs[0].shape"),
        ({"shape": [1], "datatype": "FP64", "data": [1.0]}, "inputs[0].name"),
    ],
    ids=["shape-mismatch", "bad-datatype", "bad-shape", "no-name"],
)
def test_bad_oip_tensors(
    gateway: RunningGateway, url: str, tensor: dict[str, object], field: str
) -> None:
    response = httpx.post(f"{gateway.url}/v2/models/strict/infer", json={"inputs": [tensor]})
    assert _error(response, 400)["details"]["field"] == field  # type: ignore[index]
    missing = {"inputs": [{"name": "x1", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
    response = httpx.post(f"{gateway.url}/v2/models/strict/infer", json=missing)
    assert _error(response, 400)["details"]["field"] == "x2"  # type: ignore[index]


# -- found by tests/serving/test_fuzz_gateway.py -------------------------------------------

ROW = [{"x1": 1.0, "x2": 2.0}]


@pytest.mark.parametrize("params", [0, False, "", [], {"temperature": 1}, "x"])
def test_inference_params_other_than_none_are_400(url: str, params: object) -> None:
    """``params`` was checked for truthiness: 0, false, "" and [] got through."""
    response = httpx.post(url, json={"dataframe_records": ROW, "params": params})
    assert _error(response, 400)["details"]["field"] == "params"  # type: ignore[index]


@pytest.mark.parametrize("params", [None, {}])
def test_no_params_is_null_or_empty(url: str, params: object) -> None:
    response = httpx.post(url, json={"dataframe_records": ROW, "params": params})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("where", "body", "field"),
    [
        ("invocations", {"dataframe_records": ROW, "": 1}, "body"),
        ("invocations", {"dataframe_records": [ROW[0] | {"": 3.0}]}, "inputs"),
        ("online-features", {"feature_refs": ["g:f"], "entity_rows": [{}], "": 1}, "body"),
    ],
    ids=["unknown-key", "unknown-column", "online-features-unknown-key"],
)
def test_names_that_are_empty_are_named_by_their_container(
    gateway: RunningGateway, url: str, where: str, body: object, field: str
) -> None:
    target = url if where == "invocations" else f"{gateway.url}/online-features"
    assert _error(httpx.post(target, json=body), 400)["details"]["field"] == field  # type: ignore[index]


def test_oip_header_length_present_but_empty_and_a_non_string_id(
    gateway: RunningGateway, url: str
) -> None:
    infer = f"{gateway.url}/v2/models/strict/infer"
    tensors = [
        {"name": "x1", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "x2", "shape": [1], "datatype": "FP64", "data": [2.0]},
    ]
    empty = httpx.post(
        infer, json={"inputs": tensors}, headers={"inference-header-content-length": ""}
    )
    assert _error(empty, 400)["details"]["field"] == "inference-header-content-length"  # type: ignore[index]
    numbered = httpx.post(infer, json={"id": 5, "inputs": tensors})
    assert _error(numbered, 400)["details"]["field"] == "id"  # type: ignore[index]
    named = httpx.post(infer, json={"id": "req-1", "inputs": tensors})
    assert named.status_code == 200 and named.json()["id"] == "req-1"


def test_only_v2_itself_is_the_oip_root(gateway: RunningGateway) -> None:
    assert httpx.get(f"{gateway.url}/v2").json()["name"] == "slipway"
    _error(httpx.get(f"{gateway.url}/v2x"), 404)  # was the server metadata
