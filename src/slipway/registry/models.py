"""The registry's value types."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from slipway.core.errors import Conflict, InvalidInput
from slipway.core.names import validate_name


class ApprovalStatus(StrEnum):
    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"

    @classmethod
    def parse(cls, value: str) -> ApprovalStatus:
        for status in cls:
            if value.lower() in (status.value.lower(), status.name.lower()):
                return status
        allowed = ", ".join(s.value for s in cls)
        raise InvalidInput(f"approval status must be one of {allowed}", field="status")


class Output(StrEnum):
    """What a model version returns (see :mod:`slipway.registry.outputs`)."""

    LABEL = "label"
    PROBABILITIES = "probabilities"
    BOTH = "both"

    @classmethod
    def parse(cls, value: object) -> Output:
        if isinstance(value, str):
            for output in cls:
                if value.strip().lower() == output.value:
                    return output
        allowed = ", ".join(o.value for o in cls)
        raise InvalidInput(f"output must be one of {allowed}, not {value!r}", field="output")


class ModelTampered(Conflict):
    """A model's files no longer match the digest recorded when it was registered."""

    code = "model_tampered"


@dataclass(frozen=True)
class Transition:
    from_status: str | None
    to_status: str
    actor: str
    comment: str
    time: datetime


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run_id: str | None
    source: str
    artifact_key: str
    approval_status: ApprovalStatus
    digest: str
    signature: dict[str, Any]
    lineage: dict[str, Any]
    description: str
    registered_by: str
    registered_at: datetime
    aliases: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    output: Output = Output.LABEL
    classes: list[Any] | None = None  # in probability order, when it serves probabilities
    owner: str = ""  # who answers for it, as given at registration (model card)
    intended_use: str = ""  # what it is for and not for, as given at registration

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_REF = re.compile(r"(?P<name>[^:@]+)(?:(?::(?P<version>\d+))|(?:@(?P<alias>[^:@]+)))?")


def parse_model_ref(ref: str, *, field: str = "model") -> tuple[str, int | str | None]:
    """``name:version`` → (name, version); ``name@alias`` → (name, alias); ``name`` → None."""
    match = _REF.fullmatch(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        raise InvalidInput(
            f"{field} {ref!r} is not a model reference: use name:version or name@alias",
            field=field,
        )
    name = validate_name(match["name"], field=field)
    if match["version"]:
        return name, int(match["version"])
    if match["alias"]:
        return name, validate_name(match["alias"], field=field)
    return name, None
