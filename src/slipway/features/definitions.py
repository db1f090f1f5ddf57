"""Feature-group definitions: plain, serializable data (also the YAML of ``slipway apply``).

A group has a validated name, one or more record-identifier columns, an event-time column,
typed features, online/offline flags, a TTL and descriptive metadata. Definitions evolve
only compatibly: new nullable features may be added; a feature's type never changes
(create a new group instead), because every stored record and trained model depends on it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from slipway.core.errors import Conflict, InvalidInput
from slipway.core.names import validate_name
from slipway.core.specs import parse_spec

_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Columns the offline store adds to every row; users cannot define them.
RESERVED_COLUMNS = frozenset({"_ingest_id", "_ingested_at"})


class FeatureType(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    VECTOR = "vector"  # a float vector of fixed length


class KeyType(StrEnum):
    STRING = "string"
    INT = "int"


def validate_column(value: str, *, field: str) -> str:
    if not isinstance(value, str) or not _COLUMN.fullmatch(value):
        raise InvalidInput(
            f"{field} {value!r} is not a valid column name: letters, digits and '_',"
            " starting with a letter or '_', at most 63 characters",
            field=field,
        )
    if value in RESERVED_COLUMNS:
        raise InvalidInput(f"{field} {value!r} is reserved by Slipway", field=field)
    return value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Spec):
    """One typed feature column."""

    name: str
    type: FeatureType
    length: Annotated[int | None, Field(ge=1, le=65536)] = None
    nullable: StrictBool = True
    allow_nan: StrictBool = False
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> Feature:
        validate_column(self.name, field="features.name")
        if self.type is FeatureType.VECTOR and self.length is None:
            raise ValueError(f"vector feature {self.name!r} needs a length")
        if self.type is not FeatureType.VECTOR and self.length is not None:
            raise ValueError(f"only vector features have a length ({self.name!r})")
        return self


class RecordIdentifier(_Spec):
    """A column of the record identifier and its type."""

    name: str
    type: KeyType = KeyType.STRING

    @field_validator("name")
    @classmethod
    def _column(cls, value: str) -> str:
        return validate_column(value, field="record_identifiers.name")


class FeatureGroup(_Spec):
    """A feature group's definition."""

    name: str
    record_identifiers: list[RecordIdentifier] = Field(min_length=1, max_length=8)
    event_time: str = "event_time"
    features: list[Feature] = Field(min_length=1, max_length=2000)
    online: StrictBool = True
    offline: StrictBool = True
    ttl: timedelta | None = None
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value, field="name")

    @field_validator("event_time")
    @classmethod
    def _event_time(cls, value: str) -> str:
        return validate_column(value, field="event_time")

    @model_validator(mode="after")
    def _consistent(self) -> FeatureGroup:
        if not (self.online or self.offline):
            raise ValueError("a feature group must be online, offline or both")
        if self.ttl is not None and self.ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        columns = [k.name for k in self.record_identifiers] + [self.event_time]
        columns += [f.name for f in self.features]
        seen: set[str] = set()
        for column in columns:
            if column in seen:
                raise ValueError(f"column {column!r} is defined twice")
            seen.add(column)
        return self

    @property
    def key_columns(self) -> list[str]:
        return [k.name for k in self.record_identifiers]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise InvalidInput(f"feature group {self.name!r} has no feature {name!r}", field="feature")

    @classmethod
    def parse(cls, data: Any) -> FeatureGroup:
        """Validate ``data`` (a dict or YAML-loaded mapping); errors name the field."""
        return parse_spec(cls, data)


def check_evolution(current: FeatureGroup, proposed: FeatureGroup) -> list[Feature]:
    """The features ``proposed`` adds to ``current``; :class:`Conflict` for anything else.

    Allowed: new nullable features, and changed description/owner/tags/ttl/flags. Refused:
    a changed record identifier or event-time column, a removed feature, a changed type.
    """
    if proposed.record_identifiers != current.record_identifiers:
        raise Conflict("the record identifier of a feature group cannot change; create a new group")
    if proposed.event_time != current.event_time:
        raise Conflict("the event-time column of a feature group cannot change; create a new group")
    old = {f.name: f for f in current.features}
    new = {f.name: f for f in proposed.features}
    removed = sorted(set(old) - set(new))
    if removed:
        raise Conflict(f"features cannot be removed ({', '.join(removed)}); create a new group")
    for name, feature in old.items():
        changed = new[name]
        if (changed.type, changed.length) != (feature.type, feature.length):
            raise Conflict(
                f"feature {name!r} is {feature.type}"
                f"{f'[{feature.length}]' if feature.length else ''}; changing its type would"
                " break stored data and trained models: create a new feature group instead",
                details={"feature": name},
            )
    added = [f for name, f in new.items() if name not in old]
    for feature in added:
        if not feature.nullable:
            raise Conflict(
                f"new feature {feature.name!r} must be nullable: existing records have no value"
            )
    return added
