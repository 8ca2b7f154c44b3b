"""Step 1 of the runbook's rollback: the new chat off at run time, verified on every gateway.

The master switch (and drain) change through the audited flag store, then every live gateway
must report the new flag version within the deadline. With Unleash, its rollout toggle is also
switched off through the Admin API (when an admin token is configured) in the environment the
gateways' client token reads, the reason recorded there, and the result read back with that
token: the gateways' Redis master switch wins either way, and the next start does not read the
toggle as on.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from flags import (
    FlagStore,
    UnleashAdmin,
    UnleashAdminError,
    live_instances,
    wait_for_version,
)
from rollback._full import Say
from rollback._settings import UnleashAdminSettings


def plan(
    *, drain: bool, actor: str, deadline: float, unleash: UnleashAdminSettings | None = None
) -> str:
    """Every step the rollback takes, in order."""
    steps = [
        f"plan: 1. enable_new_chat=false, drain={str(drain).lower()} in Redis (audited as {actor})",
        f"2. verify every live gateway applied it within {deadline:g}s",
    ]
    if unleash is not None:
        admin = _admin(unleash)
        toggle = unleash.unleash.rollout_toggle
        steps.append(
            f"3. Unleash: switch `{toggle}` off in environment {admin.environment} (project "
            f"{admin.project}, the gateways' token's), record the reason there, read it back "
            "with the gateways' token"
            if unleash.admin_token
            else f"3. Unleash: UNLEASH_ADMIN_TOKEN unset: switch `{toggle}` off by hand in "
            f"environment {admin.environment}"
        )
    return "; ".join(steps)


def _admin(settings: UnleashAdminSettings) -> UnleashAdmin:
    return UnleashAdmin(settings.unleash, settings.admin_token, project=settings.project,
                        environment=settings.environment)  # fmt: skip


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
    gateway_environments = {
        report.routing.unleash_environment or "?"
        for report in instances
        if report.routing is not None and report.routing.decided_by == "unleash"
    }
    if unleash is None and gateway_environments:
        say(f"note: the gateways route with Unleash (environment "
            f"{', '.join(sorted(gateway_environments))}): switch `new-chat` off there too, or set "
            "UNLEASH_URL, UNLEASH_API_TOKEN and UNLEASH_ADMIN_TOKEN here so this command does "
            "(the Redis master switch already wins)")  # fmt: skip
    unleash_ok = (
        True
        if unleash is None
        else await switch_unleash_off(unleash, say, reason, actor, gateway_environments)
    )
    if behind:
        say(f"VERIFICATION FAILED: {len(behind)} gateway(s) behind", error=True)
        return False
    say(f"verified: {len(instances)} gateway(s) on version {change.version}")
    return unleash_ok


async def switch_unleash_off(
    settings: UnleashAdminSettings,
    say: Say,
    reason: str = "",
    actor: str = "chatctl",
    gateway_environments: set[str] | None = None,
) -> bool:
    """The rollout toggle off through Unleash's Admin API in the environment the gateways read
    (their instance reports say which; else this shell's client token), the reason recorded,
    verified as they see it. True when done, or when no admin token is set (then the operator
    is told to do it by hand)."""
    toggle = settings.unleash.rollout_toggle
    admin = _admin(settings)
    if admin.ignored_environment:
        say(f"note: UNLEASH_ENVIRONMENT={admin.ignored_environment} ignored: the gateways' "
            f"token reads {admin.environment}")  # fmt: skip
    reported = sorted((gateway_environments or set()) - {"?"})
    own_token_reads = admin.environment
    if reported and admin.environment not in reported:
        # the gateways say where they route; this shell's token reads elsewhere (a rollback
        # "verified" production while development went on routing: a fresh helper, issue 20)
        say(f"note: this UNLEASH_API_TOKEN reads {admin.environment}, the gateways read "
            f"{', '.join(reported)}: switching it off there")  # fmt: skip
        admin.environment = reported[0]
    if not settings.admin_token:
        say(f"note: UNLEASH_ADMIN_TOKEN unset: switch `{toggle}` off in Unleash by hand, in "
            f"environment {admin.environment} (the gateways' Redis master switch already wins)")  # fmt: skip
        return True
    try:
        await admin.switch(toggle, False, reason, actor)
        if admin.environment == own_token_reads:
            seen = await admin.wait_until(toggle, lambda state: not state.enabled)
            still_on = seen.enabled
        else:  # this shell's client token cannot read the gateways' environment: the admin API
            still_on = await admin.enabled(toggle)
    except UnleashAdminError as exc:
        say(f"FAILED to switch `{toggle}` off in Unleash: {exc}", error=True)
        return False
    if still_on:
        say(f"FAILED: `{toggle}` still reads on in {admin.environment}", error=True)
        return False
    say(f"Unleash: `{toggle}` off in {admin.project}/{admin.environment}, verified as the "
        "gateways see it; reason recorded")  # fmt: skip
    return True


async def probe_unleash(settings: UnleashAdminSettings | None) -> str | None:
    """What would make the Unleash step of a rollback fail now (a dry run asks), or None."""
    if settings is None or not settings.admin_token:
        return None
    try:
        await _admin(settings).strategies(settings.unleash.rollout_toggle)
    except UnleashAdminError as exc:
        return str(exc)
    return None
