"""The metadata database: engine, tables and migrations."""

from slipway.core.db.engine import Database
from slipway.core.db.migrate import current_revision, downgrade, head_revision, upgrade

__all__ = ["Database", "current_revision", "downgrade", "head_revision", "upgrade"]
