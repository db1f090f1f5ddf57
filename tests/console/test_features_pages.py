"""The feature groups pages: the searchable, paged list with freshness; a group's schema,
statistics with histograms, and its ingestion history with Delta versions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from slipway.console.pages import features as features_page
from slipway.core.errors import InvalidInput
from slipway.security.tokens import Role
from slipway.services import Services
from tests.console.conftest import sign_in

WEATHER = {
    "name": "weather",
    "record_identifiers": [{"name": "origin"}],
    "event_time": "time_hour",
    "features": [
        {"name": "temp", "type": "float", "description": "air temperature, °C"},
        {"name": "wind", "type": "int"},
        {"name": "desc", "type": "string"},
    ],
    "ttl": 86400 * 7,
    "description": "hourly weather by airport",
}


def _rows(n: int, *, minutes_ago: int = 3, desc: str = "sunny") -> list[dict[str, object]]:
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return [
        {
            "origin": f"A{i}",
            "time_hour": moment - timedelta(seconds=i),
            "temp": float(i),
            "wind": i % 3,
            "desc": desc if i % 4 else None,
        }
        for i in range(n)
    ]


def _rows_of(page: str, table: str) -> list[str]:
    """The ``data-*`` attribute values of a table's rows, in order."""
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-[a-z]+="([^"]+)"', body)


def test_empty_state_names_the_command(console: TestClient) -> None:
    page = console.get("/features")
    assert page.status_code == 200
    assert "<h1>Feature groups</h1>" in page.text
    assert "slipway features create -f feature_group.yaml" in page.text
    assert '<label for="q">' in page.text and 'id="q" name="q"' in page.text


def test_list_searches_on_the_server_and_pages(console: TestClient, services: Services) -> None:
    for n in range(51):
        services.features.create_group(
            WEATHER | {"name": f"g{n:02d}", "description": "flights" if n % 10 else "delays"}
        )
    first = console.get("/features")
    assert len(_rows_of(first.text, "feature-groups")) == 50
    assert 'rel="next"' in first.text and "1-50 of 51" in first.text
    second = console.get("/features", params={"page": 2})
    assert _rows_of(second.text, "feature-groups") == ["g50"]
    found = console.get("/features", params={"q": "DELAYS"})  # the description matches
    assert _rows_of(found.text, "feature-groups") == ["g00", "g10", "g20", "g30", "g40", "g50"]
    assert _rows_of(console.get("/features", params={"q": "g4"}).text, "feature-groups") == [
        "g40",
        "g41",
        "g42",
        "g43",
        "g44",
        "g45",
        "g46",
        "g47",
        "g48",
        "g49",
    ]
    none = console.get("/features", params={"q": "nothing-like-it"})
    assert "No feature group" in none.text and "nothing-like-it" in none.text
    assert "slipway features create" not in none.text
    assert console.get("/features", params={"page": "x"}).status_code == 400


def test_list_row_shows_keys_stores_records_and_freshness(
    console: TestClient, services: Services
) -> None:
    services.features.create_group(WEATHER)
    services.features.create_group(WEATHER | {"name": "archive", "online": False})
    services.features.ingest("weather", _rows(4, minutes_ago=3))
    services.features.ingest("archive", _rows(5, minutes_ago=120))
    page = console.get("/features").text
    weather = page.split('data-group="weather"', 1)[1].split("</tr>", 1)[0]
    assert "<code>origin</code>" in weather and "online · offline" in weather
    assert ">3<" in weather  # features
    assert ">4</td>" in weather  # keys in the online store
    assert "3 min ago" in weather  # newest event time
    assert " s ago" in weather  # last ingest, just now
    archive = page.split('data-group="archive"', 1)[1].split("</tr>", 1)[0]
    assert ">offline<" in archive and ">5</td>" in archive and "2 h ago" in archive


def test_group_page_shows_schema_statistics_and_histograms(
    console: TestClient, services: Services
) -> None:
    services.features.create_group(WEATHER | {"description": "<script>alert(1)</script>"})
    services.features.ingest("weather", _rows(12), actor="alice")
    page = console.get("/features/weather")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Feature group weather</h1>" in text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    assert _rows_of(text, "schema-table") == ["temp", "wind", "desc"]
    assert "air temperature, °C" in text and "7 d" in text  # description, TTL
    assert "<code>time_hour</code>" in text and "12 records" in text
    stats = text.split('id="statistics-table"', 1)[1].split("</table>", 1)[0]
    temp = stats.split('data-feature="temp"', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'<td class="num">([^<]*)</td>', temp) == ["12", "0", "5.5", "0", "11"]
    desc = stats.split('data-feature="desc"', 1)[1].split("</tr>", 1)[0]
    assert "sunny (9)" in desc and '<td class="num">3</td>' in desc  # 3 missing
    for feature in ("temp", "wind", "desc"):
        figure = text.split(f'data-histogram="{feature}"', 1)[1].split("</figure>", 1)[0]
        assert '<rect class="bar"' in figure
    wind = text.split('data-histogram="wind"', 1)[1].split("</figure>", 1)[0]
    assert wind.count('<rect class="bar"') == 3  # one bar per value 0, 1, 2


def test_ingest_history_has_versions_actors_and_pages(
    console: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.features.create_group(WEATHER)
    first = services.features.ingest("weather", _rows(4, desc="rain"), actor="alice")
    services.features.ingest("weather", _rows(6), actor="bob")
    services.features.ingest_stream_batch("weather", _rows(2), source="weather-topic/0")
    with pytest.raises(InvalidInput):  # no event time: recorded as a failed ingestion
        services.features.ingest("weather", [{"origin": "A1"}], actor="carol")
    monkeypatch.setattr(features_page, "PAGE_SIZE", 3)
    page = console.get("/features/weather").text
    history = page.split('id="ingest-history"', 1)[1].split("</table>", 1)[0]
    assert _rows_of(page, "ingest-history") == ["4", "3", "2"]
    failed, streamed, by_bob = (history.split(f'data-ingest="{n}"', 1)[1] for n in (4, 3, 2))
    assert "status-failed" in failed and "time_hour" in failed.split("</tr>")[0]
    assert "weather-topic/0" in streamed and ">2</td>" in streamed.split("</tr>")[0]
    row = by_bob.split("</tr>", 1)[0]
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["6", "1"]  # rows, version
    assert "bob" in row and "rest" not in row
    assert 'id="dead-letters"' in page and "TOPIC.dlq" in page
    assert "Latest ingestion 3" in page
    older = console.get("/features/weather", params={"page": 2}).text
    assert _rows_of(older, "ingest-history") == ["1"]
    assert "alice" in older and 'rel="prev"' in older
    chosen = console.get("/features/weather", params={"ingest": first.id}).text
    assert f"Ingestion {first.id}:" in chosen and "rain (3)" in chosen


def test_unknown_group_and_ingestion_are_404_pages(console: TestClient, services: Services) -> None:
    missing = console.get("/features/nope")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"] and "nope" in missing.text
    services.features.create_group(WEATHER)
    assert console.get("/features/weather", params={"ingest": 99}).status_code == 404
    assert console.get("/features/weather", params={"ingest": 2**70}).status_code == 400
    empty = console.get("/features/weather")
    assert empty.status_code == 200
    assert "slipway features ingest weather data.parquet" in empty.text


def test_a_viewer_reads_the_pages(auth_console: TestClient, auth_services: Services) -> None:
    auth_services.features.create_group(WEATHER)
    token = auth_services.tokens.create("reader", Role.VIEWER, created_by="test")[1]
    assert auth_console.get("/features", follow_redirects=False).status_code == 303
    sign_in(auth_console, token)
    assert 'data-group="weather"' in auth_console.get("/features").text
    assert auth_console.get("/features/weather").status_code == 200


def test_pages_show_the_workspace_of_the_link(console: TestClient, services: Services) -> None:
    services.workspaces.create("team-a")
    services.in_workspace("team-a").features.create_group(WEATHER | {"name": "clicks"})
    assert 'data-group="clicks"' not in console.get("/features").text
    listing = console.get("/features", params={"ws": "team-a"}).text
    assert 'href="/features/clicks?ws=team-a"' in listing
    assert 'name="ws" value="team-a"' in listing  # the search stays in the workspace
    assert console.get("/features/clicks").status_code == 404
    assert console.get("/features/clicks", params={"ws": "team-a"}).status_code == 200
