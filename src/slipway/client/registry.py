"""The model registry through the control plane: the methods of the embedded
:class:`~slipway.registry.service.Registry`, with its arguments and return types.

A remote user logs a model to the platform's MLflow server (``Client.tracking_uri``) and
registers it from there (``runs:/<run id>/model``, ``mlflow-artifacts:/…``): the server
must be able to read the files, so a local path is refused before anything is sent.
"""

from __future__ import annotations

from urllib.parse import quote

from slipway.client.transport import Transport
from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.registry.archive import (
    MEDIA_TYPE,
    SHA256_HEADER,
    ModelExport,
    read_manifest,
    sha256_of,
)
from slipway.registry.card import card_fields
from slipway.registry.lineage import Lineage
from slipway.registry.models import ApprovalStatus, ModelTampered, Output
from slipway.registry.resources import (
    Comparison,
    ImportedVersion,
    ModelInput,
    ModelVersion,
    RegisteredModel,
    Transition,
)
from slipway.registry.sources import check_source


def _segment(value: int | str) -> str:
    """One path segment: a name with a ``/`` in it stays one segment (and is then refused
    or not found by the server, as in process) instead of naming another route."""
    return quote(str(value), safe="")


class RemoteRegistry:
    """The registry of a control plane.

    ``actor`` arguments are accepted for the embedded signatures' sake and ignored: the
    server records the token's holder, a client cannot speak for someone else. Left out,
    because they only make sense in process: ``load`` and ``local_dir`` (the files are read
    by the server's gateway and workers, not the client), ``resolve_source`` (a location in
    the server's artifact store) — log and load models with MLflow against
    ``Client.tracking_uri`` instead."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _model(self, name: str) -> str:
        return f"/models/{_segment(name)}"

    # -- registration ----------------------------------------------------------------

    def register(
        self,
        name: str,
        source: str,
        *,
        actor: str | None = None,
        description: str = "",
        lineage: Lineage | None = None,
        output: Output | str = Output.LABEL,
        owner: str = "",
        intended_use: str = "",
    ) -> ModelVersion:
        """Register the model at ``source`` — a place the server reads: a run's artifacts
        on the platform's MLflow server (``runs:/<run id>/model``) or its proxied artifacts
        (``mlflow-artifacts:/…``) — as a new version, PendingManualApproval."""
        del actor  # the server's caller
        # Checked here in the embedded order, so a call with several faults names the
        # same field on both sides; the server checks them all again.
        validate_name(name, field="name")
        card_fields(owner, intended_use)
        declared = output if isinstance(output, Output) else Output.parse(output)
        kind, _ = check_source(source)
        if kind == "path":
            raise InvalidInput(
                f"model source {source!r} is a local path, which the server cannot read: log"
                " the model to the platform's MLflow server (Client.tracking_uri) and register"
                " runs:/<run id>/<path>",
                field="source",
            )
        body = {
            "source": source,
            "description": description,
            "lineage": (lineage or Lineage()).model_dump(mode="json"),
            "output": declared.value,
            "owner": owner,
            "intended_use": intended_use,
        }
        response = self.transport.request("POST", f"{self._model(name)}/versions", json=body)
        return ModelVersion.model_validate(response.json())

    # -- reads -----------------------------------------------------------------------

    def get(self, name: str, ref: int | str) -> ModelVersion:
        """A version by number, or by alias (``champion``)."""
        response = self.transport.request("GET", f"{self._model(name)}/versions/{_segment(ref)}")
        return ModelVersion.model_validate(response.json())

    def resolve(self, name: str, ref: int | str) -> int:
        """The version number ``ref`` stands for: a number as it is, an alias looked up."""
        if isinstance(ref, int) or ref.isdigit():
            return int(ref)
        return self.get(name, ref).version

    def versions(self, name: str) -> Listing[ModelVersion]:
        response = self.transport.request("GET", f"{self._model(name)}/versions")
        return Listing(ModelVersion.model_validate(v) for v in response.json())

    def models(self) -> Listing[RegisteredModel]:
        """Every model with its version count, latest version and approved versions."""
        response = self.transport.request("GET", "/models")
        return Listing(RegisteredModel.model_validate(m) for m in response.json())

    def transitions(self, name: str, version: int) -> Listing[Transition]:
        response = self.transport.request(
            "GET", f"{self._model(name)}/versions/{_segment(version)}/approvals"
        )
        return Listing(Transition.model_validate(t) for t in response.json())

    def compare(self, name: str, refs: list[int | str]) -> Comparison:
        """Metrics and params of two or more versions side by side."""
        response = self.transport.request(
            "GET", f"{self._model(name)}/compare", params={"versions": [str(r) for r in refs]}
        )
        return Comparison.model_validate(response.json())

    def trained_on(
        self, feature_group: str, delta_version: int | None = None
    ) -> Listing[ModelInput]:
        """Reverse lineage: the model versions trained on a feature group (at a version)."""
        params = {"version": delta_version} if delta_version is not None else None
        response = self.transport.request(
            "GET", f"/models/lineage/feature-groups/{_segment(feature_group)}", params=params
        )
        return Listing(ModelInput.model_validate(i) for i in response.json())

    # -- changes ---------------------------------------------------------------------

    def set_approval(
        self,
        name: str,
        version: int,
        status: ApprovalStatus | str,
        *,
        actor: str | None = None,
        comment: str = "",
    ) -> ModelVersion:
        """Move a version to a new approval status; the server records who, when, why."""
        del actor  # the server's caller
        target = status if isinstance(status, ApprovalStatus) else ApprovalStatus.parse(status)
        response = self.transport.request(
            "POST",
            f"{self._model(name)}/versions/{_segment(version)}/approval",
            json={"status": target.value, "comment": comment},
        )
        return ModelVersion.model_validate(response.json())

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` (a PUT: repeating it changes nothing more)."""
        del actor  # the server's caller
        response = self.transport.request(
            "PUT", f"{self._model(name)}/aliases/{_segment(alias)}", json={"version": version}
        )
        return ModelVersion.model_validate(response.json())

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        # Not retried: a repeat after a lost answer would find the alias gone (NotFound).
        self.transport.request(
            "DELETE", f"{self._model(name)}/aliases/{_segment(alias)}", repeatable=False
        )

    # -- promotion between platforms ---------------------------------------------------

    def export_version(
        self, name: str, ref: int | str, *, platform: str | None = None
    ) -> ModelExport:
        """The version as an archive another Slipway imports; its bytes are checked
        against the SHA-256 the server sent (a mismatch is
        :class:`~slipway.registry.models.ModelTampered`). ``platform`` is ignored: the
        server names itself by the URL this client reached it at."""
        del platform  # the server's own
        response = self.transport.request(
            "GET", f"{self._model(name)}/versions/{_segment(ref)}/export"
        )
        data = response.content
        declared = response.headers.get(SHA256_HEADER, "")
        received = sha256_of(data)
        if received != declared:
            raise ModelTampered(
                f"export of {name} {ref}: the archive does not match the SHA-256 the server"
                f" sent (expected {declared[:12]}…, received {received[:12]}…)",
                details={"expected": declared, "actual": received},
            )
        return ModelExport(manifest=read_manifest(data), data=data, sha256=received)

    def import_version(
        self,
        name: str,
        data: bytes,
        *,
        sha256: str,
        actor: str | None = None,
        may_approve: bool = True,
    ) -> ImportedVersion:
        """Register the exported version in ``data`` as a version of ``name`` on the
        server, which checks ``data`` against ``sha256`` before reading it; the same
        source version imported twice is one version (``created`` False the second
        time). ``may_approve`` is the server's to decide (the token's role)."""
        del actor, may_approve  # the server's caller, and its role
        validate_name(name, field="name")
        response = self.transport.request(
            "POST",
            f"{self._model(name)}/imports",
            params={"sha256": sha256},
            content=[data],
            headers={"content-type": MEDIA_TYPE},
            repeatable=True,  # a second import of the same archive changes nothing
        )
        return ImportedVersion.model_validate(response.json())

    # -- deployment policy -----------------------------------------------------------

    def check_deployable(self, name: str, ref: int | str, environment: str) -> ModelVersion:
        """The version, when ``environment``'s policy lets it be deployed; else
        :class:`~slipway.core.errors.Forbidden` saying why."""
        response = self.transport.request(
            "GET",
            f"{self._model(name)}/versions/{_segment(ref)}/deployable",
            params={"environment": environment},
        )
        return ModelVersion.model_validate(response.json())

    def verify(self, name: str, ref: int | str) -> ModelVersion:
        """Check the version's files against the digest recorded at registration (on the
        server); a mismatch raises :class:`~slipway.registry.models.ModelTampered` naming
        the files."""
        response = self.transport.request(
            "POST", f"{self._model(name)}/versions/{_segment(ref)}/verify", repeatable=True
        )
        return ModelVersion.model_validate(response.json())


__all__ = ["RemoteRegistry"]
