"""Online-feature enrichment: what an enriched endpoint joins to each request's rows
before predicting, in one batched read per request.

Two kinds, one interface (:meth:`enrich`, :meth:`captured`, ``key_fields`` and
``allowed_extra``). :class:`FeatureEnricher` joins stored features named one by one.
:class:`ViewEnricher` computes a feature view — stored features, windows ending at the
request's time, then the row-level transformations over the request's fields — through
the reader the training set's definitions are read with online
(:class:`~slipway.features.views.online.OnlineView`), so the model is fed the columns it
was trained on, computed the same way. It loads the view version the endpoint's config
pinned once, when the config loads: a request reads the online store and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slipway.core.db.engine import Database
from slipway.core.errors import InvalidInput
from slipway.core.events import EventLog
from slipway.features.definitions import KeyType
from slipway.features.refs import FeatureRef
from slipway.features.store import FeatureStore
from slipway.features.views.online import OnlineColumns, OnlineView
from slipway.features.views.service import FeatureViews
from slipway.registry.predict import Batch
from slipway.serving.gateway.capture import Captured
from slipway.serving.spec import EnrichmentSpec, OnMissing


@dataclass
class Enriched:
    """A request's columns with the features joined; for a view, what it computed."""

    columns: dict[str, list[Any]]
    view: OnlineColumns | None = None


def _absent(index: int, entity: dict[str, Any], names: list[str], field: str) -> InvalidInput:
    return InvalidInput(
        f"row {index}: no online features for entity {entity} ({', '.join(names)})",
        field=field,
        details={"row": index, "entity": entity},
    )


def _lacking(fields: list[str], columns: dict[str, list[Any]]) -> None:
    missing = [f for f in fields if f not in columns]
    if missing:
        raise InvalidInput(
            f"the request lacks entity key column(s) {', '.join(missing)}", field=missing[0]
        )


class FeatureEnricher:
    """Joins stored features named one by one (``enrichment.features``)."""

    def __init__(self, spec: EnrichmentSpec, features: FeatureStore) -> None:
        self.spec = spec
        self.features = features
        self.names = [FeatureRef.parse(ref, field="features").feature for ref in spec.features]
        self.key_fields: list[str] = []  # request fields carrying entity keys
        self.allowed_extra: list[str] = []  # request columns beside the model's

    def prepare(self) -> None:
        """Learn which request fields carry the entity keys (raises for unknown groups)."""
        renamed = {column: field for field, column in self.spec.entity_keys.items()}
        keys = self.features.entity_keys(self.spec.features)
        self.key_fields = [renamed.get(column, column) for column in keys]
        self.allowed_extra = list(self.key_fields)

    def enrich(self, columns: dict[str, list[Any]], rows: int, at_us: int) -> Enriched:
        """``columns`` with the features joined (the online store's latest values: they
        hold no history to read at ``at_us``)."""
        lookup = {field: column for field, column in self.spec.entity_keys.items()}
        _lacking(self.key_fields, columns)
        entity_rows = [
            {lookup.get(f, f): columns[f][i] for f in self.key_fields} for i in range(rows)
        ]
        vectors = self.features.get_online_features(self.spec.features, entity_rows)
        if self.spec.on_missing is OnMissing.ERROR:
            for index, vector in enumerate(vectors):
                if vector.missing or vector.stale:
                    raise _absent(
                        index,
                        entity_rows[index],
                        vector.missing + vector.stale,
                        self.key_fields[0],
                    )
        out = dict(columns)
        for name in self.names:
            out[name] = [v.values.get(name) for v in vectors]
        return Enriched(out)

    def captured(self, enriched: Enriched, batch: Batch) -> Captured | None:
        return None  # the model's inputs, as without enrichment


class ViewEnricher:
    """Computes a feature view's columns (``enrichment.feature_view``, pinned to a
    version when the config was stored) for each request, as of the request's time."""

    def __init__(self, spec: EnrichmentSpec, features: FeatureStore, db: Database) -> None:
        self.spec = spec
        self.features = features
        self.db = db
        self.key_fields: list[str] = []
        self.allowed_extra: list[str] = []

    def prepare(self) -> None:
        """Load the pinned view version and compile it (its Python transformations
        imported), with the definitions of the groups it reads: once per config."""
        pinned = self.spec.view
        assert pinned is not None  # built only for an enrichment naming a view
        name, version = pinned
        if version is None:  # the endpoint service pins every stored config
            raise InvalidInput(
                f"feature view {name!r} is not pinned to a version", field="enrichment"
            )
        view = FeatureViews(self.db, self.features, EventLog(self.db)).get(name, version)
        spec = view.spec
        names = [FeatureRef.parse(ref).group for ref in spec.features] + [
            t.window.group for t in spec.transformations if t.window is not None
        ]
        groups = {group: self.features.repo.get(group).spec for group in dict.fromkeys(names)}
        self.reader = OnlineView(view, groups)
        kinds: dict[str, str] = {}
        for group in groups.values():
            for identifier in group.record_identifiers:
                kinds.setdefault(
                    identifier.name, "int" if identifier.type is KeyType.INT else "string"
                )
        renamed = {column: field for field, column in self.spec.entity_keys.items()}
        self.key_columns = list(view.entity_keys)
        self.key_fields = [renamed.get(column, column) for column in self.key_columns]
        self.key_types = [kinds.get(column) for column in self.key_columns]
        self.request_fields = list(spec.request_fields)
        self.outputs = list(self.reader.outputs)
        self.allowed_extra = [*self.key_fields, *self.request_fields, *self.outputs]
        self.view_name = view.name

    def enrich(self, columns: dict[str, list[Any]], rows: int, at_us: int) -> Enriched:
        """``columns`` with every column of the view, windows ending at ``at_us``: one
        computation for all the rows."""
        _lacking(self.key_fields, columns)
        for field in self.request_fields:
            if field not in columns:
                raise InvalidInput(
                    f"the request has no {field!r}, which feature view {self.view_name!r} needs",
                    field=field,
                )
        names = [*self.key_columns, *self.request_fields]
        given = [columns[f] for f in (*self.key_fields, *self.request_fields)]
        entity_rows = [dict(zip(names, values, strict=True)) for values in zip(*given, strict=True)]
        computed = self.reader.read(
            self.features.online, self.features.get_online_features, entity_rows, at_us
        )
        if computed.absent and self.spec.on_missing is OnMissing.ERROR:
            index = min(computed.absent)
            entity = {c: entity_rows[index][c] for c in self.key_columns}
            raise _absent(index, entity, computed.absent[index], self.key_fields[0])
        out = dict(columns)
        for name, array in computed.arrays.items():
            out[name] = array.to_pylist()
        return Enriched(out, computed)

    def captured(self, enriched: Enriched, batch: Batch) -> Captured | None:
        """The entity keys and request fields as sent, every column of the view as
        computed, then the model's other inputs as it read them."""
        view = enriched.view
        assert view is not None
        names: list[str] = []
        values: list[Any] = []
        types: list[str | None] = []
        for field, kind in zip(self.key_fields, self.key_types, strict=True):
            names.append(field)
            values.append(enriched.columns[field])
            types.append(kind)
        for name, array in (*view.request.items(), *view.arrays.items()):
            if name not in names:
                names.append(name)
                values.append(array)
                types.append(None)
        for name, array in zip(batch.names, batch.arrays, strict=True):
            if name not in names:
                names.append(name)
                values.append(array)
                types.append(None)
        return Captured(tuple(names), tuple(values), tuple(types))


Enricher = FeatureEnricher | ViewEnricher


def build_enricher(spec: EnrichmentSpec, features: FeatureStore, db: Database) -> Enricher:
    """The enricher of ``spec``, prepared (raises what keeps it from serving)."""
    enricher: Enricher = (
        ViewEnricher(spec, features, db)
        if spec.feature_view is not None
        else FeatureEnricher(spec, features)
    )
    enricher.prepare()
    return enricher
