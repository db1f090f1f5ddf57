"""The ``slipway`` command line (Typer + Rich): one module per command group."""
