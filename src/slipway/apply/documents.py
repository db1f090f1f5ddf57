"""Reading spec files: YAML documents with the file and line of every field.

Only YAML's plain types are read — mappings, sequences, strings, numbers, booleans, null
and timestamps. A tag of anything else (``!!python/object``, ``!custom``) is an error
naming the file and line, never constructed; so is a key given twice in one mapping
(PyYAML would keep the last silently). Every value is built from the node tree by this
module, which keeps each field's line so a validation error can point at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# The tags a spec value may carry: YAML's core schema, as yaml.safe_load resolves it.
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
)

# Spec files are small; a larger one is a mistake (or an attack on the parser).
MAX_FILE_BYTES = 4 * 1024 * 1024

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Location:
    """Where a value was written: a file and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the spec files: where, which field, and what."""

    location: Location | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.location.file if self.location else None,
            "line": self.location.line if self.location else None,
            "field": self.field,
            "message": self.message,
        }


class SpecProblems(Exception):
    """Raised with every problem found, so one run reports them all."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:5]))
        self.problems = problems


@dataclass
class RawDocument:
    """One YAML document as written: its values and the line of each field path."""

    values: dict[str, Any]
    location: Location
    lines: dict[FieldPath, Location] = field(default_factory=dict)

    def where(self, path: FieldPath) -> Location:
        """The location of ``path``, or of its nearest ancestor that was written (a
        missing field is reported at the mapping that lacks it)."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return self.location


def dotted(path: FieldPath) -> str:
    """``variants.0.weight``, as errors elsewhere in Slipway name fields."""
    return ".".join(str(part) for part in path)


class _Builder:
    """Builds plain Python values from a node tree, recording each path's line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.constructor = SafeConstructor()
        self.problems: list[Problem] = []

    def at(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1)

    def build(self, node: Node, path: FieldPath, lines: dict[FieldPath, Location]) -> Any:
        lines[path] = self.at(node)
        if node.tag not in _PLAIN_TAGS:
            self.problems.append(
                Problem(
                    self.at(node),
                    dotted(path),
                    f"the YAML tag {node.tag!r} is not allowed in a spec (plain values only)",
                )
            )
            return None
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                    self.problems.append(
                        Problem(self.at(key_node), dotted(path), "a key must be a plain string")
                    )
                    continue
                key = str(self.constructor.construct_object(key_node))
                if key in out:
                    self.problems.append(
                        Problem(self.at(key_node), dotted((*path, key)), "the key is given twice")
                    )
                    continue
                out[key] = self.build(value_node, (*path, key), lines)
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), lines) for i, item in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node)
        except (ConstructorError, ValueError) as exc:
            self.problems.append(Problem(self.at(node), dotted(path), str(exc)))
            return None


def read_documents(path: Path, *, display: str | None = None) -> Iterator[RawDocument]:
    """The documents of one YAML file, each a mapping; raises :class:`SpecProblems`
    naming the file and line of everything that is not plain YAML."""
    name = display or str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SpecProblems(
                [Problem(Location(name, 1), "", f"larger than {MAX_FILE_BYTES} bytes")]
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecProblems([Problem(Location(name, 1), "", f"cannot read: {exc}")]) from None
    builder = _Builder(name)
    documents: list[RawDocument] = []
    try:
        # compose_all builds nodes and resolves implicit tags; it constructs nothing, so
        # no tag's constructor ever runs on input.
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise SpecProblems([Problem(Location(name, line), "", f"not YAML: {exc}")]) from None
    for node in nodes:
        if node is None:
            continue
        lines: dict[FieldPath, Location] = {}
        values = builder.build(node, (), lines)
        if not isinstance(values, dict):
            builder.problems.append(
                Problem(builder.at(node), "", "a spec document must be a mapping")
            )
            continue
        documents.append(RawDocument(values, builder.at(node), lines))
    if builder.problems:
        raise SpecProblems(builder.problems)
    yield from documents
