"""``slipway demo --quick`` end to end, as a newcomer runs it, with its outcomes checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slipway.demo.data import DERIVED_FEATURES, VIEW_COLUMNS, WEATHER_FEATURES
from tests.conftest import service_url


@pytest.mark.slow
@pytest.mark.kafka
def test_the_quick_demo_closes_the_loop(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "MLFLOW_"))}
    # Kafka configured, as the issue asks: the batch output goes to a topic too.
    env["SLIPWAY_KAFKA__BOOTSTRAP_SERVERS"] = service_url("kafka")
    done = subprocess.run(
        [sys.executable, "-m", "slipway", "demo", "--quick", "--home", str(home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    outcome = json.loads((home / "demo-outcome.json").read_text())

    assert min(outcome["groups"].values()) > 1000  # weather, planes and flights populated
    champion = outcome["versions"][0]
    assert champion["role"] == "champion" and champion["approval"] == "Approved"
    assert champion["roc_auc"] > 0.6
    assert outcome["replayed"] > 100  # the endpoint answered the replayed traffic
    # The endpoint computed the feature view online; recomputed offline as known at each
    # request's time, every served value is the same.
    skew = outcome["skew"]
    assert skew["rows"] == outcome["replayed"] and skew["status"] == "no_violations"
    assert skew["shares"] == {name: 0.0 for name in VIEW_COLUMNS}
    ab = outcome["ab"]["variants"]
    assert ab["champion"]["traffic"]["requests"] > ab["challenger"]["traffic"]["requests"] > 0
    # ROC AUC per variant from the served probabilities and the real labels, and a verdict.
    assert 0.5 < ab["champion"]["roc_auc"] < 1 and ab["challenger"]["samples"] > 0
    verdict = outcome["ab"]["comparisons"][0]
    assert verdict["variant"] == "challenger" and verdict["verdict"] in (
        "winner",
        "loser",
        "no difference yet",
    )
    assert outcome["batch"]["state"] == "Completed" and outcome["batch"]["rows"] > 1000
    kafka = outcome["batch"]["kafka"]
    assert kafka["state"] == "Completed" and kafka["failed"] == 0
    assert kafka["delivered"] == outcome["batch"]["rows"]
    assert (
        {"temp", "dewp"}
        <= set(outcome["drifted"])
        <= {
            *WEATHER_FEATURES,
            *DERIVED_FEATURES,
            "prediction",
        }
    )
    assert outcome["alerts"] >= 1
    assert len(outcome["retrain_executions"]) == 1  # exactly once, however many runs drifted
    retrained = [v for v in outcome["versions"] if v["role"] == "retrained"]
    assert outcome["promoted"] == retrained[0]["version"]
    # The retrained model was compared with what the endpoint served, on the same month,
    # and beat it: that is why it went to canary (not an absolute AUC bar).
    gate = retrained[0]["comparison"]
    assert gate["passed"] is True and gate["metric"] == "roc_auc"
    assert gate["reference"]["model"] == f"flight-delay:{champion['version']}"
    assert gate["candidate"]["roc_auc"] >= gate["reference"]["roc_auc"]
    # The same retraining on shuffled labels: Rejected with the reason, never deployed.
    shuffled = next(v for v in outcome["versions"] if v["role"] == "shuffled")
    assert shuffled["approval"] == "Rejected" and shuffled["comparison"]["passed"] is False
    assert shuffled["comparison"]["rows"] == gate["rows"]  # the same month's rows
    assert outcome["rejected"]["version"] == shuffled["version"]
    assert "does not beat" in outcome["rejected"]["reason"]
    assert outcome["rejected"]["endpoint_config_unchanged"] is True
    served = {v["version"] for h in outcome["history"] for v in h["spec"]["variants"]}
    assert shuffled["version"] not in served
    assert outcome["rolled_back"] is True
    assert [h["outcome"] for h in outcome["history"]][-2:] == ["deployed", "rolled_back"]
    assert "Summary" in done.stdout
