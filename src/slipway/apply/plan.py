"""The plan: what apply would do to a platform to make it match a spec set.

Planning reads the platform (one listing per kind, the ownership records, the models the
specs name) and changes nothing. It also runs every check that could stop apply half
way — references to nothing, a model the endpoint's environment may not deploy, a feature
group change the store refuses, an immutable resource changed, an endpoint mid-deployment,
a resource owned by another spec set — so apply starts only when every change can be made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slipway.apply.diff import changes, digest
from slipway.apply.documents import Problem, SpecProblems, dotted
from slipway.apply.kinds import Kind, Live, Platform, Reference
from slipway.apply.kinds.base import dump
from slipway.apply.resources import KINDS, AppliedResource, FieldChange, Plan, PlannedChange
from slipway.apply.specset import SpecDocument, SpecSet
from slipway.core.errors import SlipwayError


@dataclass
class _Platform:
    """What planning has read of the platform, each listing once."""

    platform: Platform
    kinds: dict[str, Kind]
    lives: dict[str, dict[str, Live]] = field(default_factory=dict)
    models: dict[Reference, str | None] = field(default_factory=dict)

    def model_problem(self, reference: Reference) -> str | None:
        """What is wrong with a model reference, asked once per model, version and
        environment whatever the number of endpoints naming it."""
        key = Reference((), reference.kind, reference.name, reference.ref, reference.deployable_in)
        if key not in self.models:
            self.models[key] = _model_problem(self.platform, reference)
        return self.models[key]

    def live(self, kind: str, name: str) -> Live | None:
        kind_ = self.kinds[kind]
        if kind_.paged:
            return kind_.live_one(self.platform, name)
        if kind not in self.lives:
            self.lives[kind] = kind_.live_all(self.platform)
        return self.lives[kind].get(name)


def _model_problem(platform: Platform, reference: Reference) -> str | None:
    registry = platform.registry
    ref: int | str | None = reference.ref
    if isinstance(ref, str) and ref.isdigit():
        ref = int(ref)
    try:
        if ref is None:
            if not registry.versions(reference.name):
                return f"model {reference.name!r} has no versions"
            return None
        if reference.deployable_in is not None:
            registry.check_deployable(reference.name, ref, reference.deployable_in)
        else:
            registry.get(reference.name, ref)
    except SlipwayError as exc:
        return exc.message
    return None


def _resource_problem(spec_set: SpecSet, read: _Platform, reference: Reference) -> str | None:
    """What is wrong with a reference to a spec kind: the resource is neither declared
    nor live, or lacks the part it names. The declared spec wins over the live one: it is
    what the resource will be by the time the dependant is applied."""
    declared = spec_set.find(reference.kind, reference.name)
    live = None if declared is not None else read.live(reference.kind, reference.name)
    if declared is None and live is None:
        return (
            f"{reference.kind} {reference.name!r} is neither declared in the spec files nor"
            " on the platform"
        )
    if reference.member is None:
        return None
    if declared is not None:
        values, where = dump(declared.spec), "as the spec files declare it"
    else:
        assert live is not None
        values, where = live.spec, "on the platform"
    members = read.kinds[reference.kind].members(values)
    if members is None or reference.member in members:
        return None
    return f"{reference.kind} {reference.name!r} has no {reference.member!r} ({where})"


def _check_references(spec_set: SpecSet, read: _Platform, problems: list[Problem]) -> None:
    for document in spec_set.documents:
        for reference in document.kind.references(document.spec):
            if reference.kind == "Model":
                problem = read.model_problem(reference)
            else:
                problem = _resource_problem(spec_set, read, reference)
            if problem is not None:
                problems.append(
                    Problem(document.where(reference.path), dotted(reference.path), problem)
                )


def _planned(
    document: SpecDocument,
    read: _Platform,
    record: AppliedResource | None,
    spec_set: SpecSet,
    problems: list[Problem],
) -> PlannedChange | None:
    kind, spec = document.kind, document.spec
    location = document.where()
    try:
        desired = kind.desired(spec, read.platform)
    except SlipwayError as exc:
        field_ = getattr(exc, "field", None) or ""
        path = tuple(field_.split(".")) if field_ else ()
        problems.append(Problem(document.where(path), field_, exc.message))
        return None
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        problems.append(Problem(location, "definition", f"cannot load it: {exc}"))
        return None
    wanted = digest(kind.full(spec))
    base = PlannedChange(
        kind=kind.name,
        name=document.name,
        action="unchanged",
        file=location.file,
        line=location.line,
        digest=wanted,
        recorded=record.digest if record else None,
    )
    if record is not None and record.spec_set != spec_set.name:
        problems.append(
            Problem(
                location,
                "name",
                f"{kind.name} {document.name!r} is owned by spec set {record.spec_set!r};"
                " apply it from there, or remove it from that set (apply --prune there) first",
            )
        )
        return None
    live = read.live(kind.name, document.name)
    if live is None:
        return base.model_copy(update={"action": "create"})
    found = changes(live.spec, desired)
    if not found and kind.hidden and record is not None and record.digest != wanted:
        found = [FieldChange(path="config", old="(hidden)", new="(hidden)")]
    if not found:
        return base.model_copy(update={"adopt": record is None})
    if kind.immutable:
        problems.append(
            Problem(
                location,
                found[0].path,
                f"{kind.name} {document.name!r} exists with another spec and cannot change"
                f" ({', '.join(f.path for f in found[:5])}); give the new one a new name",
            )
        )
        return None
    refused = kind.check_update(live, spec)
    if refused is not None:
        problems.append(Problem(location, found[0].path, refused))
        return None
    return base.model_copy(
        update={
            "action": "update",
            "fields": found,
            "adopt": record is None,
            "drift": record is not None and record.digest == wanted,
            "note": "changed outside apply since the last apply"
            if record and record.digest == wanted
            else "",
        }
    )


def plan(spec_set: SpecSet, platform: Platform, *, prune: bool = False) -> Plan:
    """The changes that make ``platform`` match ``spec_set``; raises
    :class:`SpecProblems` when any change could not be made (nothing is changed)."""
    problems: list[Problem] = []
    read = _Platform(platform, spec_set.kinds)
    records = {(r.kind, r.name): r for r in platform.ownership.owned()}
    _check_references(spec_set, read, problems)
    planned: list[PlannedChange] = []
    declared = set()
    for document in spec_set.documents:
        declared.add((document.kind.name, document.name))
        change = _planned(
            document, read, records.get((document.kind.name, document.name)), spec_set, problems
        )
        if change is not None:
            planned.append(change)
    for (kind_name, name), record in sorted(records.items()):
        if record.spec_set != spec_set.name or (kind_name, name) in declared:
            continue
        if kind_name not in spec_set.kinds:
            continue
        kind = spec_set.kinds[kind_name]
        live = read.live(kind_name, name)
        if live is None:
            action, note = "forget", "deleted outside apply: its ownership record goes"
        elif not kind.prunable:
            action, note = "kept", f"not in the files; a {kind_name} is never pruned"
        elif not prune:
            action, note = "kept", "not in the files; apply --prune deletes it"
        else:
            action, note = "delete", "not in the files (--prune)"
        planned.append(
            PlannedChange(
                kind=kind_name, name=name, action=action, note=note, recorded=record.digest
            )
        )
    if problems:
        raise SpecProblems(problems)
    rank = {name: i for i, name in enumerate(KINDS)}
    # Creations and updates in dependency order; deletions after them, dependants first.
    planned.sort(
        key=lambda c: (
            (1, -rank[c.kind], c.name) if c.action == "delete" else (0, rank[c.kind], c.name)
        )
    )
    return Plan(
        spec_set=spec_set.name, environment=spec_set.environment, prune=prune, changes=planned
    )
