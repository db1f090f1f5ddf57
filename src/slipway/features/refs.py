"""A feature reference, ``group:feature`` or ``group:*``, parsed once at the feature
store's edge into the one type training sets, online reads and the gateway's enrichment
all use."""

from __future__ import annotations

from dataclasses import dataclass

from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name


@dataclass(frozen=True)
class FeatureRef:
    group: str
    feature: str  # a feature's name, or "*" for every feature of the group

    @classmethod
    def parse(cls, ref: str, *, field: str = "feature_refs") -> FeatureRef:
        """``ref`` as a reference; a malformed one raises :class:`InvalidInput` naming
        ``field``."""
        if not isinstance(ref, str):
            raise InvalidInput(f"feature reference {ref!r} is not text", field=field)
        group, sep, feature = ref.partition(":")
        if not sep or not group or not feature:
            raise InvalidInput(
                f"feature reference {ref!r} must look like 'group:feature' or 'group:*'",
                field=field,
            )
        validate_name(group, field=field)
        return cls(group, feature)

    @property
    def every_feature(self) -> bool:
        return self.feature == "*"

    def __str__(self) -> str:
        return f"{self.group}:{self.feature}"


def groups_of(refs: list[FeatureRef]) -> list[str]:
    """The groups the references name, each once, in first-mention order."""
    return list(dict.fromkeys(ref.group for ref in refs))
