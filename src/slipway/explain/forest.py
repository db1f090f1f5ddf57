"""LightGBM and XGBoost tree ensembles flattened into arrays for :mod:`.treeshap`.

Each tree is read from the library's own dump (LightGBM's ``dump_model``, XGBoost's JSON
model) into one layout: internal nodes in preorder, then the leaves, each node's children
as *slots* of its tree (internal node ``k`` is slot ``k``, leaf ``j`` is slot
``internal + j``), every split written as "go left when ``x <= threshold``" with the
library's rule for missing values. For each leaf the path from the root is summarised as
its distinct features in order of first appearance, each with the product of the cover
fractions of the splits on it (the share of the training data that followed the path at
those splits) — all Tree SHAP needs of a path. A split's ``bit`` is the position of its
feature in that list, which every leaf below it shares.

Only what the compiled walk reproduces exactly is flattened; anything else (categorical
splits, linear trees, random-forest averaging, DART, vector leaves, a path with more than
:data:`MAX_PATH_FEATURES` distinct features) raises :class:`Unsupported`, and the
explainer falls back to the library's own contribution output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

# A leaf's table holds 2^d rows of d values: 16 distinct features on one path is already
# 1M values for that leaf alone.
MAX_PATH_FEATURES = 16
MISSING_AS_ZERO, MISSING_ZERO, MISSING_NAN = 0, 1, 2  # see treeshap._goes_left
_LIGHTGBM_MISSING = {"None": MISSING_AS_ZERO, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}


class Unsupported(Exception):
    """The ensemble uses something the compiled walk does not reproduce."""


@dataclass(frozen=True)
class Forest:
    """Every tree of an ensemble as flat arrays (see the module docstring)."""

    features: int
    outputs: int  # trees per iteration: 1, or the classes of a multiclass model
    internal_start: np.ndarray  # int32 (trees + 1): each tree's first internal node
    leaf_start: np.ndarray  # int32 (trees + 1): each tree's first leaf
    tree_output: np.ndarray  # int32 (trees,): the output each tree adds to
    feature: np.ndarray  # int32, per internal node
    threshold: np.ndarray  # float64: go left when x <= threshold
    bit: np.ndarray  # int32: the split feature's position in the path's feature list
    left: np.ndarray  # int32: the left child's slot
    right: np.ndarray  # int32
    missing: np.ndarray  # uint8: MISSING_AS_ZERO, MISSING_ZERO or MISSING_NAN
    default_left: np.ndarray  # uint8: where a missing value goes
    leaf_value: np.ndarray  # float64 (leaves,)
    leaf_offset: np.ndarray  # int64 (leaves + 1) into leaf_features / leaf_zero
    leaf_features: np.ndarray  # int32: each leaf's distinct path features
    leaf_zero: np.ndarray  # float64: their cover-fraction products
    offset: np.ndarray  # float64 (outputs,): added to every row's output (a base margin)
    float32_inputs: bool  # the library compares float32 values (XGBoost)


class _Builder:
    """Collects trees given as per-node arrays (children -1 at leaves)."""

    def __init__(self, features: int) -> None:
        self.features = features
        self.internal_start = [0]
        self.leaf_start = [0]
        self.tree_output: list[int] = []
        self.nodes: dict[str, list[Any]] = {
            k: [] for k in ("feature", "threshold", "bit", "left", "right", "missing", "default")
        }
        self.leaf_value: list[float] = []
        self.leaf_offset = [0]
        self.leaf_features: list[int] = []
        self.leaf_zero: list[float] = []

    def tree(
        self,
        output: int,
        left: list[int],
        right: list[int],
        feature: list[int],
        threshold: list[float],
        missing: list[int],
        default_left: list[int],
        value: list[float],
        cover: list[float],
    ) -> None:
        """Add one tree rooted at node 0."""
        internal: list[int] = []
        leaves: list[int] = []
        stack = [0]
        while stack:  # preorder, left subtree first
            node = stack.pop()
            if left[node] < 0:
                leaves.append(node)
            else:
                internal.append(node)
                stack += [right[node], left[node]]
        slot = {node: k for k, node in enumerate(internal)}
        slot.update({node: len(internal) + j for j, node in enumerate(leaves)})
        paths: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {0: ((), ())}
        nodes = self.nodes
        for node in internal:
            names, zeros = paths.pop(node)
            f = feature[node]
            if not 0 <= f < self.features:
                raise Unsupported(f"a split on feature {f} of {self.features}")
            bit = names.index(f) if f in names else len(names)
            if bit >= MAX_PATH_FEATURES:
                raise Unsupported(f"a path with more than {MAX_PATH_FEATURES} distinct features")
            for child in (left[node], right[node]):
                share = cover[child] / cover[node] if cover[node] > 0 else 0.0
                if bit < len(names):
                    child_zeros = list(zeros)
                    child_zeros[bit] *= share
                    paths[child] = (names, tuple(child_zeros))
                else:
                    paths[child] = ((*names, f), (*zeros, share))
            nodes["feature"].append(f)
            nodes["threshold"].append(threshold[node])
            nodes["bit"].append(bit)
            nodes["left"].append(slot[left[node]])
            nodes["right"].append(slot[right[node]])
            nodes["missing"].append(missing[node])
            nodes["default"].append(default_left[node])
        for node in leaves:
            names, zeros = paths.pop(node)
            self.leaf_value.append(value[node])
            self.leaf_features += names
            self.leaf_zero += zeros
            self.leaf_offset.append(len(self.leaf_features))
        self.internal_start.append(len(nodes["feature"]))
        self.leaf_start.append(len(self.leaf_value))
        self.tree_output.append(output)

    def build(self, outputs: int, offset: np.ndarray, float32_inputs: bool) -> Forest:
        if np.any(np.asarray(self.leaf_zero) <= 0):
            # An empty child: its leaves carry no data and Tree SHAP's ratios divide by it.
            raise Unsupported("a split with a child no training data reached")
        n = self.nodes
        return Forest(
            features=self.features,
            outputs=outputs,
            internal_start=np.asarray(self.internal_start, dtype=np.int32),
            leaf_start=np.asarray(self.leaf_start, dtype=np.int32),
            tree_output=np.asarray(self.tree_output, dtype=np.int32),
            feature=np.asarray(n["feature"], dtype=np.int32),
            threshold=np.asarray(n["threshold"], dtype=np.float64),
            bit=np.asarray(n["bit"], dtype=np.int32),
            left=np.asarray(n["left"], dtype=np.int32),
            right=np.asarray(n["right"], dtype=np.int32),
            missing=np.asarray(n["missing"], dtype=np.uint8),
            default_left=np.asarray(n["default"], dtype=np.uint8),
            leaf_value=np.asarray(self.leaf_value, dtype=np.float64),
            leaf_offset=np.asarray(self.leaf_offset, dtype=np.int64),
            leaf_features=np.asarray(self.leaf_features, dtype=np.int32),
            leaf_zero=np.asarray(self.leaf_zero, dtype=np.float64),
            offset=np.asarray(offset, dtype=np.float64),
            float32_inputs=float32_inputs,
        )


# -- LightGBM ---------------------------------------------------------------------------


def lightgbm_forest(dump: dict[str, Any]) -> Forest:
    """A ``lightgbm.Booster`` from its ``dump_model()`` (which holds the trees its
    ``predict`` uses: up to the best iteration when it has one, else all)."""
    if dump.get("average_output"):
        raise Unsupported("a random-forest booster (its output averages the trees)")
    outputs = int(dump.get("num_tree_per_iteration", 1))
    builder = _Builder(int(dump["max_feature_idx"]) + 1)
    for index, info in enumerate(dump["tree_info"]):
        if info.get("num_cat", 0) or info.get("is_linear"):
            raise Unsupported("categorical splits or linear trees")
        _lightgbm_tree(builder, index % outputs, info["tree_structure"])
    return builder.build(outputs, np.zeros(outputs), float32_inputs=False)


def _lightgbm_tree(builder: _Builder, output: int, root: dict[str, Any]) -> None:
    columns: dict[str, list[Any]] = {
        k: [] for k in ("left", "right", "feature", "threshold", "missing", "default", "value")
    }
    cover: list[float] = []
    stack: list[tuple[dict[str, Any], int]] = [(root, -1)]
    while stack:
        node, parent_slot = stack.pop()
        index = len(cover)
        if parent_slot >= 0:  # fill in the parent's child index, left first
            side = "left" if columns["left"][parent_slot] == -2 else "right"
            columns[side][parent_slot] = index
        leaf = "leaf_value" in node
        if not leaf and node.get("decision_type", "<=") != "<=":
            raise Unsupported("categorical splits")
        columns["left"].append(-1 if leaf else -2)
        columns["right"].append(-1 if leaf else -2)
        columns["feature"].append(-1 if leaf else int(node["split_feature"]))
        columns["threshold"].append(0.0 if leaf else float(node["threshold"]))
        columns["missing"].append(0 if leaf else _LIGHTGBM_MISSING[node["missing_type"]])
        columns["default"].append(0 if leaf else int(bool(node["default_left"])))
        columns["value"].append(float(node["leaf_value"]) if leaf else 0.0)
        cover.append(float(node.get("leaf_count" if leaf else "internal_count", 1.0)))
        if not leaf:  # popped left first: pushed right, then left
            stack += [(node["right_child"], index), (node["left_child"], index)]
    builder.tree(
        output,
        columns["left"],
        columns["right"],
        columns["feature"],
        columns["threshold"],
        columns["missing"],
        columns["default"],
        columns["value"],
        cover,
    )


# -- XGBoost ----------------------------------------------------------------------------


def xgboost_forest(booster: Any, iterations: int | None = None) -> Forest:
    """An ``xgboost.Booster``'s trees (the first ``iterations`` boosting rounds, or all).

    XGBoost compares float32 values with ``x < threshold``; a float32 ``x`` is below
    ``t`` exactly when it is at most the next float32 below ``t``, which is the
    threshold stored. Its base margin is not in the trees: :func:`with_base_margin`
    measures it."""
    model = json.loads(booster.save_raw("json"))
    learner = model["learner"]
    gradient = learner["gradient_booster"]
    if gradient.get("name") != "gbtree":
        raise Unsupported(f"the {gradient.get('name')!r} booster (only gbtree is walked)")
    trees_model = gradient["model"]
    param = learner["learner_model_param"]
    features = int(param["num_feature"])
    outputs = max(1, int(param.get("num_class", "0")))
    if int(param.get("num_target", "1")) > 1:
        raise Unsupported("a multi-target model")
    trees = trees_model["trees"]
    groups = trees_model["tree_info"]
    if iterations is not None:
        trees = trees[: int(trees_model["iteration_indptr"][iterations])]
    builder = _Builder(features)
    below = np.float32(-np.inf)
    for tree, group in zip(trees, groups, strict=False):
        if any(tree["split_type"]) or int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise Unsupported("categorical splits or vector leaves")
        left = [int(v) for v in tree["left_children"]]
        conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
        thresholds = np.nextafter(conditions, below).astype(np.float64)
        builder.tree(
            int(group),
            left,
            [int(v) for v in tree["right_children"]],
            [int(v) for v in tree["split_indices"]],
            thresholds.tolist(),
            [MISSING_NAN] * len(left),
            [int(v) for v in tree["default_left"]],
            conditions.astype(np.float64).tolist(),
            [float(v) for v in tree["sum_hessian"]],
        )
    return builder.build(outputs, np.zeros(outputs), float32_inputs=True)
