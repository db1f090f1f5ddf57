"""Pipelines: Python-defined DAGs of steps, run by workers with persisted state."""
