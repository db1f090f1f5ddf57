"""``slipway endpoints``: serving endpoints from the command line.

Create, update and rollback only store a config and return; gateways load it and the
deployment controller (in ``slipway up`` or ``slipway scheduler``) moves the traffic.
``slipway endpoints wait`` follows a rollout until it settles; ``slipway endpoints stats``
shows what each variant served.

``ab-test``'s metrics (NumPy, pandas) load inside that command: ``slipway --help`` loads
none of them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from slipway.cli.context import cli_actor, load_yaml_mapping, platform, reported
from slipway.cli.output import Format, OutputOption, console, emit, errors, print_json
from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.core.waiting import wait_until_final
from slipway.serving.resources import Deployment, Endpoint
from slipway.serving.spec import VariantSpec
from slipway.serving.states import EndpointStatus, Outcome

app = typer.Typer(
    help="Serving endpoints: create, update, roll back, follow, delete.", no_args_is_help=True
)

SpecFile = Annotated[
    Path, typer.Argument(help="YAML endpoint spec (name, variants, ...)", metavar="SPEC.yaml")
]

_COLOURS = {
    "InService": "green",
    "Creating": "yellow",
    "Updating": "yellow",
    "RollingBack": "magenta",
    "Failed": "red",
    "Deleting": "dim",
    "pending": "yellow",
    "deployed": "green",
    "retired": "dim",
    "rolled_back": "magenta",
    "failed": "red",
}


def _coloured(value: str) -> str:
    return f"[{_COLOURS.get(value, 'white')}]{value}[/]"


def _percent(share: float) -> str:
    return f"{share * 100:.4g}%"


def _variant_rows(config: Deployment, share: float) -> list[dict[str, Any]]:
    """One row per variant of a stored config; ``share`` is the config's part of traffic."""
    spec = config.spec
    total = sum(v.weight for v in spec.variants) or 1.0
    rows = [
        {
            "config": config.version,
            "variant": v.name,
            "model": v.model,
            "version": v.version,
            "weight": f"{v.weight:g}",
            "workers": v.workers,
            "traffic": _percent(share * v.weight / total),
        }
        for v in spec.variants
    ]
    rows += [
        {
            "config": config.version,
            "variant": f"{v.name} (shadow)",
            "model": v.model,
            "version": v.version,
            "weight": "-",
            "workers": v.workers,
            "traffic": f"mirrors {v.sampling_percent:g}%",
        }
        for v in spec.shadow_variants
    ]
    return rows


def _show(described: Endpoint) -> None:
    name, status = described.name, described.status
    console.print(f"[bold]{name}[/bold] {_coloured(status)}: {described.status_reason or '-'}")
    target_share = described.target_percent / 100 if described.target else 0.0
    rows: list[dict[str, Any]] = []
    if described.active:
        rows += _variant_rows(described.active, 1.0 - target_share)
    if described.target:
        rows += _variant_rows(described.target, target_share)
    emit(
        rows,
        ["config", "variant", "model", "version", "weight", "workers", "traffic"],
        Format.TABLE,
        title=f"active config {described.active_version or '-'},"
        f" target config {described.target_version or '-'}",
    )
    shares = [
        f"config {c.version} {_percent(share)}"
        for c, share in (
            (described.active, 1.0 - target_share),
            (described.target, target_share),
        )
        if c and share > 0
    ]
    split = ", ".join(f"{k} {_percent(v)}" for k, v in sorted(described.traffic.items()))
    console.print(f"traffic: {', '.join(shares) or 'none'}; by variant: {split or 'none'}")
    if described.gateways:
        emit(
            [g.model_dump() for g in described.gateways],
            ["gateway", "config_version", "state", "error"],
            Format.TABLE,
            title="gateways",
        )


def _summary(variants: list[VariantSpec]) -> str:
    return ", ".join(f"{v.name}={v.model} w{v.weight:g}" for v in variants)


def _changed(described: Endpoint, output: Format, verb: str) -> None:
    if output is Format.JSON:
        print_json(described.model_dump(mode="json"))
        return
    console.print(
        f"{verb} endpoint [bold]{described.name}[/bold]: {_coloured(described.status)},"
        f" config {described.target_version}; follow it with"
        f" `slipway endpoints wait {described.name}`"
    )


@app.command("create")
def create(file: SpecFile, output: OutputOption = Format.TABLE) -> None:
    """Create an endpoint from a YAML spec (it starts Creating)."""
    spec = load_yaml_mapping(file)
    with platform() as services:
        described = services.endpoints.create(spec, actor=cli_actor())
    _changed(described, output, "created")


@app.command("update")
def update(file: SpecFile, output: OutputOption = Format.TABLE) -> None:
    """Roll out a new spec for the endpoint it names, with the spec's deployment strategy."""
    spec = load_yaml_mapping(file)
    with platform() as services:
        described = services.endpoints.update(str(spec.get("name", "")), spec, actor=cli_actor())
    _changed(described, output, "updating")


@app.command("describe")
def describe(name: str, output: OutputOption = Format.TABLE) -> None:
    """An endpoint's status, variants, traffic split and gateways."""
    with platform() as services:
        described = services.endpoints.describe(name)
    if output is Format.JSON:
        print_json(described.model_dump(mode="json"))
        return
    _show(described)


@app.command("list")
def list_endpoints(output: OutputOption = Format.TABLE) -> None:
    """Endpoints with their status and the configs they serve and roll out."""
    with platform() as services:
        endpoints = services.endpoints.list()
    if output is Format.JSON:
        print_json([e.model_dump(mode="json") for e in endpoints])
        return
    emit(
        [e.model_dump() | {"status": _coloured(e.status)} for e in endpoints],
        Endpoint.table_columns(),
        output,
        title="endpoints",
    )


@app.command("history")
def history(name: str, output: OutputOption = Format.TABLE) -> None:
    """Every config of an endpoint, oldest first, with how its rollout ended."""
    with platform() as services:
        configs = services.endpoints.history(name)
    if output is Format.JSON:
        print_json([c.model_dump(mode="json") for c in configs])
        return
    rows = [
        c.model_dump()
        | {
            "outcome": _coloured(c.outcome),
            "variants": _summary(c.spec.variants),
            "strategy": c.spec.deployment.strategy.value,
        }
        for c in configs
    ]
    emit(
        rows,
        [
            "version",
            "outcome",
            "outcome_reason",
            "variants",
            "strategy",
            "rollback_of",
            "created_by",
            "created_at",
        ],
        Format.TABLE,
        title=f"{name}: deployment history",
    )


@app.command("rollback")
def rollback(
    name: str,
    to_version: int | None = typer.Option(
        None, "--to-version", min=1, help="config to deploy again; default: the one before"
    ),
    output: OutputOption = Format.TABLE,
) -> None:
    """Deploy an earlier config again, all at once (stored as a new config)."""
    with platform() as services:
        described = services.endpoints.rollback(name, to_version=to_version, actor=cli_actor())
    _changed(described, output, "rolling back")


@app.command("delete")
def delete(name: str, yes: bool = typer.Option(False, "--yes", help="do not ask")) -> None:
    """Stop serving an endpoint and delete it with its history."""
    if not yes:
        typer.confirm(f"delete endpoint {name}? it stops serving traffic", abort=True)
    with platform() as services:
        services.endpoints.delete(name, actor=cli_actor())
    console.print(f"deleting {name}: gateways drop it, then it is gone")


def _settled(described: Endpoint) -> str:
    """The status once a rollout has ended, else the status with the rollout's progress."""
    status: str = described.status.value
    target = described.target_version
    if target is None or status == EndpointStatus.DELETING:
        return status
    return f"{status} (config {target} at {described.target_percent:g}%)"


@app.command("wait")
def wait(
    name: str,
    timeout: float = typer.Option(600.0, "--timeout", min=0, help="give up after S seconds"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Follow a rollout until the endpoint is InService or Failed.

    Exits 1 when it fails, when the newest config failed to load or was rolled back (the
    previous one still serves), or on timeout. The deployment controller must be running
    (``slipway up`` or ``slipway scheduler``).
    """
    progress = errors if output is Format.JSON else console
    seen: list[tuple[str, str]] = []
    with platform() as services:

        def fetch() -> Endpoint:
            described: Endpoint = services.endpoints.describe(name)
            note = (_settled(described), described.status_reason)
            if not seen or seen[-1] != note:
                seen.append(note)
                progress.print(f"{name}: {note[0]} {note[1]}".rstrip())
            return described

        try:
            final = wait_until_final(
                fetch,
                _settled,
                {EndpointStatus.IN_SERVICE, EndpointStatus.FAILED, EndpointStatus.DELETING},
                what=f"endpoint {name}",
                timeout=timeout,
                interval=1.0,
            )
        except TimeoutError as exc:
            errors.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        settled = final.status == EndpointStatus.IN_SERVICE
        newest = services.endpoints.history(name)[-1] if settled else None
    if output is Format.JSON:
        print_json(final.model_dump(mode="json"))
    if newest is None:
        errors.print(
            f"[red]error:[/red] endpoint {name} is {final.status.value}: {final.status_reason}"
        )
        raise typer.Exit(1)
    if newest.outcome != Outcome.DEPLOYED:
        # An update that failed to load or was rolled back leaves the old config serving.
        errors.print(
            f"[red]error:[/red] config {newest.version} {newest.outcome.value}:"
            f" {newest.outcome_reason} (config {final.active_version} serves)"
        )
        raise typer.Exit(1)
    if output is Format.TABLE:
        console.print(f"{name} is InService with config {final.active_version}")


_AGO = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _since(value: str | None) -> datetime | None:
    """``--since``: an ISO 8601 time with a time zone, or a span back from now (``15m``)."""
    if value is None:
        return None
    with reported():
        ago = _AGO.fullmatch(value.strip())
        if ago:
            try:
                return utcnow() - timedelta(**{_UNITS[ago[2]]: float(ago[1])})
            except OverflowError:
                raise InvalidInput(f"--since {value!r} is too far back", field="since") from None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"--since {value!r} is neither an ISO 8601 time nor a span like 15m, 2h, 1d",
                field="since",
            ) from None
        if moment.tzinfo is None:
            raise InvalidInput(
                f"--since {value!r} needs a time zone (e.g. {value}Z or {value}+02:00)",
                field="since",
            )
    return moment


# Latency columns of the table (the JSON output has every figure).
_LATENCIES = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "model_p50_ms", "model_p99_ms")


def _ms(value: float | None) -> str | None:
    return None if value is None else f"{value:,.2f}"


@app.command("stats")
def stats(
    name: str,
    since: str | None = typer.Option(
        None,
        "--since",
        help="ISO 8601 time with a time zone, or a span back from now (30s, 15m, 2h, 1d);"
        " default: every window kept (a week)",
    ),
    config_version: int | None = typer.Option(
        None, "--config-version", min=1, help="only this config's traffic"
    ),
    output: OutputOption = Format.TABLE,
) -> None:
    """Requests, errors and latency percentiles (within 1%) per variant, from every gateway."""
    moment = _since(since)
    with platform() as services, reported():
        report = services.endpoints.stats(name, since=moment, config_version=config_version)
    if output is Format.JSON:
        print_json(report.model_dump(mode="json"))
        return
    scope = f"since {moment:%Y-%m-%d %H:%M:%S %Z}" if moment else "all kept traffic"
    if config_version is not None:
        scope += f", config {config_version}"
    if not report.variants:
        console.print(f"{name}: no traffic ({scope})")
        return
    rows = [
        {
            "variant": variant,
            "requests": f"{v.requests:,}",
            "errors": f"{v.errors:,}",
            "error_rate": None if v.error_rate is None else _percent(v.error_rate),
            **{k: _ms(getattr(v, k)) for k in _LATENCIES},
            "prediction_mean": None if v.prediction_mean is None else f"{v.prediction_mean:.4g}",
        }
        for variant, v in report.variants.items()
    ]
    emit(
        rows,
        ["variant", "requests", "errors", "error_rate", *_LATENCIES, "prediction_mean"],
        Format.TABLE,
        title=f"{name}: {scope} (latency in ms)",
    )


@app.command("ab-test")
def ab_test_report(
    name: str,
    since: str = typer.Option(
        ..., "--since", help="start: ISO 8601 with a time zone, or a span back (30m, 2h, 1d)"
    ),
    metric: str = typer.Option("roc_auc", help="roc_auc, log_loss, accuracy, rmse or mae"),
    min_difference: float = typer.Option(0.0, min=0.0, help="smallest difference worth acting on"),
    min_samples: int = typer.Option(100, min=1, help="labelled inferences per variant first"),
    reference: str | None = typer.Option(None, help="default: the heaviest variant"),
    seed: int = typer.Option(0, min=0, help="bootstrap seed (same seed, same interval)"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Per-variant model quality from ground truth, each variant against the reference with
    a bootstrap interval, and the verdict: winner, loser or no difference yet."""
    from slipway.evaluation import ab  # lazy: module docstring

    moment = _since(since)
    assert moment is not None
    with platform() as services, reported():
        report = services.monitoring.ab_test(
            name,
            since=moment,
            metric=metric,
            min_difference=min_difference,
            min_samples=min_samples,
            seed=seed,
            reference=reference,
        )
    if output is Format.JSON:
        print_json(report.model_dump(mode="json"))
        return
    metrics = [
        m
        for m in (*ab.CLASSIFIER_METRICS, *ab.REGRESSOR_METRICS)
        if any(v.get(m) is not None for v in report.variants.values())
    ]
    emit(
        [
            {
                "variant": variant,
                "samples": f"{v['samples']:,}",
                **{m: None if v.get(m) is None else f"{v[m]:.4f}" for m in metrics},
                "requests": f"{v['traffic'].get('requests', 0):,}",
                "errors": f"{v['traffic'].get('errors', 0):,}",
                "p99_ms": _ms(v["traffic"].get("p99_ms")),
            }
            for variant, v in report.variants.items()
        ],
        ["variant", "samples", *metrics, "requests", "errors", "p99_ms"],
        Format.TABLE,
        title=f"{name}: {report.labelled_rows:,} labelled of {report.captured_rows:,}"
        f" captured rows since {moment:%Y-%m-%d %H:%M %Z}",
    )
    for comparison in report.comparisons:
        console.print(f"[bold]{comparison.verdict}[/bold]: {comparison.reason}")
