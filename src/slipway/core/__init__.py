"""Slipway's foundation: settings, errors, names, database, work queue, events, artifacts.

Nothing here imports a capability or a face (API, CLI, console).
"""
