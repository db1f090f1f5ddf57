"""``slipway status``: how much each kind of data takes, to plan retention and space.

The sizing code loads inside the command (it brings the database engine):
``slipway --help`` loads none of it.
"""

from __future__ import annotations

from slipway.cli.context import local_platform, reported
from slipway.cli.output import Format, OutputOption, console, emit, print_json


def status(output: OutputOption = Format.TABLE) -> None:
    """Database rows per table group, artifact-root bytes per folder (capture per
    endpoint, offline store per feature group, MLflow, reports) and the online store."""
    # Lazy: module docstring.
    from slipway.retention.status import Status, artifact_sizes, database_sizes, online_sizes

    with local_platform() as services, reported():
        result = Status()
        result.database, result.database_bytes = database_sizes(services.db)
        result.artifacts, result.artifact_bytes = artifact_sizes(services.settings.artifact_root)
        online = [g.spec.name for g in services.features.list_groups() if g.spec.online]
        result.online, result.online_bytes = online_sizes(
            services.online_store, services.settings.online_store_url, online
        )
    if output is Format.JSON:
        print_json(result.to_dict())
        return
    emit(result.database, ["group", "tables", "rows", "bytes"], output, title="database")
    console.print(f"database: {_bytes(result.database_bytes)}")
    emit(result.artifacts, ["folder", "files", "bytes"], output, title="artifact root")
    console.print(f"artifact root: {_bytes(result.artifact_bytes)}")
    emit(result.online, ["group", "records"], output, title="online store")
    console.print(f"online store: {_bytes(result.online_bytes)}")


def _bytes(size: int | None) -> str:
    if size is None:
        return "unknown"
    value, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
