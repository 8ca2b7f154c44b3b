"""Publishes this gateway's new-engine counters (`common.NewEngineStats`) to Redis
(`gateway:stats:<instance>`, TTL'd) once a second, so `chatctl guard` can compute error rate and
p95 over a sliding window across all gateways.
"""

from __future__ import annotations

import contextlib

import msgspec
from redis.asyncio import Redis

from common import REDIS_FAILURES, BackgroundTask, NewEngineStats, Stopping, keys


class StatsPublisher:
    """Writes this instance's counters every `interval` seconds; a Redis outage only skips a beat."""

    def __init__(
        self, redis: Redis, instance_id: str, stats: NewEngineStats, interval: float = 1.0
    ) -> None:
        self._redis = redis
        self._key = keys.gateway_stats(instance_id)
        self._stats = stats
        self._interval = interval
        self._task = BackgroundTask("stats-publisher", self._run)

    async def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self, stopping: Stopping) -> None:
        while not stopping.is_set():
            with contextlib.suppress(*REDIS_FAILURES):
                await self._redis.set(self._key, msgspec.json.encode(self._stats), ex=10)
            if await stopping.sleep(self._interval):
                return
