"""The soak test reuses the suite's fixtures: a fresh PostgreSQL database per run and an
environment cleared of the developer's own ``SLIPWAY_*`` settings."""

from tests.conftest import _isolated_environment, postgres_url

__all__ = ["_isolated_environment", "postgres_url"]
