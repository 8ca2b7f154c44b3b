"""Event-loop lag as the gateway's pressure signal: shadow work yields when visitors need the CPU.

A ticker sleeps `interval` and measures how late it wakes up. Lateness means the loop is busy
with more ready work than it can run on time; while the smoothed lag is above `threshold`, the
shadow mirror drops new turns (counted in `gateway_shadow_skipped_total{reason="cpu"}`) instead
of competing with visitors for CPU.
"""

from __future__ import annotations

import time

from common import BackgroundTask, Stopping


class LoopLag:
    def __init__(self, interval: float = 0.05, threshold: float = 0.003) -> None:
        self._interval = interval
        self._threshold = threshold
        self.lag = 0.0
        """Exponentially smoothed lateness of the ticker, in seconds."""
        self._task = BackgroundTask("loop-lag", self._tick)

    @property
    def under_pressure(self) -> bool:
        return self.lag > self._threshold

    def observe(self, late_by: float) -> None:
        self.lag = 0.7 * self.lag + 0.3 * max(0.0, late_by)

    async def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _tick(self, stopping: Stopping) -> None:
        while True:
            started = time.perf_counter()
            if await stopping.sleep(self._interval):
                return
            self.observe(time.perf_counter() - started - self._interval)
