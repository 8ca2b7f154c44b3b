"""`chatctl guard`: switches the new engine off when the runbook's critical thresholds are crossed.

Every `interval` it sums the gateways' cumulative new-engine counters (`gateway:stats:*`) and
keeps a sliding window of them. Over the window: error rate = failures / attempts (a 5xx from
the new engine or a failover to legacy is a failure), p95 from the latency buckets. With at
least `min_samples` attempts and error rate > 10 % or p95 > 5 s (the runbook's critical
thresholds), it sets the run-time master switch off through the audited flag store, records why
in `guardian:last_trip`, and logs an ERROR.

It never flaps: it only ever switches the new engine off (switching it back on is a human
decision), waits `cooldown` seconds after a trip, and starts a fresh window whenever the master
switch comes back on, so data from before a human re-enabled the engine never trips it again.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import deque
from collections.abc import Callable

import msgspec
from redis.asyncio import Redis

from common import (
    LATENCY_BOUNDS,
    REDIS_FAILURES,
    NewEngineStats,
    StoreUnavailable,
    get_logger,
    keys,
    p95,
    translate_redis_error,
)
from flags import FlagError, FlagStore, decode_value

_log = get_logger("rollback.guardian")


class GuardSettings(msgspec.Struct, frozen=True):
    window_seconds: float = 60.0
    min_samples: int = 50
    max_error_rate: float = 0.10
    max_p95_seconds: float = 5.0
    cooldown_seconds: float = 300.0
    interval_seconds: float = 1.0


class WindowState(msgspec.Struct, frozen=True):
    attempts: int
    failures: int
    error_rate: float | None
    p95_seconds: float | None


class Trip(msgspec.Struct, frozen=True):
    at: float
    reason: str
    attempts: int
    error_rate: float | None
    p95_seconds: float | None
    dry_run: bool


Snapshot = dict[str, NewEngineStats]


def window_delta(oldest: Snapshot, newest: Snapshot) -> NewEngineStats:
    """What happened between two snapshots, per instance; a restarted instance counts from 0."""
    total = NewEngineStats()
    for instance, now in newest.items():
        before = oldest.get(instance)
        if before is None or now.attempts < before.attempts:
            before = NewEngineStats()
        total.attempts += now.attempts - before.attempts
        total.failures += now.failures - before.failures
        for index, count in enumerate(now.buckets):
            total.buckets[index] += count - before.buckets[index]
    return total


def judge(delta: NewEngineStats, settings: GuardSettings) -> tuple[WindowState, str | None]:
    rate = delta.failures / delta.attempts if delta.attempts else None
    latency = p95(delta.buckets)
    state = WindowState(delta.attempts, delta.failures, rate, latency)
    if delta.attempts < settings.min_samples:
        return state, None
    if rate is not None and rate > settings.max_error_rate:
        return state, (
            f"new-engine error rate {rate:.0%} > {settings.max_error_rate:.0%} "
            f"over {settings.window_seconds:g}s (n={delta.attempts})"
        )
    if latency is not None and latency > settings.max_p95_seconds:
        return state, (
            f"new-engine p95 {latency:g}s > {settings.max_p95_seconds:g}s "
            f"over {settings.window_seconds:g}s (n={delta.attempts})"
        )
    return state, None


class Guardian:
    def __init__(
        self,
        redis: Redis,
        settings: GuardSettings,
        *,
        dry_run: bool = False,
        enabled_by_default: bool = True,
        say: Callable[[str], None] = print,
    ) -> None:
        self._redis = redis
        self._settings = settings
        self._dry_run = dry_run
        self._say = say
        self._enabled_by_default = enabled_by_default
        """The environment's `ENABLE_NEW_CHAT` (flag settings), when no run-time value is set."""
        self._store = FlagStore(redis)
        self._window: deque[tuple[float, Snapshot]] = deque()
        self._last_trip: float | None = None
        self._was_enabled: bool | None = None

    async def run(self, *, stop_after_trip: bool = False) -> int:
        while True:
            try:
                trip = await self.step()
            except StoreUnavailable as exc:
                self._say(f"{exc.detail}; retrying ({exc.action})")
                trip = None
            if trip is not None and stop_after_trip:
                return 0
            await asyncio.sleep(self._settings.interval_seconds)

    async def step(self) -> Trip | None:
        """One check; raises `common.StoreUnavailable` when Redis fails."""
        try:
            return await self._step()
        except REDIS_FAILURES as exc:
            raise translate_redis_error(exc) from exc

    async def _step(self) -> Trip | None:
        now = time.monotonic()
        enabled = await self._master_enabled()
        if enabled and self._was_enabled is False:
            self._window.clear()  # re-enabled by a human: judge only what comes after
            self._say("new engine re-enabled; starting a fresh window")
        self._was_enabled = enabled
        self._window.append((now, await self._snapshot()))
        while self._window and now - self._window[0][0] > self._settings.window_seconds:
            self._window.popleft()
        state, reason = judge(window_delta(self._window[0][1], self._window[-1][1]), self._settings)
        cooling = (
            self._last_trip is not None and now - self._last_trip < self._settings.cooldown_seconds
        )
        if reason is None or not enabled or cooling:
            return None
        return await self._trip(now, reason, state)

    async def _trip(self, now: float, reason: str, state: WindowState) -> Trip:
        self._last_trip = now
        trip = Trip(
            time.time(), reason, state.attempts, state.error_rate, state.p95_seconds, self._dry_run
        )
        if self._dry_run:
            self._say(f"dry run: would switch the new engine off: {reason}")
            return trip
        actor = f"guardian@{socket.gethostname()}:{os.getpid()}"
        change = await self._store.set(
            "enable_new_chat", False, actor=actor, reason=reason, source="guardian"
        )
        await self._redis.set(keys.GUARDIAN_LAST_TRIP, msgspec.json.encode(trip))
        self._was_enabled = False
        _log.error(
            "Guardian tripped: new engine switched off",
            reason=reason,
            flag_version=change.version,
            action="find the cause (chatctl health, logs); re-enable with "
            "`chatctl flags set enable_new_chat true --reason ...` when fixed",
        )
        self._say(f"TRIPPED (flag version {change.version}): {reason}")
        return trip

    async def _master_enabled(self) -> bool:
        raw = await self._redis.hget(keys.FLAGS_RUNTIME, "enable_new_chat")
        if raw is None:
            return self._enabled_by_default
        try:
            return bool(decode_value("enable_new_chat", raw))
        except FlagError:
            return True

    async def _snapshot(self) -> Snapshot:
        names = [
            key
            async for key in self._redis.scan_iter(match=f"{keys.GATEWAY_STATS_PREFIX}*", count=200)
        ]
        values = await self._redis.mget(names) if names else []
        readings = zip(names, map(_gateway_stats, values), strict=True)
        return {name.decode(): stats for name, stats in readings if stats is not None}


_stats_decoder = msgspec.json.Decoder(NewEngineStats)


def _gateway_stats(raw: bytes | str | None) -> NewEngineStats | None:
    """A gateway's published counters; None for a key that expired or is not such a record."""
    if raw is None:
        return None
    try:
        stats = _stats_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return stats if len(stats.buckets) == len(LATENCY_BOUNDS) + 1 else None
