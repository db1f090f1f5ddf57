"""The body of a ``PUT /<resources>/{name}`` that replaces a resource's definition.

The path names the resource: the body may leave ``name`` out (it is taken from the path)
or repeat it, and naming another one is a 400 naming ``name`` — replacing a definition
never renames what it defines (as ``PUT /alerts/rules/{name}`` and ``PUT
/pipelines/{name}`` refuse it). The body's other fields are the create body's, checked
by the service as at create.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from slipway.core.errors import InvalidInput


def named(body: BaseModel, name: str, what: str) -> dict[str, Any]:
    """``body``'s fields with ``name`` the path's; InvalidInput naming ``name`` when the
    body names another ``what`` (e.g. ``"schedule"``)."""
    fields = body.model_dump()
    given = fields.get("name")
    if given is not None and given != name:
        raise InvalidInput(
            f"the body names {what} {given!r} and the path {name!r}: a {what} cannot be renamed",
            field="name",
        )
    return fields | {"name": name}
