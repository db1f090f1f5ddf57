"""Point-in-time-correct training sets and SQL over feature groups, on DuckDB.

For each entity row, each requested group contributes the latest record whose event time
is at or before the row's timestamp (DuckDB ``ASOF LEFT JOIN``) and, when the group (or
the call) has a TTL, no older than that. Unmatched rows are kept with nulls, row order is
preserved, and every other entity column (labels, ids) passes through. The result comes
with a :class:`TrainingSetDefinition` naming exactly what was read — the Delta version of
every group — so a model's lineage can say which data trained it.

Only what the joins need goes through DuckDB: a row number, the record identifiers and
the timestamp of each entity row. DuckDB returns the feature values sorted by row number
(its parallel sort beat an Arrow ``take`` by the inverse permutation at 10M rows) and the
entity columns are attached again in Arrow, without a copy. A group in which no record
identifier occurs twice (a dimension such as planes by tail number) needs no as-of
search: its join is a hash ``LEFT JOIN`` on the key with the event-time condition, which
DuckDB runs several times faster than an ``ASOF`` join (which sorts both sides).

Time-window aggregations (:mod:`slipway.features.offline.windows`) are appended after the
stored features. "As known at" (``as_known_at``) also requires each feature row to have
been ingested at or before the entity row's timestamp (``_ingested_at``), so a correction
or backfill ingested later never reaches a row meant to reproduce what was knowable then.
A row is then usable from ``max(event time, ingested at)``, and the answer is the record
with the latest (event time, ingestion) among those usable at ``t``: keeping, per key,
only the rows that beat every row usable before them (a running maximum) makes that the
row usable latest, which is again an ``ASOF`` join, on the usable-from time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slipway.core.errors import InvalidInput
from slipway.features.definitions import FeatureGroup, KeyType
from slipway.features.offline.delta import DeltaOfflineStore
from slipway.features.offline.windows import check_windows, window_columns
from slipway.features.refs import FeatureRef
from slipway.features.validation import TIMESTAMP

if TYPE_CHECKING:
    from slipway.features.views.spec import WindowSpec

_ROW = "__slipway_row"
# The HTTP header a training set's definition travels in beside its Arrow stream (the
# control plane's POST /training-sets, read back by slipway.client).
DEFINITION_HEADER = "X-Slipway-Training-Set"


@dataclass(frozen=True)
class TrainingSetDefinition:
    """What a training set was built from, for lineage and reproduction."""

    feature_refs: list[str]
    timestamp_column: str
    entity_rows: int
    entity_digest: str
    group_versions: dict[str, int]
    ttl_seconds: dict[str, float | None] = field(default_factory=dict)
    # Defaults, so definitions recorded before these existed still load.
    as_known_at: bool = False
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The feature view it was computed for ({name, version, digest}), if any: a model
    # trained on it is bound to that view version.
    feature_view: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainingSet:
    data: pa.Table
    definition: TrainingSetDefinition

    def to_pandas(self) -> Any:
        return self.data.to_pandas()


def resolve_refs(
    refs: list[str], groups: dict[str, FeatureGroup], *, allow_none: bool = False
) -> dict[str, list[str]]:
    """Group name → feature names, in first-mention order; ``group:*`` expands.
    ``allow_none``: no reference is fine (a training set of windows only)."""
    if not refs and not allow_none:
        raise InvalidInput("name at least one feature", field="feature_refs")
    wanted: dict[str, list[str]] = {}
    for text in refs:
        ref = FeatureRef.parse(text)
        group = groups[ref.group]
        names = group.feature_names if ref.feature == "*" else [group.feature(ref.feature).name]
        bucket = wanted.setdefault(ref.group, [])
        bucket.extend(n for n in names if n not in bucket)
    return wanted


def entity_digest(table: pa.Table) -> str:
    """The SHA-256 of the entity rows' content: their schema, then each column whole in
    Arrow's IPC format. Independent of how the table happens to be chunked (the same
    rows read from one file or sent up in batches by the remote client hash the same),
    and built one column at a time, so it never copies the whole table."""
    digest = hashlib.sha256(table.schema.serialize())
    for name, column in zip(table.column_names, table.columns, strict=True):
        sink = pa.BufferOutputStream()
        batch = pa.record_batch([column.combine_chunks()], names=[name])
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        digest.update(sink.getvalue())  # the Arrow buffer, not a copy
    return digest.hexdigest()


def _prepare_entities(
    entities: pa.Table, timestamp_column: str, groups: list[FeatureGroup]
) -> pa.Table:
    if timestamp_column not in entities.column_names:
        raise InvalidInput(
            f"entity rows have no timestamp column {timestamp_column!r}", field="timestamp_column"
        )
    ts = entities.column(timestamp_column)
    if not pa.types.is_timestamp(ts.type):
        raise InvalidInput(f"{timestamp_column!r} must hold timestamps", field=timestamp_column)
    if ts.type.tz is None:
        raise InvalidInput(
            f"{timestamp_column!r} has no time zone; localize it (e.g. to UTC) first",
            field=timestamp_column,
        )
    if ts.null_count:
        raise InvalidInput(f"{timestamp_column!r} has null values", field=timestamp_column)
    index = entities.column_names.index(timestamp_column)
    entities = entities.set_column(index, timestamp_column, pc.cast(ts, TIMESTAMP))
    for group in groups:
        for key in group.record_identifiers:
            if key.name not in entities.column_names:
                raise InvalidInput(
                    f"entity rows lack {key.name!r}, the record identifier of {group.name!r}",
                    field=key.name,
                )
            column = entities.column(key.name)
            target = pa.string() if key.type is KeyType.STRING else pa.int64()
            if column.type != target:
                try:
                    column = pc.cast(column, target)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise InvalidInput(
                        f"entity column {key.name!r} does not convert to {target}",
                        field=key.name,
                    ) from None
                entities = entities.set_column(
                    entities.column_names.index(key.name), key.name, column
                )
    return entities.append_column(_ROW, pa.array(np.arange(entities.num_rows, dtype=np.int64)))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _keys_unique(con: duckdb.DuckDBPyConnection, view: str, keys: list[str]) -> bool:
    """Whether no record identifier occurs twice in ``view`` (one record per key).

    Then each entity row has at most one candidate, so "the latest record at or before
    the row's time" is just that record when its time qualifies: a hash join can replace
    the as-of join. A scan of the key columns, small beside the join it simplifies."""
    key = _quote(keys[0]) if len(keys) == 1 else f"({', '.join(_quote(k) for k in keys)})"
    ((unique,),) = con.execute(f"SELECT count(*) = count(DISTINCT {key}) FROM {view}").fetchall()
    return bool(unique)


def _output_name(group: str, feature: str, full_feature_names: bool) -> str:
    return f"{group}__{feature}" if full_feature_names else feature


def _known_at_view(view: str, keys: list[str], columns: str, event_time: str) -> str:
    """As known at, the rows of ``view`` that an ``ASOF`` join on ``__v`` (when a row is
    usable: its event time or, if later, its ingestion time) may pick: per key and usable
    time the latest (event time, ingestion), then only the rows whose (event time,
    ingestion) beats every row usable before them. The row usable latest at ``t`` then has
    the latest (event time, ingestion) of all rows usable at ``t``."""
    key_list = ", ".join(_quote(k) for k in keys)
    usable = (
        f"SELECT {columns}, greatest({_quote(event_time)}, _ingested_at) AS __v,"
        f" _ingest_id AS __id FROM {view} QUALIFY row_number() OVER (PARTITION BY {key_list},"
        " __v ORDER BY __t DESC, __id DESC) = 1"
    )
    return (
        f"SELECT * FROM ({usable}) QUALIFY coalesce((__t, __id) > max((__t, __id)) OVER"
        f" (PARTITION BY {key_list} ORDER BY __v ROWS BETWEEN UNBOUNDED PRECEDING"
        " AND 1 PRECEDING), true)"
    )


def build_training_set(
    store: DeltaOfflineStore,
    groups: dict[str, FeatureGroup],
    entities: pa.Table,
    refs: list[str],
    *,
    timestamp_column: str = "event_timestamp",
    ttl: timedelta | None = None,
    versions: dict[str, int] | None = None,
    full_feature_names: bool = False,
    as_known_at: bool = False,
    windows: Sequence[tuple[str, WindowSpec]] | None = None,
) -> TrainingSet:
    """The point-in-time join of ``entities`` with the referenced features, then the
    ``windows`` (output name, window), each a column after the stored features.

    ``as_known_at``: a feature row (stored, or a window's event) counts for an entity row
    only if it was ingested at or before the row's timestamp."""
    windows = list(windows or [])
    wanted = resolve_refs(refs, groups, allow_none=bool(windows))
    output_names = set(entities.column_names)  # they all pass through
    for name, features in wanted.items():
        for feature in features:
            out = _output_name(name, feature, full_feature_names)
            if out in output_names:
                raise InvalidInput(
                    f"feature {feature!r} would appear twice in the result; pass"
                    " full_feature_names=True",
                    field="feature_refs",
                )
            output_names.add(out)
    check_windows(windows, groups, taken=output_names)
    used = [groups[name] for name in dict.fromkeys([*wanted, *(w.group for _, w in windows)])]
    prepared = _prepare_entities(entities, timestamp_column, used)
    passthrough = prepared.drop_columns([_ROW])
    read_versions: dict[str, int] = {}
    ttls: dict[str, float | None] = {}
    joined = pa.table({})
    if wanted:
        joined = _join_features(
            store,
            groups,
            prepared,
            wanted,
            timestamp_column=timestamp_column,
            ttl=ttl,
            versions=versions,
            full_feature_names=full_feature_names,
            as_known_at=as_known_at,
            read_versions=read_versions,
            ttls=ttls,
        )
    columns = [*passthrough.columns, *joined.columns]
    names = [*passthrough.column_names, *joined.column_names]
    if windows:
        keys = [k for g in used for k in g.key_columns]
        computed = window_columns(
            store,
            groups,
            prepared.select(list(dict.fromkeys([_ROW, timestamp_column, *keys]))),
            windows,
            row_column=_ROW,
            timestamp_column=timestamp_column,
            # A group also read for stored features is read at the same version.
            versions={**(versions or {}), **read_versions},
            as_known_at=as_known_at,
        )
        read_versions.update(computed.group_versions)
        columns += computed.data.columns
        names += computed.data.column_names
    data = pa.Table.from_arrays(columns, names=names)
    definition = TrainingSetDefinition(
        feature_refs=[f"{g}:{f}" for g, fs in wanted.items() for f in fs],
        timestamp_column=timestamp_column,
        entity_rows=entities.num_rows,
        entity_digest=entity_digest(entities),
        group_versions=read_versions,
        ttl_seconds=ttls,
        as_known_at=as_known_at,
        windows={name: window.model_dump(mode="json") for name, window in windows},
    )
    return TrainingSet(data, definition)


def _join_features(
    store: DeltaOfflineStore,
    groups: dict[str, FeatureGroup],
    prepared: pa.Table,
    wanted: dict[str, list[str]],
    *,
    timestamp_column: str,
    ttl: timedelta | None,
    versions: dict[str, int] | None,
    full_feature_names: bool,
    as_known_at: bool,
    read_versions: dict[str, int],
    ttls: dict[str, float | None],
) -> pa.Table:
    """The stored features of every entity row, in row order (``read_versions`` and
    ``ttls`` are filled in with what was read)."""
    join_columns = [_ROW, timestamp_column]
    for name in wanted:
        join_columns.extend(k for k in groups[name].key_columns if k not in join_columns)
    con = duckdb.connect()
    try:
        con.register("__entities", prepared.select(join_columns))
        selects = [f"e.{_ROW}"]
        joins = []
        for n, (name, features) in enumerate(wanted.items()):
            group = groups[name]
            version = (versions or {}).get(name)
            dataset = store.dataset(name, version=version)
            read_versions[name] = store.current_version(name, version)
            view = f"__g{n}"
            con.register(view, dataset)
            keys = group.key_columns
            key_list = ", ".join(_quote(k) for k in keys)
            feature_list = ", ".join(_quote(f) for f in features)
            alias = f"g{n}"
            # As known at, a row is usable from its event time or its ingestion, if later.
            usable = "__v" if as_known_at else "__t"
            condition = (
                f"{' AND '.join(f'e.{_quote(k)} = {alias}.{_quote(k)}' for k in keys)}"
                f" AND e.{_quote(timestamp_column)} >= {alias}.{usable}"
            )
            columns = f"{key_list}, {_quote(group.event_time)} AS __t, {feature_list}"
            if _keys_unique(con, view, keys):
                if as_known_at:
                    columns += f", greatest({_quote(group.event_time)}, _ingested_at) AS __v"
                joins.append(f"LEFT JOIN (SELECT {columns} FROM {view}) {alias} ON {condition}")
            elif as_known_at:
                known = _known_at_view(view, keys, columns, group.event_time)
                joins.append(f"ASOF LEFT JOIN ({known}) {alias} ON {condition}")
            else:
                # Two ingests of one (key, event time): the later ingest's record wins.
                joins.append(
                    f"ASOF LEFT JOIN (SELECT {columns} FROM {view}"
                    f" QUALIFY row_number() OVER (PARTITION BY {key_list},"
                    f" {_quote(group.event_time)} ORDER BY _ingest_id DESC) = 1) {alias}"
                    f" ON {condition}"
                )
            limit = ttl if ttl is not None else group.ttl
            ttls[name] = limit.total_seconds() if limit is not None else None
            for feature in features:
                out = _output_name(name, feature, full_feature_names)
                value = f"{alias}.{_quote(feature)}"
                if limit is not None:
                    micros = int(limit.total_seconds() * 1_000_000)
                    value = (
                        f"CASE WHEN epoch_us(e.{_quote(timestamp_column)}) - epoch_us({alias}.__t)"
                        f" <= {micros} THEN {value} END"
                    )
                selects.append(f"{value} AS {_quote(out)}")
        sql = f"SELECT {', '.join(selects)} FROM __entities e {' '.join(joins)}"
        joined = con.sql(f"{sql} ORDER BY e.{_ROW}").to_arrow_table().drop_columns([_ROW])
        if joined.num_rows != prepared.num_rows:  # left joins with at most one match each
            raise RuntimeError(f"the join gave {joined.num_rows} rows for {prepared.num_rows}")
    finally:
        con.close()
    return joined


def run_query(store: DeltaOfflineStore, groups: list[str], sql: str) -> pa.Table:
    """Run read-only ``sql`` with every named group available as a table (its latest data).

    Group names contain ``-`` so quote them in SQL: ``SELECT * FROM "weather-hourly"``.
    """
    stripped = sql.strip().rstrip(";").lstrip("(").lower()
    if not (stripped.startswith("select") or stripped.startswith("with")):
        raise InvalidInput("only SELECT queries are allowed", field="sql")
    con = duckdb.connect()
    try:
        for name in groups:
            try:
                con.register(name, store.dataset(name))
            except Exception:  # a group without offline data is simply not a table
                continue
        con.execute("SET enable_external_access = false")
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise InvalidInput(f"query failed: {exc}", field="sql") from None
    finally:
        con.close()
