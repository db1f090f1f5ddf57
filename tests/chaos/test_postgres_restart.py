"""PostgreSQL (the metadata database) stopped and started again while work is in flight.

A private cluster (``tests/chaos/private.py``) is stopped with ``pg_ctl -m immediate`` —
every connection dropped, no clean shutdown — while the control plane takes ingests, the
gateway (``slipway serve``, data capture on) takes invocations, and a worker process
(``slipway worker``) runs a pipeline step. While it is down the control plane answers 503
with ``Retry-After`` in the platform's error body, never a 500; the gateway keeps serving
from the configuration it holds; the worker stays up. Once it is back everything
reconnects by itself within seconds, every ingest that was answered 201 is in the store
(offline and online), every invocation answered 200 is in capture, and the pipeline
completes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from slipway.core.settings import load_settings
from slipway.services import Services
from tests.chaos import flows
from tests.chaos.platform import (
    Answer,
    Traffic,
    assert_unavailable,
    captured_ids,
    control_plane,
    deploy,
    gateway,
    process,
    register_model,
)
from tests.chaos.private import PrivatePostgres
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

GROUP = {
    "name": "riders",
    "record_identifiers": [{"name": "rider"}],
    "event_time": "time",
    "features": [{"name": "trips", "type": "int"}],
}
RECOVERY_SECONDS = 15.0  # "within seconds": the deadline for the first success after a start


@dataclass
class PgPlatform:
    pg: PrivatePostgres
    services: Services
    api: str
    gateway: str
    folder: Path


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgPlatform]:
    folder = tmp_path_factory.mktemp("chaos-pg")
    with PrivatePostgres() as pg:
        settings = load_settings(
            home=folder / "home",
            database={"url": pg.url},
            workers={"lease_seconds": 5.0, "poll_seconds": 0.1},
        )
        services = Services.open(settings)
        try:
            services.features.create_group(GROUP)
            ref = register_model(services, "summer", ["a", "b"])
            with (
                control_plane(services) as api,
                gateway(settings, folder / "gateway.log") as (_, gateway_url),
            ):
                deploy(
                    services,
                    {
                        "name": "steady",
                        "variants": [{"name": "main", "model": ref}],
                        "data_capture": {"enabled": True},
                    },
                )
                yield PgPlatform(pg, services, api, gateway_url, folder)
        finally:
            services.close()


def _ingest(api: str) -> Traffic:
    def send(client: httpx.Client, index: int) -> httpx.Response:
        record = {"rider": f"r{index}", "time": datetime.now(UTC).isoformat(), "trips": index}
        return client.post(f"{api}/feature-groups/riders/records", json={"records": [record]})

    return Traffic(send)


def _invoke(url: str) -> Traffic:
    def send(client: httpx.Client, index: int) -> httpx.Response:
        return client.post(
            f"{url}/endpoints/steady/invocations",
            json={"dataframe_records": [{"a": float(index), "b": 1.0}]},
            headers={"X-Slipway-Inference-Id": f"pg-{index}"},
        )

    return Traffic(send)


def test_ingests_and_invocations_across_a_restart(platform: PgPlatform) -> None:
    pg, api = platform.pg, platform.api
    with _ingest(api) as ingests, _invoke(platform.gateway) as invocations:
        eventually(lambda: ingests.ok_after(0, 201), what="a first ingest accepted")
        eventually(lambda: invocations.ok_after(0, 200), what="a first invocation served")

        pg.stop()
        down = time.monotonic()
        unavailable = eventually(
            lambda: next((a for a in ingests.answers if a.status == 503), None),
            what="an ingest answered 503 while PostgreSQL is down",
        )
        assert_unavailable(unavailable)
        with httpx.Client(timeout=30) as client:
            for path in ("/feature-groups", "/feature-groups/riders", "/pipelines"):
                response = client.get(f"{api}{path}")
                assert_unavailable(_answer(response))
        # The gateway serves from the configuration it holds: no database on its path.
        eventually(lambda: invocations.ok_after(down, 200), what="invocations while down")

        pg.start()
        up = time.monotonic()
        eventually(
            lambda: ingests.ok_after(up, 201),
            what="an ingest accepted after PostgreSQL is back",
            timeout=RECOVERY_SECONDS,
        )
        eventually(lambda: invocations.ok_after(up, 200), what="invocations after the restart")

    assert ingests.statuses() <= {201, 503}, _unexpected(ingests)
    assert invocations.statuses() == {200}, _unexpected(invocations)

    accepted = {f"r{a.index}": a.index for a in ingests.answers if a.status == 201}
    features = platform.services.features
    offline = features.read_offline("riders").to_pylist()
    assert {row["rider"] for row in offline} >= set(accepted)
    records = features.get_records("riders", [[rider] for rider in accepted])
    assert [r.values["trips"] if r else None for r in records] == list(accepted.values())

    served = {f"pg-{a.index}" for a in invocations.answers if a.status == 200}
    eventually(
        lambda: served <= captured_ids(platform.services.settings, "steady"),
        what="every served invocation captured",
    )


def test_a_pipeline_step_in_flight_survives_a_restart(platform: PgPlatform, tmp_path: Path) -> None:
    """The step finishes while the database is still down: the worker cannot record it,
    gives it back once the database answers, and the execution still succeeds."""
    services, pg = platform.services, platform.pg
    services.pipelines.register(flows.held)
    settings = services.settings
    with process(settings, "worker", "--queue", "pipelines", log=tmp_path / "worker.log") as w:
        execution = services.pipelines.start("chaos-held", {"folder": str(tmp_path)})
        eventually(lambda: (tmp_path / "started").exists(), what="the step started", timeout=60)

        pg.stop()
        (tmp_path / "go").write_text("1")  # the step ends while the database is away
        eventually(lambda: (tmp_path / "finished").exists(), what="the step finished")
        assert w.poll() is None, "the worker died with the database"
        pg.start()
        up = time.monotonic()
        done = services.pipelines.wait(execution, timeout=60)
        assert done.state == "Succeeded", done
        assert w.poll() is None, "the worker died with the database"
        took = time.monotonic() - up
    assert [s.state for s in done.steps] == ["Succeeded", "Succeeded"]
    assert took < 60


def _answer(response: httpx.Response) -> Answer:
    return Answer(-1, response.status_code, dict(response.headers), response.json(), 0.0)


def _unexpected(traffic: Traffic) -> list[Answer]:
    return [a for a in traffic.answers if a.status not in (200, 201, 503)][:5]
