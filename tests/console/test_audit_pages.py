"""The console's audit log: newest first, filters that narrow it (actor, action, resource,
time range), paging back by entry id, the auditor's role as over REST, and the workspace
rule (a page shows its workspace's entries; "every workspace" those the token holds)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from slipway.core.clock import utcnow
from slipway.services import Services
from tests.console.conftest import sign_in

IDS = re.compile(r'<td class="num">(\d+)</td>')


def _ids(html: str) -> list[int]:
    """The entry ids the page lists, in order."""
    return [int(i) for i in IDS.findall(html)]


def _record(services: Services, actor: str, action: str, resource: str) -> int:
    entry = services.audit.record(
        actor=actor, action=action, resource=resource, outcome="success", details={"n": 1}
    )
    return entry.id


def test_an_empty_log_says_what_fills_it(console: TestClient) -> None:
    page = console.get("/audit")
    assert page.status_code == 200 and "<h1>Audit log</h1>" in page.text
    assert "has no entries here yet" in page.text and "<code>slipway audit</code>" in page.text
    for control in ("f-actor", "f-action", "f-resource", "f-from", "f-to", "f-scope"):
        assert f'<label for="{control}">' in page.text and f'id="{control}"' in page.text


def test_filters_narrow_the_entries(console: TestClient, services: Services) -> None:
    first = _record(services, "cli:alice", "model.approved", "model/fraud-model/3")
    second = _record(services, "bob", "endpoint.update", "endpoint/fraud-api")
    boundary = utcnow()
    third = _record(services, "cli:alice", "endpoint.create", "endpoint/churn-api")
    everything = console.get("/audit")
    assert _ids(everything.text) == [third, second, first]  # newest first
    assert "model/fraud-model/3" in everything.text and "status-success" in everything.text

    def shown(**query: str) -> list[int]:
        page = console.get("/audit", params=query)
        assert page.status_code == 200, page.text
        return _ids(page.text)

    assert shown(actor="cli:alice") == [third, first]
    assert shown(actor="alice") == []  # the actor is matched exactly
    assert shown(action="endpoint.") == [third, second]
    assert shown(resource="fraud") == [second, first]
    assert shown(resource="fraud", actor="bob") == [second]
    assert shown(**{"from": boundary.isoformat()}) == [third]
    assert shown(to=boundary.isoformat()) == [second, first]
    assert shown(**{"from": "2000-01-01", "to": "2000-01-02"}) == []
    # The form shows what it filtered by, and the same entries from the CLI.
    page = console.get("/audit", params={"actor": "cli:alice", "action": "model."})
    assert 'value="cli:alice"' in page.text
    assert "slipway audit --actor cli:alice --action model." in page.text
    empty = console.get("/audit", params={"actor": "nobody"})
    assert "No entry matches these filters" in empty.text and 'href="/audit">Clear' in empty.text


def test_a_time_the_form_cannot_read_is_said_next_to_it(console: TestClient) -> None:
    bad = console.get("/audit", params={"from": "yesterday"})
    assert bad.status_code == 400
    assert 'role="alert">from must be an ISO date-time' in bad.text
    assert 'id="f-actor"' in bad.text  # the form is still there to fix it
    backwards = console.get("/audit", params={"from": "2026-02-01", "to": "2026-01-01"})
    assert backwards.status_code == 400 and "ends before it starts" in backwards.text
    assert console.get("/audit", params={"before": "x"}).status_code == 400
    # A time with an offset is shown in UTC, as a datetime-local field takes it.
    shifted = console.get("/audit", params={"from": "2026-03-01T12:00:00+02:00"})
    assert 'value="2026-03-01T10:00:00"' in shifted.text


def test_the_log_pages_back_by_entry_id(console: TestClient, services: Services) -> None:
    ids = [_record(services, "pager", f"thing.{n}", f"thing/{n}") for n in range(55)]
    _record(services, "someone-else", "other.change", "other/1")
    first = console.get("/audit", params={"actor": "pager"})
    assert _ids(first.text) == ids[::-1][:50]
    older = re.search(r'<a href="([^"]+)" rel="next">Older', first.text)
    assert older, first.text[-2000:]
    link = older.group(1).replace("&amp;", "&")
    assert f"before={ids[5]}" in link and "actor=pager" in link  # the filter stays
    second = console.get(link)
    assert _ids(second.text) == ids[:5][::-1]
    assert 'rel="next"' not in second.text and 'rel="first">← Newest' in second.text
    # Entries recorded meanwhile do not shift the older page.
    _record(services, "pager", "thing.new", "thing/new")
    assert _ids(console.get(link).text) == ids[:5][::-1]


def test_reading_the_log_needs_the_auditor_role(
    auth_console: TestClient, auth_services: Services
) -> None:
    _record(auth_services, "someone", "model.approved", "model/m/1")
    viewer = auth_services.tokens.create("vic", "viewer", created_by="test")[1]
    editor = auth_services.tokens.create("ed", "editor", created_by="test")[1]
    auditor = auth_services.tokens.create("aud", "auditor", created_by="test")[1]
    assert auth_console.get("/audit", follow_redirects=False).status_code == 303  # sign in
    for token in (viewer, editor):
        sign_in(auth_console, token)
        refused = auth_console.get("/audit")
        assert refused.status_code == 403 and "needs auditor" in refused.text
        assert "model/m/1" not in refused.text
    sign_in(auth_console, auditor)
    page = auth_console.get("/audit")
    assert page.status_code == 200 and "model/m/1" in page.text


def test_a_page_shows_its_workspace_and_every_workspace_the_token_holds(
    auth_console: TestClient, auth_services: Services
) -> None:
    for name in ("fraud", "churn"):
        auth_services.workspaces.create(name, actor="test")
    ours = _record(auth_services, "x", "model.approved", "model/ours/1")
    fraud = _record(auth_services, "x", "model.approved", "workspaces/fraud/model/f/1")
    churn = _record(auth_services, "x", "model.approved", "workspaces/churn/model/c/1")
    auditor = auth_services.tokens.create(
        "fraud-aud", "auditor", created_by="test", workspaces=["default", "fraud"]
    )[1]
    sign_in(auth_console, auditor)
    query = {"action": "model.approved"}
    assert _ids(auth_console.get("/audit", params=query).text) == [ours]
    in_fraud = auth_console.get("/audit", params=query | {"ws": "fraud"})
    assert _ids(in_fraud.text) == [fraud]
    assert '<input type="hidden" name="ws" value="fraud">' in in_fraud.text
    every = auth_console.get("/audit", params=query | {"scope": "all"})
    assert _ids(every.text) == [fraud, ours]  # never churn's: the token holds no role there
    assert churn not in _ids(every.text)
    assert auth_console.get("/audit", params={"ws": "churn"}).status_code == 403
