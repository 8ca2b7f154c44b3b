"""`chatctl rollback flags|full`, `chatctl backup create|verify|restore`, `chatctl nginx render`.

Every command that changes something has `--dry-run` (prints the plan, changes nothing), prints
each step, writes flag changes to the audit log, and exits 0 only when its verification passed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import msgspec
import typer
from redis.asyncio import Redis

from flags import FlagStore, wait_for_version
from newchat.cli_support import default_actor, with_redis
from rollback import backup
from rollback.full import NginxTarget, switch
from rollback.nginx_config import MODES, ConfigError, Mode, SiteConfig, mode_of, nginx_test, render

T = TypeVar("T")
rollback_app = typer.Typer(help="Scripted, verified rollback.", no_args_is_help=True)
backup_app = typer.Typer(help="Back up and restore sessions and lead keys.", no_args_is_help=True)
nginx_app = typer.Typer(help="The site's nginx config.", no_args_is_help=True)
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")]


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


@rollback_app.command("flags")
def rollback_flags(
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
    drain: Annotated[
        bool, typer.Option("--drain", help="Let conversations already on the new engine finish.")
    ] = False,
    deadline: Annotated[float, typer.Option(help="Seconds for every gateway to apply it.")] = 5.0,
    dry_run: DryRun = False,
) -> None:
    """Step 1: new chat off at run time (optionally draining), verified on every gateway."""
    actor = default_actor()

    async def run(redis: Redis) -> int:
        typer.echo(f"plan: enable_new_chat=false, drain={str(drain).lower()}; audited as {actor}; "
                   f"verify every live gateway within {deadline:g}s")  # fmt: skip
        if dry_run:
            typer.echo("dry run: nothing changed")
            return 0
        store = FlagStore(redis)
        await store.set("drain", drain, actor=actor, reason=reason, source="rollback")
        change = await store.set(
            "enable_new_chat", False, actor=actor, reason=reason, source="rollback"
        )
        typer.echo(f"flag version {change.version}: new chat off (drain {str(drain).lower()})")
        instances, behind = await wait_for_version(redis, change.version, deadline)
        for report in instances:
            state = "applied" if report.version >= change.version else "BEHIND"
            typer.echo(f"  gateway {report.instance}: {state} (v{report.version})")
        unleash_ok = _unleash_off()
        if behind:
            typer.echo(f"VERIFICATION FAILED: {len(behind)} gateway(s) behind", err=True)
            return 1
        typer.echo(f"verified: {len(instances)} gateway(s) on version {change.version}")
        return 0 if unleash_ok else 1

    raise typer.Exit(with_redis(run))


def _unleash_off() -> bool:
    """With UNLEASH_URL and UNLEASH_ADMIN_TOKEN, also switch the rollout toggle off in Unleash
    (Admin API), so the next gateway start does not read it as on. True when done or not used."""
    base, token = os.environ.get("UNLEASH_URL", ""), os.environ.get("UNLEASH_ADMIN_TOKEN", "")
    if not base:
        return True
    toggle = os.environ.get("UNLEASH_TOGGLE") or "new-chat"
    if not token:
        typer.echo(f"note: UNLEASH_ADMIN_TOKEN unset: switch `{toggle}` off in Unleash by hand "
                   "(the gateways' Redis master switch already wins)")  # fmt: skip
        return True
    project = os.environ.get("UNLEASH_PROJECT") or "default"
    environment = os.environ.get("UNLEASH_ENVIRONMENT") or "production"
    url = (f"{base.rstrip('/')}/admin/projects/{project}/features/{toggle}"
           f"/environments/{environment}/off")  # fmt: skip
    try:
        response = httpx.post(url, headers={"Authorization": token}, timeout=10)
    except httpx.HTTPError as exc:
        typer.echo(f"FAILED to switch `{toggle}` off in Unleash: {type(exc).__name__}", err=True)
        return False
    if response.status_code >= 300:
        typer.echo(f"FAILED to switch `{toggle}` off in Unleash: HTTP {response.status_code}",
                   err=True)  # fmt: skip
        return False
    typer.echo(f"Unleash: `{toggle}` off in {project}/{environment}")
    return True


def _target(
    site_file: str | None, gateway: str | None, legacy: str | None, verify_url: str | None
) -> NginxTarget:
    env = os.environ.get
    return NginxTarget(
        site_file=site_file or env("NGINX_SITE_FILE", "/etc/nginx/sites-available/chat-system"),
        nginx_conf=env("NGINX_CONF", ""),
        reload_command=env("NGINX_RELOAD_COMMAND", ""),
        verify_url=verify_url or env("NGINX_VERIFY_URL", "http://127.0.0.1/api/chat"),
        site=SiteConfig(
            gateway=gateway or env("GATEWAY_UPSTREAM", "127.0.0.1:3000"),
            legacy=legacy or env("LEGACY_UPSTREAM", "127.0.0.1:8080"),
            listen=env("NGINX_LISTEN", "80"),
            server_name=env("NGINX_SERVER_NAME", "_"),
            chat_log=env("NGINX_CHAT_LOG", "/var/log/nginx/chat-split.log"),
            access_log=env("NGINX_ACCESS_LOG", "/var/log/nginx/access.log"),
        ),
    )


SiteFile = Annotated[str | None, typer.Option(help="Default: $NGINX_SITE_FILE.")]
GatewayOpt = Annotated[str | None, typer.Option(help="Gateway host:port ($GATEWAY_UPSTREAM).")]
LegacyOpt = Annotated[str | None, typer.Option(help="Legacy host:port ($LEGACY_UPSTREAM).")]


@rollback_app.command("full")
def rollback_full(
    undo: Annotated[bool, typer.Option("--undo", help="Back through the gateway.")] = False,
    site_file: SiteFile = None,
    gateway: GatewayOpt = None,
    legacy: LegacyOpt = None,
    verify_url: Annotated[str | None, typer.Option(help="Default: $NGINX_VERIFY_URL.")] = None,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    dry_run: DryRun = False,
) -> None:
    """Step 2: nginx sends /api/chat straight to legacy PHP (`--undo` goes back to the mode the
    site was in before, gateway or split)."""
    try:
        target = _target(site_file, gateway, legacy, verify_url)
        old = _site_mode(Path(target.site_file)) or "unknown"
        mode: Mode = _mode_before_rollback(Path(target.site_file)) if undo else "legacy"
        passed = switch(mode, target, dry_run=dry_run, say=typer.echo)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not dry_run:
        _audit("nginx./api/chat", old, mode if passed else f"{mode} (verification failed)", reason)
    raise typer.Exit(0 if passed else 1)


def _site_mode(path: Path) -> Mode | None:
    return mode_of(path.read_text()) if path.exists() else None


def _mode_before_rollback(site_file: Path) -> Mode:
    """The mode kept in `<site>.previous` by the rollback, when it routed through the gateway."""
    before = _site_mode(site_file.with_name(site_file.name + ".previous"))
    return before if before in ("gateway", "split") else "gateway"


@nginx_app.command("render")
def nginx_render(
    mode: Annotated[str, typer.Option(help="gateway, split or legacy.")] = "gateway",
    out: Annotated[Path | None, typer.Option(help="Write here (default: print).")] = None,
    gateway: GatewayOpt = None,
    legacy: LegacyOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Run nginx -t ($NGINX_CONF).")] = False,
) -> None:
    """Render the site config for the given ports and mode (no hand edits)."""
    if mode not in MODES:
        typer.echo("error: --mode must be gateway, split or legacy", err=True)
        raise typer.Exit(2)
    try:
        text = render(mode, _target(None, gateway, legacy, None).site)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    typer.echo(f"wrote {out}")
    if check:
        ok, output = nginx_test(os.environ.get("NGINX_CONF") or None)
        typer.echo(f"nginx -t: {'ok' if ok else 'FAILED'} {output}")
        raise typer.Exit(0 if ok else 1)


@backup_app.command("create")
def backup_create(
    out: Annotated[Path | None, typer.Option(help="Default: backups/chat-<time>.backup.")] = None,
    dry_run: DryRun = False,
) -> None:
    """Snapshot sessions, lead keys and routing pins with their TTLs (file mode 0600)."""
    path = out or Path("backups") / time.strftime("chat-%Y%m%d-%H%M%S.backup")

    async def run(redis: Redis) -> int:
        if dry_run:
            typer.echo(f"dry run: would back up {', '.join(backup.PATTERNS)} to {path}")
            return 0
        header = await backup.create(redis, path)
        typer.echo(f"backed up {header.keys} keys to {path} (sha256 {header.sha256[:16]}...)")
        _, entries = backup.read(path)  # verified as written
        typer.echo(f"verified: {len(entries)} keys readable, checksum ok")
        return 0

    raise typer.Exit(with_redis(run))


@backup_app.command("verify")
def backup_verify(file: Annotated[Path, typer.Argument(help="A backup file.")]) -> None:
    """Check a backup file: format, checksum, every entry."""
    try:
        header, _ = backup.read(file)
    except backup.BackupError as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from None
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(header.created_at))
    typer.echo(f"ok: {header.keys} keys, created {created}, checksum matches")


@backup_app.command("restore")
def backup_restore(
    file: Annotated[Path, typer.Argument(help="A backup file.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite keys that exist now (live data).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    dry_run: DryRun = False,
) -> None:
    """Restore a backup (values and TTLs). Refuses to overwrite live keys without --replace."""
    try:
        _, entries = backup.read(file)
    except backup.BackupError as exc:
        typer.echo(f"INVALID: {exc}; nothing was restored", err=True)
        raise typer.Exit(1) from None

    async def run(redis: Redis) -> backup.RestoreReport:
        return await backup.restore(redis, entries, replace=replace, dry_run=dry_run)

    report = with_redis(run)
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
    elif dry_run:
        typer.echo(f"dry run: {report.keys} keys; {len(report.conflicts)} exist now "
                   f"({'would be replaced' if replace else 'would block the restore'})")  # fmt: skip
    elif not report.applied:
        typer.echo(f"REFUSED: {len(report.conflicts)} of {report.keys} keys exist now (e.g. "
                   f"{', '.join(report.conflicts[:3])}); rerun with --replace to overwrite them. "
                   "Nothing was changed.", err=True)  # fmt: skip
    else:
        typer.echo(f"restored {report.restored} keys ({len(report.conflicts)} replaced)")
        _audit("data.restore", "", f"{file.name}: {report.restored} keys", reason)
    raise typer.Exit(0 if dry_run or report.applied else 1)


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
    dry_run: DryRun = False,
) -> None:
    """Watch the new engine's error rate and p95 on every gateway; switch it off when critical."""
    from rollback.guardian import Guardian, GuardSettings  # noqa: PLC0415

    settings = GuardSettings(window, min_samples, max_error_rate, max_p95, cooldown, interval)
    typer.echo(f"guarding: trip when error rate > {max_error_rate:.0%} or p95 > {max_p95:g}s over "
               f"{window:g}s with >= {min_samples} requests{' (dry run)' if dry_run else ''}")  # fmt: skip

    async def run(redis: Redis) -> int:
        guardian = Guardian(redis, settings, dry_run=dry_run, say=typer.echo)
        return await guardian.run(stop_after_trip=stop_after_trip)

    raise typer.Exit(with_redis(run))
