"""The worker side of a monitor run: one work item, one run executed to its outcome."""

from __future__ import annotations

from typing import Any

from slipway.workers.context import WorkContext


def run_monitor(context: WorkContext) -> dict[str, Any]:
    """Execute the run named by the item's payload; its outcome is recorded on the run."""
    run = context.services.monitoring.execute(int(context.payload["run"]))
    return {"run": run["id"], "state": run["state"], "status": run["status"]}
