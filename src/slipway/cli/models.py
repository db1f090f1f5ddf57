"""``slipway models``: the model registry from the command line.

Promotion (the artifact store's file systems) and the model card load inside the
commands that use them: ``slipway --help`` loads neither.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import typer

from slipway.cli.context import cli_actor, platform, profile_platform, reported, settings_or_exit
from slipway.cli.output import Format, OutputOption, console, emit, print_json
from slipway.core.errors import InvalidInput
from slipway.registry.models import ApprovalStatus, Output
from slipway.registry.resources import ModelVersion, RegisteredModel, Transition

app = typer.Typer(
    help="Model registry: versions, approvals, aliases, lineage.", no_args_is_help=True
)


def _row(v: ModelVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "status": v.approval_status.value,
        "aliases": ", ".join(v.aliases),
        "metrics": ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items())),
        "output": v.output.value,
        "registered_by": v.registered_by,
        "registered_at": v.registered_at,
        "digest": v.digest[:12],
    }


@app.command("list")
def list_models(output: OutputOption = Format.TABLE) -> None:
    """Registered models with their version counts and approved versions."""
    with platform() as services:
        found = services.registry.models()
    emit(
        [m.model_dump(mode="json") for m in found],
        RegisteredModel.table_columns(),
        output,
        title="models",
    )


@app.command("versions")
def versions(name: str, output: OutputOption = Format.TABLE) -> None:
    """A model's versions with status, aliases and the metrics of their runs."""
    with platform() as services:
        found = services.registry.versions(name)
    if output is Format.JSON:
        print_json([v.model_dump(mode="json") for v in found])
        return
    emit(
        [_row(v) for v in found],
        [
            "version",
            "status",
            "aliases",
            "metrics",
            "output",
            "registered_by",
            "registered_at",
            "digest",
        ],
        output,
        title=name,
    )


@app.command("register")
def register(
    name: str,
    source: str = typer.Argument(..., help="runs:/<run id>/model or a path in the artifact store"),
    description: str = typer.Option("", help="what this version is"),
    output: Output = typer.Option(
        Output.LABEL,
        "--model-output",  # --output is every command's output format
        help="what the version returns: label, probabilities (one per class) or both",
        case_sensitive=False,
    ),
    owner: str = typer.Option("", help="who answers for this version (its model card)"),
    intended_use: str = typer.Option("", help="what it is for, and not for (its model card)"),
) -> None:
    """Register a model version (status PendingManualApproval)."""
    with platform() as services:
        version = services.registry.register(
            name,
            source,
            actor=cli_actor(),
            description=description,
            output=output,
            owner=owner,
            intended_use=intended_use,
        )
    classes = f"; classes {version.classes}" if version.classes is not None else ""
    console.print(
        f"registered {name} version {version.version} ({version.approval_status.value});"
        f" digest {version.digest[:12]}; output {version.output.value}{classes}"
    )


@app.command("card")
def model_card(
    name: str,
    version: str = typer.Argument(..., help="a version number or an alias"),
    as_format: str = typer.Option(
        "markdown", "--format", help="markdown (default) or json", case_sensitive=False
    ),
) -> None:
    """The version's model card: owner and intended use, training data lineage, parameters,
    evaluation and the gate's comparison, bias, global importance, approval history."""
    from slipway.registry import card

    if as_format.lower() not in ("markdown", "json"):
        console.print("[red]error:[/red] --format is markdown or json")
        raise typer.Exit(2)
    with platform() as services:
        built = card.build(services.registry, name, int(version) if version.isdigit() else version)
    if as_format.lower() == "json":
        print_json(built)
    else:
        typer.echo(card.markdown(built), nl=False)


def _set(name: str, version: int, status: ApprovalStatus, comment: str) -> None:
    with platform() as services:
        updated = services.registry.set_approval(
            name, version, status, actor=cli_actor(), comment=comment
        )
    console.print(f"{name} version {version} is now {updated.approval_status.value}")


@app.command("approve")
def approve(name: str, version: int, comment: str = typer.Option("", "--comment", "-m")) -> None:
    """Approve a version for production."""
    _set(name, version, ApprovalStatus.APPROVED, comment)


@app.command("reject")
def reject(name: str, version: int, comment: str = typer.Option("", "--comment", "-m")) -> None:
    """Reject a version: it can no longer be deployed."""
    _set(name, version, ApprovalStatus.REJECTED, comment)


@app.command("alias")
def alias(name: str, alias_name: str, version: int) -> None:
    """Point an alias (champion, challenger, ...) at a version."""
    with platform() as services:
        services.registry.set_alias(name, alias_name, version, actor=cli_actor())
    console.print(f"{name}@{alias_name} -> version {version}")


@app.command("compare")
def compare(name: str, refs: list[str], output: OutputOption = Format.TABLE) -> None:
    """Metrics and params of two or more versions side by side."""
    with platform() as services:
        result = services.registry.compare(name, [int(r) if r.isdigit() else r for r in refs])
    if output is Format.JSON:
        print_json(result.model_dump(mode="json"))
        return
    columns = ["name", *[f"v{v}" for v in result.versions]]
    rows = [dict(zip(columns, row, strict=True)) for row in result.rows()]
    emit(rows, columns, output, title=f"{name}: compare")


@app.command("lineage")
def lineage(name: str, ref: str, output: OutputOption = Format.TABLE) -> None:
    """Where a version came from: run, pipeline, training set, code, data digest."""
    with platform() as services:
        version = services.registry.get(name, int(ref) if ref.isdigit() else ref)
        history = services.registry.transitions(name, version.version)
    data = version.lineage | {
        "digest": version.digest,
        "source": version.source,
        "approvals": [t.model_dump(mode="json") for t in history],
    }
    if output is Format.JSON:
        print_json(data)
        return
    console.print(
        f"[bold]{name} version {version.version}[/bold] ({version.approval_status.value})"
    )
    training = version.lineage.get("training_set") or {}
    rows: list[dict[str, Any]] = [
        {"what": "mlflow run", "value": version.lineage.get("run_id")},
        {"what": "experiment", "value": version.lineage.get("experiment_id")},
        {"what": "pipeline", "value": version.lineage.get("pipeline")},
        {
            "what": "execution / step",
            "value": f"{version.lineage.get('pipeline_execution') or '-'}"
            f" / {version.lineage.get('pipeline_step') or '-'}",
        },
        {"what": "feature refs", "value": ", ".join(training.get("feature_refs", [])) or None},
        {"what": "feature group versions", "value": training.get("group_versions")},
        {"what": "code revision", "value": version.lineage.get("code_revision")},
        {"what": "training data digest", "value": version.lineage.get("data_digest")},
        {"what": "model digest", "value": version.digest},
        {"what": "source", "value": version.source},
    ]
    emit(rows, ["what", "value"], Format.TABLE)
    emit(
        [t.model_dump() for t in history],
        Transition.table_columns(),
        Format.TABLE,
        title="approvals",
    )


@app.command("trained-on")
def trained_on(
    group: str,
    version: int | None = typer.Option(None, help="only this Delta version of the group"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Model versions trained on a feature group."""
    with platform() as services:
        found = services.registry.trained_on(group, version)
    emit(
        [i.model_dump(mode="json") for i in found],
        ["model", "version", "delta_version"],
        output,
    )


@app.command("promote")
def promote(
    name: str,
    version: str = typer.Argument(..., help="a version number or an alias, at the source"),
    to: str = typer.Option(
        ..., "--to", help="the profile (of slipway.yaml) whose remote control plane receives it"
    ),
    source: str | None = typer.Option(
        None,
        "--from",
        help="the profile it comes from; default: where this command points"
        " (--url, --profile or this machine)",
        show_default=False,
    ),
    output: OutputOption = Format.TABLE,
) -> None:
    """Copy a version to another Slipway: files (digest checked on arrival), signature,
    metrics, lineage and approval history. It arrives PendingManualApproval unless the
    target's registry.promotion_status says otherwise; promoting it again is a no-op."""
    from slipway.registry import promotion  # lazy: module docstring

    settings_or_exit(to)  # an unknown --to stops here, before the source is opened
    ref: int | str = int(version) if version.isdigit() else version
    with (
        _source(source) as origin,
        profile_platform(to, remote_only=True) as destination,
        reported(),
    ):
        if _address(origin) == _address(destination):
            raise InvalidInput(f"--to {to} is the platform the version comes from", field="--to")
        result = promotion.promote(origin, destination, name, ref, actor=cli_actor())
    if output is Format.JSON:
        print_json(result.model_dump(mode="json"))
        return
    arrived = result.version
    where = f"{destination.url} ({to})"
    if result.created:
        console.print(
            f"promoted {name} version {version} to {where} as version {arrived.version}"
            f" ({arrived.approval_status.value}); digest {arrived.digest[:12]}"
        )
    else:
        console.print(
            f"{name} version {version} was promoted to {where} before: version"
            f" {arrived.version} ({arrived.approval_status.value}); nothing changed"
        )


def _address(side: Any) -> tuple[str, str | None] | None:
    """(URL, workspace) of a remote platform; None in process."""
    transport = getattr(side, "transport", None)
    return None if transport is None else (transport.url, transport.workspace)


def _source(profile: str | None) -> AbstractContextManager[Any]:
    """The platform a promoted version comes from: ``--from``'s, else the command's."""
    return profile_platform(profile) if profile else platform()
