"""Training sets through the control plane: the entity rows sent up as an Arrow IPC
stream, the rows read back from the answer's stream and the definition from its header
(:data:`~slipway.features.offline.training.DEFINITION_HEADER`). The feature store's and
the feature views' clients both ask for one this way, so both give back the
:class:`~slipway.features.offline.training.TrainingSet` the embedded call would."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from slipway.client.transport import Transport
from slipway.core.arrowipc import ARROW_STREAM, IpcChunks, from_ipc
from slipway.features.offline.training import (
    DEFINITION_HEADER,
    TrainingSet,
    TrainingSetDefinition,
)


def fetch_training_set(
    transport: Transport, path: str, entities: pa.Table, params: Mapping[str, Any]
) -> TrainingSet:
    """POST ``entities`` to ``path`` (a training-set route) with ``params``; the training
    set it answers."""
    response = transport.request(
        "POST",
        path,
        repeatable=True,  # a read: nothing is written, sending it again is harmless
        content=IpcChunks(entities),
        params=params,
        headers={"Content-Type": ARROW_STREAM},
    )
    definition = json.loads(response.headers[DEFINITION_HEADER])
    return TrainingSet(
        data=from_ipc(response.content, field="response"),
        definition=TrainingSetDefinition(**definition),
    )


__all__ = ["fetch_training_set"]
