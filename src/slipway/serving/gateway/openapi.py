"""The gateway's OpenAPI 3 document, served at ``GET /openapi.json``.

The gateway is a bare ASGI app (no framework to generate a document from), so its
contract is written here, once, next to the routing it describes: SageMaker-style
invocations with MLflow's JSON formats and CSV, the Open Inference Protocol V2 routes,
the data-plane feature server, ``/ping`` and ``/metrics``, and every error they send
(``{"error": {"code", "message", "details"}}``, 400s naming ``details.field``).
Clients generate from it, and the fuzz tests (tests/serving/test_fuzz_gateway.py) hold
the gateway to it.
"""

from __future__ import annotations

from typing import Any

import orjson

from slipway import __version__

_JSON = "application/json"
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    "400": "Invalid input; details.field names the bad field",
    "404": "Unknown endpoint, model, variant or route",
    "405": "The route does not take this method",
    "413": "The body, or its number of rows, is over the limit",
    "415": "The body's content type is not one this route reads",
    "500": "The model raised on input that passed validation (code model_error)",
    "503": "Overloaded or not ready yet; retry after Retry-After seconds",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


def _errors(*statuses: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": _ERRORS[status],
            "content": {_JSON: {"schema": _ERROR_REF}},
        }
        if status == "503":
            response["headers"] = _RETRY_AFTER
        responses[status] = response
    return responses


def _ok(schema: dict[str, Any], description: str = "OK", **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}, **extra}


def _name(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def _header(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


DATATYPES = [
    *(f"{kind}{bits}" for kind in ("UINT", "INT") for bits in (8, 16, 32, 64)),
    *("FP16", "FP32", "FP64", "BOOL", "BYTES"),
]
# The Open Inference Protocol's tensor types (inputs.py reads each of them).
DATATYPES = [
    *(f"{kind}{bits}" for kind in ("UINT", "INT") for bits in (8, 16, 32, 64)),
    *("FP16", "FP32", "FP64", "BOOL", "BYTES"),
]
_ROWS = {"type": "array", "items": {}, "description": "rows: lists of values, or scalars"}
_ONE_OF_FORMATS = [
    {
        "type": "object",
        "title": title,
        "required": [key],
        "properties": {
            key: schema,
            "params": {"type": "object", "maxProperties": 0, "nullable": True},
        },
        "additionalProperties": False,
    }
    for title, key, schema in (
        (
            "dataframe_split",
            "dataframe_split",
            {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array", "items": {}}},
                },
            },
        ),
        (
            "dataframe_records",
            "dataframe_records",
            {"type": "array", "items": {"type": "object"}},
        ),
        ("instances", "instances", _ROWS),
        (
            "inputs",
            "inputs",
            {
                "oneOf": [
                    _ROWS,
                    {"type": "object", "description": "column name -> values"},
                ]
            },
        ),
    )
]

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object", "properties": {"field": {"type": "string"}}},
                },
            }
        },
    },
    "MlflowRequest": {
        "description": "one of MLflow's scoring formats; columns match the model's signature",
        "oneOf": _ONE_OF_FORMATS,
    },
    "Predictions": {
        "type": "object",
        "required": ["predictions"],
        "properties": {
            "predictions": {
                "type": "array",
                "items": {},
                "description": "per row: the label (a version returning labels); one"
                " probability per class (probabilities); {label, probabilities} (both)",
            },
            "classes": {
                "type": "array",
                "items": {},
                "description": "the class labels, in the order of the probabilities"
                " (versions returning probabilities)",
            },
        },
    },
    "Explanations": {
        "type": "object",
        "required": ["output_space", "features", "explanations"],
        "properties": {
            "output_space": {
                "type": "string",
                "enum": ["raw", "probability", "prediction"],
                "description": "what base_value + the attributions add up to: the raw"
                " score (log-odds of a binary booster), a class probability, or a pyfunc's"
                " prediction",
            },
            "features": {"type": "array", "items": {"type": "string"}},
            "explanations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["prediction", "base_value", "attributions"],
                    "properties": {
                        "prediction": {"description": "what invocations would answer"},
                        "base_value": {"type": "number", "nullable": True},
                        "attributions": {
                            "type": "object",
                            "additionalProperties": {"type": "number", "nullable": True},
                            "description": "feature -> SHAP value",
                        },
                        "explained_class": {
                            "description": "classifiers: the class explained (binary: the"
                            " positive class; multiclass: the row's highest-scoring class)"
                        },
                    },
                },
            },
            "classes": {"type": "array", "items": {}},
        },
    },
    "Tensor": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": DATATYPES},
            "data": {"description": "values, flat or nested by shape"},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
            },
        },
    },
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/components/schemas/Tensor"},
            },
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    },
    "InferResponse": {
        "type": "object",
        "required": ["model_name", "model_version", "id", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "datatype", "shape", "data"],
                    "properties": {
                        "name": {
                            "type": "string",
                            "description": "predict (labels), or label and probabilities"
                            " [rows, classes] for versions returning probabilities",
                        },
                        "datatype": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer"}},
                        "data": {"type": "array"},
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "classes": {
                                    "type": "string",
                                    "description": "probabilities: the classes (JSON text)",
                                }
                            },
                        },
                    },
                },
            },
        },
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"type": "object"}},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    },
    "OnlineFeaturesRequest": {
        "type": "object",
        "required": ["feature_refs", "entity_rows"],
        "properties": {
            "feature_refs": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "description": "group:feature"},
            },
            "entity_rows": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10_000,
                "items": {"type": "object"},
            },
            "full_feature_names": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "OnlineFeatures": {
        "type": "object",
        "required": ["vectors"],
        "properties": {
            "vectors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["values", "missing", "stale"],
                    "properties": {
                        "values": {"type": "object"},
                        "missing": {"type": "array", "items": {"type": "string"}},
                        "stale": {"type": "array", "items": {"type": "string"}},
                    },
                },
            }
        },
    },
}

_SERVED_HEADERS = {
    name: {"description": description, "schema": {"type": "string"}}
    for name, description in (
        ("X-Slipway-Variant", "the production variant that answered"),
        ("X-Slipway-Inference-Id", "the id captured with the request"),
        ("X-Slipway-Model-Version", "name:version of the model"),
        ("X-Slipway-Config-Version", "the endpoint configuration version"),
    )
}
_ROUTING_HEADERS = [
    _header("X-Slipway-Target-Variant", "send to this production variant"),
    _header("X-Amzn-SageMaker-Target-Variant", "SageMaker's name for the same"),
    _header("X-Slipway-Target-Model", "multi-model endpoints: name:version or name@alias"),
    _header(
        "X-Slipway-Inference-Id",
        "kept as the inference id when it is 1-64 of A-Z a-z 0-9 _ . -; otherwise"
        " (or when absent) the gateway makes one; either way it is X-Slipway-Inference-Id"
        " in the response",
    ),
]
_MODEL = _name("model", "the endpoint's name")
_VERSION = _name("version", "a model version a live variant of the endpoint serves, else 404")


def _metadata_operation() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Open Inference Protocol: model metadata",
            "responses": {
                "200": _ok({"$ref": "#/components/schemas/ModelMetadata"}),
                **_errors("404", "405"),
            },
        }
    }


def _ready_operation() -> dict[str, Any]:
    ready = {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    }
    return {
        "get": {
            "summary": "Open Inference Protocol: model readiness",
            "responses": {
                "200": _ok(ready, "ready"),
                "503": _ok(ready, "not ready yet"),
                **_errors("404", "405"),
            },
        }
    }


def _infer_operation() -> dict[str, Any]:
    return {
        "post": {
            "summary": "Open Inference Protocol: predict",
            "description": "With Inference-Header-Content-Length, the JSON header is"
            " followed by binary tensor data (the binary tensor extension).",
            "parameters": [
                *_ROUTING_HEADERS,
                _header(
                    "Inference-Header-Content-Length",
                    "length of the JSON header before the binary data",
                    pattern="^[0-9]{1,12}$",
                ),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    _JSON: {
                        "schema": {"$ref": "#/components/schemas/InferRequest"},
                        "example": {
                            "inputs": [
                                {"name": "x1", "shape": [1], "datatype": "FP64", "data": [1.0]},
                                {"name": "x2", "shape": [1], "datatype": "FP64", "data": [2.0]},
                            ]
                        },
                    }
                },
            },
            "responses": {
                "200": _ok({"$ref": "#/components/schemas/InferResponse"}, headers=_SERVED_HEADERS),
                **_errors("400", "404", "405", "413", "415", "500", "503"),
            },
        }
    }


def _health(key: str) -> dict[str, Any]:
    body = {"type": "object", "required": [key], "properties": {key: {"type": "boolean"}}}
    responses: dict[str, Any] = {"200": _ok(body), **_errors("405")}
    if key == "ready":
        responses["503"] = _ok(body, "starting")
    return {"get": {"summary": f"Open Inference Protocol: server {key}", "responses": responses}}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Slipway gateway",
        "version": __version__,
        "description": "The data plane: predictions from every endpoint, in SageMaker's,"
        " MLflow's and the Open Inference Protocol's formats. These paths serve the default"
        " workspace; every one but /ping, /v2, /v2/health/* and /openapi.json serves"
        " workspace WS under the prefix /workspaces/WS (for example"
        " /workspaces/fraud/endpoints/churn/invocations).",
    },
    "paths": {
        "/ping": {
            "get": {
                "summary": "Health (SageMaker container contract)",
                "responses": {
                    "200": _ok({"type": "object", "properties": {"status": {"type": "string"}}})
                },
            }
        },
        "/endpoints/{endpoint}/invocations": {
            "post": {
                "summary": "Predict (SageMaker InvokeEndpoint)",
                "parameters": [_name("endpoint", "the endpoint's name"), *_ROUTING_HEADERS],
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {
                            "schema": {"$ref": "#/components/schemas/MlflowRequest"},
                            "example": {"dataframe_records": [{"x1": 1.0, "x2": 2.0}]},
                        },
                        "text/csv": {
                            "schema": {"type": "string", "description": "a header row, then rows"},
                            "example": "x1,x2\n1.0,2.0\n",
                        },
                    },
                },
                "responses": {
                    "200": _ok(
                        {"$ref": "#/components/schemas/Predictions"}, headers=_SERVED_HEADERS
                    ),
                    **_errors("400", "404", "405", "413", "415", "500", "503"),
                },
            }
        },
        "/endpoints/{endpoint}/explain": {
            "post": {
                "summary": "Explain: per-row feature attributions (SHAP values)",
                "description": "The same request as invocations. A model with no explainer"
                " (no tree model, and no registered input example for Kernel SHAP) is"
                " answered 400 naming model.",
                "parameters": [_name("endpoint", "the endpoint's name"), *_ROUTING_HEADERS],
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {
                            "schema": {"$ref": "#/components/schemas/MlflowRequest"},
                            "example": {"dataframe_records": [{"x1": 1.0, "x2": 2.0}]},
                        },
                        "text/csv": {
                            "schema": {"type": "string", "description": "a header row, then rows"},
                            "example": "x1,x2\n1.0,2.0\n",
                        },
                    },
                },
                "responses": {
                    "200": _ok(
                        {"$ref": "#/components/schemas/Explanations"},
                        headers={
                            k: v
                            for k, v in _SERVED_HEADERS.items()
                            if k != "X-Slipway-Inference-Id"
                        },
                    ),
                    **_errors("400", "404", "405", "413", "415", "500", "503"),
                },
            }
        },
        "/v2": {
            "get": {
                "summary": "Open Inference Protocol: server metadata",
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["name", "version", "extensions"],
                            "properties": {
                                "name": {"type": "string"},
                                "version": {"type": "string"},
                                "extensions": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    ),
                    **_errors("405"),
                },
            }
        },
        "/v2/health/live": _health("live"),
        "/v2/health/ready": _health("ready"),
        "/v2/models/{model}": {"parameters": [_MODEL], **_metadata_operation()},
        "/v2/models/{model}/ready": {"parameters": [_MODEL], **_ready_operation()},
        "/v2/models/{model}/infer": {"parameters": [_MODEL], **_infer_operation()},
        "/v2/models/{model}/versions/{version}": {
            "parameters": [_MODEL, _VERSION],
            **_metadata_operation(),
        },
        "/v2/models/{model}/versions/{version}/ready": {
            "parameters": [_MODEL, _VERSION],
            **_ready_operation(),
        },
        "/v2/models/{model}/versions/{version}/infer": {
            "parameters": [_MODEL, _VERSION],
            **_infer_operation(),
        },
        "/online-features": {
            "post": {
                "summary": "Feature vectors for entity rows, from the online store",
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {"schema": {"$ref": "#/components/schemas/OnlineFeaturesRequest"}}
                    },
                },
                "responses": {
                    "200": _ok({"$ref": "#/components/schemas/OnlineFeatures"}),
                    **_errors("400", "404", "405", "413"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics per endpoint and variant",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _ok({"type": "object"})},
            }
        },
    },
    "components": {"schemas": _SCHEMAS},
}

DOCUMENT_JSON: bytes = orjson.dumps(DOCUMENT)
