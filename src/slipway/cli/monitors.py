"""``slipway monitors``: data-quality, model-quality, bias and attribution-drift monitors,
their runs, reports and the ground truth model-quality and bias monitors score against
(baselines under ``monitors baseline``).

A run is queued and executed by a worker (``slipway up`` or ``slipway worker``); ``run
--wait`` follows it with a spinner and prints its report, and exits 1 if it fails or is
not finished within ``--timeout`` (as when no worker is running).

The monitoring resources (their specs bring pandas) load inside the commands that use
them: ``slipway --help`` loads none of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from slipway.cli import baselines
from slipway.cli.context import cli_actor, load_yaml_mapping, platform, reported
from slipway.cli.output import Format, OutputOption, console, emit, errors, print_json
from slipway.core.errors import InvalidInput
from slipway.core.resource import Resource
from slipway.core.waiting import wait_until_final
from slipway.monitoring import uploads

if TYPE_CHECKING:
    from slipway.monitoring.resources import Monitor, MonitorReport, MonitorRun
    from slipway.services import Services

app = typer.Typer(
    help="Monitors: data quality and drift of captured traffic, model quality and bias "
    "against ground truth, drift of the model's feature attributions.",
    no_args_is_help=True,
)
app.add_typer(baselines.app, name="baseline")

FINAL = ("completed", "failed")
_COLOURS = {
    "queued": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "no_violations": "green",
    "violations": "red",
    "no_data": "yellow",
}

Yes = Annotated[bool, typer.Option("--yes", help="do not ask")]
When = Annotated[
    str | None,
    typer.Option(help="ISO 8601 with a time zone, e.g. 2024-05-01T10:00:00Z"),
]


def _coloured(value: str | None) -> str:
    if value is None:
        return "-"
    return f"[{_COLOURS.get(value, 'white')}]{value}[/]"


def _moment(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    with reported():
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"--{field} {value!r} is not an ISO 8601 time", field=field
            ) from None
        if moment.tzinfo is None:
            raise InvalidInput(
                f"--{field} {value!r} needs a time zone (e.g. {value}Z or {value}+02:00)",
                field=field,
            )
    return moment


def _short(moment: datetime | None) -> str | None:
    """A time from the service as UTC to the second, for tables."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else None


def _fields(resource: Resource, output: Format = Format.TABLE) -> dict[str, Any]:
    """A resource's fields: JSON values for ``--output json``, Python ones for tables."""
    return resource.model_dump(mode="json" if output is Format.JSON else "python")


# -- monitors -------------------------------------------------------------------------


def _report(done: str, monitor: Monitor, output: Format) -> None:
    """What create and update print: the monitor's fields, or one line for people."""
    if output is Format.JSON:
        print_json(_fields(monitor, output))
        return
    schedule = f"on {monitor.schedule} ({monitor.timezone})" if monitor.schedule else ""
    console.print(
        f"{done} {monitor.kind} monitor [bold]{monitor.name}[/bold] of endpoint"
        f" {monitor.endpoint} {schedule or 'run on demand'}"
    )


@app.command("create")
def create(
    file: Annotated[
        Path,
        typer.Option(
            ..., "--file", "-f", help="YAML or JSON monitor spec (name, kind, endpoint, ...)"
        ),
    ],
    output: OutputOption = Format.TABLE,
) -> None:
    """Create a monitor from a spec file."""
    spec = load_yaml_mapping(file)
    with platform() as services:
        _report("created", services.monitoring.create(spec, actor=cli_actor()), output)


@app.command("update")
def update(
    file: Annotated[
        Path,
        typer.Option(
            ..., "--file", "-f", help="YAML or JSON monitor spec (name, kind, endpoint, ...)"
        ),
    ],
    output: OutputOption = Format.TABLE,
) -> None:
    """Replace a monitor's spec from a spec file (its kind may not change; its runs stay)."""
    spec = load_yaml_mapping(file)
    with platform() as services:
        _report("updated", services.monitoring.update(spec, actor=cli_actor()), output)


@app.command("list")
def list_monitors(
    endpoint: Annotated[str | None, typer.Option(help="only this endpoint's")] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Monitors by name."""
    with platform() as services:
        monitors = services.monitoring.list(endpoint=endpoint)
    rows = [_fields(m, output) for m in monitors]
    if output is Format.TABLE:
        rows = [
            r
            | {
                "baseline": m.spec.baseline,
                "enabled": "yes" if m.enabled else "no",
                "last_status": _coloured(m.last_status),
                "next_run_at": _short(m.next_run_at),
            }
            for r, m in zip(rows, monitors, strict=True)
        ]
    emit(
        rows,
        [
            "name",
            "kind",
            "endpoint",
            "baseline",
            "schedule",
            "enabled",
            "next_run_at",
            "last_status",
            "runs",
        ],
        output,
        title="monitors",
    )


@app.command("show")
def show(name: str, output: OutputOption = Format.TABLE) -> None:
    """A monitor, its spec and its latest runs."""
    with platform() as services:
        monitor = services.monitoring.get(name)
        recent = services.monitoring.runs(name, limit=5)
    if output is Format.JSON:
        print_json(_fields(monitor, output) | {"recent_runs": [_fields(r, output) for r in recent]})
        return
    spec = monitor.spec
    console.print(
        f"[bold]{name}[/bold]: {monitor.kind} of endpoint {monitor.endpoint}"
        + (f" variant {spec.variant}" if spec.variant else "")
        + (f", baseline {spec.baseline}" if spec.baseline else "")
    )
    schedule = (
        f"{monitor.schedule} ({monitor.timezone}), next {_short(monitor.next_run_at)}"
        if monitor.schedule and monitor.enabled
        else f"{monitor.schedule} (disabled)"
        if monitor.schedule
        else "on demand only"
    )
    console.print(f"schedule: {schedule}; window {spec.window_hours:g} h")
    console.print(f"last status: {_coloured(monitor.last_status)}; {monitor.runs} runs")
    if recent:
        _runs_table(recent, f"{name}: latest runs")


@app.command("enable")
def enable(name: str) -> None:
    """Resume a monitor's schedule."""
    with platform() as services:
        services.monitoring.set_enabled(name, True, actor=cli_actor())
    console.print(f"enabled {name}")


@app.command("disable")
def disable(name: str) -> None:
    """Stop a monitor's scheduled runs (on-demand runs still work)."""
    with platform() as services:
        services.monitoring.set_enabled(name, False, actor=cli_actor())
    console.print(f"disabled {name}")


@app.command("delete")
def delete(name: str, yes: Yes = False) -> None:
    """Delete a monitor (its reports are kept)."""
    if not yes:
        typer.confirm(f"delete monitor {name}?", abort=True)
    with platform() as services:
        services.monitoring.delete(name, actor=cli_actor())
    console.print(f"deleted monitor {name}")


# -- runs -----------------------------------------------------------------------------


def _runs_table(runs: list[MonitorRun], title: str, output: Format = Format.TABLE) -> None:
    from slipway.monitoring.resources import MonitorRun  # lazy: module docstring

    rows = [_fields(r, output) for r in runs]
    if output is Format.TABLE:
        rows = [
            row
            | {
                "state": _coloured(r.state),
                "status": _coloured(r.status),
                "window_start": _short(r.window_start),
                "window_end": _short(r.window_end),
                "finished_at": _short(r.finished_at),
            }
            for row, r in zip(rows, runs, strict=True)
        ]
    columns = [c for c in MonitorRun.table_columns() if c != "monitor"]
    emit(rows, columns, output, title=title)


def _follow(services: Services, run: MonitorRun, timeout: float, output: Format) -> MonitorRun:
    """Poll the run with a spinner until it ends (completed or failed); exit 1 when it has
    not ended within ``timeout`` seconds."""
    shown = errors if output is Format.JSON else console
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}[/bold]"),
        TimeElapsedColumn(),
        console=shown,
        transient=True,
    ) as progress:
        task = progress.add_task(f"run {run.id} of {run.monitor} {run.state}")

        def fetch() -> MonitorRun:
            current = services.monitoring.get_run(run.id)
            progress.update(task, description=f"run {run.id} of {run.monitor} {current.state}")
            return current

        try:
            return wait_until_final(
                fetch,
                lambda r: r.state,
                FINAL,
                what=f"monitor run {run.id}",
                timeout=timeout,
                interval=0.3,
            )
        except TimeoutError as exc:
            errors.print(
                f"[red]error:[/red] {exc}: runs are executed by workers; is one running?"
                " (`slipway worker` or `slipway up`)"
            )
            raise typer.Exit(1) from None


@app.command("run")
def run(
    name: str,
    start: When = None,
    end: When = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="follow the run and print its report")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="with --wait, give up after S seconds")
    ] = 3600.0,
    output: OutputOption = Format.TABLE,
) -> None:
    """Queue a run over [start, end) (default: the monitor's window before now)."""
    window = (_moment(start, "start"), _moment(end, "end"))
    with platform() as services:
        queued = services.monitoring.run(name, actor=cli_actor(), start=window[0], end=window[1])
        if not wait:
            if output is Format.JSON:
                print_json(_fields(queued, output))
            else:
                console.print(
                    f"queued run {queued.id} of {name} over {_short(queued.window_start)}"
                    f" - {_short(queued.window_end)}; follow it with"
                    f" `slipway monitors report {queued.id}` once a worker ran it"
                )
            return
        shown = errors if output is Format.JSON else console
        shown.print(f"queued run {queued.id} of {name}; waiting for a worker to run it")
        done = _follow(services, queued, timeout, output)
        report = services.monitoring.report(done.id) if done.state == "completed" else None
    if output is Format.JSON:
        print_json(_fields(done, output))
    elif report is not None:
        _print_report(report.model_dump(exclude_unset=True))
    if done.state == "failed":
        errors.print(f"[red]error:[/red] monitor run {done.id} failed: {done.error}")
        raise typer.Exit(1)


@app.command("runs")
def runs(
    name: str,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    output: OutputOption = Format.TABLE,
) -> None:
    """A monitor's runs, newest first."""
    with platform() as services:
        rows = services.monitoring.runs(name, limit=limit)
    _runs_table(rows, f"{name}: runs", output)


def _score(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _report_json(report: MonitorReport) -> dict[str, Any]:
    # Only the fields the report has: a model-quality report has no drifted columns.
    return report.model_dump(mode="json", exclude_unset=True)


def _print_report(report: dict[str, Any]) -> None:
    console.print(
        f"run {report['run_id']} of [bold]{report['monitor']}[/bold] on {report['endpoint']}:"
        f" {_coloured(report['status'])}, {report['rows']:,} rows,"
        f" {_short(report['window_start'])} - {_short(report['window_end'])} UTC"
    )
    if report["kind"] == "data_quality":
        table = Table(title="drift per column")
        for heading in ("column", "role", "type", "completeness", "method", "score"):
            table.add_column(heading)
        table.add_column("threshold")
        table.add_column("drifted")
        for column, entry in report.get("columns", {}).items():
            rule = (entry.get("drift") or {}).get("rule") or {}
            method = rule.get("method")
            table.add_row(
                column,
                entry["role"],
                entry["type"],
                f"{entry['completeness']:.2%}",
                method or "-",
                _score(entry["drift"].get(method)) if method else "-",
                _score(rule.get("threshold")),
                "[red]yes[/]" if entry.get("drifted") else "no",
            )
        console.print(table)
    elif report["kind"] == "bias":
        _print_bias(report)
    elif report["kind"] == "attribution_drift":
        _print_attribution(report)
    elif report["kind"] == "feature_skew":
        _print_skew(report)
    else:
        console.print(
            f"{report['labelled']:,} predictions labelled, {report['unlabelled']:,} not yet"
            f" ({report['problem_type']})"
        )
        violated = {v.get("metric") for v in report["violations"]}
        table = Table(title="model quality")
        table.add_column("metric")
        table.add_column("value")
        table.add_column("violated")
        for metric, value in report.get("metrics", {}).items():
            table.add_row(metric, _score(value), "[red]yes[/]" if metric in violated else "no")
        console.print(table)
    if report["violations"]:
        table = Table(title="violations")
        for heading in ("column", "check", "message"):
            table.add_column(heading)
        for violation in report["violations"]:
            table.add_row(
                violation.get("column") or violation.get("model") or violation.get("metric") or "-",
                violation["check"],
                violation["message"],
            )
        console.print(table)
    else:
        console.print("no violations")


def _print_bias(report: dict[str, Any]) -> None:
    facet = report["facet"]
    rule = (
        f"{facet['column']} in {facet['values']}"
        if "values" in facet
        else f"{facet['column']} >= {facet['threshold']:g}"
    )
    console.print(
        f"{report['labelled']:,} predictions labelled, {report['unlabelled']:,} not yet;"
        f" facet d: {rule}, facet a: the rest"
    )
    if report.get("unmatched_facet_values"):
        console.print(f"[yellow]no labelled row has {report['unmatched_facet_values']}[/]")
    groups = report.get("groups") or {}
    if groups:
        table = Table(title="groups")
        for heading in ("facet", "rows", "labelled positive", "predicted positive", "recall"):
            table.add_column(heading)
        for name in ("a", "d"):
            group = groups[name]
            table.add_row(
                name,
                f"{group['rows']:,}",
                _score(group["label_positive_rate"]),
                _score(group.get("predicted_positive_rate")),
                _score(group.get("true_positive_rate")),
            )
        console.print(table)
    violated = {v.get("metric") for v in report["violations"]}
    undefined = report.get("undefined") or {}
    table = Table(title="bias")
    for heading in ("metric", "value", "violated"):
        table.add_column(heading)
    for metric, value in report.get("metrics", {}).items():
        shown = _score(value) if value is not None else f"- ({undefined.get(metric, '')})"
        table.add_row(metric, shown, "[red]yes[/]" if metric in violated else "no")
    console.print(table)


def _bar(value: float | None, largest: float, width: int = 20) -> str:
    if not value or largest <= 0:
        return ""
    return "█" * max(1, round(width * value / largest))


def _print_attribution(report: dict[str, Any]) -> None:
    top_k = f", top {report['top_k']}" if report.get("top_k") else ""
    for model in report.get("models", []):
        score = model["ndcg"]
        verdict = (
            "-"
            if score is None
            else f"[red]{score:.4f}[/]"
            if score < report["threshold"]
            else f"[green]{score:.4f}[/]"
        )
        console.print(
            f"{model['model']}: {model['rows']:,} rows, {model['explained']:,} explained"
            f" ({model['output_space']} output); NDCG {verdict} against the"
            f" {model['reference_source']} reference (threshold {report['threshold']:g}{top_k})"
        )
        features = model["features"]
        largest = max((f["importance"] or 0.0 for f in features), default=0.0)
        table = Table(title=f"mean |SHAP| of {model['model']} in traffic")
        for heading in ("rank", "feature", "importance", "", "reference rank", "reference"):
            table.add_column(heading)
        for feature in features:
            moved = feature["rank"] != feature["reference_rank"]
            table.add_row(
                str(feature["rank"] or "-"),
                feature["feature"],
                _score(feature["importance"]),
                _bar(feature["importance"], largest),
                f"[yellow]{feature['reference_rank']}[/]"
                if moved
                else str(feature["reference_rank"] or "-"),
                _score(feature["reference"]),
            )
        console.print(table)


def _print_skew(report: dict[str, Any]) -> None:
    view = report["feature_view"]
    console.print(
        f"{report['compared']:,} rows compared with feature view {view['name']}:"
        f"{view['version']} recomputed as known at each request; at most"
        f" {report['max_mismatch_share']:.2%} may differ"
    )
    table = Table(title="served against recomputed, per feature")
    for heading in ("feature", "mismatches", "share", "missing served", "missing offline"):
        table.add_column(heading)
    for heading in ("p50 |diff|", "p99 |diff|", "max |diff|"):
        table.add_column(heading)
    for feature, entry in report.get("features", {}).items():
        spread = entry.get("differences") or {}
        share = f"{entry['share']:.2%}"
        table.add_row(
            feature,
            f"{entry['mismatches']:,}",
            f"[red]{share}[/]" if feature in report.get("skewed", []) else share,
            f"{entry['missing_in_capture']:,}",
            f"{entry['missing_offline']:,}",
            *(_score(spread.get(q)) if spread else "-" for q in ("p50", "p99", "max")),
        )
    console.print(table)


@app.command("report")
def report(run_id: int, output: OutputOption = Format.TABLE) -> None:
    """A completed run's report: drift per column (or metrics) and violations."""
    with platform() as services:
        document = services.monitoring.report(run_id)
    if output is Format.JSON:
        print_json(_report_json(document))
        return
    _print_report(document.model_dump(exclude_unset=True))


# -- ground truth ---------------------------------------------------------------------


@app.command("ground-truth")
def ground_truth(
    endpoint: str,
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON lines (.jsonl, .ndjson), CSV (.csv: inference_id,row,label) or "
            'JSON (.json: {"records": [...]})'
        ),
    ],
    output: OutputOption = Format.TABLE,
) -> None:
    """Send labels for an endpoint's captured predictions (all or nothing)."""
    with reported():
        records = uploads.read_file(file)
    with platform() as services:
        stored = services.monitoring.put_ground_truth(endpoint, records, actor=cli_actor())
    if output is Format.JSON:
        print_json(_fields(stored, output))
        return
    console.print(f"stored {stored.records:,} labels for endpoint {endpoint}")
