"""``slipway plan``, ``apply``, ``export`` and ``init``: a platform from spec files.

``plan`` exits 0 when the platform matches the files, 2 when apply would change
something (as ``terraform plan -detailed-exitcode``), 1 on an error — so CI can gate on
it. Both commands read every file and check every change before the first is made.

The spec machinery (which reads every kind of resource) loads inside the commands that
use it: ``slipway --help`` loads none of it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from slipway.apply.documents import SpecProblems
from slipway.cli.context import cli_actor, platform, reported
from slipway.cli.output import console, errors

if TYPE_CHECKING:
    from slipway.apply.resources import Plan, PlannedChange
    from slipway.apply.specset import SpecSet

PathArgument = Annotated[
    Path, typer.Argument(help="a spec file, or a directory of them (with environments/)")
]
EnvOption = Annotated[
    str | None,
    typer.Option("--env", "-e", help="merge environments/<ENV>.yaml over the base"),
]
PruneOption = Annotated[
    bool,
    typer.Option(
        "--prune", help="delete resources this spec set applied that the files no longer declare"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="the plan as JSON, for machines")]

_STYLE = {
    "create": "green",
    "update": "yellow",
    "delete": "red",
    "forget": "red",
    "unchanged": "dim",
    "kept": "cyan",
}
_SHOWN = 60


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _detail(change: PlannedChange) -> str:
    lines = [
        f"{escape(f.path)}: {escape(_short(f.old))} → {escape(_short(f.new))}"
        for f in change.fields
    ]
    if change.adopt:
        lines.append("made by hand: apply takes it over")
    if change.note:
        lines.append(escape(change.note))
    return "\n".join(lines)


def _show(plan: Plan, *, everything: bool) -> None:
    if not plan.has_changes and not everything:
        kept = plan.summary.get("kept", 0)
        console.print(
            f"No changes: the platform matches spec set {plan.spec_set}"
            f" ({plan.summary.get('unchanged', 0)} resources"
            + (f", {kept} kept outside the files" if kept else "")
            + ")."
        )
        return
    title = f"spec set {plan.spec_set}" + (
        f", environment {plan.environment}" if plan.environment else ""
    )
    table = Table(title=title, show_lines=False)
    for column in ("action", "kind", "name", "changes"):
        table.add_column(column)
    for change in plan.changes:
        if change.action == "unchanged" and not change.adopt and not everything:
            continue
        action = change.action + (" (drift)" if change.drift else "")
        style = _STYLE[change.action]
        table.add_row(f"[{style}]{action}[/{style}]", change.kind, change.name, _detail(change))
    console.print(table)
    counts = plan.summary
    console.print(
        ", ".join(f"{counts.get(a, 0)} to {a}" for a in ("create", "update", "delete"))
        + f", {counts.get('unchanged', 0)} unchanged"
        + (f", {counts['kept']} kept" if counts.get("kept") else "")
    )


def _problems(exc: SpecProblems) -> None:
    errors.print(
        f"[red]error:[/red] {len(exc.problems)} problem(s) in the spec files; nothing applied"
    )
    for problem in exc.problems:
        errors.print(f"  {escape(str(problem))}")


@contextmanager
def _importable_cwd() -> Iterator[None]:
    """Pipelines name their code by module path, imported from the directory the command
    runs in (as ``python -m`` would)."""
    here = str(Path.cwd())
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        yield
    finally:
        if added:
            sys.path.remove(here)


def _load(path: Path, env: str | None) -> SpecSet:
    from slipway.apply.specset import load_spec_set  # lazy: module docstring

    try:
        return load_spec_set(path, environment=env)
    except SpecProblems as exc:
        _problems(exc)
        raise typer.Exit(1) from None


def plan(
    path: PathArgument,
    env: EnvOption = None,
    prune: PruneOption = False,
    as_json: JsonOption = False,
    all_: Annotated[bool, typer.Option("--all", help="list unchanged resources too")] = False,
) -> None:
    """Show what apply would change: per resource create, update (field by field, old →
    new), delete or unchanged. Exit 0: no changes; 2: changes; 1: an error."""
    from slipway.apply.plan import plan as make_plan  # lazy: module docstring

    spec_set = _load(path, env)
    with _importable_cwd(), platform() as target:
        try:
            planned = make_plan(spec_set, target, prune=prune)
        except SpecProblems as exc:
            _problems(exc)
            raise typer.Exit(1) from None
    if as_json:
        typer.echo(
            json.dumps(
                planned.model_dump(mode="json") | {"has_changes": planned.has_changes}, indent=2
            )
        )
    else:
        _show(planned, everything=all_)
    raise typer.Exit(2 if planned.has_changes else 0)


def apply(
    path: PathArgument,
    env: EnvOption = None,
    prune: PruneOption = False,
    as_json: JsonOption = False,
) -> None:
    """Make the platform match the files: creates, updates (each through its service: an
    endpoint update is a deployment) and, with --prune, deletions of what this spec set
    applied before and the files no longer declare. Nothing is changed when any check
    fails; a second apply changes nothing."""
    # Lazy: module docstring.
    from slipway.apply.execute import apply as apply_plan
    from slipway.apply.plan import plan as make_plan

    spec_set = _load(path, env)
    with _importable_cwd(), platform() as target:
        try:
            planned = make_plan(spec_set, target, prune=prune)
        except SpecProblems as exc:
            _problems(exc)
            raise typer.Exit(1) from None
        if not as_json:
            _show(planned, everything=False)

        def shown(change: PlannedChange) -> None:
            if not as_json:
                console.print(f"  {change.action} {change.kind} {change.name}: done")

        with reported():
            applied = apply_plan(planned, spec_set, target, actor=cli_actor(), progress=shown)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "plan": planned.model_dump(mode="json"),
                    "done": [c.model_dump(mode="json") for c in applied.done],
                    "failed": applied.failed.model_dump(mode="json") if applied.failed else None,
                    "error": applied.error.message if applied.error else None,
                },
                indent=2,
            )
        )
    if not applied.ok:
        assert applied.failed is not None and applied.error is not None
        errors.print(
            f"[red]error:[/red] {applied.failed.action} {applied.failed.kind}"
            f" {applied.failed.name} failed: {escape(applied.error.message)};"
            f" {len(applied.done)} change(s) were made before it"
        )
        raise typer.Exit(1)
    if not as_json:
        console.print(f"applied: {len(applied.done)} change(s)")


def export(
    folder: Annotated[Path, typer.Argument(help="the directory to write the specs into")],
    spec_set: Annotated[
        str, typer.Option("--spec-set", help="the name of the spec set written")
    ] = "exported",
) -> None:
    """Write the platform's resources as spec files that plan as unchanged (one file per
    kind). Webhook URL paths come out hidden; batch jobs are left out."""
    from slipway.apply.export import export_to  # lazy: module docstring

    with platform() as target, reported():
        written = export_to(target, folder, spec_set=spec_set)
    for path in written:
        console.print(str(path))


def init(
    folder: Annotated[Path, typer.Argument(help="where to write the repository (new or empty)")],
    name: Annotated[
        str | None,
        typer.Option("--name", help="the model's name (default: the folder's name)"),
    ] = None,
) -> None:
    """Scaffold a model repository: a training pipeline, specs with stage and prod
    overlays, tests, settings profiles and a CI workflow (tests; plan on pull requests;
    apply to stage on merge; promotion to prod on a tag)."""
    from slipway.apply.scaffold import scaffold  # lazy: module docstring

    with reported():
        written = scaffold(folder, name or folder.resolve().name)
    for path in written:
        console.print(str(folder / path))
    console.print(
        f"next: cd {folder} && uv sync --extra test && uv run pytest,"
        " then slipway plan specs --env stage"
    )
