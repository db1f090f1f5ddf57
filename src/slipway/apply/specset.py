"""A spec set: the documents of one file or directory, with an environment's overlay
merged in, each validated against its kind's schema.

Layout of a directory::

    specs/
      platform.yaml            # any number of *.yaml / *.yml files, in any folders
      monitors/drift.yaml
      environments/stage.yaml  # overlays: documents naming a base resource by kind and
      environments/prod.yaml   # name, with the fields that differ in that environment

An overlay is merged into the base document of the same kind and name: mappings key by
key (a key set to null is removed, as in a JSON merge patch), lists of named items (an
endpoint's variants, alarms) item by item by ``name``, any other value replaced. An
overlay may not add a resource. The spec set's name — what owns the resources it
applies — is given by a ``kind: SpecSet`` document, else it is the directory's name.

Everything is read and validated before anything is looked up on a platform: every
problem of every file is reported at once, each with its file, line and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from slipway.apply.documents import (
    FieldPath,
    Location,
    Problem,
    RawDocument,
    SpecProblems,
    dotted,
    read_documents,
)
from slipway.apply.kinds import Kind, all_kinds
from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name

ENVIRONMENTS = "environments"
SPEC_SET = "SpecSet"
_SUFFIXES = (".yaml", ".yml")


@dataclass
class SpecDocument:
    """One resource as the files declare it."""

    kind: Kind
    name: str
    spec: BaseModel
    raw: RawDocument

    def where(self, path: FieldPath = ()) -> Location:
        return self.raw.where(path)


@dataclass
class SpecSet:
    """Validated documents, in the files' order, and the set's name and environment."""

    name: str
    root: Path
    environment: str | None
    documents: list[SpecDocument] = field(default_factory=list)
    kinds: dict[str, Kind] = field(default_factory=all_kinds)

    def find(self, kind: str, name: str) -> SpecDocument | None:
        for document in self.documents:
            if document.kind.name == kind and document.name == name:
                return document
        return None


def _files(root: Path) -> list[Path]:
    """The base's spec files under ``root``, sorted, outside ``environments/``."""
    if root.is_file():
        return [root]
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] == ENVIRONMENTS or any(p.startswith(".") for p in relative.parts):
            continue
        if path.is_file() and path.suffix in _SUFFIXES:
            found.append(path)
    return found


def _display(path: Path, root: Path) -> str:
    base = root.parent if root.is_file() else root
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _named(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("name"), str)


def _merge(
    base: Any,
    over: Any,
    at: FieldPath,
    over_at: FieldPath,
    overlay: RawDocument,
    lines: dict[FieldPath, Location],
) -> Any:
    """``over`` merged into ``base`` at path ``at`` (``over_at`` in the overlay), the
    overlay's lines recorded for the paths it wrote."""
    lines[at] = overlay.where(over_at)
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            if value is None:
                merged.pop(key, None)  # JSON merge patch (RFC 7386): null removes the key
                continue
            merged[key] = _merge(base.get(key), value, (*at, key), (*over_at, key), overlay, lines)
        return merged
    if (
        isinstance(base, list)
        and isinstance(over, list)
        and all(_named(i) for i in base)
        and all(_named(i) for i in over)
    ):
        merged_list = list(base)
        index = {item["name"]: i for i, item in enumerate(base)}
        for j, item in enumerate(over):
            i = index.get(item["name"])
            if i is None:
                lines[(*at, len(merged_list))] = overlay.where((*over_at, j))
                merged_list.append(item)
            else:
                merged_list[i] = _merge(base[i], item, (*at, i), (*over_at, j), overlay, lines)
        return merged_list
    return over


def _identity(raw: RawDocument, problems: list[Problem]) -> tuple[str, str] | None:
    kind, name = raw.values.get("kind"), raw.values.get("name")
    if not isinstance(kind, str):
        problems.append(Problem(raw.where(("kind",)), "kind", "every document needs a kind"))
        return None
    if not isinstance(name, str):
        problems.append(Problem(raw.where(("name",)), "name", "every document needs a name"))
        return None
    return kind, name


def _read(files: list[Path], root: Path, problems: list[Problem]) -> list[RawDocument]:
    documents: list[RawDocument] = []
    for path in files:
        try:
            documents.extend(read_documents(path, display=_display(path, root)))
        except SpecProblems as exc:
            problems.extend(exc.problems)
    return documents


def _validate(kind: Kind, raw: RawDocument, problems: list[Problem]) -> BaseModel | None:
    values = {k: v for k, v in raw.values.items() if k != "kind"}
    try:
        return kind.parse(values)
    except ValidationError as exc:
        for error in exc.errors():
            path = kind.document_path(tuple(error["loc"]))
            problems.append(Problem(raw.where(path), dotted(path), error["msg"]))
    except InvalidInput as exc:
        path = kind.document_path(tuple(exc.field.split(".")) if exc.field else ())
        problems.append(Problem(raw.where(path), dotted(path), exc.message))
    return None


def load_spec_set(path: Path, *, environment: str | None = None) -> SpecSet:
    """The spec set at ``path`` (a file or a directory) in ``environment``; raises
    :class:`SpecProblems` with every problem found."""
    root = path
    if not root.exists():
        raise SpecProblems([Problem(None, "path", f"{path} does not exist")])
    problems: list[Problem] = []
    raws = _read(_files(root), root, problems)
    if not raws and not problems:
        problems.append(Problem(None, "path", f"no spec documents (*.yaml) under {path}"))
    base = root if root.is_dir() else root.parent
    overlays: list[RawDocument] = []
    if environment is not None:
        try:
            validate_name(environment, field="env")
        except InvalidInput as exc:
            raise SpecProblems([Problem(None, "env", exc.message)]) from None
        candidates = [base / ENVIRONMENTS / f"{environment}{s}" for s in _SUFFIXES]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise SpecProblems(
                [Problem(None, "env", f"no overlay {ENVIRONMENTS}/{environment}.yaml under {base}")]
            )
        overlays = _read(found[:1], base, problems)

    kinds = all_kinds()
    set_name: str | None = None
    by_identity: dict[tuple[str, str], RawDocument] = {}
    order: list[tuple[str, str]] = []
    for raw in raws:
        identity = _identity(raw, problems)
        if identity is None:
            continue
        kind, name = identity
        if kind == SPEC_SET:
            if set_name is not None:
                problems.append(Problem(raw.location, "kind", "a second SpecSet document"))
            set_name = name
            continue
        if kind not in kinds:
            problems.append(
                Problem(
                    raw.where(("kind",)),
                    "kind",
                    f"unknown kind {kind!r}; one of: {', '.join(kinds)}",
                )
            )
            continue
        first = by_identity.get(identity)
        if first is not None:
            problems.append(
                Problem(
                    raw.location,
                    "name",
                    f"{kind} {name!r} is declared twice (first at {first.location})",
                )
            )
            continue
        by_identity[identity] = raw
        order.append(identity)

    for overlay in overlays:
        identity = _identity(overlay, problems)
        if identity is None:
            continue
        target = by_identity.get(identity)
        if target is None:
            problems.append(
                Problem(
                    overlay.location,
                    "name",
                    f"the overlay changes {identity[0]} {identity[1]!r}, which the base does"
                    " not declare",
                )
            )
            continue
        lines = dict(target.lines)
        values = _merge(target.values, overlay.values, (), (), overlay, lines)
        lines[()] = target.location
        by_identity[identity] = RawDocument(values, target.location, lines)

    documents: list[SpecDocument] = []
    for identity in order:
        raw = by_identity[identity]
        kind_of = kinds[identity[0]]
        spec = _validate(kind_of, raw, problems)
        if spec is not None:
            documents.append(SpecDocument(kind_of, identity[1], spec, raw))

    name = set_name or (root if root.is_dir() else root.parent).resolve().name
    try:
        validate_name(name, field="SpecSet")
    except InvalidInput:
        problems.append(
            Problem(
                None,
                "SpecSet",
                f"the spec set's name {name!r} is not a valid name; declare one with a"
                " 'kind: SpecSet' document",
            )
        )
    if problems:
        # In the order of the files and lines, as an editor shows them.
        problems.sort(key=lambda p: (p.location.file, p.location.line) if p.location else ("", 0))
        raise SpecProblems(problems)
    return SpecSet(name, root, environment, documents, kinds)
