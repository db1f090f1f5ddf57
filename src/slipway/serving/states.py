"""The endpoint state machine.

    Creating ──► InService ──► Updating ──► InService
        │            ▲  ▲          │
        ▼            │  └─ RollingBack ◄┘ (alarm during baking, or manual rollback)
      Failed ────────┘ (an update that loads)        any ──► Deleting ──► (gone)

Config outcomes in the deployment history: ``pending`` while rolling out, ``deployed`` once
it took all traffic, ``retired`` when a later config replaced it, ``rolled_back`` when an
alarm or a person sent traffic back, ``failed`` when its models never loaded.
"""

from __future__ import annotations

from enum import StrEnum


class EndpointStatus(StrEnum):
    CREATING = "Creating"
    IN_SERVICE = "InService"
    UPDATING = "Updating"
    ROLLING_BACK = "RollingBack"
    FAILED = "Failed"
    DELETING = "Deleting"


ALLOWED: dict[EndpointStatus, frozenset[EndpointStatus]] = {
    EndpointStatus.CREATING: frozenset(
        {EndpointStatus.IN_SERVICE, EndpointStatus.FAILED, EndpointStatus.DELETING}
    ),
    EndpointStatus.IN_SERVICE: frozenset(
        {EndpointStatus.UPDATING, EndpointStatus.ROLLING_BACK, EndpointStatus.DELETING}
    ),
    EndpointStatus.UPDATING: frozenset(
        {EndpointStatus.IN_SERVICE, EndpointStatus.ROLLING_BACK, EndpointStatus.DELETING}
    ),
    EndpointStatus.ROLLING_BACK: frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.DELETING}),
    EndpointStatus.FAILED: frozenset({EndpointStatus.UPDATING, EndpointStatus.DELETING}),
    EndpointStatus.DELETING: frozenset(),
}

# States in which a person may start an update or a rollback.
UPDATABLE = frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.FAILED})


class Outcome(StrEnum):
    PENDING = "pending"
    DEPLOYED = "deployed"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


def can_move(current: EndpointStatus, target: EndpointStatus) -> bool:
    return target in ALLOWED[current]
