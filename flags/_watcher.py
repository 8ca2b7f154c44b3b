"""Keeps one process's flag snapshot current without touching the request path.

A background task listens on the change channel and, at least once per `poll_interval`, compares
the stored version with its own; a change (or a missed announcement) is applied within about a
second. The snapshot is swapped in one assignment, so readers never see half a change. When Redis
is unreachable the last good snapshot stays in force and the outage is reported, not raised.

Each instance also keeps a short-lived key saying which flag version it runs, and the run-time
values it applied, so an operator (or `chatctl rollback flags`) can verify that every live gateway
has picked a change up.

Flags never silently go back. Versions only grow, so a stored version lower than the one applied
(or the same version with other values) means Redis lost them: a crash without persistence, a
restore of an old dump, a FLUSHALL. Applying that would undo a rollback, so the watcher keeps the
last state it applied, logs an ERROR once with the action (`chatctl flags reapply`, which writes
the applied state back under a higher version), and reports `regressed` in `/readyz` and in its
instance key. A gateway that starts while Redis holds older flags than its live peers report,
or than its own state file (the last flags it applied, written on every change, so a restart
after a host reboot that also emptied Redis keeps them), starts from the newest of those.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from redis.asyncio import Redis

from common import (
    REDIS_FAILURES,
    STORE_FAILURES,
    BackgroundTask,
    OutageLog,
    Stopping,
    StoreUnavailable,
    get_logger,
    keys,
    redis_errors,
)
from flags._errors import FlagError
from flags._model import (
    FLAG_NAMES,
    EffectiveRouting,
    FlagSnapshot,
    FlagValue,
    FlagValues,
    decode_value,
    overlay,
)
from flags._store import FlagStore, RuntimeFlags

_log = get_logger("flags.watcher")
INSTANCE_TTL_SECONDS = 5


class InstanceReport(msgspec.Struct, frozen=True):
    """What a live gateway instance says about itself (stored under `gateway:instance:<id>`)."""

    instance: str
    version: int
    host: str
    pid: int
    started_at: float
    seen_at: float
    redis_ok: bool
    runtime: dict[str, str] = {}
    """The run-time values it applied, encoded as stored: what `chatctl flags reapply` restores."""
    redis_version: int | None = None
    """The version Redis held at its last refresh, when lower than `version` (flags regressed)."""
    routing: EffectiveRouting | None = None
    """What routes on it now and what decides (Unleash or the flags)."""


class AppliedState(msgspec.Struct, frozen=True):
    """What the state file holds: the last flags applied, and the Redis they came from (a file
    written against another Redis is ignored)."""

    version: int
    runtime: dict[str, str]
    redis: str


class WatcherStatus(msgspec.Struct, frozen=True):
    version: int
    redis_ok: bool
    last_refresh_at: float | None
    last_error: str | None
    unreadable_flags: tuple[str, ...]
    redis_version: int | None = None
    """Set while Redis holds older flags than the ones applied (see the module docstring)."""

    @property
    def regressed(self) -> bool:
        return self.redis_version is not None


REAPPLY_ACTION = (
    "run `chatctl flags reapply --reason ...` to write the applied flags back to Redis "
    "(audited); then check Redis persistence (appendonly yes)"
)


def applied_runtime(snapshot: FlagSnapshot) -> dict[str, str]:
    """The run-time values of a snapshot, encoded as `FlagStore` stores them."""
    values = msgspec.structs.asdict(snapshot.values)
    return {name: msgspec.json.encode(values[name]).decode() for name in sorted(snapshot.runtime)}


class FlagWatcher:
    def __init__(
        self,
        redis: Redis,
        defaults: FlagValues,
        *,
        kill_switch: bool,
        instance_id: str,
        poll_interval: float = 1.0,
        on_change: Callable[[FlagSnapshot], None] | None = None,
        state_file: Path | None = None,
        redis_identity: str = "",
    ) -> None:
        self.snapshot = FlagSnapshot(defaults, 0, kill_switch)
        self._redis = redis
        self._store = FlagStore(redis)
        self._defaults = defaults
        self._instance_id = instance_id
        self._poll_interval = poll_interval
        self._on_change = on_change
        self._task = BackgroundTask("flag-watcher", self._watch)
        self._started_at = time.time()
        self._redis_ok = False
        self._last_refresh_at: float | None = None
        self._last_error: str | None = None
        self._unreadable: tuple[str, ...] = ()
        self._redis_version: int | None = None
        self._describe_routing: Callable[[], EffectiveRouting] | None = None
        self._state_file = state_file
        self._redis_identity = redis_identity
        """Which Redis the state file's flags came from (its URL without password)."""
        self.outage = OutageLog("flags.watcher", "Flag refresh", max_delay=poll_interval)

    @property
    def instance_id(self) -> str:
        return self._instance_id

    def status(self) -> WatcherStatus:
        return WatcherStatus(
            self.snapshot.version,
            self._redis_ok,
            self._last_refresh_at,
            self._last_error,
            self._unreadable,
            self._redis_version,
        )

    async def start(self) -> None:
        """Loads flags once (a Redis outage leaves the environment defaults; Redis older than the
        live peers leaves the peers' state), then keeps watching."""
        self._adopt(self._read_state_file(), "this gateway's state file")
        with contextlib.suppress(StoreUnavailable):
            await self._adopt_newer_peer()
        await self.refresh()
        self._task.start()

    def _read_state_file(self) -> AppliedState | None:
        if self._state_file is None:
            return None
        try:
            state = msgspec.json.decode(self._state_file.read_bytes(), type=AppliedState)
        except FileNotFoundError:
            return None
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            _log.warning("Flag state file unreadable; ignored", file=str(self._state_file),
                         error=type(exc).__name__)  # fmt: skip
            return None
        return state if state.redis == self._redis_identity else None

    def _write_state_file(self) -> None:
        """Atomically (a temporary file renamed over it), 0600, on every applied change."""
        if self._state_file is None or self.snapshot.version == 0:
            return
        state = AppliedState(self.snapshot.version, applied_runtime(self.snapshot),
                             self._redis_identity)  # fmt: skip
        try:
            self._state_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = self._state_file.with_name(f".{self._state_file.name}.{os.getpid()}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(msgspec.json.encode(state))
            temporary.replace(self._state_file)
        except OSError as exc:
            _log.warning("Flag state file not written", file=str(self._state_file),
                         error=type(exc).__name__,
                         action="make its folder writable (FLAG_STATE_FILE)")  # fmt: skip

    async def _adopt_newer_peer(self) -> None:
        newest = max(await live_instances(self._redis), key=lambda r: r.version, default=None)
        if newest is not None:
            self._adopt(
                AppliedState(newest.version, newest.runtime, self._redis_identity),
                f"live gateway {newest.instance}",
            )

    def _adopt(self, state: AppliedState | None, source: str) -> None:
        """Starts from `state` when it is newer than what this watcher has."""
        if state is None or state.version <= self.snapshot.version:
            return
        values: dict[str, FlagValue] = {}
        for name, raw in state.runtime.items():
            if name in FLAG_NAMES:
                with contextlib.suppress(FlagError):
                    values[name] = decode_value(name, raw)
        self.snapshot = FlagSnapshot(
            overlay(self._defaults, values),
            state.version,
            self.snapshot.kill_switch,
            frozenset(values),
        )
        _log.info("Flags taken over at start", version=state.version, source=source)
        if self._on_change is not None:
            self._on_change(self.snapshot)

    async def stop(self) -> None:
        await self._task.stop()
        with contextlib.suppress(*REDIS_FAILURES):
            await self._redis.delete(keys.gateway_instance(self._instance_id))

    async def refresh(self) -> bool:
        """Reloads from Redis; True when the snapshot changed. Never raises for a Redis outage."""
        try:
            runtime = await self._store.load()
        except StoreUnavailable as exc:
            self._mark_down(exc)
            return False
        self._redis_ok = True
        self._last_error = None
        self._last_refresh_at = time.time()
        self.outage.recovered(version=self.snapshot.version)
        if runtime.unreadable != self._unreadable and runtime.unreadable:
            _log.error(
                "Flag values unreadable; defaults apply",
                flags=list(runtime.unreadable),
                action="fix them with `chatctl flags set` or `chatctl flags unset`",
            )
        self._unreadable = runtime.unreadable
        snapshot = FlagSnapshot(
            overlay(self._defaults, runtime.values),
            runtime.version,
            self.snapshot.kill_switch,
            frozenset(runtime.values),
        )
        if snapshot == self.snapshot:
            self._regression_over()
            return False
        if self._is_older(runtime, snapshot):
            self._regressed(runtime.version)
            await self._report()  # at once: `flags show` and `flags reapply` read it
            return False
        self._regression_over()
        previous, self.snapshot = self.snapshot, snapshot
        _log.info(
            "Flags applied",
            version=snapshot.version,
            previous_version=previous.version,
            values=msgspec.structs.asdict(snapshot.values),
        )
        self._write_state_file()
        if self._on_change is not None:
            self._on_change(snapshot)
        await self._report()
        return True

    def _is_older(self, runtime: RuntimeFlags, snapshot: FlagSnapshot) -> bool:
        """Redis lost flags: a lower version than the applied one, or the applied version with
        other values (`snapshot`, built from `runtime`, differs from the applied one)."""
        applied = self.snapshot.version
        return runtime.version < applied or (
            runtime.version == applied > 0 and snapshot != self.snapshot
        )

    def _regressed(self, redis_version: int) -> None:
        if self._redis_version is None:
            _log.error(
                "Flags in Redis are older than the flags applied; keeping the applied flags",
                version=self.snapshot.version,
                redis_version=redis_version,
                action=REAPPLY_ACTION,
            )
        self._redis_version = redis_version

    def _regression_over(self) -> None:
        if self._redis_version is not None:
            _log.info(
                "Flags in Redis caught up with the applied flags", version=self.snapshot.version
            )
        self._redis_version = None

    async def _watch(self, stopping: Stopping) -> None:
        while not stopping.is_set():
            try:
                await self._listen(stopping)
            except STORE_FAILURES as exc:
                if stopping.is_set():
                    return  # redis-py may turn the stop's cancel into a connection error
                if await stopping.sleep(self._mark_down(exc)):
                    return
                await self.refresh()

    async def _listen(self, stopping: Stopping) -> None:
        """Wakes on an announcement or after `poll_interval`, whichever comes first."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(keys.FLAGS_CHANNEL)
            await self.refresh()
            while not stopping.is_set():
                await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self._poll_interval
                )
                if await self._store.version() != self.snapshot.version:
                    await self.refresh()
                await self._report()
        finally:
            # Bounded: after a cancelled read, redis-py's close can wait on the read's lock.
            with contextlib.suppress(*REDIS_FAILURES):
                async with asyncio.timeout(1.0):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def describe_routing_with(self, describe: Callable[[], EffectiveRouting]) -> None:
        """What this gateway's instance report says routes now (`Flags.effective`)."""
        self._describe_routing = describe

    async def _report(self) -> None:
        report = InstanceReport(
            instance=self._instance_id,
            version=self.snapshot.version,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            seen_at=time.time(),
            redis_ok=self._redis_ok,
            runtime=applied_runtime(self.snapshot),
            redis_version=self._redis_version,
            routing=self._describe_routing() if self._describe_routing else None,
        )
        with contextlib.suppress(*REDIS_FAILURES):  # reported by the next refresh instead
            await self._redis.set(
                keys.gateway_instance(self._instance_id),
                msgspec.json.encode(report),
                ex=INSTANCE_TTL_SECONDS,
            )

    def _mark_down(self, exc: BaseException) -> float:
        """Records a failed refresh (logged once per outage); returns the delay before the next
        attempt, at most `poll_interval`, so the watcher is back within it of Redis's return."""
        self._redis_ok = False
        self._last_error = f"{type(exc).__name__}: {exc}"[:200]
        return self.outage.failed(exc, version=self.snapshot.version, keeping="the last good flags")


async def live_instances(redis: Redis) -> list[InstanceReport]:
    """Every gateway instance that reported in the last few seconds."""
    with redis_errors():
        reports: list[InstanceReport] = []
        async for key in redis.scan_iter(match=f"{keys.GATEWAY_INSTANCE_PREFIX}*", count=200):
            raw = await redis.get(key)
            if raw is None:
                continue
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                reports.append(msgspec.json.decode(raw, type=InstanceReport))
        return sorted(reports, key=lambda r: r.instance)


async def wait_for_version(
    redis: Redis, version: int, within: float
) -> tuple[list[InstanceReport], list[InstanceReport]]:
    """Live instances and those still behind `version`, once all caught up or `within` passed."""
    with redis_errors():
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            instances = await live_instances(redis)
            behind = [i for i in instances if i.version < version]
            if not behind or loop.time() >= deadline:
                return instances, behind
            await asyncio.sleep(0.05)
