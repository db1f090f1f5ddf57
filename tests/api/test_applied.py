"""Ownership records over REST (``/api/v1/applied``): what ``slipway apply`` against a
remote control plane reads and writes. Bad input is a 400 naming the field, with nothing
written; the holder of the token is recorded, not a name the body claims."""

from __future__ import annotations

from fastapi.testclient import TestClient

from slipway.services import Services
from tests.api.conftest import bearer

DIGEST = "ab" * 32


def test_record_list_and_forget(
    client: TestClient, services: Services, tokens: dict[str, str]
) -> None:
    editor = bearer(tokens["editor"])
    answer = client.put(
        "/api/v1/applied/Monitor/drift", json={"spec_set": "ops", "digest": DIGEST}, headers=editor
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() | {"applied_at": None} == {
        "kind": "Monitor",
        "name": "drift",
        "spec_set": "ops",
        "digest": DIGEST,
        "applied_by": "t-editor",
        "applied_at": None,
    }
    client.put(
        "/api/v1/applied/Endpoint/churn",
        json={"spec_set": "other", "digest": DIGEST},
        headers=editor,
    )
    listed = client.get("/api/v1/applied", params={"spec_set": "ops"}, headers=editor).json()
    assert [(r["kind"], r["name"]) for r in listed] == [("Monitor", "drift")]
    assert len(client.get("/api/v1/applied", headers=editor).json()) == 2
    assert client.delete("/api/v1/applied/Monitor/drift", headers=editor).status_code == 204
    gone = client.delete("/api/v1/applied/Monitor/drift", headers=editor)
    assert gone.status_code == 404
    assert [r.name for r in services.ownership.owned()] == ["churn"]
    actions = [e.action for e in services.audit.list(limit=50)]
    assert "applied.record" in actions and "applied.forget" in actions


def test_bad_input_names_the_field_and_writes_nothing(
    client: TestClient, services: Services, tokens: dict[str, str]
) -> None:
    editor = bearer(tokens["editor"])
    cases = [
        ("/api/v1/applied/Gadget/x", {"spec_set": "ops", "digest": DIGEST}, "kind"),
        ("/api/v1/applied/Monitor/Bad%20Name", {"spec_set": "ops", "digest": DIGEST}, "name"),
        ("/api/v1/applied/Monitor/m", {"spec_set": "Ops!", "digest": DIGEST}, "spec_set"),
        ("/api/v1/applied/Monitor/m", {"spec_set": "ops", "digest": "xyz"}, "digest"),
        ("/api/v1/applied/Monitor/m", {"spec_set": "ops", "digest": DIGEST, "by": "x"}, "by"),
    ]
    for path, body, field in cases:
        answer = client.put(path, json=body, headers=editor)
        assert answer.status_code == 400, (path, body, answer.text)
        assert field in answer.text, (field, answer.text)
    assert services.ownership.owned() == []
    assert (
        client.get("/api/v1/applied", params={"spec_set": "x" * 64}, headers=editor).status_code
        == 400
    )
