"""Health of the engine and its dependencies, each failure named with what an operator should do.

Used by `GET /api/chat`, `chatctl health` and the gateway's readiness check.
"""

from __future__ import annotations

import time
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
from redis.exceptions import RedisError

from newchat.engine import Engine

Status = Literal["ok", "degraded", "down"]
QUEUE_BACKLOG_INFO = 100
"""The runbook's info threshold for the lead queue."""


class Check(msgspec.Struct, omit_defaults=True):
    ok: bool
    detail: str = ""
    action: str = ""
    latency_ms: float | None = None
    critical: bool = False


class HealthReport(msgspec.Struct):
    status: Status
    failing: list[str]
    checks: dict[str, Check]
    queue: dict[str, int | float | None] = msgspec.field(default_factory=dict)


def redacted_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


async def check_redis(engine: Engine) -> Check:
    started = time.perf_counter()
    try:
        await engine.redis.ping()
    except (RedisError, OSError) as exc:
        return Check(
            ok=False,
            critical=True,
            detail=f"Redis unreachable at {redacted_url(engine.settings.redis.url)} ({type(exc).__name__})",
            action="start redis-server or fix REDIS_URL; sessions and leads need it",
        )
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return Check(ok=True, detail=f"PONG in {latency_ms} ms", latency_ms=latency_ms)


async def health_report(engine: Engine) -> HealthReport:
    checks: dict[str, Check] = {"redis": await check_redis(engine)}
    if engine.openai is None:
        checks["openai"] = Check(ok=True, detail="not configured: offline classifier in use")
    elif engine.openai.paused:
        checks["openai"] = Check(
            ok=False,
            detail="rate limited (429): offline classifier answering until the pause ends",
            action="check the OpenAI usage dashboard and quota",
        )
    else:
        checks["openai"] = Check(ok=True, detail=f"model {engine.settings.openai.model}")
    if engine.leadprosper.configured:
        checks["leadprosper"] = Check(ok=True, detail="configured")
    else:
        checks["leadprosper"] = Check(
            ok=False,
            detail="not configured: leads stay in lead_queue",
            action="set LEADPROSPER_API_URL, LEADPROSPER_API_KEY, LEADPROSPER_CAMPAIGN_ID, "
            "LEADPROSPER_SUPPLIER_ID",
        )
    queue: dict[str, int | float | None] = {}
    if checks["redis"].ok:
        try:
            status = await engine.queue.status()
        except (RedisError, OSError):
            status = None
        if status is not None:
            queue = {k: v for k, v in msgspec.structs.asdict(status).items() if k != "workers"}
            checks["worker"] = (
                Check(ok=True, detail=f"{len(status.workers)} alive")
                if status.workers
                else Check(
                    ok=False,
                    detail="no lead worker heartbeat",
                    action="start `chatctl worker` (systemd unit chat-worker)",
                )
            )
            if status.stuck:
                checks["stuck_leads"] = Check(
                    ok=False,
                    detail=f"{status.stuck} leads claimed past the visibility timeout",
                    action="`chatctl queue requeue-stuck`, then check worker logs",
                )
            if status.queued > QUEUE_BACKLOG_INFO:
                checks["queue_backlog"] = Check(
                    ok=False,
                    detail=f"{status.queued} leads waiting (info threshold 100)",
                    action="check the worker and LeadProsper",
                )
    failing = [name for name, check in checks.items() if not check.ok]
    if any(checks[name].critical for name in failing):
        overall: Status = "down"
    else:
        overall = "degraded" if failing else "ok"
    return HealthReport(status=overall, failing=failing, checks=checks, queue=queue)
