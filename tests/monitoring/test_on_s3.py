"""The whole monitoring loop with the artifact root on S3 (the local S3 test server): the
model logged and registered there, loaded by the gateway from there, traffic captured
there, the baseline read from there, and the monitor's report written there."""

from __future__ import annotations

from pathlib import Path

import pytest
import s3fs

from tests.monitoring.conftest import WEATHER, execute_run, open_flight_platform, send_traffic

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def test_seasonal_drift_detected_with_everything_on_s3(s3_root: str, tmp_path: Path) -> None:
    with open_flight_platform(
        tmp_path / "home", f"{s3_root}/train.parquet", artifacts={"root": s3_root}
    ) as fp:
        services = fp.services
        traffic = send_traffic(fp)
        services.baselines.create(
            "flights-train", source={"file": fp.train_file}, model=fp.model, actor="test"
        )
        services.monitoring.create(
            {
                "name": "flights-drift",
                "kind": "data_quality",
                "endpoint": "flights",
                "baseline": "flights-train",
                "schedule": "0 * * * *",
            },
            actor="test",
        )
        runs = {}
        for half in ("first", "second"):
            start, end = traffic["windows"][half]
            queued = services.monitoring.run("flights-drift", actor="test", start=start, end=end)
            runs[half] = execute_run(fp, queued)
        assert runs["first"].status == "no_violations" and runs["first"].rows == 3000
        assert runs["second"].status == "violations" and runs["second"].rows == 3000
        report = services.monitoring.report(runs["second"].id)
        assert set(WEATHER) <= set(report.drifted)

        stored = s3fs.S3FileSystem(skip_instance_cache=True).find(s3_root.removeprefix("s3://"))
        top = {path.split("/")[2] for path in stored}
        assert {"mlflow", "capture", "monitoring", "train.parquet"} <= top, sorted(top)
