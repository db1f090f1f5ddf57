"""An attribution-drift run: does the model still lean on the features it leaned on?

SageMaker Clarify's explainability monitor, self-hosted. A drift in one input's
distribution matters in proportion to how much the model uses that input, and a model
can start leaning on different features while no single column drifts enough to trip a
data-quality rule. This run explains the captured traffic — every row, or a seeded
sample of ``max_rows`` per model version — with the version's own explainer (exact Tree
SHAP for LightGBM, XGBoost and scikit-learn trees; Kernel SHAP on at most
:data:`KERNEL_ROWS` rows otherwise, see :mod:`slipway.explain.build`), takes the global
importance (mean |SHAP| per feature, :func:`slipway.explain.importance.mean_abs`) and
compares its ranking with the reference's by NDCG:

    DCG = sum over positions i (1-based) of  relevance(feature at i) / log2(i + 1)

where the features are ordered by their importance in traffic, the relevance of a
feature is its *reference* importance, and NDCG divides by the DCG of the reference's
own order. Features tied in traffic share the average relevance of their tie over their
positions (scikit-learn's ``ndcg_score``, whose figures these are); ``top_k`` counts only
the first k positions. 1.0 is the reference's ranking; a run below the threshold (0.9 by
default, Clarify's) is a violation, one per model version.

The reference is the monitor's ``reference`` mapping, or else the importance registered
with the version (``register_model(reports={"importance": explain_global(...)})``): the
ranking on the evaluation set the version was judged on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from slipway.core.errors import InvalidInput
from slipway.explain.base import Unexplainable
from slipway.explain.build import explainer_of
from slipway.explain.importance import mean_abs
from slipway.explain.kernel import KernelExplainer, KernelOptions
from slipway.monitoring import served
from slipway.monitoring.spec import Attribution, MonitorSpec
from slipway.registry.predict import LoadedModel

CHECK = "feature_attribution_drift_check"
KERNEL_ROWS = 500  # rows a model-agnostic (Kernel SHAP) explainer explains per run

LoadModel = Callable[[str, int], LoadedModel]
Registered = Callable[[str, int], dict[str, float] | None]


def ndcg(
    reference: Mapping[str, float], current: Mapping[str, float], k: int | None = None
) -> float | None:
    """NDCG of the features ranked by ``current`` importance, with the ``reference``
    importance as each feature's relevance (a feature missing from one side counts 0 on
    it); None when no feature has a reference importance above 0."""
    names = sorted(set(reference) | set(current))
    relevance = np.array([float(reference.get(n, 0.0)) for n in names])
    scores = np.array([float(current.get(n, 0.0)) for n in names])
    discount = 1.0 / np.log2(np.arange(len(names)) + 2.0)
    if k is not None:
        discount[k:] = 0.0
    ideal = float(np.sort(relevance)[::-1] @ discount)
    if ideal <= 0.0:
        return None
    return _tie_averaged_dcg(relevance, scores, discount) / ideal


def _tie_averaged_dcg(relevance: np.ndarray, scores: np.ndarray, discount: np.ndarray) -> float:
    """DCG of the order by descending ``scores``, a tie's relevance averaged over the
    positions the tie takes (no tie broken by the order features happen to be in)."""
    distinct, inverse, counts = np.unique(-scores, return_inverse=True, return_counts=True)
    group_relevance = np.zeros(len(distinct))
    np.add.at(group_relevance, inverse, relevance)
    group_relevance /= counts
    ends = np.cumsum(counts)
    cumulative = np.concatenate([[0.0], np.cumsum(discount)])
    starts = ends - counts
    return float(group_relevance @ (cumulative[ends] - cumulative[starts]))


def _ranks(values: Mapping[str, float]) -> dict[str, int]:
    """1-based rank of each feature by descending value (ties by name, for display)."""
    ordered = sorted(values, key=lambda n: (-values[n], n))
    return {name: position for position, name in enumerate(ordered, start=1)}


def _served(captured: pa.Table) -> list[tuple[str, int, int]]:
    """(model name, version, rows) of every version in the captured rows, by name."""
    counted = captured.group_by(["model_name", "model_version"]).aggregate([([], "count_all")])
    return sorted(
        (str(name), int(version), int(count))
        for name, version, count in zip(
            counted["model_name"].to_pylist(),
            counted["model_version"].to_pylist(),
            counted["count_all"].to_pylist(),
            strict=True,
        )
    )


def _matrix(rows: pa.Table, names: tuple[str, ...], model: str) -> np.ndarray:
    missing = [n for n in names if n not in rows.column_names]
    if missing:
        raise InvalidInput(
            f"the captured traffic of {model} lacks its input column(s) {', '.join(missing)}",
            field="attribution",
        )
    columns = []
    for name in names:
        column = rows[name]
        if pa.types.is_boolean(column.type):
            column = pc.cast(column, pa.int8())
        try:
            values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidInput(
                f"the captured column {name!r} of {model} is {column.type}, not numbers",
                field="attribution",
            ) from None
        columns.append(values)  # nulls are NaN: the trees' missing-value branch
    return np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)


def _one_version(
    rows: pa.Table,
    model: LoadedModel,
    reference: dict[str, float],
    source: str,
    settings: Attribution,
) -> dict[str, Any]:
    label = f"{model.name}:{model.version}"
    try:
        explainer = explainer_of(model, KernelOptions(seed=settings.seed))
    except Unexplainable as exc:
        raise InvalidInput(f"{label} cannot be explained: {exc}", field="attribution") from None
    limit = settings.max_rows
    if isinstance(explainer, KernelExplainer):
        limit = min(limit, KERNEL_ROWS)
    if rows.num_rows > limit:
        chosen = np.random.default_rng(settings.seed).choice(rows.num_rows, limit, replace=False)
        rows = rows.take(pa.array(np.sort(chosen)))
    importance = mean_abs(explainer, _matrix(rows, explainer.names, label))
    score = ndcg(reference, importance, settings.top_k)
    reference_ranks, current_ranks = _ranks(reference), _ranks(importance)
    features = [
        {
            "feature": name,
            "reference": reference.get(name),
            "reference_rank": reference_ranks.get(name),
            "importance": importance.get(name),
            "rank": current_ranks.get(name),
        }
        for name in sorted(
            set(reference) | set(importance),
            key=lambda n: (current_ranks.get(n, len(current_ranks) + 1), n),
        )
    ]
    return {
        "model": label,
        "explained": rows.num_rows,
        "output_space": explainer.output_space.value,
        "reference_source": source,
        "ndcg": score,
        "features": features,
    }


def evaluate(
    captured: pa.Table, settings: Attribution, *, load: LoadModel, registered: Registered
) -> dict[str, Any]:
    """The report of one attribution-drift run over a window's captured rows (read with
    ``models=True``): per model version, its global importance in traffic next to the
    reference, the NDCG of the two rankings, and a violation where it is below the
    threshold. ``load`` loads a registered version; ``registered`` gives the importance
    registered with one (None without)."""
    report: dict[str, Any] = {
        "kind": "attribution_drift",
        "rows": captured.num_rows,
        "threshold": settings.threshold,
        "top_k": settings.top_k,
        "models": [],
        "metrics": {},
        "violations": [],
    }
    if captured.num_rows == 0:
        return report
    for name, version, count in _served(captured):
        label = f"{name}:{version}"
        reference, source = settings.reference, "monitor"
        if reference is None:
            reference, source = registered(name, version), "registered"
        if reference is None:
            raise InvalidInput(
                f"{label} was registered without a global importance and the monitor gives"
                " no reference (register it with reports={'importance': explain_global(...)})",
                field="attribution.reference",
            )
        keep = pc.and_(
            pc.equal(captured["model_name"], name), pc.equal(captured["model_version"], version)
        )
        model = load(name, version)
        entry = _one_version(captured.filter(keep), model, reference, source, settings)
        entry["rows"] = count
        report["models"].append(entry)
        score = entry["ndcg"]
        if score is not None and score < settings.threshold:
            report["violations"].append(
                {
                    "model": label,
                    "check": CHECK,
                    "metric": "ndcg",
                    "message": f"NDCG {score:.4f} of {label}'s feature attribution ranking"
                    f" against the {source} reference is below {settings.threshold:g}",
                    "value": score,
                    "threshold": settings.threshold,
                }
            )
    scores = [m["ndcg"] for m in report["models"] if m["ndcg"] is not None]
    report["metrics"] = {"ndcg": min(scores) if scores else None}
    return report


def registered_importance(lineage: Mapping[str, Any] | None) -> dict[str, float] | None:
    """The global importance kept in a version's lineage (``reports.importance``, the
    output of :func:`slipway.steps.explain_global`, or a bare mapping)."""
    reports = (lineage or {}).get("reports") or {}
    found = reports.get("importance") if isinstance(reports, Mapping) else None
    if isinstance(found, Mapping) and isinstance(found.get("importance"), Mapping):
        found = found["importance"]
    if not isinstance(found, Mapping) or not found:
        return None
    try:
        values = {str(k): float(v) for k, v in found.items()}
    except (TypeError, ValueError):
        return None
    return values if any(v > 0 for v in values.values()) else None


def check_reference(
    session: Session, workspace: str, monitor: MonitorSpec, registered: Registered
) -> None:
    """Refuse (400 naming the field) a reference feature the endpoint's served models do
    not take, or — without a reference — a served version registered without an
    importance, when the endpoint (``workspace``'s) is known."""
    assert monitor.attribution is not None
    reference = monitor.attribution.reference
    if reference is not None:
        known = served.endpoint_columns(session, workspace, monitor.endpoint, monitor.variant)
        if known is not None:
            for feature in reference:
                if feature not in known:
                    raise InvalidInput(
                        f"the model inputs of endpoint {monitor.endpoint!r} have no column"
                        f" {feature!r} (they have {', '.join(sorted(known))})",
                        field=f"attribution.reference.{feature}",
                    )
        return
    for name, version in (
        served.versions(session, workspace, monitor.endpoint, monitor.variant) or []
    ):
        if registered(name, version) is None:
            raise InvalidInput(
                f"{name}:{version}, served by endpoint {monitor.endpoint!r}, was registered"
                " without a global importance: give the monitor a reference, or register"
                " the version with reports={'importance': explain_global(...)}",
                field="attribution.reference",
            )
