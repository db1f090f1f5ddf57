"""The registry's value types: approval statuses, what a version returns, model
references. The resources built from them are in :mod:`slipway.registry.resources`."""

from __future__ import annotations

import re
from enum import StrEnum

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
