"""Feature views of one workspace: defined, versioned, checked against the groups they
read.

A definition is stored as a new version only when it changed (the digest of its
canonical JSON differs from the latest version's), so applying the same view twice is a
no-op; old versions stay readable, because a model version is bound to the view version
it was trained on. Checks run before anything is written: every feature reference names
an existing group and feature, every window an existing group (and a numeric column for
sum, mean, min and max), every transformation's declared type matches what it computes.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
from slipway.core.workspace import scoped_resource
from slipway.features.codec import micros
from slipway.features.definitions import FeatureGroup, FeatureType
from slipway.features.materialize import backfill_events
from slipway.features.offline.training import TrainingSet, build_training_set
from slipway.features.refs import FeatureRef
from slipway.features.store import FeatureStore
from slipway.features.validation import as_arrow
from slipway.features.views.online import OnlineView
from slipway.features.views.resources import FeatureView
from slipway.features.views.rows import RowTransforms
from slipway.features.views.spec import FeatureViewSpec
from slipway.features.views.tables import FeatureViewRow
from slipway.security.audit import AuditLog, local_actor

# How long a compiled online reader is reused, and how many are kept.
COMPILED_SECONDS = 2.0
COMPILED_READERS = 256
# How long get_online trusts its last look-up of which version a name (or name and
# version) means, as Feast's registry cache does (600 s there): a view applied or deleted
# by another process counts within this time; by this process, at once.
LOOKUP_SECONDS = 1.0

_NUMERIC = {FeatureType.INT, FeatureType.FLOAT, FeatureType.BOOL}
_WINDOW_TYPE = {"count": "int", "sum": "float", "mean": "float", "min": None, "max": None}


def _digest(spec: FeatureViewSpec) -> str:
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _value_type(feature_type: FeatureType) -> str:
    return feature_type.value if feature_type in (*_NUMERIC, FeatureType.STRING) else "other"


class FeatureViews:
    """The feature views of one workspace (:meth:`in_workspace` gives another's)."""

    def __init__(
        self,
        db: Database,
        store: FeatureStore,
        events: EventLog,
        audit: AuditLog | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.groups = store.repo
        self.events = events
        self.audit = audit or AuditLog(db)
        self.workspace = store.workspace
        # Compiled online readers by (workspace, name, version, digest), shared with the
        # other workspaces' views of this one: (when compiled, reader), oldest first.
        self._compiled: dict[tuple[str, str, int, str], tuple[float, OnlineView]] = {}
        self._compiled_lock = threading.Lock()
        # get_online's look-ups by (workspace, name, version asked or None): (when, the
        # version and digest found); under the same lock.
        self._lookups: dict[tuple[str, str, int | None], tuple[float, int, str]] = {}

    def in_workspace(self, workspace: str) -> FeatureViews:
        other = FeatureViews(self.db, self.store.in_workspace(workspace), self.events, self.audit)
        other._compiled, other._compiled_lock = self._compiled, self._compiled_lock
        other._lookups = self._lookups
        return other

    def _forget_lookups(self, name: str) -> None:
        """This process changed the view: its next read looks it up again."""
        with self._compiled_lock:
            for key in [k for k in self._lookups if k[:2] == (self.workspace, name)]:
                del self._lookups[key]

    # -- checks ----------------------------------------------------------------------

    def _definitions(self) -> dict[str, FeatureGroup]:
        return {stored.spec.name: stored.spec for stored in self.groups.all()}

    def describe_columns(
        self, spec: FeatureViewSpec, groups: Mapping[str, FeatureGroup]
    ) -> tuple[builtins.list[str], dict[str, str]]:
        """The entity keys ``spec`` needs and the columns its stored features and windows
        produce (name -> type); :class:`InvalidInput` naming the field of anything that
        does not resolve."""
        keys: list[str] = []
        columns: dict[str, str] = {}

        def group_of(name: str, field: str) -> FeatureGroup:
            group = groups.get(name)
            if group is None:
                raise InvalidInput(f"feature group {name!r} does not exist", field=field)
            for key in group.key_columns:
                if key not in keys:
                    keys.append(key)
            return group

        for index, text in enumerate(spec.features):
            field = f"features.{index}"
            ref = FeatureRef.parse(text, field=field)
            group = group_of(ref.group, field)
            names = group.feature_names if ref.every_feature else [ref.feature]
            for name in names:
                found = next((f for f in group.features if f.name == name), None)
                if found is None:
                    raise InvalidInput(
                        f"feature group {group.name!r} has no feature {name!r}", field=field
                    )
                if name in columns:
                    raise InvalidInput(f"feature {name!r} is named twice", field=field)
                columns[name] = _value_type(found.type)
        for index, transformation in enumerate(spec.transformations):
            window = transformation.window
            if window is None:
                continue  # row-level: RowTransforms checks and types them
            field = f"transformations.{index}.window"
            group = group_of(window.group, f"{field}.group")
            kind: str | None = _WINDOW_TYPE.get(window.function)
            if window.column is not None:
                found = next((f for f in group.features if f.name == window.column), None)
                if found is None:
                    raise InvalidInput(
                        f"feature group {group.name!r} has no feature {window.column!r}",
                        field=f"{field}.column",
                    )
                # Strings order the same way on both paths (DuckDB compares UTF-8 bytes,
                # Python code points: one order), so min and max take them; sum and mean
                # need numbers. Other types (timestamps, lists) are not aggregated.
                accepted = _NUMERIC | (
                    {FeatureType.STRING} if window.function in ("min", "max") else set()
                )
                if window.function in ("sum", "mean", "min", "max") and (
                    found.type not in accepted
                ):
                    needs = (
                        "a numeric" if window.function in ("sum", "mean") else "a numeric or string"
                    )
                    raise InvalidInput(
                        f"{window.function} needs {needs} feature; {window.column!r} is"
                        f" {found.type.value}",
                        field=f"{field}.column",
                    )
                if kind is None:  # min, max, last: the column's own type
                    kind = _value_type(found.type)
            columns[transformation.name] = kind or "int"
        return keys, columns

    # -- changes ---------------------------------------------------------------------

    def apply(
        self,
        spec: FeatureViewSpec | Mapping[str, Any],
        *,
        actor: str | None = None,
        confined: bool = False,
    ) -> FeatureView:
        """Store ``spec`` as the view's next version, unless the latest version is the
        same definition (then that version is answered and nothing is written).
        ``confined``: it came through the API, whose caller's Python transformations were
        checked against the allowed modules and are not imported here."""
        parsed = parse_spec(FeatureViewSpec, spec)
        keys, columns = self.describe_columns(parsed, self._definitions())
        # Every expression's and function's declared type against what it computes from
        # the columns before it; a Python function is imported unless the caller is
        # confined (the API checked its module against code.allowed_modules instead).
        transforms = RowTransforms(parsed, resolve_python=not confined)
        columns.update(transforms.check(columns))
        digest = _digest(parsed)
        who = actor or local_actor()
        with self.db.write() as session:
            latest = self._latest_row(session, parsed.name)
            if latest is not None and latest.digest == digest:
                return self._resource(latest, keys, columns)
            version = 1 if latest is None else latest.version + 1
            row = FeatureViewRow(
                workspace=self.workspace,
                name=parsed.name,
                version=version,
                spec=parsed.model_dump(mode="json"),
                digest=digest,
                created_by=who,
                created_at=utcnow(),
            )
            session.add(row)
            resource = scoped_resource(self.workspace, f"feature-view/{parsed.name}")
            self.events.append(
                "feature_view.created" if version == 1 else "feature_view.updated",
                resource,
                {"version": version, "digest": digest},
                session=session,
            )
            self.audit.changed(
                actor,
                "feature_view.create" if version == 1 else "feature_view.update",
                resource,
                {"version": version},
                session=session,
            )
            session.flush()
            stored = self._resource(row, keys, columns)
        self._forget_lookups(parsed.name)
        self.backfill(stored)
        return stored

    def backfill(self, view: FeatureView | str) -> dict[str, int]:
        """Fill the online event log of every group ``view`` aggregates from its offline
        data (events ingested before the view existed); idempotent. Returns the events
        written per group. Ingestion keeps the log current from then on."""
        if isinstance(view, str):
            view = self.get(view)
        self.store.horizons.forget()
        written: dict[str, int] = {}
        definitions = self._definitions()
        for transformation in view.spec.transformations:
            window = transformation.window
            if window is None or window.group in written:
                continue
            group = definitions[window.group]
            horizon = self.store.horizons(window.group)
            if not group.online or horizon is None or not group.offline:
                continue
            if self.store.offline.version(window.group) is None:
                continue  # nothing ingested yet
            written[window.group] = backfill_events(
                self.store.offline, self.store.online, group, horizon
            )
        return written

    # -- computing a view --------------------------------------------------------------

    def get_online(
        self,
        name: str,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        version: int | None = None,
        at: datetime | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """The view's columns for each entity row (its keys and request fields) from the
        online store, windows ending at ``at`` (now by default).

        Which version the name means is looked up at most every :data:`LOOKUP_SECONDS`
        (a version applied by this process counts at once, by another within that time);
        its compiled reader is kept for :data:`COMPILED_SECONDS`, so a read costs what the
        gateway's does, not a metadata query and a parse of the view and its groups."""
        if at is not None and at.tzinfo is None:
            raise InvalidInput("at needs a time zone", field="at")
        reader = self._online_reader(name, version)
        if not entity_rows:
            raise InvalidInput("give at least one entity row", field="entity_rows")
        read = reader.read(
            self.store.online, self.store.get_online_features, entity_rows, micros(at or utcnow())
        )
        return read.rows()

    def check_online(self, view: FeatureView) -> None:
        """Raise :class:`InvalidInput` unless ``view`` can be read online: every group it
        reads stored features or windows from exists and keeps an online store (an
        endpoint enriched by it would otherwise fail when its gateways load it)."""
        groups = self._definitions()
        names = [FeatureRef.parse(text).group for text in view.spec.features]
        names += [t.window.group for t in view.spec.transformations if t.window is not None]
        for group_name in dict.fromkeys(names):
            group = groups.get(group_name)
            if group is None:
                raise InvalidInput(f"feature group {group_name!r} does not exist", field="view")
            if not group.online:
                raise InvalidInput(
                    f"feature view {view.name!r} reads feature group {group_name!r}, which is"
                    " offline-only: it cannot be computed online",
                    field="view",
                )

    def _online_reader(self, name: str, version: int | None) -> OnlineView:
        validate_name(name, field="name")
        version, digest = self._look_up(name, version)
        key = (self.workspace, name, version, digest)
        now = time.monotonic()
        with self._compiled_lock:
            cached = self._compiled.get(key)
            if cached is not None and now - cached[0] < COMPILED_SECONDS:
                return cached[1]
        # Groups may evolve (a feature added): the reader is rebuilt now and then.
        reader = OnlineView(self.get(name, key[2]), self._definitions())
        with self._compiled_lock:
            self._compiled[key] = (now, reader)
            while len(self._compiled) > COMPILED_READERS:
                self._compiled.pop(next(iter(self._compiled)))
        return reader

    def _look_up(self, name: str, version: int | None) -> tuple[int, str]:
        """The version (the latest when ``version`` is None) and digest a name means,
        from a look-up at most :data:`LOOKUP_SECONDS` old."""
        asked = (self.workspace, name, version)
        now = time.monotonic()
        with self._compiled_lock:
            known = self._lookups.get(asked)
        if known is not None and now - known[0] < LOOKUP_SECONDS:
            return known[1], known[2]
        query = select(FeatureViewRow.version, FeatureViewRow.digest).where(
            FeatureViewRow.workspace == self.workspace, FeatureViewRow.name == name
        )
        if version is None:
            query = query.order_by(FeatureViewRow.version.desc()).limit(1)
        else:
            query = query.where(FeatureViewRow.version == version)
        with self.db.session() as session:
            found = session.execute(query).first()
        if found is None:
            which = "" if version is None else f" version {version}"
            raise NotFound(f"feature view {name!r}{which} does not exist")
        with self._compiled_lock:
            self._lookups[asked] = (now, int(found[0]), str(found[1]))
            while len(self._lookups) > COMPILED_READERS:
                self._lookups.pop(next(iter(self._lookups)))
        return int(found[0]), str(found[1])

    def training_set(
        self,
        name: str,
        entities: Any,
        *,
        version: int | None = None,
        timestamp_column: str = "event_timestamp",
        as_known_at: bool = False,
        versions: dict[str, int] | None = None,
    ) -> TrainingSet:
        """The view's columns for each entity row (a DataFrame or Arrow table holding the
        keys, the timestamp and the request fields) as of the row's timestamp: stored
        features point-in-time, windows ending at the timestamp, then the row-level
        transformations — the same definitions the online read computes. ``as_known_at``:
        only what had been ingested by each row's timestamp counts; ``versions`` pins
        groups to Delta versions (to rebuild a recorded training set). The definition
        names the view and its version, for the lineage of a model trained on it."""
        view = self.get(name, version)
        spec = view.spec
        groups = self._definitions()
        windows = [(t.name, t.window) for t in spec.transformations if t.window is not None]
        table = as_arrow(entities)
        built = build_training_set(
            self.store.offline,
            groups,
            table,
            list(spec.features),
            timestamp_column=timestamp_column,
            as_known_at=as_known_at,
            windows=windows,
            versions=versions,
        )
        transforms = RowTransforms(spec)
        columns = {n: built.data.column(n) for n in built.data.column_names}
        computed = transforms.apply(columns, length=built.data.num_rows)
        data = built.data
        for output in transforms.outputs:
            data = data.append_column(output, computed[output])
        definition = dataclasses.replace(
            built.definition,
            feature_view={"name": view.name, "version": view.version, "digest": view.digest},
        )
        return TrainingSet(data, definition)

    def delete(self, name: str, *, actor: str | None = None) -> None:
        """Delete every version of the view. Models trained on it keep its definition's
        digest in their lineage."""
        validate_name(name, field="name")
        with self.db.write() as session:
            rows = session.scalars(
                select(FeatureViewRow).where(
                    FeatureViewRow.workspace == self.workspace, FeatureViewRow.name == name
                )
            ).all()
            if not rows:
                raise NotFound(f"feature view {name!r} does not exist")
            for row in rows:
                session.delete(row)
            resource = scoped_resource(self.workspace, f"feature-view/{name}")
            self.events.append("feature_view.deleted", resource, {}, session=session)
            self.audit.changed(actor, "feature_view.delete", resource, {}, session=session)
        self._forget_lookups(name)

    # -- reads -----------------------------------------------------------------------

    def get(self, name: str, version: int | None = None) -> FeatureView:
        """The view's latest version, or ``version``."""
        validate_name(name, field="name")
        with self.db.session() as session:
            if version is None:
                row = self._latest_row(session, name)
            else:
                row = session.get(FeatureViewRow, (self.workspace, name, version))
            if row is None:
                which = "" if version is None else f" version {version}"
                raise NotFound(f"feature view {name!r}{which} does not exist")
            return self._described(row)

    def list(self) -> Listing[FeatureView]:
        """The latest version of every view, by name."""
        with self.db.session() as session:
            newest = (
                select(FeatureViewRow.name, func.max(FeatureViewRow.version).label("version"))
                .where(FeatureViewRow.workspace == self.workspace)
                .group_by(FeatureViewRow.name)
                .subquery()
            )
            rows = session.scalars(
                select(FeatureViewRow)
                .join(
                    newest,
                    (FeatureViewRow.name == newest.c.name)
                    & (FeatureViewRow.version == newest.c.version),
                )
                .where(FeatureViewRow.workspace == self.workspace)
                .order_by(FeatureViewRow.name)
            ).all()
            return Listing(self._described(row) for row in rows)

    def versions(self, name: str) -> Listing[FeatureView]:
        validate_name(name, field="name")
        with self.db.session() as session:
            rows = session.scalars(
                select(FeatureViewRow)
                .where(FeatureViewRow.workspace == self.workspace, FeatureViewRow.name == name)
                .order_by(FeatureViewRow.version)
            ).all()
            if not rows:
                raise NotFound(f"feature view {name!r} does not exist")
            return Listing(self._described(row) for row in rows)

    def _latest_row(self, session: Session, name: str) -> FeatureViewRow | None:
        return session.scalars(
            select(FeatureViewRow)
            .where(FeatureViewRow.workspace == self.workspace, FeatureViewRow.name == name)
            .order_by(FeatureViewRow.version.desc())
            .limit(1)
        ).first()

    def _described(self, row: FeatureViewRow) -> FeatureView:
        spec = FeatureViewSpec.model_validate(row.spec)
        try:
            keys, columns = self.describe_columns(spec, self._definitions())
        except InvalidInput:
            keys, columns = [], {}  # a group it reads was deleted since
        columns.update(RowTransforms(spec, resolve_python=False).outputs)
        return self._resource(row, keys, columns)

    def _resource(
        self, row: FeatureViewRow, keys: builtins.list[str], columns: dict[str, str]
    ) -> FeatureView:
        return FeatureView(
            name=row.name,
            version=row.version,
            spec=FeatureViewSpec.model_validate(row.spec),
            digest=row.digest,
            entity_keys=keys,
            columns=columns,
            created_by=row.created_by,
            created_at=row.created_at,
        )
