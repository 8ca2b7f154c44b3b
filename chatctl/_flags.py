"""`chatctl flags show|set|unset|history|token`: run-time flags, audited, verified on every gateway.

`set` and `unset` validate before writing (a bad value changes nothing, exit 2), write the change
and its audit record atomically, then wait until every live gateway instance reports the new flag
version: exit 0 only when all have, 1 when one has not within `--wait` seconds.

When Redis holds older flags than the live gateways applied (Redis lost them: see
`flags._watcher`), `show` says so, `set` refuses (a change on top of the lost state would drop the
rest), and `reapply` writes the gateways' applied state back, audited.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Annotated

import msgspec
import typer
from redis.asyncio import Redis

from chatctl._support import (
    Changes,
    DryRunOpt,
    JsonOpt,
    ReasonOpt,
    default_actor,
    environment,
    fail,
    loaded,
    with_redis,
)
from flags import (
    FLAG_NAMES,
    AuditEntry,
    Change,
    EffectiveRouting,
    FlagError,
    FlagName,
    FlagSettings,
    FlagStore,
    FlagValue,
    FlagValues,
    InstanceReport,
    UnleashAdminError,
    UnleashRefusal,
    encode_value,
    flag_name,
    live_instances,
    load_flag_settings,
    load_unleash_admin,
    overlay,
    parse_value,
    wait_for_version,
)
from proxy import TokenSigner, load_routing_secret

flags_app = typer.Typer(help="Show and change routing flags (audited).", no_args_is_help=True)
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who (default: $SUDO_USER or $USER @ host).")
]
WaitOpt = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds to wait for every gateway to apply it."),
]


UNLEASH_DECIDES: dict[FlagName, str] = {"new_chat_percent": "rollout", "shadow_percent": "shadow"}
"""Flags whose share Unleash decides when the gateways use it (their Redis value is then only
the bootstrap), and which of its toggles does."""


class FlagsView(msgspec.Struct):
    decided_by: str
    """`unleash` when the gateways (or this environment) use Unleash: then the rollout and
    shadow shares below are not in force, the gateways' `routing` is."""
    version: int
    kill_switch: bool
    effective: FlagValues
    sources: dict[str, str]
    instances: list[InstanceReport]
    unreadable: tuple[str, ...]
    applied_version: int
    """The highest version a live gateway applied: above `version` when Redis lost flags."""
    regressed: bool
    """Redis holds older flags than the gateways route on; `chatctl flags reapply` fixes it."""
    not_in_force: list[str] = []
    """Flags in `effective` that do not route now (Unleash decides them): see each instance's
    `routing` for what does."""


async def _view(redis: Redis) -> FlagsView:
    settings = loaded(load_flag_settings)
    runtime = await FlagStore(redis).load()
    instances = await live_instances(redis)
    applied = max((report.version for report in instances), default=0)
    unleash_decides = settings.unleash is not None or any(
        report.routing is not None and report.routing.decided_by == "unleash"
        for report in instances
    )
    return FlagsView(
        decided_by="unleash" if unleash_decides else "flags",
        version=runtime.version,
        kill_switch=settings.kill_switch,
        effective=overlay(settings.defaults, runtime.values),
        sources={name: "runtime" if name in runtime.values else "env" for name in FLAG_NAMES},
        instances=instances,
        unreadable=runtime.unreadable,
        applied_version=applied,
        regressed=applied > runtime.version
        or any(report.redis_version is not None for report in instances),
        not_in_force=sorted(UNLEASH_DECIDES) if unleash_decides else [],
    )


def _regression_warning(view: FlagsView) -> str:
    return (
        f"FLAGS REGRESSED: Redis holds flag version {view.version}, but gateways route on "
        f"version {view.applied_version} (Redis lost flags: a crash without persistence, a "
        "restore, a flush). Gateways keep routing on their applied flags. Run `chatctl flags "
        "reapply --reason ...` to write them back to Redis."
    )


@flags_app.command("show")
def show(as_json: JsonOpt = False) -> None:
    """Effective flags, where each comes from, and which flag version each gateway runs."""
    view = with_redis(_view)
    if as_json:
        typer.echo(msgspec.json.encode(view).decode())
        return
    typer.echo(f"flag version {view.version}")
    if view.regressed:
        typer.echo(_regression_warning(view))
        typer.echo("  values below are Redis's, not what routes now; per gateway:")
        for report in view.instances:
            typer.echo(f"  gateway {report.instance}: v{report.version} {report.runtime or '{}'}")
    if view.kill_switch:
        typer.echo("KILL SWITCH: ENABLE_NEW_CHAT=false in this environment: all traffic to legacy")
    for name, value in msgspec.structs.asdict(view.effective).items():
        note = view.sources[name]
        if view.decided_by == "unleash" and name in UNLEASH_DECIDES:
            note += "; NOT IN FORCE: Unleash decides, see what each gateway routes below"
        typer.echo(f"  {name:>17} = {encode_value(value):<12} ({note})")
    for name in view.unreadable:
        typer.echo(f"  {name:>17}: stored value unreadable, default applies (fix with `set`)")
    _print_instances(view.instances, view.version)


def _print_instances(instances: list[InstanceReport], version: int) -> None:
    if not instances:
        typer.echo("no live gateway instance reports in Redis")
    for report in instances:
        state = (
            "current"
            if report.version == version
            else f"AHEAD of Redis (v{report.version})"
            if report.version > version
            else f"BEHIND (v{report.version})"
        )
        typer.echo(f"  gateway {report.instance} pid {report.pid}: {state}")
        if report.routing is not None:
            typer.echo(f"    routes: {_routing_line(report.routing)}")


def _routing_line(routing: EffectiveRouting) -> str:
    new = f"new engine {routing.new_chat_percent} %"
    if not routing.new_chat_enabled:
        new += " (switched off: 0 % in force)"
    line = f"{new}, shadow {routing.shadow_percent} %; from {routing.source}"
    if routing.decided_by == "unleash":
        age = (
            ""
            if routing.fetched_at is None
            else f", this state since {time.time() - routing.fetched_at:.0f}s ago"
        )
        reach = "reachable" if routing.unleash_reachable else "UNREACHABLE"
        line += f" (Unleash {reach}, environment {routing.unleash_environment or '?'}{age}): {routing.detail}"
    return line


@flags_app.command("set")
def set_flag(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(FLAG_NAMES)}.")],
    value: Annotated[str, typer.Argument(help="true/false, 0-100, or a comma-separated list.")],
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    dry_run: DryRunOpt = False,
    wait: WaitOpt = 3.0,
) -> None:
    """Set a run-time flag on every gateway, without a restart."""
    try:
        flag = flag_name(name)
        parsed = parse_value(flag, value)
    except FlagError as exc:
        raise fail(f"{exc}. Nothing was changed.", 2) from None
    _apply(flag, parsed, reason, actor, dry_run, wait)


@flags_app.command("unset")
def unset_flag(
    name: Annotated[str, typer.Argument(help="The flag to return to its environment default.")],
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    dry_run: DryRunOpt = False,
    wait: WaitOpt = 3.0,
) -> None:
    """Remove a run-time value, so the environment default applies again."""
    try:
        flag = flag_name(name)
    except FlagError as exc:
        raise fail(f"{exc}. Nothing was changed.", 2) from None
    _apply(flag, None, reason, actor, dry_run, wait)


def _apply(
    flag: FlagName,
    value: FlagValue | None,
    reason: str,
    actor: str | None,
    dry_run: bool,
    wait: float,
) -> None:
    shown = "(environment default)" if value is None else encode_value(value)
    changes = Changes()

    async def run(redis: Redis) -> int:
        view = await _view(redis)
        current = encode_value(msgspec.structs.asdict(view.effective)[flag])
        if view.regressed:
            typer.echo(_regression_warning(view), err=True)
            typer.echo(f"error: {flag} not changed: re-apply first, then change it", err=True)
            return 1
        if view.decided_by == "unleash" and flag in UNLEASH_DECIDES:
            gateway_environments = {
                report.routing.unleash_environment
                for report in view.instances
                if report.routing is not None and report.routing.decided_by == "unleash"
            }
            return await _through_unleash(redis, flag, value, reason, actor, dry_run, wait,
                                          gateway_environments)  # fmt: skip
        if dry_run:
            typer.echo(f"dry run: {flag}: {current} -> {shown} (version {view.version}); no change")
            return 0
        change = await FlagStore(redis).set(
            flag, value, actor=actor or default_actor(), reason=reason, source="chatctl"
        )
        changes.record(f"{flag} set to {shown} (version {change.version})")
        typer.echo(f"{flag}: {current} -> {shown} (version {change.version})")
        if view.kill_switch:
            typer.echo("note: ENABLE_NEW_CHAT=false here is a kill switch; legacy serves everyone")
        return await _verify(redis, change, wait)

    raise typer.Exit(with_redis(run, changes=changes))


async def _through_unleash(
    redis: Redis,
    flag: FlagName,
    value: FlagValue | None,
    reason: str,
    actor: str | None,
    dry_run: bool,
    wait: float,
    gateway_environments: set[str | None],
) -> int:
    """A share Unleash decides is changed there (Admin API, reason recorded in Unleash), read
    back as the gateways' token sees it, audited in Redis, and verified on every gateway; or
    refused (exit 2) when that cannot be done: never a silent no-op."""
    settings = loaded(load_flag_settings)
    admin = load_unleash_admin(environment(), settings.unleash)
    toggle_of = {"rollout": "rollout_toggle", "shadow": "shadow_toggle"}[UNLEASH_DECIDES[flag]]
    toggle = getattr(settings.unleash, toggle_of) if settings.unleash else "new-chat"
    if value is None or admin is None:
        why = (
            "`unset` has no meaning there"
            if value is None
            else "set UNLEASH_URL, UNLEASH_API_TOKEN (the gateways' client token) and "
            "UNLEASH_ADMIN_TOKEN here and `flags set` writes it to Unleash, or change it in "
            "Unleash's UI"
        )
        typer.echo(
            f"error: Unleash decides {flag} on the gateways (toggle `{toggle}`): {why}. "
            "Nothing was changed.",
            err=True,
        )
        return 2
    percent = int(value)  # type: ignore[arg-type]  # a share: parse_value made it an int
    others = gateway_environments - {admin.environment}
    if others:  # the gateways' reports say which environment routes, not this shell's token
        typer.echo(
            f"error: this UNLEASH_API_TOKEN reads {admin.environment}, the gateways read "
            f"{', '.join(sorted(map(str, others)))}: use the gateways' token. Nothing was "
            "changed.",
            err=True,
        )
        return 2
    if admin.ignored_environment:
        typer.echo(f"note: UNLEASH_ENVIRONMENT={admin.ignored_environment} ignored: the gateways' "
                   f"token reads {admin.environment}")  # fmt: skip
    who = actor or default_actor()
    try:
        if dry_run:  # the admin token and the toggle's shape are checked, nothing is written
            await admin.strategies(toggle)
            typer.echo(f"dry run: Unleash `{toggle}` rollout -> {percent} % in environment "
                       f"{admin.environment} (project {admin.project}); no change")  # fmt: skip
            return 0
        await admin.set_rollout(toggle, percent, reason, who)
    except UnleashRefusal as exc:
        typer.echo(f"error: {exc}. Nothing was changed.", err=True)
        return 2
    except UnleashAdminError as exc:
        typer.echo(f"error: Unleash refused the change: {exc}. Nothing was changed.", err=True)
        return 1
    change = await FlagStore(redis).set(flag, percent, actor=who, reason=reason,
                                        source="chatctl+unleash")  # fmt: skip
    try:
        seen = await admin.wait_until(toggle, lambda state: state.percent == percent)
    except UnleashAdminError as exc:
        typer.echo(f"error: Unleash `{toggle}` was set to {percent} % (audited as version "
                   f"{change.version}), but reading it back failed: {exc}", err=True)  # fmt: skip
        return 1
    if seen.percent != percent:
        typer.echo(f"error: Unleash `{toggle}` was set to {percent} % (audited as version "
                   f"{change.version}), but the gateways' token reads {seen.percent} %: "
                   f"{seen.strategy or 'no strategy'}", err=True)  # fmt: skip
        return 1
    typer.echo(f"{flag}: Unleash `{toggle}` rollout now {percent} % in {admin.environment} "
               f"(read back with the gateways' token; audited here as version {change.version})")  # fmt: skip
    return await _verify_routing(redis, flag, percent, wait + settings_refresh(settings))


def settings_refresh(settings: FlagSettings) -> float:
    """A poll interval and a second: how long after a change in Unleash gateways route on it."""
    unleash = settings.unleash
    return unleash.refresh_interval_seconds + 1.0 if unleash is not None else 0.0


async def _verify_routing(redis: Redis, flag: FlagName, value: int, wait: float) -> int:
    """Waits until every live gateway routes on `value` for `flag` (their instance reports)."""
    deadline = time.monotonic() + wait
    while True:
        instances = await live_instances(redis)
        behind = [
            report.instance
            for report in instances
            if report.routing is None
            or (
                report.routing.new_chat_percent
                if flag == "new_chat_percent"
                else report.routing.shadow_percent
            )
            != value
        ]
        if not behind or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
    if not instances:
        typer.echo("no live gateway instance to verify (it applies when one starts)")
        return 0
    if behind:
        typer.echo(f"error: {len(behind)} gateway(s) not routing on it yet: "
                   f"{', '.join(behind)}", err=True)  # fmt: skip
        return 1
    typer.echo(f"verified: {len(instances)} gateway(s) route on {value} %")
    return 0


async def _verify(redis: Redis, change: Change, wait: float) -> int:
    """Waits for every live instance to report the change's version."""
    instances, behind = await wait_for_version(redis, change.version, wait)
    if not instances:
        typer.echo("no live gateway instance to verify (the change applies when one starts)")
        return 0
    _print_instances(instances, change.version)
    if behind:
        typer.echo(
            f"error: {len(behind)} instance(s) did not apply version {change.version}", err=True
        )
        return 1
    typer.echo(f"verified: {len(instances)} instance(s) on version {change.version}")
    return 0


@flags_app.command("reapply")
def reapply(
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    dry_run: DryRunOpt = False,
    wait: WaitOpt = 3.0,
) -> None:
    """Write the flags the gateways route on back to Redis, after Redis lost them (audited)."""
    changes = Changes()

    async def run(redis: Redis) -> int:
        view = await _view(redis)
        if not view.instances:
            typer.echo("error: no live gateway reports its flags; nothing to re-apply", err=True)
            return 1
        if not view.regressed:
            typer.echo(f"Redis holds the flags the gateways apply (version {view.version}); "
                       "nothing to re-apply")  # fmt: skip
            return 0
        source = max(view.instances, key=lambda report: report.version)
        values = ", ".join(f"{k}={v}" for k, v in sorted(source.runtime.items())) or "(none)"
        typer.echo(f"applied by gateway {source.instance}: version {source.version}: {values}")
        if dry_run:
            typer.echo(f"dry run: would write them to Redis (now version {view.version})")
            return 0
        try:
            change = await FlagStore(redis).reapply(
                source.runtime,
                applied_version=source.version,
                actor=actor or default_actor(),
                reason=reason,
            )
        except FlagError as exc:
            typer.echo(f"error: {exc}; nothing was written", err=True)
            return 1
        changes.record(
            f"flags re-applied from gateway {source.instance} (version {change.version})"
        )
        typer.echo(f"re-applied to Redis as version {change.version}")
        return await _verify(redis, change, wait)

    raise typer.Exit(with_redis(run, changes=changes))


@flags_app.command("history")
def history(
    limit: Annotated[int, typer.Option(min=1, help="How many changes, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The audit log: who changed which flag, when, from what to what, and why."""

    async def run(redis: Redis) -> list[AuditEntry]:
        return await FlagStore(redis).history(limit)

    async def applied(redis: Redis) -> int:
        return max((report.version for report in await live_instances(redis)), default=0)

    entries = with_redis(run)
    if as_json:
        typer.echo(msgspec.json.encode(entries).decode())
        return
    if not entries:
        typer.echo("no flag changes recorded")
        version = with_redis(applied)
        if version:
            typer.echo(f"warning: gateways route on flag version {version}: Redis lost the audit "
                       "log with the flags (see `chatctl flags show`)")  # fmt: skip
    for entry in entries:
        at = datetime.fromtimestamp(entry.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        new = entry.new or "(unset)"
        old = entry.old or "(default)"
        typer.echo(
            f"{at}  v{entry.version:<4} {entry.flag}: {old} -> {new}  "
            f"by {entry.actor}  reason: {entry.reason or '-'}"
        )


@flags_app.command("token")
def token(
    tester: Annotated[str, typer.Option(help="Tester name (must be on the `testers` flag).")],
    backend: Annotated[str, typer.Option(help="new or legacy.")] = "new",
    ttl_hours: Annotated[float, typer.Option(help="Validity in hours.")] = 8.0,
) -> None:
    """Mint a tester's override token (needs ROUTING_SECRET or SESSION_SECRET of the gateways)."""
    if backend not in ("new", "legacy"):
        raise fail("--backend must be new or legacy", 2)
    try:
        names = parse_value("testers", tester)
    except FlagError as exc:
        raise fail(str(exc), 2) from None
    if not isinstance(names, tuple) or len(names) != 1 or not 0 < ttl_hours <= 24 * 30:
        raise fail("give one tester name and a TTL of at most 30 days", 2)
    secret = load_routing_secret(environment())
    if not secret:
        raise fail("set ROUTING_SECRET (or SESSION_SECRET) to the gateways' value", 2)
    expires = int(time.time() + ttl_hours * 3600)
    value = TokenSigner(secret).override_token(names[0], backend, expires)  # type: ignore[arg-type]
    typer.echo(value)
    print(
        f"send it as header `X-Chat-Override: <token>` or cookie `chat_override=<token>`; valid "
        f"until {datetime.fromtimestamp(expires, UTC):%Y-%m-%d %H:%M UTC} while `{names[0]}` is "
        "in the testers flag",
        file=sys.stderr,
    )
