"""Backup and restore of a whole platform: one archive, taken while the platform runs.

An archive holds a consistent snapshot of the metadata database (SQLite's backup API or
``pg_dump`` on an exported snapshot), the artifact root (Delta tables cut at the versions
that snapshot can account for, MLflow's and Slipway's artifacts), the SQLite online store
and the settings without their secrets, with a manifest of SHA-256 digests checked before a
restore writes anything. See :mod:`slipway.backup.service` for the order of the steps and
why it makes the archive a state that existed.
"""
