"""A mergeable quantile sketch of latencies, with a relative error of at most 1%.

It follows DDSketch's logarithmic buckets (Masson, Rim and Lee, VLDB 2019): with
relative accuracy ``ALPHA = 0.01`` and ``GAMMA = (1 + ALPHA) / (1 - ALPHA)``, a value ``x``
counts in bucket ``i = ceil(log(x) / log(GAMMA))``, which holds
``GAMMA**(i-1) < x <= GAMMA**i``, and the bucket's value is ``2 * GAMMA**i / (GAMMA + 1)``:
within ``ALPHA`` (relative) of every ``x`` it holds.
A quantile is the value of the bucket holding the element of rank ``ceil(q * n)`` (the
"inverted CDF" definition, ``numpy.percentile(..., method="inverted_cdf")``), so it is within
1% of the exact one. Merging adds counts per bucket, so a sum of sketches is exactly the
sketch of all their values, whatever the order: per gateway worker, per window, per row.

Values at or below ``MIN_VALUE`` (1 ns in milliseconds: below ``perf_counter``'s
resolution), zero, negative ones and NaN count in the zero bucket and read as 0. Values
above ``MAX_VALUE`` (about 19 years in milliseconds) count in the top bucket. Between the
two there are at most ``MAX_BUCKETS`` = 2048 buckets, so a sketch never grows past that
and never needs DDSketch's collapsing of its lowest buckets: every quantile keeps the 1%
bound. Observing is one ``math.log``, one ``math.ceil`` and one dict increment.

Stored as JSON (:meth:`Sketch.to_json`): the counts of the buckets from the lowest to the
highest non-empty one as a list, with the lowest's index and the zero bucket's count. A
sketch with another ``ALPHA`` is a different format: store it under other keys.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from math import ceil, log
from typing import Any

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
_PER_LOG = 1 / _LOG_GAMMA
MAX_BUCKETS = 2048
MIN_VALUE = 1e-6
_MIN_INDEX = math.ceil(math.log(MIN_VALUE) * _PER_LOG)
_MAX_INDEX = _MIN_INDEX + MAX_BUCKETS - 1
MAX_VALUE = GAMMA**_MAX_INDEX


def bucket_value(index: int) -> float:
    """The value a bucket stands for: within ``ALPHA`` (relative) of every value it holds."""
    return 2 * math.exp(index * _LOG_GAMMA) / (GAMMA + 1)


class Sketch:
    """Counts of values in logarithmic buckets (sparse) plus a zero bucket."""

    __slots__ = ("buckets", "zero")

    def __init__(self, buckets: dict[int, int] | None = None, zero: int = 0) -> None:
        self.buckets: defaultdict[int, int] = defaultdict(int, buckets or {})
        self.zero = zero

    @classmethod
    def of(cls, values: Iterable[float]) -> Sketch:
        sketch = cls()
        for value in values:
            sketch.add(value)
        return sketch

    def add(self, value: float) -> None:
        """Count one value: on the gateway's request path, so a log, a ceil and an add."""
        if MIN_VALUE < value < MAX_VALUE:
            self.buckets[ceil(log(value) * _PER_LOG)] += 1
        elif value >= MAX_VALUE:
            self.buckets[_MAX_INDEX] += 1
        else:  # tiny, zero, negative or NaN
            self.zero += 1

    def merge(self, other: Sketch) -> None:
        """Add ``other``'s counts: the result is the sketch of both sets of values."""
        buckets = self.buckets
        # A snapshot (copied in one C call, so under the GIL): a request thread may still
        # add to ``other`` while a flush merges it, and a dict must not grow mid-iteration.
        for index, count in list(other.buckets.items()):
            buckets[index] += count
        self.zero += other.zero

    @property
    def count(self) -> int:
        return self.zero + sum(self.buckets.values())

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0 ≤ q ≤ 1) within 1% of the exact one (the value of rank
        ``ceil(q * n)``, at least 1, among the ``n`` observed); None when empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile {q!r} is not between 0 and 1")
        count = self.count
        if count == 0:
            return None
        rank = max(1, math.ceil(q * count))
        seen = self.zero
        if seen >= rank:
            return 0.0
        for index, bucket_count in sorted(self.buckets.items()):
            seen += bucket_count
            if seen >= rank:
                return bucket_value(index)
        raise AssertionError("unreachable: the ranks add up to the count")

    def to_json(self) -> dict[str, Any]:
        """``{"alpha", "zero", "offset", "counts"}``: ``counts[k]`` is bucket
        ``offset + k``'s count, from the lowest non-empty bucket to the highest."""
        filled = [(index, count) for index, count in list(self.buckets.items()) if count]
        if not filled:
            return {"alpha": ALPHA, "zero": self.zero, "offset": 0, "counts": []}
        low = min(index for index, _ in filled)
        high = max(index for index, _ in filled)
        counts = [0] * (high - low + 1)
        for index, count in filled:
            counts[index - low] = count
        return {"alpha": ALPHA, "zero": self.zero, "offset": low, "counts": counts}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sketch:
        if data.get("alpha") != ALPHA:
            raise ValueError(f"a sketch with alpha {data.get('alpha')!r}, not {ALPHA}")
        offset = int(data["offset"])
        buckets = {offset + k: int(c) for k, c in enumerate(data["counts"]) if c}
        return cls(buckets, int(data["zero"]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        mine = {i: c for i, c in self.buckets.items() if c}
        theirs = {i: c for i, c in other.buckets.items() if c}
        return self.zero == other.zero and mine == theirs

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Sketch(count={self.count}, buckets={len(self.buckets)}, zero={self.zero})"
