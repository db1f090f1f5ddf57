"""An endpoint enriched by a feature view: the view version pinned in its stored config
(named, else the one its models were trained on, else the latest), models trained on
another view or version refused, predictions equal to batch scoring of the view's
training set at the captured times, and captures holding the view's columns and the
very time the windows ended at."""

from __future__ import annotations

from slipway.registry.lineage import Lineage


def test_lineage_names_the_view_of_its_training_set() -> None:
    bound = {"name": "rider", "version": 2, "digest": "ab" * 32}
    assert Lineage(training_set={"feature_refs": ["a:b"], "feature_view": bound}).feature_view == (
        bound
    )
    assert Lineage().feature_view is None
    assert Lineage(training_set={"feature_refs": ["riders:age"]}).feature_view is None
    # Sent over REST as anything: no whole-number version, no digest.
    odd = {"name": "rider", "version": "2", "digest": 7}
    assert Lineage(training_set={"feature_view": odd}).feature_view == {
        "name": "rider",
        "version": None,
        "digest": None,
    }
