"""Model cards: one per version, written from what the platform knows about it.

Nothing in a card is typed in twice. The owner and the intended use are given at
registration (kept as the model-version tags ``slipway.owner`` and
``slipway.intended_use``); everything else is read from records the platform made
anyway: the training data's lineage (pipeline execution, training-set definition with each
feature group's Delta version, data digest, code revision), the run's parameters and
metrics, the champion/challenger comparison the registration was decided on, the reports
computed on the evaluation set (bias, global importance), what the version serves, and the
approval history with who, when and why. So a card cannot drift from the model it
describes, and a version registered before cards existed still has one (with what is
known).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from slipway.core.errors import InvalidInput

if TYPE_CHECKING:
    from slipway.registry.service import Registry

OWNER_TAG = "slipway.owner"
INTENDED_USE_TAG = "slipway.intended_use"
MAX_OWNER = 255
MAX_INTENDED_USE = 5000  # MLflow keeps a model-version tag's value up to 5,000 characters


def card_fields(owner: str, intended_use: str) -> dict[str, str]:
    """The registration's card tags, checked (a 400 naming the field when too long)."""
    if not isinstance(owner, str) or len(owner) > MAX_OWNER:
        raise InvalidInput(f"owner is at most {MAX_OWNER} characters", field="owner")
    if not isinstance(intended_use, str) or len(intended_use) > MAX_INTENDED_USE:
        raise InvalidInput(
            f"intended_use is at most {MAX_INTENDED_USE} characters", field="intended_use"
        )
    tags = {}
    if owner.strip():
        tags[OWNER_TAG] = owner.strip()
    if intended_use.strip():
        tags[INTENDED_USE_TAG] = intended_use.strip()
    return tags


def build(registry: Registry, name: str, version: int | str) -> dict[str, Any]:
    """The card of ``name`` at ``version`` (a number or an alias), as plain JSON."""
    described = registry.get(name, version)
    promoted = (described.lineage or {}).get("promoted_from")
    # A promoted version was trained where it came from: its card shows that lineage.
    lineage = (promoted or {}).get("lineage") or described.lineage or {}
    training = lineage.get("training_set") or {}
    reports = lineage.get("reports") or {}
    return {
        "model": described.name,
        "version": described.version,
        "owner": described.owner or described.registered_by,
        "intended_use": described.intended_use,
        "description": described.description,
        "registered_by": described.registered_by,
        "registered_at": described.registered_at.isoformat(),
        "approval_status": described.approval_status.value,
        "aliases": described.aliases,
        "serves": {"output": described.output.value, "classes": described.classes},
        "inputs": _inputs(described.signature),
        "training_data": {
            "feature_groups": {
                group: training.get("group_versions", {}).get(group)
                for group in sorted(
                    {*training.get("group_versions", {})}
                    | {str(r).partition(":")[0] for r in training.get("feature_refs", [])}
                )
            },
            "features": training.get("feature_refs", []),
            "rows": training.get("rows"),
            "entities": training.get("entities"),
            "data_digest": lineage.get("data_digest"),
            "pipeline": lineage.get("pipeline"),
            "pipeline_execution": lineage.get("pipeline_execution"),
            "code_revision": lineage.get("code_revision"),
        },
        "run_id": described.run_id,
        "parameters": described.params,
        "metrics": described.metrics,
        "comparison": lineage.get("comparison"),
        "bias": reports.get("bias"),
        "importance": reports.get("importance"),
        "approvals": [
            {
                "from": t.from_status,
                "to": t.to_status,
                "actor": t.actor,
                "comment": t.comment,
                "time": t.time.isoformat(),
            }
            for t in registry.transitions(described.name, described.version)
        ],
        "digest": described.digest,
        "promoted_from": (
            {k: promoted.get(k) for k in ("platform", "workspace", "name", "version", "run_id")}
            if promoted
            else None
        ),
    }


def _inputs(signature: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = signature.get("inputs") if signature else None
    if isinstance(inputs, str):
        inputs = json.loads(inputs)
    return [
        {"name": spec.get("name"), "type": spec.get("type")}
        for spec in inputs or []
        if isinstance(spec, dict)
    ]


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: headed sections, tables where there are figures."""
    lines = [f"# Model card: {card['model']} version {card['version']}", ""]
    lines += [
        f"- **Owner**: {card['owner']}",
        f"- **Approval**: {card['approval_status']}"
        + (f" (aliases: {', '.join(card['aliases'])})" if card["aliases"] else ""),
        f"- **Registered**: {card['registered_at']} by {card['registered_by']}",
        f"- **Serves**: {card['serves']['output']}"
        + (f" over classes {card['serves']['classes']}" if card["serves"]["classes"] else ""),
        f"- **Digest**: `{card['digest']}`",
    ]
    origin = card.get("promoted_from")
    if origin:
        lines.append(
            f"- **Promoted from**: {origin['platform']} ({origin['workspace']}),"
            f" {origin['name']} version {origin['version']}, run {origin['run_id'] or '—'}"
        )
    lines += [
        "",
        "## Intended use",
        "",
        card["intended_use"] or "_Not stated at registration._",
        "",
    ]
    if card["description"]:
        lines += ["## Description", "", card["description"], ""]
    data = card["training_data"]
    lines += ["## Training data", ""]
    if data["feature_groups"]:
        lines += ["| feature group | Delta version |", "|---|---:|"]
        lines += [f"| {g} | {_figure(v)} |" for g, v in data["feature_groups"].items()]
        lines.append("")
    for label, key in (
        ("Pipeline", "pipeline"),
        ("Execution", "pipeline_execution"),
        ("Rows", "rows"),
        ("Data digest", "data_digest"),
    ):
        if data.get(key) is not None:
            lines.append(f"- {label}: `{data[key]}`")
    revision = data.get("code_revision") or {}
    if revision:
        dirty = " (uncommitted changes)" if revision.get("dirty") else ""
        lines.append(f"- Code: `{revision.get('commit')}`{dirty}")
    if not any(data.values()):
        lines.append("_No lineage was recorded at registration._")
    lines.append("")
    if card["inputs"]:
        lines += ["## Inputs", "", "| column | type |", "|---|---|"]
        lines += [f"| {i['name']} | {i['type']} |" for i in card["inputs"]]
        lines.append("")
    if card["parameters"]:
        lines += ["## Parameters", "", "| parameter | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(card["parameters"].items())]
        lines.append("")
    if card["metrics"]:
        lines += ["## Evaluation", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {k} | {_figure(v)} |" for k, v in sorted(card["metrics"].items())]
        lines.append("")
    comparison = card["comparison"]
    if comparison:
        lines += ["## Compared with the champion", ""]
        reference = comparison.get("reference")
        if reference:
            metric = comparison["metric"]
            lines += [
                f"| model | {metric} | rows |",
                "|---|---:|---:|",
                f"| this version | {_figure(comparison['candidate'].get(metric))}"
                f" | {comparison['rows']:,} |",
                f"| {reference['model']} | {_figure(reference.get(metric))}"
                f" | {comparison['rows']:,} |",
                "",
            ]
        verdict = "passed" if comparison.get("passed") else "did not pass"
        lines += [f"The gate {verdict}: {comparison.get('reason', '')}", ""]
    bias = card["bias"]
    if bias:
        lines += ["## Bias", ""]
        lines += _bias_lines(bias)
        lines.append("")
    importance = card["importance"]
    if importance:
        values = importance.get("importance", importance)
        lines += ["## Global importance (mean |SHAP|)", "", "| feature | importance |"]
        lines.append("|---|---:|")
        ordered = sorted(values.items(), key=lambda kv: -float(kv[1] or 0))
        lines += [f"| {k} | {_figure(v)} |" for k, v in ordered]
        lines.append("")
    lines += ["## Approval history", "", "| time | from | to | by | comment |"]
    lines.append("|---|---|---|---|---|")
    for t in card["approvals"]:
        comment = str(t["comment"] or "").replace("|", "\\|")
        lines.append(f"| {t['time']} | {t['from'] or '—'} | {t['to']} | {t['actor']} | {comment} |")
    return "\n".join(lines) + "\n"


def _bias_lines(bias: dict[str, Any]) -> list[str]:
    """Every numeric figure of a bias report, flattened to metric rows."""
    rows: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            rows.append((prefix, value))

    walk("", bias)
    if not rows:
        return ["```json", json.dumps(bias, indent=2, default=str), "```"]
    return ["| metric | value |", "|---|---:|", *(f"| {k} | {_figure(v)} |" for k, v in rows)]
