"""The gateway's refusals reach the audit log in batches, bounded: a flood of refusals is
counted, not written row by row."""

from __future__ import annotations

from slipway.core.db import Database
from slipway.security.audit import AuditLog
from slipway.serving.gateway.denials import Denials, template


def _scope(path: str) -> dict[str, object]:
    return {"path": path, "method": "POST", "client": ("10.1.2.3", 5555), "headers": []}


def test_paths_are_named_by_their_route() -> None:
    assert template("/endpoints/churn/invocations") == "/endpoints/{endpoint}/invocations"
    assert template("/endpoints/churn/explain") == "/endpoints/{endpoint}/explain"
    assert template("/v2/models/churn/infer") == "/v2/models/{model}/infer"
    assert template("/v2/models/churn") == "/v2/models/{model}"
    assert (
        template("/v2/models/churn/versions/3/ready")
        == "/v2/models/{model}/versions/{version}/ready"
    )
    assert template("/metrics") == "/metrics"
    assert len(template("/x" * 1000)) == 200


def test_refusals_are_written_together_and_a_flood_is_counted(db: Database) -> None:
    denials = Denials(db, capacity=3)
    for i in range(5):
        denials.offer(_scope(f"/endpoints/e{i}/invocations"), 403, "not granted", "svc")
    denials.offer(_scope("/metrics"), 401, "malformed API token", None)
    assert (denials.refused, denials.dropped) == (6, 3)
    assert AuditLog(db).list() == []  # nothing on the request's path
    assert denials.flush() == 3
    entries = list(reversed(AuditLog(db).list()))
    assert [(e.actor, e.action, e.resource, e.status_code, e.outcome) for e in entries] == [
        (
            "svc",
            "gateway POST /endpoints/{endpoint}/invocations",
            f"/endpoints/e{i}/invocations",
            403,
            "denied",
        )
        for i in range(3)
    ]
    assert entries[0].details == {"client": "10.1.2.3", "reason": "not granted"}
    assert entries[-1].details["refusals_not_logged_before"] == 3
    denials.offer(_scope("/metrics"), 401, "malformed API token", None)
    assert denials.flush() == 1 and denials.flush() == 0
    assert AuditLog(db).list(limit=1)[0].actor == "unauthenticated"
