"""docs/notebooks/remote-client.ipynb runs headless, top to bottom, without an error,
against a real server (the shared ``slipway up``, auth on), as a user's Jupyter would run it.

The kernel is a real IPython kernel (nbclient + ipykernel) in a process of its own, given
``SLIPWAY_URL`` and ``SLIPWAY_TOKEN`` the way a user sets them before starting Jupyter.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import nbclient
import nbformat
import pytest

from tests.shared_platform import SharedPlatform

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "notebooks" / "remote-client.ipynb"


def test_the_example_notebook_runs_against_a_real_server(
    shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for key in [k for k in os.environ if k.startswith("SLIPWAY_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SLIPWAY_URL", shared_platform.url)
    monkeypatch.setenv("SLIPWAY_TOKEN", shared_platform.token)
    # The reviewer: another person's token, an approver's (segregation of duties).
    reviewer = f"notebook-reviewer-{uuid.uuid4().hex[:6]}"
    approver = shared_platform.services.tokens.create(reviewer, "approver", created_by="t")[1]
    monkeypatch.setenv("SLIPWAY_APPROVER_TOKEN", approver)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell that failed
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    # resources render as tables: the group, the ingestion, the listing, the versions
    assert sum("<table>" in h for h in html) >= 4
    assert any("Approved" in h for h in html)
