"""A model's aliases (``champion`` ...), kept in MLflow's registry: moves of one model's
aliases are serialized, since MLflow's own write is a check-then-insert.
"""

from __future__ import annotations

from slipway.core.errors import InvalidInput
from slipway.core.locks import named_lock
from slipway.core.names import validate_name
from slipway.registry.reads import RegistryReads
from slipway.registry.resources import ModelVersion


class Aliases(RegistryReads):
    """Setting and deleting aliases (a part of :class:`~slipway.registry.service.Registry`)."""

    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> ModelVersion:
        """Point ``alias`` at ``version``. MLflow's own alias write is a check-then-insert
        that fails under concurrency, so moves of a model's aliases are serialized."""
        validate_name(alias, field="alias")
        if alias.isdigit():
            raise InvalidInput("an alias cannot be a number", field="alias")
        self._row(name, version)
        with named_lock(self.db, self._resource(f"registry/{name}")):
            previous = self.mlflow.aliases(name)
            old = next((v for v, names in previous.items() if alias in names), None)
            self.mlflow.set_alias(name, alias, version)
        self.events.append(
            "model.alias_set",
            self._resource(f"model/{name}"),
            {"alias": alias, "version": version, "previous": old},
        )
        self.audit.record(
            actor=actor,
            action="model.alias",
            resource=self._resource(f"model/{name}@{alias}"),
            outcome="success",
            details={"version": version, "previous": old},
        )
        return self.get(name, version)

    def delete_alias(self, name: str, alias: str, *, actor: str) -> None:
        self.resolve(name, alias)
        with named_lock(self.db, self._resource(f"registry/{name}")):
            self.mlflow.delete_alias(name, alias)
        self.events.append("model.alias_deleted", self._resource(f"model/{name}"), {"alias": alias})
        self.audit.record(
            actor=actor,
            action="model.alias_delete",
            resource=self._resource(f"model/{name}@{alias}"),
            outcome="success",
        )
