"""Ownership records through the control plane: the methods of the embedded
:class:`~slipway.apply.ownership.Ownership`, with their arguments and return types."""

from __future__ import annotations

from slipway.apply.resources import AppliedRecord, AppliedResource
from slipway.client.transport import Transport, listing
from slipway.core.resource import Listing


class RemoteOwnership:
    """``client.ownership``. ``actor`` is accepted for the embedded signatures' sake and not
    sent: the server records the token's holder."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def owned(self, spec_set: str | None = None) -> Listing[AppliedResource]:
        params = {"spec_set": spec_set} if spec_set is not None else None
        answer = self.transport.request("GET", "/applied", params=params)
        return listing(AppliedResource, answer.json())

    def record(
        self,
        kind: str,
        name: str,
        body: AppliedRecord | dict[str, str],
        *,
        actor: str | None = None,
    ) -> AppliedResource:
        del actor  # the server's caller
        document = body.model_dump() if isinstance(body, AppliedRecord) else dict(body)
        # A PUT of the same record is the same record: safe to send again.
        answer = self.transport.request(
            "PUT", f"/applied/{kind}/{name}", json=document, repeatable=True
        )
        return AppliedResource.model_validate(answer.json())

    def forget(self, kind: str, name: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        self.transport.request("DELETE", f"/applied/{kind}/{name}", repeatable=True)


__all__ = ["RemoteOwnership"]
