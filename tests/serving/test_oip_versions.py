"""Open Inference Protocol versions and tensor ranges, through the real gateway.

A ``/versions/{v}`` URL is answered by model version ``v`` of the endpoint (never by
another version), or 404 naming the version; JSON tensor values out of their declared
datatype's range are a 400 naming the input, never a silent wrap.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.serving.conftest import Platform, RunningGateway

ENDPOINT = "oip-versions"


@pytest.fixture(scope="module")
def versions(platform: Platform, gateway: RunningGateway) -> dict[str, str]:
    """An endpoint whose two variants serve two versions of one model, half and half;
    returns variant name -> model version."""
    one, two = platform.refs["linear"], platform.refs["linear-v2"]
    assert one.split(":")[0] == two.split(":")[0]
    platform.deploy(
        {
            "name": ENDPOINT,
            "variants": [
                {"name": "first", "model": one, "weight": 1},
                {"name": "second", "model": two, "weight": 1},
            ],
        }
    )
    return {"first": one.split(":")[1], "second": two.split(":")[1]}


def _tensors(datatype: str = "FP64", x1: list[Any] | None = None) -> dict[str, Any]:
    x1 = [0.5, 2.0] if x1 is None else x1
    return {
        "inputs": [
            {"name": "x1", "shape": [len(x1)], "datatype": datatype, "data": x1},
            {"name": "x2", "shape": [len(x1)], "datatype": "FP64", "data": [-1.0] * len(x1)},
        ]
    }


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_a_served_version_is_answered_by_that_version(
    gateway: RunningGateway, versions: dict[str, str]
) -> None:
    name = f"{gateway.url}/v2/models/{ENDPOINT}"
    for variant, version in versions.items():
        # Both variants take half the traffic: every one of these must be the pinned one.
        for _ in range(12):
            response = httpx.post(f"{name}/versions/{version}/infer", json=_tensors())
            assert response.status_code == 200, response.text
            assert response.json()["model_version"] == version
            assert response.headers["x-slipway-variant"] == variant
            assert response.headers["x-slipway-model-version"].endswith(f":{version}")
    answers = {
        version: httpx.post(f"{name}/versions/{version}/infer", json=_tensors()).json()
        for version in versions.values()
    }
    first, second = (answers[v]["outputs"][0]["data"] for v in versions.values())
    assert first != second  # two different models answered


def test_an_unknown_version_is_a_404_naming_it(
    gateway: RunningGateway, versions: dict[str, str]
) -> None:
    name = f"{gateway.url}/v2/models/{ENDPOINT}"
    for version in ("999", "0", "abc", "1" * 40, "-1"):
        infer = _error(httpx.post(f"{name}/versions/{version}/infer", json=_tensors()), 404)
        assert infer["details"]["field"] == "version"
        assert infer["details"]["version"] == version
        assert version in infer["message"]
        metadata = _error(httpx.get(f"{name}/versions/{version}"), 404)
        assert metadata["details"]["version"] == version
        ready = _error(httpx.get(f"{name}/versions/{version}/ready"), 404)
        assert ready["details"]["version"] == version
    served = _error(httpx.get(f"{name}/versions/999"), 404)["details"]["versions"]
    assert sorted(served) == sorted(int(v) for v in versions.values())


def test_metadata_and_readiness_of_a_version(
    gateway: RunningGateway, versions: dict[str, str]
) -> None:
    name = f"{gateway.url}/v2/models/{ENDPOINT}"
    for version in versions.values():
        metadata = httpx.get(f"{name}/versions/{version}")
        assert metadata.status_code == 200, metadata.text
        assert metadata.json()["versions"] == [version]
        assert [i["name"] for i in metadata.json()["inputs"]] == ["x1", "x2"]
        ready = httpx.get(f"{name}/versions/{version}/ready")
        assert ready.status_code == 200 and ready.json() == {"name": ENDPOINT, "ready": True}
    everything = httpx.get(name).json()
    assert sorted(everything["versions"]) == sorted(versions.values())


def test_requests_without_a_version_are_unchanged(
    gateway: RunningGateway, versions: dict[str, str]
) -> None:
    name = f"{gateway.url}/v2/models/{ENDPOINT}"
    seen = set()
    for _ in range(40):
        response = httpx.post(f"{name}/infer", json=_tensors())
        assert response.status_code == 200, response.text
        seen.add(response.json()["model_version"])
    assert seen <= set(versions.values()) and seen
    assert httpx.get(f"{name}/ready").json() == {"name": ENDPOINT, "ready": True}


@pytest.mark.parametrize(
    ("datatype", "values", "words"),
    [
        ("INT8", [300, 1], "out of its range [-128, 127]"),
        ("INT8", [-129, 1], "out of its range"),
        ("UINT8", [-1, 1], "out of its range [0, 255]"),
        ("INT16", [40000, 1], "out of its range"),
        ("INT32", [2**31, 1], "out of its range"),
        ("UINT64", [2**64, 1], "out of its range"),  # JSON reads it as a float: still refused
        ("INT32", [1.5, 1], "not an integer"),
        ("FP32", [1e39, 1.0], "out of its range"),
        ("FP16", [70000.0, 1.0], "out of its range"),
        ("FP64", ["one", 1.0], "expected numbers, got str"),
        ("FP64", [True, 1.0], "expected numbers, got bool"),
        ("INT64", [2, {"a": 1}], "expected integers, got dict"),
        ("BOOL", [1, 0], "expected true or false"),
        ("BYTES", [1, 2], "expected strings"),
    ],
    ids=lambda v: str(v)[:20],
)
def test_out_of_range_tensor_values_are_a_400_naming_the_input(
    gateway: RunningGateway, versions: dict[str, str], datatype: str, values: list[Any], words: str
) -> None:
    version = versions["first"]
    for path in ("infer", f"versions/{version}/infer"):
        response = httpx.post(
            f"{gateway.url}/v2/models/{ENDPOINT}/{path}", json=_tensors(datatype, values)
        )
        error = _error(response, 400)
        assert error["details"]["field"] == "inputs[0].data", error
        assert "x1" in error["message"] and words in error["message"], error["message"]
    # The second input is the one named when it is the bad one.
    body = _tensors()
    body["inputs"][1] |= {"datatype": datatype, "data": values}
    response = httpx.post(f"{gateway.url}/v2/models/{ENDPOINT}/infer", json=body)
    assert _error(response, 400)["details"]["field"] == "inputs[1].data"


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("INT8", [127, -128]),
        ("UINT8", [0, 255]),
        ("INT64", [2**63 - 1, -(2**63)]),
        ("INT32", [3.0, -4.0]),  # integral floats are integers
        ("FP32", [3.4e38, -3.4e38]),
        ("FP16", [65504.0, 1]),
        ("FP64", [1e300, 2]),
    ],
    ids=lambda v: str(v)[:20],
)
def test_values_within_their_range_are_served(
    gateway: RunningGateway, versions: dict[str, str], datatype: str, values: list[Any]
) -> None:
    response = httpx.post(
        f"{gateway.url}/v2/models/{ENDPOINT}/infer", json=_tensors(datatype, values)
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["outputs"][0]["data"]) == 2


def test_binary_tensors_are_unchanged(gateway: RunningGateway, versions: dict[str, str]) -> None:
    """tritonclient's binary extension: values arrive typed, and are served as before."""
    import numpy as np
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=gateway.url.removeprefix("http://"))
    inputs = []
    for column, values in (("x1", [5, -7]), ("x2", [1.0, 2.0])):
        tensor = triton.InferInput(column, [2], "INT8" if column == "x1" else "FP32")
        tensor.set_data_from_numpy(
            np.array(values, dtype=np.int8 if column == "x1" else np.float32), binary_data=True
        )
        inputs.append(tensor)
    version = versions["second"]
    result = client.infer(ENDPOINT, inputs, model_version=version)
    assert result.get_response()["model_version"] == version
    assert result.as_numpy("predict").shape == (2,)
