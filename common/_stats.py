"""Latency and error statistics shared by the gateway (which records them), the guardian (which
judges them) and the reports: the `gateway:stats:<instance>` wire format and one percentile rule.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import msgspec

LATENCY_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 30.0)
"""Upper bounds (seconds) of the new-engine latency buckets; the runbook's 2 s and 5 s are among
them, so p95 against either threshold is exact at the bucket edge."""


class NewEngineStats(msgspec.Struct):
    """One gateway's cumulative new-engine counters, as stored in `gateway:stats:<instance>`."""

    attempts: int = 0
    failures: int = 0
    buckets: list[int] = msgspec.field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    """Counts per latency bucket (not cumulative); the last is above the largest bound."""

    def record(self, seconds: float, failed: bool) -> None:
        self.attempts += 1
        self.failures += failed
        self.buckets[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1


def p95(buckets: Sequence[int]) -> float | None:
    """An upper bound (seconds) of the 95th percentile from bucket counts; None without samples,
    infinity when it lies above the largest bound."""
    total = sum(buckets)
    if total == 0:
        return None
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= 0.95 * total:
            return LATENCY_BOUNDS[index] if index < len(LATENCY_BOUNDS) else float("inf")
    return float("inf")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q` quantile (0..1) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]
