"""The Open Inference Protocol (V2, KServe) shapes of what the gateway serves: response
tensors of a served request and an endpoint's model metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from slipway.registry.models import Output
from slipway.serving.gateway.inputs import jsonable

if TYPE_CHECKING:
    from slipway.registry.predict import LoadedModel
    from slipway.serving.gateway.app import Served
    from slipway.serving.gateway.runtime import EndpointRuntime


def oip_outputs(served: Served) -> list[dict[str, Any]]:
    model = served.model
    if model.output is not Output.LABEL and served.probabilities is not None:
        outputs = [] if served.labels is None else [_tensor("label", served.labels)]
        probabilities = _tensor("probabilities", jsonable(served.probabilities))
        probabilities["parameters"] = {"classes": orjson.dumps(model.classes).decode()}
        return [*outputs, probabilities]
    predictions = served.predictions
    if predictions and isinstance(predictions[0], dict):
        names = list(predictions[0])
        return [_tensor(name, [row.get(name) for row in predictions]) for name in names]
    return [_tensor("predict", predictions)]


def _tensor(name: str, values: list[Any]) -> dict[str, Any]:
    first = next((v for v in values if v is not None), None)
    shape = [len(values)]
    if isinstance(first, list):
        shape.append(len(first))
        values = [x for row in values for x in row]
        first = next((v for v in values if v is not None), None)
    if isinstance(first, bool):
        datatype = "BOOL"
    elif isinstance(first, int):
        datatype = "INT64"
    elif isinstance(first, float) or first is None:
        datatype = "FP64"
    else:
        datatype = "BYTES"
        values = [str(v) for v in values]
    return {"name": name, "datatype": datatype, "shape": shape, "data": values}


def metadata(endpoint: EndpointRuntime) -> dict[str, Any]:
    config = endpoint.active or endpoint.target
    versions: list[str] = []
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    if config is not None:
        versions = sorted({str(v.model_version) for v in config.variants})
        model = next((v.model for v in config.variants if v.model is not None), None)
        if model is not None and model.schema:
            types = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32",
                     "boolean": "BOOL"}  # fmt: skip
            inputs = [
                {"name": c.name, "datatype": types.get(c.type, "BYTES"), "shape": [-1]}
                for c in model.schema
            ]
        if model is not None and model.output is not Output.LABEL:
            outputs = _score_outputs(model)
    return {
        "name": endpoint.name,
        "versions": versions,
        "platform": "slipway",
        "inputs": inputs,
        "outputs": outputs,
    }


def _score_outputs(model: LoadedModel) -> list[dict[str, Any]]:
    """The OIP outputs of a version returning probabilities (and labels)."""
    classes = model.classes or []
    outputs = []
    if model.output is Output.BOTH:
        label = _tensor("label", list(classes))
        outputs.append({"name": "label", "datatype": label["datatype"], "shape": [-1]})
    outputs.append(
        {
            "name": "probabilities",
            "datatype": "FP64",
            "shape": [-1, len(classes)],
            "parameters": {"classes": orjson.dumps(classes).decode()},
        }
    )
    return outputs
