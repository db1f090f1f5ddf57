"""``slipway tokens``: API tokens (in process, or with ``--url`` as an admin)."""

from __future__ import annotations

import re
from datetime import timedelta

import typer

from slipway.cli.context import cli_actor, platform, reported
from slipway.cli.output import Format, OutputOption, console, emit_resources, print_json
from slipway.core.errors import InvalidInput
from slipway.security.resources import Role, Token

app = typer.Typer(help="Create, list, rotate and revoke API tokens.", no_args_is_help=True)

_SPAN = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
ExpiresIn = typer.Option(
    None, "--expires-in", help="lifetime from now: 30s, 15m, 12h, 90d (at most 3650d)"
)


def _span(value: str | None) -> timedelta | None:
    """``--expires-in``: a whole number of seconds, minutes, hours or days."""
    if value is None:
        return None
    span = _SPAN.fullmatch(value.strip())
    if span is None:
        raise InvalidInput(
            f"--expires-in {value!r} is not a span like 30s, 15m, 12h or 90d", field="expires_in"
        )
    try:
        return timedelta(**{_UNITS[span[2]]: int(span[1])})
    except OverflowError:
        raise InvalidInput(f"--expires-in {value!r} is too long", field="expires_in") from None


def _show_secret(token: Token, secret: str, output: Format, done: str) -> None:
    if output is Format.JSON:
        print_json(token.model_dump(mode="json") | {"token": secret})
        return
    expiry = f", expires {token.expires_at:%Y-%m-%d %H:%M:%S}Z" if token.expires_at else ""
    console.print(f"{done} token [bold]{token.name}[/bold] ({token.role}), id {token.id}{expiry}")
    console.print("secret (shown only now):")
    typer.echo(secret)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="a name for the token, e.g. ci-deployer"),
    role: Role = typer.Option(
        Role.VIEWER, help="viewer, editor, approver, deployer, auditor or admin"
    ),
    expires_in: str | None = ExpiresIn,
    invoke: list[str] = typer.Option(
        [], "--invoke", help='an endpoint it may invoke through the gateway ("*": all); repeat'
    ),
    workspaces: list[str] = typer.Option(
        [],
        "--in",
        help='a workspace its role holds in ("*": all); repeat. Default: the default'
        " workspace (every workspace for an admin)",
    ),
    output: OutputOption = Format.TABLE,
) -> None:
    """Create a token; its secret is printed once and cannot be shown again."""
    with reported():
        lifetime = _span(expires_in)
    with platform() as services:
        token, secret = services.tokens.create(
            name,
            role,
            created_by=cli_actor(),
            expires_in=lifetime,
            invoke=invoke,
            workspaces=workspaces or None,
        )
    _show_secret(token, secret, output, "created")


@app.command("invoke")
def set_invoke(
    id_or_name: str = typer.Argument(..., help="token id or name"),
    endpoints: list[str] = typer.Argument(
        None, help='the endpoints it may invoke from now on ("*": all; none: no endpoint)'
    ),
) -> None:
    """Set the endpoints a token may invoke through the gateway (replacing its grants)."""
    with platform() as services:
        token = services.tokens.set_invoke(id_or_name, endpoints or [], actor=cli_actor())
    granted = ", ".join(token.invoke) or "no endpoint"
    console.print(f"{token.name} ({token.id}) may invoke: {granted}")


@app.command("list")
def list_tokens(output: OutputOption = Format.TABLE) -> None:
    """List tokens (never their secrets)."""
    with platform() as services:
        tokens = services.tokens.list()
    emit_resources(tokens, Token.table_columns(), output)


@app.command("rotate")
def rotate(
    id_or_name: str = typer.Argument(..., help="token id or name"),
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="a new lifetime from now (30s, 15m, 12h, 90d); else kept"
    ),
    output: OutputOption = Format.TABLE,
) -> None:
    """Give a token a new secret, printed once; the old secret is refused from now on.
    The token keeps its id, name and role."""
    with reported():
        lifetime = _span(expires_in)
    with platform() as services:
        token, secret = services.tokens.rotate(id_or_name, expires_in=lifetime, actor=cli_actor())
    _show_secret(token, secret, output, "rotated")


@app.command("revoke")
def revoke(id_or_name: str = typer.Argument(..., help="token id or name")) -> None:
    """Revoke a token; requests using it get 401 from now on."""
    with platform() as services:
        token = services.tokens.revoke(id_or_name, actor=cli_actor())
    console.print(f"revoked {token.name} ({token.id})")
