"""Per-gateway counters of the new engine's outcomes, published to Redis for the guardian.

Every request decided for the new engine counts as an attempt; a 5xx from it, or a failover to
legacy, counts as a failure; its latency lands in fixed buckets. Counters are cumulative per
instance; the watcher's loop writes them to `gateway:stats:<instance>` (TTL'd) once a second,
so `chatctl guard` can compute error rate and p95 over a sliding window across all gateways.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from newchat import keys

LATENCY_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 30.0)


class NewEngineStats(msgspec.Struct):
    attempts: int = 0
    failures: int = 0
    buckets: list[int] = msgspec.field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    """Counts per latency bucket (not cumulative); the last is above the largest bound."""

    def record(self, seconds: float, failed: bool) -> None:
        self.attempts += 1
        self.failures += failed
        self.buckets[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1


def p95(buckets: list[int]) -> float | None:
    """An upper bound of the 95th percentile from bucket counts (None without samples)."""
    total = sum(buckets)
    if total == 0:
        return None
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= 0.95 * total:
            return LATENCY_BOUNDS[index] if index < len(LATENCY_BOUNDS) else float("inf")
    return float("inf")


class StatsPublisher:
    """Writes this instance's counters once a second; a Redis outage only skips a beat."""

    def __init__(
        self, redis: Redis, instance_id: str, stats: NewEngineStats, interval: float = 1.0
    ) -> None:
        self._redis = redis
        self._key = keys.gateway_stats(instance_id)
        self._stats = stats
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stats-publisher")

    async def stop(self) -> None:
        """A flag, not only a cancel: on Python 3.11 redis-py's timeouts can swallow a cancel."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(RedisError, OSError):
                await self._redis.set(self._key, msgspec.json.encode(self._stats), ex=10)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
