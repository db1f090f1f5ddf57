"""The control plane's REST API (FastAPI): thin routers over the capability services."""

API_PREFIX = "/api/v1"
