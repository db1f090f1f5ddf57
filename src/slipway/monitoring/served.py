"""What an endpoint serves now: its model versions, their input columns, its stored config.

Monitors check their spec against it at creation (a bias facet, an attribution
reference, a skew monitor's feature view), when it is known: an endpoint not deployed
yet, or a model whose signature is a tensor, leaves the check to the run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from slipway.core.workspace import scoped_name
from slipway.registry.models import parse_model_ref
from slipway.registry.predict import schema_from_signature
from slipway.registry.tables import ModelVersionRow
from slipway.serving.tables import EndpointConfigRow, EndpointRow


def active_config(session: Session, workspace: str, endpoint: str) -> dict[str, Any] | None:
    """The stored spec of the active config of ``workspace``'s ``endpoint`` (as stored:
    aliases resolved to versions, a feature view's version pinned); None when there is
    no such endpoint yet, or it has not been deployed."""
    key = scoped_name(workspace, endpoint)
    row = session.get(EndpointRow, key)
    if row is None or row.active_version is None:
        return None
    config = session.get(EndpointConfigRow, (key, row.active_version))
    return dict(config.spec) if config is not None else None


def versions(
    session: Session, workspace: str, endpoint: str, variant: str | None
) -> list[tuple[str, int]] | None:
    """(model, version) of every variant (or of ``variant``) of the active config of
    ``workspace``'s ``endpoint``, shadows included; None when unknown — no such endpoint
    yet, or a variant naming its model by alias rather than by version."""
    spec = active_config(session, workspace, endpoint)
    if spec is None:
        return None
    found: list[tuple[str, int]] = []
    for entry in [*spec.get("variants", []), *spec.get("shadow_variants", [])]:
        if variant is not None and entry.get("name") != variant:
            continue
        version = entry.get("version")
        if not isinstance(version, int):
            return None
        found.append((parse_model_ref(str(entry.get("model", "")))[0], version))
    return found


def endpoint_columns(
    session: Session, workspace: str, endpoint: str, variant: str | None
) -> set[str] | None:
    """The input columns of the model versions the endpoint's active config serves (in
    ``variant``, or in any variant); None when unknown — as :func:`versions`, or a model
    whose signature is a tensor."""
    served = versions(session, workspace, endpoint, variant)
    if served is None:
        return None
    columns: set[str] = set()
    for name, version in served:
        model = session.get(ModelVersionRow, (workspace, name, version))
        schema = schema_from_signature(model.signature) if model is not None else None
        if schema is None:
            return None
        columns |= {column.name for column in schema}
    return columns or None
