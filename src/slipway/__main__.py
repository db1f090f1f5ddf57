"""``python -m slipway`` is the ``slipway`` command."""

from slipway.cli.main import app

app(prog_name="slipway")
