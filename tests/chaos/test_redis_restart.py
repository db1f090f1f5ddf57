"""Redis (the online store) killed and started again while work is in flight.

A private redis-server (``tests/chaos/private.py``, append-only file fsynced on every
write) is killed with SIGKILL while the control plane takes ingests and the gateway
(``slipway serve``) answers invocations enriched with online features. While it is down
both answer 503 with ``Retry-After`` in the platform's error body, never a 500; once it is
back they reconnect by themselves within seconds; every ingest answered 201 is in both
stores, and every invocation answered 200 is in capture.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from slipway.core.settings import load_settings
from slipway.services import Services
from tests.chaos.platform import (
    Answer,
    Traffic,
    assert_unavailable,
    captured_ids,
    control_plane,
    deploy,
    gateway,
    register_model,
)
from tests.chaos.private import PrivateRedis
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.redis]

GROUP = {
    "name": "riders",
    "record_identifiers": [{"name": "rider"}],
    "event_time": "time",
    "features": [{"name": "trips", "type": "float"}],
}
RECOVERY_SECONDS = 15.0  # "within seconds": the deadline for the first success after a start


@dataclass
class RedisPlatform:
    redis: PrivateRedis
    services: Services
    api: str
    gateway: str


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisPlatform]:
    folder = tmp_path_factory.mktemp("chaos-redis")
    with PrivateRedis() as redis:
        settings = load_settings(
            home=folder / "home",
            database={"url": f"sqlite:///{folder}/meta.db"},
            online_store={"url": redis.url},
        )
        services = Services.open(settings)
        try:
            services.features.create_group(GROUP)
            now = datetime.now(UTC)
            services.features.ingest(
                "riders", [{"rider": "known", "time": now.isoformat(), "trips": 2.0}]
            )
            ref = register_model(services, "enriched", ["a", "trips"])
            with (
                control_plane(services) as api,
                gateway(settings, folder / "gateway.log") as (_, gateway_url),
            ):
                deploy(
                    services,
                    {
                        "name": "joined",
                        "variants": [{"name": "main", "model": ref}],
                        "enrichment": {"features": ["riders:trips"]},
                        "data_capture": {"enabled": True},
                    },
                )
                yield RedisPlatform(redis, services, api, gateway_url)
        finally:
            services.close()


def test_ingests_and_enriched_invocations_across_a_restart(platform: RedisPlatform) -> None:
    redis, api = platform.redis, platform.api

    def ingest(client: httpx.Client, index: int) -> httpx.Response:
        record = {"rider": f"r{index}", "time": datetime.now(UTC).isoformat(), "trips": index}
        return client.post(f"{api}/feature-groups/riders/records", json={"records": [record]})

    def invoke(client: httpx.Client, index: int) -> httpx.Response:
        return client.post(
            f"{platform.gateway}/endpoints/joined/invocations",
            json={"dataframe_records": [{"rider": "known", "a": float(index)}]},
            headers={"X-Slipway-Inference-Id": f"redis-{index}"},
        )

    with Traffic(ingest) as ingests, Traffic(invoke) as invocations:
        eventually(lambda: ingests.ok_after(0, 201), what="a first ingest accepted")
        eventually(lambda: invocations.ok_after(0, 200), what="a first enriched invocation")

        redis.stop()
        for traffic, what in ((ingests, "an ingest"), (invocations, "an invocation")):
            answer = eventually(
                lambda t=traffic: next((a for a in t.answers if a.status == 503), None),
                what=f"{what} answered 503 while Redis is down",
            )
            assert_unavailable(answer)
        with httpx.Client(timeout=30) as client:
            lookup = client.post(f"{api}/feature-groups/riders/lookup", json={"keys": ["known"]})
        assert_unavailable(Answer(-1, lookup.status_code, dict(lookup.headers), lookup.json(), 0))

        redis.start()
        up = time.monotonic()
        eventually(
            lambda: ingests.ok_after(up, 201) and invocations.ok_after(up, 200),
            what="an ingest and an invocation accepted after Redis is back",
            timeout=RECOVERY_SECONDS,
        )

    unexpected = [
        a for a in ingests.answers + invocations.answers if a.status not in (200, 201, 503)
    ]
    assert not unexpected, unexpected[:5]
    assert {a.status for a in ingests.answers} == {201, 503}
    assert {a.status for a in invocations.answers} == {200, 503}

    accepted = {f"r{a.index}": float(a.index) for a in ingests.answers if a.status == 201}
    features = platform.services.features
    records = features.get_records("riders", [[rider] for rider in accepted])
    assert [r.values["trips"] if r else None for r in records] == list(accepted.values())
    offline = {row["rider"] for row in features.read_offline("riders").to_pylist()}
    assert offline >= set(accepted)

    served = {f"redis-{a.index}" for a in invocations.answers if a.status == 200}
    eventually(
        lambda: served <= captured_ids(platform.services.settings, "joined"),
        what="every served invocation captured",
    )
