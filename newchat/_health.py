"""Health of the engine and its dependencies, each failure named with what an operator should do.

Used by `GET /api/chat`, `chatctl health` and the gateway's `/metrics`. A feature that is not
set up here (OpenAI, LeadProsper) is reported as not configured, which is not a failure.
"""

from __future__ import annotations

import msgspec

from common import Check, Status, overall, probe_redis
from newchat._services import Services

QUEUE_BACKLOG_INFO = 100
"""The runbook's info threshold for the lead queue."""


class HealthReport(msgspec.Struct):
    status: Status
    failing: list[str]
    checks: dict[str, Check]
    queue: dict[str, int | float | None] = msgspec.field(default_factory=dict)


async def check_redis(services: Services) -> Check:
    return await probe_redis(
        services.redis, services.settings.redis.url, "sessions and leads need it", critical=True
    )


def check_openai(services: Services) -> Check:
    if services.openai is None:
        return Check(
            ok=True,
            configured=False,
            detail="not configured: the offline classifier detects practice areas",
            action="set OPENAI_API_KEY to use OpenAI first",
        )
    if services.openai.paused:
        return Check(
            ok=False,
            detail="rate limited (429): offline classifier answering until the pause ends",
            action="check the OpenAI usage dashboard and quota",
        )
    return Check(ok=True, detail=f"model {services.settings.openai.model}")


def check_leadprosper(services: Services) -> Check:
    if services.leadprosper.configured:
        return Check(ok=True, detail="configured")
    return Check(
        ok=True,
        configured=False,
        detail="not configured: leads stay in lead_queue",
        action="set LEADPROSPER_API_URL, LEADPROSPER_API_KEY, LEADPROSPER_CAMPAIGN_ID, "
        "LEADPROSPER_SUPPLIER_ID",
    )


async def queue_checks(
    services: Services,
) -> tuple[dict[str, Check], dict[str, int | float | None]]:
    """The worker heartbeat, stuck leads and the backlog; nothing when Redis cannot answer."""
    try:
        status = await services.queue.status()
    except Exception:  # Redis is reported by its own check
        return {}, {}
    queue = {k: v for k, v in msgspec.structs.asdict(status).items() if k != "workers"}
    checks = {
        "worker": Check(ok=True, detail=f"{len(status.workers)} alive")
        if status.workers
        else Check(
            ok=False,
            detail="no lead worker heartbeat",
            action="start `chatctl worker` (systemd unit chat-worker)",
        )
    }
    if status.stuck:
        checks["stuck_leads"] = Check(
            ok=False,
            detail=f"{status.stuck} leads claimed past the visibility timeout",
            action="`chatctl queue requeue-stuck`, then check worker logs",
        )
    if status.queued > QUEUE_BACKLOG_INFO:
        checks["queue_backlog"] = Check(
            ok=False,
            detail=f"{status.queued} leads waiting (info threshold {QUEUE_BACKLOG_INFO})",
            action="check the worker and LeadProsper",
        )
    return checks, queue


async def health_report(services: Services) -> HealthReport:
    checks = {
        "redis": await check_redis(services),
        "openai": check_openai(services),
        "leadprosper": check_leadprosper(services),
    }
    queue: dict[str, int | float | None] = {}
    if checks["redis"].ok:
        more, queue = await queue_checks(services)
        checks |= more
    status, failing = overall(checks)
    return HealthReport(status=status, failing=failing, checks=checks, queue=queue)
