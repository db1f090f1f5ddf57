"""Alert rules as plain data: which events, which channels, how often.

A rule matches an event when the event's type matches one of ``event_types`` (an exact
type, or one with ``*`` words: ``endpoint.*``, ``*.job_failed``, ``*``) and every filter
holds (``path: value`` equality, paths as in :mod:`slipway.events.paths`). Matching
events are grouped by a de-duplication key built from the ``dedup_by`` paths (default:
the resource, so each endpoint or monitor alerts on its own); within ``cooldown_seconds``
after an alert of a key, more events of that key are counted, not sent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from slipway.core.events import Event
from slipway.core.names import validate_name
from slipway.events.paths import PATH, lookup

Severity = Literal["info", "warning", "error", "critical"]
# Dotted words where any word may be ``*`` (one word; a last ``*`` also takes the rest),
# or ``*`` alone for every event: ``monitor.violations``, ``endpoint.*``, ``*.job_failed``.
_WORD = r"(?:[a-z][a-z0-9_]*|\*)"
_TYPE_PATTERN = re.compile(rf"\*|{_WORD}(?:\.{_WORD})+")
_KEY_PATH = re.compile(r"type|resource|payload(\.[^.\s]+)+")
MAX_KEY_LENGTH = 255
MAX_COOLDOWN_SECONDS = 30 * 24 * 3600.0


class RuleSpec(BaseModel):
    """An alert rule as users write it (REST body, CLI options, YAML). Strict: ``0`` is
    not ``false`` nor ``"60"`` a number, as the OpenAPI document says."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    event_types: list[str] = Field(
        min_length=1, max_length=50, description="e.g. monitor.violations, endpoint.*, *"
    )
    channels: list[str] = Field(min_length=1, max_length=20, description="channel names")
    filters: dict[str, Any] = Field(
        default_factory=dict, description="path: value equality, e.g. resource: endpoint/x"
    )
    cooldown_seconds: float = Field(
        default=300.0,
        ge=0,
        le=MAX_COOLDOWN_SECONDS,
        description="after an alert, later events of the same key are counted, not sent",
    )
    dedup_by: list[str] = Field(
        default_factory=lambda: ["resource"],
        max_length=10,
        description="paths whose values make the key (type, resource, payload.a.b);"
        " empty: one key for the whole rule",
    )
    severity: Severity = "warning"
    description: str = Field(default="", max_length=1000)
    enabled: StrictBool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value, field="name")

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not _TYPE_PATTERN.fullmatch(pattern):
                raise ValueError(f"{pattern!r} is not an event type: dotted words, any of them *")
        return list(dict.fromkeys(value))

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for name in value:
            validate_name(name, field="channels")
        return list(dict.fromkeys(value))

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            if not PATH.fullmatch(path):
                raise ValueError(f"{path!r} is not type, resource, id, time or payload.<path>")
        return value

    @field_validator("dedup_by", mode="before")
    @classmethod
    def _one_path(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("dedup_by")
    @classmethod
    def _key_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not _KEY_PATH.fullmatch(path):
                raise ValueError(f"{path!r} is not type, resource or payload.<path>")
        return value


def type_matches(patterns: Sequence[str], event_type: str) -> bool:
    """True when ``event_type`` matches one of ``patterns`` (see ``_TYPE_PATTERN``)."""
    words = event_type.split(".")
    for pattern in patterns:
        if pattern == "*":
            return True
        wanted = pattern.split(".")
        if wanted[-1] == "*":  # a family: what comes before, then one word or more
            found = len(words) >= len(wanted) and _same(wanted[:-1], words)
        else:
            found = len(words) == len(wanted) and _same(wanted, words)
        if found:
            return True
    return False


def _same(wanted: Sequence[str], words: Sequence[str]) -> bool:
    return all(w in ("*", word) for w, word in zip(wanted, words, strict=False))


def dedup_key(paths: Sequence[str], event: Event) -> str:
    """The event's key under ``paths``: a lone string value as it is (``endpoint/x``),
    anything else as compact JSON, hashed when too long to store."""
    values = [lookup(event, path) for path in paths]
    if len(values) == 1 and isinstance(values[0], str):
        key = values[0]
    else:
        key = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    if len(key) > MAX_KEY_LENGTH:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key
