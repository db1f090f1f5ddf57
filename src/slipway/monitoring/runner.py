"""The worker side of a monitor run: one work item, one run executed to its outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slipway.core.work import WorkContext

if TYPE_CHECKING:
    from slipway.monitoring.service import Monitoring


def run_monitor(context: WorkContext, monitoring: Monitoring) -> dict[str, Any]:
    """Execute the run named by the item's payload; its outcome is recorded on the run."""
    run = monitoring.execute(int(context.payload["run"]))
    return {"run": run.id, "state": run.state, "status": run.status}
