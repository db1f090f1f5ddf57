"""What apply needs to know of one kind of resource: its spec, how to read it back from a
platform, and how to create, change and delete it through the kind's own service.

``platform`` is the embedded platform in a workspace (:class:`slipway.services.Services`)
or a remote one (:class:`slipway.Client`); both have the same capability attributes and
methods, and a kind uses nothing else. Comparison is between *observable* specs: what the
live resource shows, normalised through the same pydantic model as the file's document,
so an omitted default and a written one compare equal, and a hidden value (a webhook's
path) compares as the platform shows it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from slipway.apply.documents import FieldPath

# The embedded platform (Services in a workspace) or a remote one (Client): the kinds use
# only the capability attributes the two share.
Platform = Any


@dataclass(frozen=True)
class Reference:
    """A field of a spec that names another resource: ``kind`` is a spec kind, or
    ``"Model"`` for a registered model version (``ref`` its version or alias)."""

    path: FieldPath
    kind: str
    name: str
    ref: str | None = None
    # For a model: the approval policy it must satisfy to be deployed (an endpoint's
    # environment), checked at plan time as the endpoint service checks it.
    deployable_in: str | None = None
    # A part the resource must have (a feature of a group a view reads), checked at plan
    # time against the declared spec, else the live one (:meth:`Kind.members`).
    member: str | None = None


@dataclass(frozen=True)
class Live:
    """A resource as the platform has it: its observable spec, and the state that decides
    whether it can be changed now (an endpoint mid-deployment cannot)."""

    spec: dict[str, Any]
    busy: str | None = None
    # What export writes where the observable spec is not a document (a baseline's model
    # is compared by name but written as the version it is bound to).
    document: dict[str, Any] | None = None


def dump(spec: BaseModel) -> dict[str, Any]:
    """A spec as JSON-like values, every default filled in."""
    return spec.model_dump(mode="json")


class Kind(ABC):
    """One kind of resource a spec file can declare."""

    name: ClassVar[str]
    model: ClassVar[type[BaseModel]]
    # Deleted by ``--prune`` when owned and absent from the files. Pipelines and batch
    # jobs are not: executions and outputs refer to them.
    prunable: ClassVar[bool] = True
    # Changed specs are refused (the resource is a record of work done, or its data was
    # computed from the spec): give the new one a new name.
    immutable: ClassVar[bool] = False
    # Written by ``slipway export``.
    exported: ClassVar[bool] = True
    # Holds values the platform never shows (a webhook URL's path): a change of them is
    # seen only through the ownership digest.
    hidden: ClassVar[bool] = False
    # Too many to list (batch jobs): read one by one, by name.
    paged: ClassVar[bool] = False

    # Document fields named otherwise than the schema's: a monitor's and a channel's own
    # ``kind`` (data_quality, webhook) is written ``type``, the document's ``kind`` being
    # the resource kind.
    renamed: ClassVar[dict[str, str]] = {}

    def parse(self, values: dict[str, Any]) -> BaseModel:
        """The spec of a document (without ``kind``); raises pydantic's ValidationError,
        whose field paths :meth:`document_path` turns back into the document's."""
        return self.model.model_validate({self.renamed.get(k, k): v for k, v in values.items()})

    def document_path(self, path: tuple[Any, ...]) -> tuple[Any, ...]:
        """A schema field path as the document writes it."""
        if not path:
            return path
        back = {field: written for written, field in self.renamed.items()}
        return (back.get(path[0], path[0]), *path[1:])

    def desired(self, spec: BaseModel, platform: Platform) -> dict[str, Any]:
        """The observable spec ``platform`` will show once ``spec`` is applied."""
        return dump(spec)

    def full(self, spec: BaseModel) -> dict[str, Any]:
        """Everything of ``spec``, hidden values included: what the ownership digest is of."""
        return dump(spec)

    def references(self, spec: BaseModel) -> list[Reference]:
        """The other resources ``spec`` names."""
        return []

    def members(self, values: dict[str, Any]) -> set[str] | None:
        """The parts of a resource (its observable spec) a reference may name, or None
        when this kind has none to check."""
        return None

    def check_update(self, live: Live, spec: BaseModel) -> str | None:
        """Why ``live`` cannot become ``spec`` by an update, or None."""
        return live.busy

    @abstractmethod
    def live_all(self, platform: Platform) -> dict[str, Live]:
        """Every resource of this kind on the platform, by name."""

    def live_one(self, platform: Platform, name: str) -> Live | None:
        """One resource, or None (the paged kinds' way of reading)."""
        return self.live_all(platform).get(name)

    @abstractmethod
    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None: ...

    @abstractmethod
    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None: ...

    @abstractmethod
    def delete(self, platform: Platform, name: str, actor: str) -> None: ...

    def export(self, live: Live) -> dict[str, Any]:
        """A document (without ``kind``) that plans as unchanged against ``live``: its
        spec without the fields that hold their defaults."""
        spec = self.model.model_validate(live.spec)
        back = {field: written for written, field in self.renamed.items()}
        written = spec.model_dump(mode="json", exclude_defaults=True)
        return {"name": live.spec["name"]} | {back.get(k, k): v for k, v in written.items()}
