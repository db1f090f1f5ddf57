"""Feature views as spec documents on an embedded platform: created after the groups they
read whatever the files' order, unchanged when applied again, a changed definition
applied as the next version (the old one still readable), pruned, exported and planned
back as unchanged; a view naming a missing group or feature, or a malformed reference, is
a problem at its file, line and field, and nothing is applied."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from slipway.apply.documents import SpecProblems
from slipway.apply.export import export_documents, export_to
from slipway.apply.plan import plan
from slipway.apply.resources import Plan
from slipway.apply.specset import load_spec_set
from slipway.core.errors import NotFound
from slipway.registry.lineage import Lineage
from slipway.services import Services
from tests.apply.conftest import applied, write
from tests.registry.logged import logged_run

# The view first: plan orders the groups it reads before it.
VIEW = """
kind: FeatureView
name: rider
description: recent trips
features: ["riders:age"]
request_fields: {distance: float}
transformations:
  - name: trips_1h
    window: {group: trips, function: count, duration: 1h}
  - name: fare_sum_24h
    window: {group: trips, column: fare, function: sum, duration: 24h}
  - name: per_km
    expression: fare_sum_24h / distance
    type: float
"""

GROUPS = """
kind: FeatureGroup
name: riders
record_identifiers: [{name: rider_id}]
features:
  - {name: age, type: int}
---
kind: FeatureGroup
name: trips
record_identifiers: [{name: rider_id}]
features:
  - {name: fare, type: float}
"""


def actions(planned: Plan) -> list[tuple[str, str, str]]:
    return [(c.action, c.kind, c.name) for c in planned.changes]


@pytest.fixture
def view_specs(specs: Path) -> Path:
    write(specs, "a-view.yaml", VIEW)
    write(specs, "b-groups.yaml", GROUPS)
    return specs


def test_create_unchanged_update_and_prune(view_specs: Path, services: Services) -> None:
    first = applied(view_specs, services)
    assert actions(first) == [
        ("create", "FeatureGroup", "riders"),
        ("create", "FeatureGroup", "trips"),
        ("create", "FeatureView", "rider"),
    ]
    view = services.feature_views.get("rider")
    assert view.version == 1 and view.created_by == "tests"
    assert view.columns == {
        "age": "int",
        "trips_1h": "int",
        "fare_sum_24h": "float",
        "per_km": "float",
    }
    assert ("FeatureView", "rider") in {(r.kind, r.name) for r in services.ownership.owned()}

    again = plan(load_spec_set(view_specs), services)
    assert not again.has_changes
    assert actions(again)[-1] == ("unchanged", "FeatureView", "rider")

    write(view_specs, "a-view.yaml", VIEW.replace("duration: 1h", "duration: 2h"))
    [change] = [
        c for c in plan(load_spec_set(view_specs), services).changes if c.action != "unchanged"
    ]
    assert (change.action, change.kind, change.name) == ("update", "FeatureView", "rider")
    assert [(f.path, f.old, f.new) for f in change.fields] == [
        ("transformations.0.window.duration", "1h", "2h")
    ]
    applied(view_specs, services)
    assert [v.version for v in services.feature_views.versions("rider")] == [1, 2]
    assert services.feature_views.get("rider", 1).spec.transformations[0].window is not None
    latest = services.feature_views.get("rider").spec.transformations[0].window
    assert latest is not None and latest.duration.total_seconds() == 7200
    assert not plan(load_spec_set(view_specs), services).has_changes

    (view_specs / "a-view.yaml").unlink()
    kept = plan(load_spec_set(view_specs), services)
    assert ("kept", "FeatureView", "rider") in actions(kept)
    pruned = applied(view_specs, services, prune=True)
    assert ("delete", "FeatureView", "rider") in actions(pruned)
    with pytest.raises(NotFound):
        services.feature_views.get("rider")
    assert ("FeatureView", "rider") not in {(r.kind, r.name) for r in services.ownership.owned()}


def test_a_view_made_by_hand_is_adopted(view_specs: Path, services: Services) -> None:
    write(view_specs, "a-view.yaml", "")
    applied(view_specs, services)  # the groups
    services.feature_views.apply(_spec(), actor="bob")
    write(view_specs, "a-view.yaml", VIEW)
    [change] = [
        c for c in plan(load_spec_set(view_specs), services).changes if c.kind == "FeatureView"
    ]
    assert (change.action, change.adopt) == ("unchanged", True)
    applied(view_specs, services)
    assert services.feature_views.get("rider").version == 1  # the same definition: no new version
    assert ("FeatureView", "rider") in {(r.kind, r.name) for r in services.ownership.owned()}


def _spec() -> dict[str, object]:
    values = yaml.safe_load(VIEW)
    del values["kind"]
    return values


def test_export_round_trips(view_specs: Path, services: Services, tmp_path: Path) -> None:
    applied(view_specs, services)
    [document] = export_documents(services)["FeatureView"]
    # Every field as written but the durations, in their largest whole unit (24h is 1d).
    written_as = yaml.safe_load(VIEW.replace("duration: 24h", "duration: 1d"))
    assert document == written_as
    written = export_to(services, tmp_path / "exported", spec_set="ops")
    assert "feature-views.yaml" in [p.name for p in written]
    exported = load_spec_set(tmp_path / "exported")
    assert exported.find("FeatureView", "rider") is not None
    assert not plan(exported, services).has_changes


def test_a_view_naming_what_does_not_exist_is_refused_at_plan_time(
    view_specs: Path, services: Services
) -> None:
    write(
        view_specs,
        "c-broken.yaml",
        """
        kind: FeatureView
        name: broken
        features:
          - riders:height
          - nowhere:x
        transformations:
          - name: n
            window: {group: no-such-group, function: count, duration: 1h}
          - name: tips
            window: {group: trips, column: tip, function: sum, duration: 1d}
        """,
    )
    with pytest.raises(SpecProblems) as caught:
        plan(load_spec_set(view_specs), services)
    assert [str(p) for p in caught.value.problems] == [
        "c-broken.yaml:4: features.0: FeatureGroup 'riders' has no 'height' (as the spec files"
        " declare it)",
        "c-broken.yaml:5: features.1: FeatureGroup 'nowhere' is neither declared in the spec"
        " files nor on the platform",
        "c-broken.yaml:8: transformations.0.window.group: FeatureGroup 'no-such-group' is"
        " neither declared in the spec files nor on the platform",
        "c-broken.yaml:10: transformations.1.window.group: FeatureGroup 'trips' has no 'tip'"
        " (as the spec files declare it)",
    ]
    assert services.features.list_groups() == [] and services.ownership.owned() == []


def test_a_feature_missing_from_a_live_group_is_refused(specs: Path, services: Services) -> None:
    write(specs, "groups.yaml", GROUPS)
    applied(specs, services)
    (specs / "groups.yaml").unlink()
    write(specs, "view.yaml", VIEW.replace("riders:age", "riders:weight"))
    with pytest.raises(SpecProblems) as caught:
        plan(load_spec_set(specs), services)
    [problem] = caught.value.problems
    assert str(problem) == (
        "view.yaml:4: features.0: FeatureGroup 'riders' has no 'weight' (on the platform)"
    )
    assert services.feature_views.list() == []


def test_a_malformed_reference_is_a_problem_at_its_line(specs: Path) -> None:
    write(specs, "view.yaml", VIEW.replace('["riders:age"]', '["riders:age", "no-colon"]'))
    with pytest.raises(SpecProblems) as caught:
        load_spec_set(specs)
    [problem] = caught.value.problems
    assert (problem.location is not None, problem.field) == (True, "features.1")
    assert str(problem).startswith("view.yaml:4: features.1: feature reference 'no-colon'")


ENDPOINTS = """
kind: Endpoint
name: trained
variants: [{name: main, model: "scorer:1"}]
enrichment: {feature_view: rider}
---
kind: Endpoint
name: latest
variants: [{name: main, model: "plain:1"}]
enrichment: {feature_view: rider}
"""


def test_an_endpoint_enriched_by_a_view_plans_as_the_service_pins_it(
    view_specs: Path, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied(view_specs, services)
    first = services.feature_views.get("rider")
    write(view_specs, "a-view.yaml", VIEW.replace("duration: 1h", "duration: 2h"))
    applied(view_specs, services)  # the latest is version 2
    monkeypatch.setenv("MLFLOW_TRACKING_URI", services.registry.mlflow.uri)
    run = logged_run(services)
    bound = {"name": "rider", "version": 1, "digest": first.digest}
    for model, view in (("scorer", bound), ("plain", None), ("stranger", bound | {"name": "x"})):
        lineage = Lineage(training_set=None if view is None else {"feature_view": view})
        services.registry.register(model, f"runs:/{run}/model", actor="tests", lineage=lineage)
        services.registry.set_approval(model, 1, "Approved", actor="tests", comment="ok")

    write(view_specs, "c-endpoints.yaml", ENDPOINTS)
    created = applied(view_specs, services)
    assert actions(created)[-2:] == [
        ("create", "Endpoint", "latest"),
        ("create", "Endpoint", "trained"),
    ]

    def pinned(name: str) -> str | None:
        endpoint = services.endpoints.describe(name)
        shown = endpoint.target or endpoint.active or endpoint.latest
        assert shown is not None and shown.spec.enrichment is not None
        return shown.spec.enrichment.feature_view

    # The version its model was trained on, else the latest; the files' bare name plans
    # as unchanged against either.
    assert (pinned("trained"), pinned("latest")) == ("rider:1", "rider:2")
    assert not plan(load_spec_set(view_specs), services).has_changes
    write(
        view_specs,
        "c-endpoints.yaml",
        ENDPOINTS.replace("feature_view: rider}", "feature_view: rider:2}", 1),
    )
    # Naming another version is a change of that field (refused while the endpoint, never
    # rolled out here without a worker, is still being created).
    with pytest.raises(SpecProblems) as busy:
        plan(load_spec_set(view_specs), services)
    assert [str(p) for p in busy.value.problems] == [
        "c-endpoints.yaml:1: enrichment.feature_view: endpoint 'trained' is Creating; wait"
        " until it is InService to change it"
    ]

    write(
        view_specs,
        "c-endpoints.yaml",
        ENDPOINTS.replace("scorer:1", "stranger:1").replace(
            "feature_view: rider}\n---", "feature_view: nowhere}\n---"
        ),
    )
    with pytest.raises(SpecProblems) as caught:
        plan(load_spec_set(view_specs), services)
    assert [str(p) for p in caught.value.problems] == [
        "c-endpoints.yaml:4: enrichment.feature_view: FeatureView 'nowhere' is neither declared"
        " in the spec files nor on the platform",
        "c-endpoints.yaml:4: enrichment.feature_view: variant 'main' serves stranger:1, trained"
        " on feature view 'x', not 'nowhere'",
    ]


def test_a_skew_monitor_naming_a_missing_view_is_a_problem(
    view_specs: Path, services: Services
) -> None:
    write(
        view_specs,
        "d-monitor.yaml",
        """
        kind: Monitor
        name: skew
        type: feature_skew
        endpoint: scoring
        skew: {feature_view: "nowhere:2"}
        ---
        kind: Monitor
        name: skew-rider
        type: feature_skew
        endpoint: scoring
        skew: {feature_view: rider}
        """,
    )
    with pytest.raises(SpecProblems) as caught:
        plan(load_spec_set(view_specs), services)
    assert [str(p) for p in caught.value.problems] == [
        "d-monitor.yaml:4: endpoint: Endpoint 'scoring' is neither declared in the spec files"
        " nor on the platform",
        "d-monitor.yaml:5: skew.feature_view: FeatureView 'nowhere' is neither declared in the"
        " spec files nor on the platform",
        "d-monitor.yaml:10: endpoint: Endpoint 'scoring' is neither declared in the spec files"
        " nor on the platform",
    ]
