"""``slipway alerts``: channels, rules, fired alerts and test notifications.

Channels say where alerts go, rules which events raise them; the scheduler (``slipway up``
or ``slipway scheduler``) raises and delivers them. ``slipway alerts list`` shows what
fired and how each delivery went.

The resource classes load inside the commands that use them (their modules bring the
event log and SQLAlchemy): ``slipway --help`` loads none of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from slipway.cli.context import cli_actor, load_yaml_mapping, platform, reported
from slipway.cli.output import Format, OutputOption, console, emit, errors, print_json
from slipway.core.errors import InvalidInput
from slipway.core.resource import Resource

app = typer.Typer(
    help="Alerts: rules on events, sent to webhooks, e-mail or the log.", no_args_is_help=True
)
channels = typer.Typer(help="Where alerts go: webhook, email or log.", no_args_is_help=True)
rules = typer.Typer(help="Which events raise alerts, to which channels.", no_args_is_help=True)
app.add_typer(channels, name="channels")
app.add_typer(rules, name="rules")

_STATES = {"delivered": "green", "pending": "yellow", "failed": "red"}


def _fields(resource: Resource, output: Format = Format.TABLE) -> dict[str, Any]:
    """A resource's fields: JSON values for ``--output json``, Python ones for tables."""
    return resource.model_dump(mode="json" if output is Format.JSON else "python")


def _value(text: str) -> Any:
    """A filter value: JSON when it parses (``3``, ``true``, ``"3"``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _filters(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            with reported():
                raise InvalidInput(f"{value!r} must look like path=value", field="filter")
        out[key] = _value(rest)
    return out


# -- channels ---------------------------------------------------------------------------


@channels.command("create")
def create_channel(
    name: str,
    kind: str = typer.Option(..., "--kind", help="webhook, email or log"),
    url: str | None = typer.Option(None, "--url", help="webhook: the URL to POST to"),
    format: str | None = typer.Option(None, "--format", help="webhook: json (default) or slack"),
    to: list[str] = typer.Option([], "--to", help="email: a recipient (repeat for more)"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Save a channel. Webhook URLs on loopback, link-local or metadata addresses are
    refused unless the operator allows the host (alerts.allowed_hosts)."""
    config: dict[str, Any] = {}
    if url is not None:
        config["url"] = url
    if format is not None:
        config["format"] = format
    if to:
        config["to"] = to
    with platform() as services:
        created = services.alerts.create_channel(name, kind, config, actor=cli_actor())
    if output is Format.JSON:
        print_json(_fields(created, output))
        return
    console.print(f"alert channel [bold]{name}[/bold] ({kind}) saved")


@channels.command("list")
def list_channels(output: OutputOption = Format.TABLE) -> None:
    """Alert channels (webhook URLs without their path)."""
    from slipway.events.resources import AlertChannel  # lazy: module docstring

    with platform() as services:
        rows = [_fields(c, output) for c in services.alerts.channels()]
    emit(rows, list(AlertChannel.table_fields), output, title="channels")


@channels.command("describe")
def describe_channel(name: str, output: OutputOption = Format.TABLE) -> None:
    """One channel."""
    from slipway.events.resources import AlertChannel  # lazy: module docstring

    with platform() as services:
        row = _fields(services.alerts.channel(name), output)
    if output is Format.JSON:
        print_json(row)
        return
    emit([row], list(AlertChannel.table_fields), output)


@channels.command("delete")
def delete_channel(name: str) -> None:
    """Delete a channel no rule sends to."""
    with platform() as services:
        services.alerts.delete_channel(name, actor=cli_actor())
    console.print(f"deleted alert channel {name}")


@channels.command("test")
def test_channel(name: str, output: OutputOption = Format.TABLE) -> None:
    """Send a test notification now; exits 1 unless it was delivered."""
    with platform() as services:
        result = services.alerts.test(name, actor=cli_actor())
    if output is Format.JSON:
        print_json(_fields(result, output))
    elif result.delivered:
        status = f" ({result.status_code})" if result.status_code else ""
        console.print(f"test notification delivered to {name}{status}")
    if not result.delivered:
        errors.print(f"[red]error:[/red] test notification to {name} failed: {result.error}")
        raise typer.Exit(1)


# -- rules ------------------------------------------------------------------------------


@rules.command("create")
def create_rule(
    name: str | None = typer.Argument(None, help="the rule's name (or give it in --file)"),
    file: Path | None = typer.Option(None, "--file", "-f", help="a YAML rule instead"),
    event: list[str] = typer.Option(
        [], "--event", help="event type, prefix.* or * (repeat for more)"
    ),
    channel: list[str] = typer.Option([], "--channel", help="channel name (repeat for more)"),
    filter: list[str] = typer.Option(
        [], "--filter", help="path=value, e.g. payload.environment=production"
    ),
    cooldown: float | None = typer.Option(None, "--cooldown", help="seconds (default 300)"),
    dedup_by: list[str] = typer.Option(
        [], "--dedup-by", help="key path: resource (default), type, payload.a.b"
    ),
    severity: str | None = typer.Option(None, "--severity", help="info, warning, error, critical"),
    description: str | None = typer.Option(None, "--description"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Alert CHANNELs when an event of a given type (and matching filters) is appended."""
    spec: dict[str, Any] = load_yaml_mapping(file) if file is not None else {}
    given: dict[str, Any] = {
        "name": name,
        "event_types": event or None,
        "channels": channel or None,
        "filters": _filters(filter) or None,
        "cooldown_seconds": cooldown,
        "dedup_by": dedup_by or None,
        "severity": severity,
        "description": description,
    }
    spec |= {k: v for k, v in given.items() if v is not None}
    with platform() as services:
        row = services.alerts.create_rule(spec, actor=cli_actor())
    if output is Format.JSON:
        print_json(_fields(row, output))
        return
    console.print(
        f"alert rule [bold]{row.name}[/bold]: {', '.join(row.event_types)} ->"
        f" {', '.join(row.channels)} (cool-down {row.cooldown_seconds:g} s)"
    )


@rules.command("list")
def list_rules(output: OutputOption = Format.TABLE) -> None:
    """Alert rules with how often each fired and how many events its cool-down absorbed."""
    from slipway.events.resources import AlertRule  # lazy: module docstring

    with platform() as services:
        rows = [_fields(r, output) for r in services.alerts.rules()]
    emit(rows, list(AlertRule.table_fields), output, title="rules")


@rules.command("describe")
def describe_rule(name: str, output: OutputOption = Format.TABLE) -> None:
    """One rule."""
    with platform() as services:
        row = _fields(services.alerts.rule(name), output)
    if output is Format.JSON:
        print_json(row)
        return
    for key, value in row.items():
        console.print(f"[bold]{key}[/bold]: {value}")


@rules.command("enable")
def enable_rule(name: str) -> None:
    with platform() as services:
        services.alerts.set_rule_enabled(name, True, actor=cli_actor())
    console.print(f"enabled {name}")


@rules.command("disable")
def disable_rule(name: str) -> None:
    with platform() as services:
        services.alerts.set_rule_enabled(name, False, actor=cli_actor())
    console.print(f"disabled {name}")


@rules.command("delete")
def delete_rule(name: str) -> None:
    """Delete a rule; the alerts it fired stay in the history."""
    with platform() as services:
        services.alerts.delete_rule(name, actor=cli_actor())
    console.print(f"deleted alert rule {name}")


# -- fired alerts -----------------------------------------------------------------------


@app.command("list")
def list_fired(
    rule: str | None = typer.Option(None, "--rule", help="only this rule's alerts"),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    output: OutputOption = Format.TABLE,
) -> None:
    """Fired alerts, newest first, with how their deliveries went."""
    from slipway.events.resources import Alert  # lazy: module docstring

    with platform() as services:
        items = [_fields(a, output) for a in services.alerts.fired(rule=rule, limit=limit)]
    if output is Format.TABLE:
        items = [
            i
            | {
                "deliveries": ", ".join(
                    f"{d['channel']} [{_STATES.get(d['state'], 'white')}]{d['state']}[/]"
                    for d in i["deliveries"]
                )
            }
            for i in items
        ]
    emit(items, [*Alert.table_fields, "deliveries"], output, title="fired alerts")


@app.command("describe")
def describe_fired(alert_id: int, output: OutputOption = Format.TABLE) -> None:
    """One fired alert: its event and every delivery attempt."""
    with platform() as services:
        row = services.alerts.alert(alert_id)
    if output is Format.JSON:
        print_json(_fields(row, output))
        return
    console.print(
        f"alert {row.id} [bold]{row.rule}[/bold] ({row.severity}): {row.event_type} on"
        f" {row.resource} at {row.time.isoformat()}, key {row.dedup_key},"
        f" {row.suppressed} suppressed since"
    )
    for delivery in row.deliveries:
        colour = _STATES.get(delivery.state, "white")
        console.print(
            f"  {delivery.channel}: [{colour}]{delivery.state}[/]"
            f" after {delivery.attempts} attempt(s)"
        )
        for attempt in delivery.history:
            detail = attempt.get("error") or attempt.get("status_code") or ""
            console.print(
                f"    #{attempt['attempt']} {attempt['time']} {attempt['outcome']} {detail}"
            )
