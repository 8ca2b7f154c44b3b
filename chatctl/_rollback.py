"""`chatctl rollback flags|full|guard` (and `guard`), `backup create|verify|restore`,
`nginx render`: the runbook's rollback, step by step.

Every command that changes something has `--dry-run` (prints the plan, changes nothing), prints
each step, writes what it did to the audit log, and exits 0 only when its verification passed.
"""

from __future__ import annotations

import time
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from redis.asyncio import Redis

from chatctl._support import (
    Changes,
    DryRunOpt,
    default_actor,
    fail,
    loaded,
    say,
    with_redis,
)
from common import keys, probe_redis
from flags import FlagStore, load_flag_settings
from rollback import (
    MODES,
    PATTERNS,
    BackupError,
    ConfigError,
    Entry,
    Guardian,
    GuardSettings,
    Header,
    KeyCounts,
    Mode,
    NginxTarget,
    RestorePlan,
    check_site_file,
    create_backup,
    flag_rollback_plan,
    load_rollback_settings,
    mode_before_rollback,
    nginx_test,
    probe_unleash,
    read_backup,
    render,
    replace_patterns,
    restore_backup,
    roll_back_flags,
    site_mode,
    switch,
)

rollback_app = typer.Typer(help="Scripted, verified rollback.", no_args_is_help=True)
backup_app = typer.Typer(help="Back up and restore sessions and lead keys.", no_args_is_help=True)
nginx_app = typer.Typer(help="The site's nginx config.", no_args_is_help=True)


def _audit(event: str, old: str, new: str, reason: str) -> None:
    """Appends to the audit log; a Redis outage is reported, not fatal (nginx already changed)."""

    async def run(redis: Redis) -> None:
        await FlagStore(redis).record(
            event, old, new, actor=default_actor(), reason=reason, source="rollback"
        )

    try:
        with_redis(run)
    except typer.Exit:
        typer.echo(f"warning: could not write the audit record for {event}", err=True)


KILL_SWITCH_ADVICE = (
    "if Redis cannot take writes again at once, use the kill switch, which needs no Redis: "
    "ENABLE_NEW_CHAT=false in every gateway's environment, then `systemctl restart "
    "chat-gateway` (or `chatctl rollback full` to send /api/chat straight to legacy)"
)


@rollback_app.command("flags")
def rollback_flags(
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
    drain: Annotated[
        bool, typer.Option("--drain", help="Let conversations already on the new engine finish.")
    ] = False,
    deadline: Annotated[float, typer.Option(help="Seconds for every gateway to apply it.")] = 5.0,
    dry_run: DryRunOpt = False,
) -> None:
    """Step 1: new chat off at run time (optionally draining), verified on every gateway."""
    actor = default_actor()
    settings = loaded(load_rollback_settings)
    typer.echo(
        flag_rollback_plan(drain=drain, actor=actor, deadline=deadline, unleash=settings.unleash)
    )
    if dry_run:

        async def probe(redis: Redis) -> bool:
            check = await probe_redis(redis, "", "the rollback would fail", critical=True)
            if not check.ok:
                say(f"dry run: the rollback would FAIL now: {check.detail}; {check.action}; "
                    f"{KILL_SWITCH_ADVICE}", error=True)  # fmt: skip
            unleash_problem = await probe_unleash(settings.unleash)
            if unleash_problem:
                say(f"dry run: the Unleash step would FAIL now: {unleash_problem}", error=True)
            return check.ok and unleash_problem is None

        ok = with_redis(probe, advice=KILL_SWITCH_ADVICE)
        typer.echo("dry run: nothing changed")
        raise typer.Exit(0 if ok else 1)
    changes = Changes()

    async def run(redis: Redis) -> bool:
        return await roll_back_flags(
            redis,
            drain=drain,
            reason=reason,
            actor=actor,
            deadline=deadline,
            unleash=settings.unleash,
            say=say,
            done=changes.record,
        )

    raise typer.Exit(0 if with_redis(run, changes=changes, advice=KILL_SWITCH_ADVICE) else 1)


SiteFile = Annotated[str | None, typer.Option(help="Default: $NGINX_SITE_FILE.")]
GatewayOpt = Annotated[str | None, typer.Option(help="Gateway host:port ($GATEWAY_UPSTREAM).")]
LegacyOpt = Annotated[str | None, typer.Option(help="Legacy host:port ($LEGACY_UPSTREAM).")]


def _target(
    site_file: str | None, gateway: str | None, legacy: str | None, verify_url: str | None
) -> NginxTarget:
    """The configured nginx target with the command line's overrides."""
    target = loaded(load_rollback_settings).nginx
    site = msgspec.structs.replace(
        target.site, gateway=gateway or target.site.gateway, legacy=legacy or target.site.legacy
    )
    return msgspec.structs.replace(
        target,
        site_file=site_file or target.site_file,
        verify_url=verify_url or target.verify_url,
        site=site,
    )


@rollback_app.command("full")
def rollback_full(
    undo: Annotated[bool, typer.Option("--undo", help="Back through the gateway.")] = False,
    site_file: SiteFile = None,
    gateway: GatewayOpt = None,
    legacy: LegacyOpt = None,
    verify_url: Annotated[str | None, typer.Option(help="Default: $NGINX_VERIFY_URL.")] = None,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    dry_run: DryRunOpt = False,
) -> None:
    """Step 2: nginx sends /api/chat straight to legacy PHP (`--undo` goes back to the mode the
    site was in before, gateway or split)."""
    target = _target(site_file, gateway, legacy, verify_url)
    path = Path(target.site_file)
    try:
        old = site_mode(path) or "unknown"
        mode: Mode = mode_before_rollback(path) if undo else "legacy"
        passed = switch(mode, target, dry_run=dry_run, say=say)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    if not dry_run:
        _audit("nginx./api/chat", old, mode if passed else f"{mode} (verification failed)", reason)
    raise typer.Exit(0 if passed else 1)


@rollback_app.command("guard")
def guard(
    window: Annotated[float, typer.Option(help="Sliding window, seconds.")] = 60.0,
    min_samples: Annotated[int, typer.Option(help="New-engine requests needed to judge.")] = 50,
    max_error_rate: Annotated[float, typer.Option(help="Trip above this (runbook: 0.10).")] = 0.10,
    max_p95: Annotated[
        float, typer.Option(help="Trip above this p95, seconds (runbook: 5).")
    ] = 5.0,
    cooldown: Annotated[float, typer.Option(help="Seconds after a trip before another.")] = 300.0,
    interval: Annotated[float, typer.Option(help="Seconds between checks.")] = 1.0,
    stop_after_trip: Annotated[
        bool, typer.Option("--stop-after-trip", help="Exit 0 after the first trip.")
    ] = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Watch the new engine's error rate and p95 on every gateway; switch it off when critical."""
    settings = GuardSettings(window, min_samples, max_error_rate, max_p95, cooldown, interval)
    flags = loaded(load_flag_settings)
    typer.echo(f"guarding: trip when error rate > {max_error_rate:.0%} or p95 > {max_p95:g}s over "
               f"{window:g}s with >= {min_samples} requests{' (dry run)' if dry_run else ''}")  # fmt: skip

    async def run(redis: Redis) -> int:
        guardian = Guardian(
            redis,
            settings,
            dry_run=dry_run,
            enabled_by_default=flags.defaults.enable_new_chat,
            say=typer.echo,
        )
        return await guardian.run(stop_after_trip=stop_after_trip)

    raise typer.Exit(with_redis(run))


@nginx_app.command("render")
def nginx_render(
    mode: Annotated[str, typer.Option(help="gateway, split or legacy.")] = "gateway",
    out: Annotated[Path | None, typer.Option(help="Write here (default: print).")] = None,
    gateway: GatewayOpt = None,
    legacy: LegacyOpt = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="nginx -t of the written file (and of $NGINX_CONF, when set)."
        ),
    ] = False,
) -> None:
    """Render the site config for the given ports and mode (no hand edits)."""
    if mode not in MODES:
        raise fail("--mode must be gateway, split or legacy", 2)
    target = _target(None, gateway, legacy, None)
    try:
        text = render(mode, target.site)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    typer.echo(f"wrote {out}")
    if check:
        ok, output = check_site_file(out)
        typer.echo(f"nginx -t of {out}: {'ok' if ok else 'FAILED'} {output}")
        if ok and target.nginx_conf:
            ok, output = nginx_test(target.nginx_conf)
            typer.echo(f"nginx -t of {target.nginx_conf}: {'ok' if ok else 'FAILED'} {output}")
        raise typer.Exit(0 if ok else 1)


MIN_KEY_LENGTH = 16
"""Characters a backup key needs at least: a one-letter key is guessed at once."""


def _backup_key() -> str:
    key = loaded(load_rollback_settings).backup_key
    if not key:
        raise fail("set BACKUP_KEY (or SESSION_SECRET) to the key backups are made with", 2)
    if len(key) < MIN_KEY_LENGTH:
        raise fail(f"BACKUP_KEY is too short: use {MIN_KEY_LENGTH} characters or more", 2)
    return key


def _read(file: Path, key: str) -> tuple[Header, list[Entry]]:
    try:
        return read_backup(file, key)
    except BackupError as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from None


@backup_app.command("create")
def backup_create(
    out: Annotated[Path | None, typer.Option(help="Default: backups/chat-<time>.backup.")] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Snapshot sessions, lead keys and routing pins with their TTLs (file mode 0600),
    authenticated with BACKUP_KEY (or a key derived from SESSION_SECRET)."""
    path = out or Path("backups") / time.strftime("chat-%Y%m%d-%H%M%S.backup")
    key = _backup_key()

    async def run(redis: Redis) -> int:
        if dry_run:
            typer.echo(f"dry run: would back up {', '.join(PATTERNS)} to {path}")
            return 0
        header = await create_backup(redis, path, key)
        typer.echo(f"backed up {header.keys} keys to {path} (authenticated)")
        _, entries = _read(path, key)  # verified as written
        typer.echo(f"verified: {len(entries)} keys readable, MAC ok")
        return 0

    raise typer.Exit(with_redis(run))


@backup_app.command("newest")
def backup_newest(
    folder: Annotated[Path, typer.Argument(help="Where backups are.")] = Path("backups"),
) -> None:
    """Print the path of the backup made last, by its authenticated time (not the file's
    modification time, which anyone who can touch the file sets)."""
    key = _backup_key()
    found: list[tuple[float, Path]] = []
    for path in sorted(folder.glob("*.backup")):
        try:
            header, _ = read_backup(path, key)
        except BackupError as exc:
            typer.echo(f"skipped: {exc}", err=True)
            continue
        found.append((header.created_at, path))
    if not found:
        raise fail(f"no authenticated backup in {folder}", 1)
    typer.echo(str(max(found)[1]))


@backup_app.command("verify")
def backup_verify(file: Annotated[Path, typer.Argument(help="A backup file.")]) -> None:
    """Check a backup file: format, MAC under BACKUP_KEY, every entry and its namespace."""
    header, _ = _read(file, _backup_key())
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(header.created_at))
    typer.echo(f"ok: {header.keys} keys, created {created}, authenticated")


def _plan_lines(plan: RestorePlan) -> list[str]:
    leads = plan.leads
    final = ", ".join(f"{n} {state}" for state, n in sorted(plan.leads.final.items()))
    lines = [
        f"  leads:    {leads.added} added, {leads.kept} kept, {leads.advanced} moved on to the "
        f"backup's further state, {leads.lost} lost" + (f" (after: {final})" if final else ""),
    ]
    for name in ("sessions", "pins", "markers"):
        counts: KeyCounts = getattr(plan, name)
        lines.append(
            f"  {name + ':':<9} {counts.added} added, {counts.kept} kept as they are now, "
            f"{counts.replaced} replaced"
        )
    if plan.replaced:
        shown = ", ".join(plan.replaced[:5]) + (" ..." if len(plan.replaced) > 5 else "")
        lines.append(f"  lost to the backup's values: {len(plan.replaced)} live keys ({shown})")
    return lines


@backup_app.command("restore")
def backup_restore(
    file: Annotated[Path, typer.Argument(help="A backup file.")],
    replace: Annotated[
        list[str] | None,
        typer.Option(
            "--replace",
            metavar="NAMESPACE|PATTERN",
            help="Also overwrite live keys: `sessions`, `pins`, or a glob inside them "
            "(e.g. 'sess:ab*'); repeatable. Leads are always merged, never replaced.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    older_than_markers: Annotated[
        bool,
        typer.Option(
            "--older-than-markers",
            help="Restore a backup older than the leads' 30-day done markers anyway (leads it "
            "names may be sent again).",
        ),
    ] = False,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    dry_run: DryRunOpt = False,
) -> None:
    """Restore a backup without losing anything live: leads merged to their furthest state,
    sessions and pins added where missing (replaced only where --replace names them). Prints the
    plan first; exit 0 when it was applied (with --dry-run: when it would go ahead)."""
    key = _backup_key()
    header, entries = _read(file, key)
    age = time.time() - header.created_at
    if age > keys.LEAD_MARKER_TTL_SECONDS and not older_than_markers:
        raise fail(
            f"{file.name} was made {age / 86_400:.0f} days ago, longer than leads' done markers "
            f"last ({keys.LEAD_MARKER_TTL_SECONDS // 86_400} days): leads it names that were "
            "sent since may be sent again. Use a newer backup (`chatctl backup newest`), or "
            "--older-than-markers if that is what you want",
            2,
        )
    try:
        patterns = replace_patterns(replace or [])
    except BackupError as exc:
        raise fail(str(exc), 2) from None
    for pattern in patterns:
        if not any(fnmatchcase(entry.key, pattern) for entry in entries):
            typer.echo(f"warning: --replace {pattern!r} names no key in {file.name}", err=True)

    def show(plan: RestorePlan) -> None:
        if as_json:
            return
        again = " (live keys changed: planned again)" if plan.attempts > 1 else ""
        typer.echo(f"plan for {file.name}, {plan.backup_keys} keys{again}:")
        typer.echo("\n".join(_plan_lines(plan)))

    async def run(redis: Redis) -> RestorePlan | str:
        try:
            return await restore_backup(
                redis, entries, replace=replace or [], dry_run=dry_run, on_plan=show
            )
        except BackupError as exc:
            return str(exc)

    plan = with_redis(run)
    if isinstance(plan, str):
        typer.echo(f"INVALID: {plan}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(msgspec.json.encode(plan).decode())
    if not plan.goes_ahead:
        typer.echo(
            f"REFUSED: {plan.lost_leads} leads would be lost. Nothing was changed.", err=True
        )
        raise typer.Exit(1)
    if dry_run:
        if not as_json:
            typer.echo("dry run: nothing was changed; the restore would go ahead")
        raise typer.Exit(0)
    if not as_json:
        typer.echo(f"restored: {plan.leads.added} leads back, {plan.sessions.added} sessions, "
                   f"{plan.pins.added} pins, {plan.markers.added} markers; "
                   f"{len(plan.replaced)} live keys replaced; 0 leads lost")  # fmt: skip
    summary = (
        f"{file.name}: leads +{plan.leads.added} ~{plan.leads.advanced}, "
        f"sessions +{plan.sessions.added} r{plan.sessions.replaced}, "
        f"pins +{plan.pins.added} r{plan.pins.replaced}"
    )
    _audit("data.restore", "", summary, reason)
    raise typer.Exit(0)
