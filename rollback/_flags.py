"""Step 1 of the runbook's rollback: the new chat off at run time, verified on every gateway.

The master switch (and drain) change through the audited flag store, then every live gateway
must report the new flag version within the deadline. With Unleash, its rollout toggle is also
switched off through the Admin API (when an admin token is configured), so the next gateway
start does not read it as on; the gateways' Redis master switch wins either way.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from flags import FlagStore, live_instances, wait_for_version
from rollback._full import Say
from rollback._settings import UnleashAdminSettings


def plan(*, drain: bool, actor: str, deadline: float) -> str:
    return (
        f"plan: enable_new_chat=false, drain={str(drain).lower()}; audited as {actor}; "
        f"verify every live gateway within {deadline:g}s"
    )


async def roll_back_flags(
    redis: Redis,
    *,
    drain: bool,
    reason: str,
    actor: str,
    deadline: float,
    unleash: UnleashAdminSettings | None,
    say: Say,
    done: Callable[[str], None] = lambda _: None,
) -> bool:
    """True only when every live gateway applied the change (and Unleash, when used, too).
    `done` hears of each write as it is made (for the message when a later step fails).
    Raises `common.StoreUnavailable` when Redis fails."""
    store = FlagStore(redis)
    instances = await live_instances(redis)
    newest = max(instances, key=lambda report: report.version, default=None)
    stored = await store.version()
    if newest is not None and newest.version > stored:
        # Redis lost flags the gateways still route on (flags._watcher): put them back first,
        # so the rollback changes the master switch and drain, and nothing else
        back = await store.reapply(
            newest.runtime, applied_version=newest.version, actor=actor, reason=reason
        )
        say(f"Redis had lost flags (v{stored} < v{newest.version}): re-applied the gateways' "
            f"flags first (version {back.version})")  # fmt: skip
        done(f"the gateways' flags re-applied to Redis (version {back.version})")
    # above every live gateway's version, so each of them takes the rollback
    above = max((report.version for report in instances), default=0)
    first = await store.set(
        "drain", drain, actor=actor, reason=reason, source="rollback", above=above
    )
    done(f"drain set to {str(drain).lower()} (version {first.version})")
    change = await store.set(
        "enable_new_chat", False, actor=actor, reason=reason, source="rollback", above=above
    )
    done(f"new chat switched off (version {change.version})")
    say(f"flag version {change.version}: new chat off (drain {str(drain).lower()})")
    instances, behind = await wait_for_version(redis, change.version, deadline)
    for report in instances:
        state = "applied" if report.version >= change.version else "BEHIND"
        say(f"  gateway {report.instance}: {state} (v{report.version})")
    unleash_ok = True if unleash is None else await switch_unleash_off(unleash, say)
    if behind:
        say(f"VERIFICATION FAILED: {len(behind)} gateway(s) behind", error=True)
        return False
    say(f"verified: {len(instances)} gateway(s) on version {change.version}")
    return unleash_ok


async def switch_unleash_off(settings: UnleashAdminSettings, say: Say) -> bool:
    """The rollout toggle off through Unleash's Admin API
    (`POST /admin/projects/<project>/features/<toggle>/environments/<env>/off`). True when done,
    or when no admin token is set (then the operator is told to do it by hand)."""
    toggle = settings.unleash.rollout_toggle
    if not settings.admin_token:
        say(f"note: UNLEASH_ADMIN_TOKEN unset: switch `{toggle}` off in Unleash by hand "
            "(the gateways' Redis master switch already wins)")  # fmt: skip
        return True
    url = (f"{settings.unleash.url.rstrip('/')}/admin/projects/{settings.project}/features/"
           f"{toggle}/environments/{settings.environment}/off")  # fmt: skip
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, headers={"Authorization": settings.admin_token})
    except httpx.HTTPError as exc:
        say(f"FAILED to switch `{toggle}` off in Unleash: {type(exc).__name__}", error=True)
        return False
    if response.status_code >= 300:
        say(f"FAILED to switch `{toggle}` off in Unleash: HTTP {response.status_code}", error=True)
        return False
    say(f"Unleash: `{toggle}` off in {settings.project}/{settings.environment}")
    return True
