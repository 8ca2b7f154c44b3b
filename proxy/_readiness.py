"""`/readyz`: can this gateway serve? Redis, legacy and Unleash reachability, and its flag version.

Legacy unreachable is "down" (503): the gateway cannot give anyone the safe answer. Redis or
Unleash unreachable is "degraded" (200): routing goes on from memory, cookies and the last good
flags, and the detail says what to do.
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis

from common import Check, Status, overall, probe_redis
from flags import REAPPLY_ACTION, EffectiveRouting, Flags, FlagValues
from proxy._errors import UpstreamError
from proxy._headers import Visitor
from proxy._upstream import ForwardRequest, HttpUpstream


class FlagReport(msgspec.Struct):
    version: int
    kill_switch: bool
    values: FlagValues
    runtime: list[str]
    source: str
    redis_ok: bool
    instance: str
    redis_version: int | None = None
    """Set when Redis holds older flags than `version` (the `flags` check says what to do)."""
    routing: EffectiveRouting | None = None
    """What routes now and what decides it: with Unleash, its toggles, not `values`'
    percentages (those are Redis's, not in force)."""


class ReadyReport(msgspec.Struct):
    status: Status
    failing: list[str]
    checks: dict[str, Check]
    flags: FlagReport


_PROBE = Visitor(peer=None, scheme="http", address="127.0.0.1", peer_trusted=False, cookies={})
"""The gateway itself, from its own host, asking legacy whether it answers."""


async def _legacy_check(legacy: HttpUpstream) -> Check:
    started = time.perf_counter()
    probe = ForwardRequest("GET", b"", [], b"", _PROBE)
    try:
        reply = await legacy.send(probe)
    except UpstreamError as exc:
        return Check(
            ok=False,
            critical=True,
            detail=f"legacy backend {legacy.url} failed: {exc.kind}",
            action="start the legacy PHP backend or fix LEGACY_URL; nginx should serve "
            "/api/chat from legacy directly meanwhile",
        )
    ms = round((time.perf_counter() - started) * 1000, 2)
    if reply.status >= 500:
        return Check(
            ok=False,
            critical=True,
            detail=f"legacy backend answered HTTP {reply.status}",
            action="check the legacy PHP backend's logs",
        )
    return Check(ok=True, detail=f"HTTP {reply.status} in {ms} ms", latency_ms=ms)


async def readiness(
    flags: Flags, redis: Redis, redis_url: str, legacy: HttpUpstream
) -> ReadyReport:
    checks = {
        "redis": await probe_redis(
            redis,
            redis_url,
            "routing continues on the last flags and on routing cookies, the new engine cannot "
            "serve",
            critical=False,
        ),
        "legacy": await _legacy_check(legacy),
    }
    routing = flags.effective()
    if flags.unleash is not None:
        unleash = flags.unleash.status()
        in_force = _in_force(routing, unleash.fetched_at, unleash.last_ok_at)
        checks["unleash"] = (
            Check(
                ok=True,
                detail=f"reachable (environment {unleash.environment or '?'}); routing on "
                f"{in_force}",
            )
            if unleash.reachable
            else Check(
                ok=False,
                detail=f"unreachable ({unleash.last_error}); routing on {in_force}",
                action="check the Unleash server, UNLEASH_URL and UNLEASH_API_TOKEN; routing "
                "continues on that state",
            )
        )
    watcher = flags.watcher.status()
    if watcher.regressed:
        checks["flags"] = Check(
            ok=False,
            detail=f"Redis holds flag version {watcher.redis_version}, older than the version "
            f"{watcher.version} this gateway applied and routes on (Redis lost flags)",
            action=REAPPLY_ACTION,
        )
    status, failing = overall(checks)
    snapshot = flags.snapshot
    report = FlagReport(
        version=snapshot.version,
        kill_switch=snapshot.kill_switch,
        values=snapshot.values,
        runtime=sorted(snapshot.runtime),
        source="unleash+redis" if flags.unleash is not None else "env+redis",
        redis_ok=watcher.redis_ok,
        instance=flags.watcher.instance_id,
        redis_version=watcher.redis_version,
        routing=routing,
    )
    return ReadyReport(status, failing, checks, report)


def _in_force(routing: EffectiveRouting, fetched_at: float | None, checked_at: float | None) -> str:
    """Which state routes, in words: `Unleash (checked 1s ago, this state since 3m): new
    engine 30 %, shadow 0 % (new-chat: flexibleRollout ...)`."""
    shares = (
        f"new engine {routing.new_chat_percent} %"
        + ("" if routing.new_chat_enabled else " (switched off)")
        + f", shadow {routing.shadow_percent} %"
    )
    if routing.source == "bootstrap":
        return f"the env/Redis flags (Unleash never fetched here): {shares}"
    now = time.time()
    ages = []
    if checked_at is not None:
        ages.append(f"checked {now - checked_at:.0f}s ago")
    if fetched_at is not None:
        ages.append(f"this state since {_duration(now - fetched_at)}")
    where = "Unleash" if routing.source == "unleash" else "Unleash's cached state"
    return f"{where} ({', '.join(ages) or 'not checked yet'}): {shares} ({routing.detail})"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7_200 else f"{seconds / 3_600:.0f}h"
