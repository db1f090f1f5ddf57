"""The audit log through the control plane: ``client.audit.list`` as ``AuditLog.list``.

Recording is the server's job (it records every mutation a caller makes, with the
token's holder as actor), so only reading is offered here.
"""

from __future__ import annotations

from typing import Any

from slipway.client.transport import Transport, listing
from slipway.core.resource import Listing
from slipway.security.resources import AuditEntry


class RemoteAudit:
    """``client.audit``: the audit log, newest first (admins only, as the route says)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def list(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> Listing[AuditEntry]:
        params: dict[str, Any] = {"limit": limit}
        for key, value in (("before", before), ("actor", actor), ("action", action)):
            if value is not None:
                params[key] = value
        return listing(AuditEntry, self.transport.request("GET", "/audit", params=params).json())
