"""The model registry's deployment policy (which environments are sandboxes, who may
approve, which model formats load) and the check of a list of model format patterns
that the workspaces' own lists share.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from slipway.core.errors import InvalidInput
from slipway.core.settings.base import Area, comma_list


class RegistrySettings(Area):
    """The model registry's deployment policy."""

    sandbox_environments: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["staging", "development"],
        description="the declared sandboxes: endpoint and batch environments that may run"
        " model versions not yet Approved; every other environment deploys Approved"
        " versions only (fail closed: a new or misspelt environment needs approval)."
        " Comma-separated in the environment",
    )
    allow_self_approval: bool = Field(
        default=False,
        description="let a token approve a version it registered itself (segregation of"
        " duties off)",
    )
    allowed_model_formats: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="the model formats registered and loaded, as flavor/serialization"
        ' patterns (e.g. "*/native", "sklearn/skops"; registry/formats.py); "*": all.'
        " Comma-separated in the environment",
    )
    promotion_status: Literal["PendingManualApproval", "Approved"] = Field(
        default="PendingManualApproval",
        description="the status a version promoted here from another Slipway arrives in"
        " (slipway models promote): Approved keeps the approval of a version Approved at"
        " its source, when the caller may approve here; anything else arrives"
        " PendingManualApproval",
    )
    max_import_unpacked_bytes: int = Field(
        default=4 * 1024**3,
        ge=1024,
        description="bytes a promoted version's archive may unpack to (the archive itself"
        " is bounded by server.max_body_bytes)",
    )

    @field_validator("allowed_model_formats", "sandbox_environments", mode="before")
    @classmethod
    def _formats_from_env(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("sandbox_environments")
    @classmethod
    def _environment_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(f"{name!r} is not an environment name (as endpoints name one)")
        return value

    @field_validator("allowed_model_formats")
    @classmethod
    def _formats_named(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not MODEL_FORMAT.fullmatch(pattern):
                raise ValueError(
                    f"{pattern!r} is not a flavor/serialization pattern (e.g. */native)"
                )
        return value


# A model format pattern: ``flavor/serialization`` with shell wildcards, or ``*``
# (slipway.registry.formats).
MODEL_FORMAT = re.compile(r"[a-z0-9_*?\[\]-]+/[a-z0-9_*?\[\]-]+|\*")


def check_model_formats(value: object, *, field: str) -> list[str]:
    """``value`` as a list of model format patterns, else ``InvalidInput`` naming ``field``."""
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise InvalidInput(f"{field} must be a non-empty list of patterns", field=field)
    for pattern in value:
        if not isinstance(pattern, str) or not MODEL_FORMAT.fullmatch(pattern):
            raise InvalidInput(
                f"{pattern!r} is not a flavor/serialization pattern (e.g. */native)", field=field
            )
    return list(dict.fromkeys(value))
