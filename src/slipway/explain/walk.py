"""The compiled loops of :mod:`.treeshap` (numba; imported only when explaining trees).

Tree SHAP for one leaf ``l`` with distinct path features ``U`` (``d`` of them), cover
products ``z`` and value ``v``: a row *agrees* with feature ``j`` when it satisfies
every split on ``j`` along the path (``o_j = 1``). The path-dependent expectation of the
leaf given the features in ``S`` is ``v * prod_{j in S} o_j * prod_{j in U \\ S} z_j``,
so feature ``i``'s Shapley value from this leaf is

    v * (o_i - z_i) * sum_{S ⊆ U \\ {i}} w(|S|) * prod_{j in S} o_j * prod_{j in U \\ S \\ {i}} z_j

with ``w(k) = k! (d - k - 1)! / d!``. Since every ``o_j`` is 0 or 1, the value depends on
the row only through which path features it agrees with: ``2^d`` patterns, so each
leaf's ``d`` values for every pattern are computed once (:func:`tables`) and a row costs
one walk of each tree, to find every leaf's pattern, plus one table row per leaf
(:func:`attributions`). That is the same answer as Lundberg's recursive algorithm (what
LightGBM's and XGBoost's ``pred_contrib`` run), without its per-leaf ``O(depth²)``
unwinding — an order of magnitude fewer operations per row.

Rows are processed in blocks, all trees for one block at a time, so a tree's nodes and
tables stay in cache while the block passes through it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold, as it compares it
BLOCK_ROWS = 256


@njit(nogil=True, cache=True)
def tables(
    leaf_offset: np.ndarray,
    leaf_zero: np.ndarray,
    leaf_value: np.ndarray,
    table_offset: np.ndarray,
    table: np.ndarray,
    expected: np.ndarray,
) -> None:
    """Fill ``table`` (each leaf's ``2^d x d`` values, at ``table_offset``) and
    ``expected`` (each leaf's value times its cover product: its share of the tree's
    expected output)."""
    for leaf in range(leaf_value.shape[0]):
        start = leaf_offset[leaf]
        d = leaf_offset[leaf + 1] - start
        z = leaf_zero[start : start + d]
        v = leaf_value[leaf]
        product = 1.0
        for j in range(d):
            product *= z[j]
        expected[leaf] = v * product
        if d == 0:
            continue
        weight = np.empty(d)
        for k in range(d):  # k! (d - k - 1)! / d!, as a product to stay in range
            w = 1.0 / d
            for m in range(1, k + 1):
                w *= m / (d - m)
            weight[k] = w
        # full[B] = sum_{S ⊆ B} w(|S|) prod_{j in U \ S} z_j, for every B ⊆ U.
        full = np.empty(1 << d)
        poly = np.empty(d + 1)
        for pattern in range(1 << d):
            poly[0] = 1.0
            size = 0
            outside = 1.0
            for j in range(d):
                if pattern >> j & 1:
                    size += 1
                    poly[size] = 0.0
                    for k in range(size, 0, -1):  # elementary symmetric polynomials of z_B
                        poly[k] += poly[k - 1] * z[j]
                else:
                    outside *= z[j]
            total = 0.0
            for k in range(min(size, d - 1) + 1):
                total += weight[k] * poly[size - k]
            full[pattern] = outside * total
        base = table_offset[leaf]
        for pattern in range(1 << d):
            for i in range(d):
                agrees = pattern >> i & 1
                # Leaving i out of the sum divides its z_i out of full[...].
                others = full[pattern & ~(1 << i)] / z[i]
                table[base + pattern * d + i] = v * (agrees - z[i]) * others


@njit(nogil=True, cache=True)
def attributions(
    rows: np.ndarray,
    internal_start: np.ndarray,
    leaf_start: np.ndarray,
    tree_output: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    bit: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    missing: np.ndarray,
    default_left: np.ndarray,
    leaf_offset: np.ndarray,
    leaf_features: np.ndarray,
    table_offset: np.ndarray,
    table: np.ndarray,
    out: np.ndarray,
) -> None:
    """Add every tree's attributions for ``rows`` (n x features, float64) to ``out``
    (n x outputs x features)."""
    n = rows.shape[0]
    trees = internal_start.shape[0] - 1
    widest = 1
    for t in range(trees):
        size = internal_start[t + 1] - internal_start[t] + leaf_start[t + 1] - leaf_start[t]
        widest = max(widest, size)
    disagree = np.zeros(widest, np.int32)  # per slot: path features the row disagrees with
    for first in range(0, n, BLOCK_ROWS):
        last = min(n, first + BLOCK_ROWS)
        for t in range(trees):
            start = internal_start[t]
            count = internal_start[t + 1] - start
            leaves = leaf_start[t]
            output = tree_output[t]
            for r in range(first, last):
                x = rows[r]
                disagree[0] = 0
                for k in range(count):
                    node = start + k
                    value = x[feature[node]]
                    kind = missing[node]
                    absent = np.isnan(value)
                    if kind == 1:  # LightGBM's "Zero": zero and NaN take the default way
                        absent = absent or -_ZERO <= value <= _ZERO
                    elif kind == 0 and absent:  # LightGBM's "None": NaN is read as 0
                        value = 0.0
                        absent = False
                    go_left = default_left[node] == 1 if absent else value <= threshold[node]
                    mask = disagree[k]
                    flag = np.int32(1) << bit[node]
                    if go_left:
                        disagree[left[node]] = mask
                        disagree[right[node]] = mask | flag
                    else:
                        disagree[left[node]] = mask | flag
                        disagree[right[node]] = mask
                target = out[r, output]
                for j in range(leaf_start[t + 1] - leaves):
                    leaf = leaves + j
                    begin = leaf_offset[leaf]
                    d = leaf_offset[leaf + 1] - begin
                    pattern = ((np.int32(1) << d) - 1) & ~disagree[count + j]
                    row = table_offset[leaf] + pattern * d
                    for i in range(d):
                        target[leaf_features[begin + i]] += table[row + i]
