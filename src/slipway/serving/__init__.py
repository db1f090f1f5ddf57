"""Serving: endpoints, their deployments and the gateway (the data plane)."""
