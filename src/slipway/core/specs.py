"""Parsing user-written specs (YAML files, REST bodies) into pydantic models.

Every spec is validated the same way, so every face reports a bad spec the same way: an
:class:`InvalidInput` naming the first offending field, with all problems in its details.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from slipway.core.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


def parse_spec(model: type[M], data: Any) -> M:
    """``model`` validated from ``data``; errors name the field (``variants.0.weight``)."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        first = problems[0]
        raise InvalidInput(
            f"{first['field']}: {first['message']}",
            field=first["field"],
            details={"errors": problems},
        ) from None
