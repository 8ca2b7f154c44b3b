"""`chatctl`: the operators' CLI. Commands reuse the engine's services, as HTTP requests do.

Exit status: 0 on verified success, 1 when a check or an operation failed, 2 on bad usage.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import msgspec
import typer
from redis.exceptions import RedisError

from flags.cli import flags_app
from newchat import keys
from newchat.engine import Engine, running_engine
from newchat.health import HealthReport, health_report, redacted_url
from newchat.logs import configure_logging
from newchat.redis_values import as_text
from newchat.settings import LogSettings, Settings, SettingsError, load_settings
from proxy.cli import shadow_app
from rollback.cli import backup_app, guard, nginx_app, rollback_app

T = TypeVar("T")

app = typer.Typer(
    help="Operate the chat migration: engine, worker, queue, health.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
queue_app = typer.Typer(help="Inspect and repair the lead queue.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
app.add_typer(flags_app, name="flags")
app.add_typer(shadow_app, name="shadow")
app.add_typer(rollback_app, name="rollback")
app.add_typer(backup_app, name="backup")
app.add_typer(nginx_app, name="nginx")
app.command("guard")(guard)  # also `chatctl rollback guard`

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
]


def settings_or_exit() -> Settings:
    try:
        return load_settings(os.environ)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def quiet_logs(settings: Settings) -> None:
    """CLI output is for people (or --json); log lines go to the log file only."""
    configure_logging(LogSettings(file=settings.log.file, level=settings.log.level, stdout=False))


def with_engine(settings: Settings, action: Callable[[Engine], Awaitable[T]]) -> T:
    async def run() -> T:
        async with running_engine(settings) as engine:
            return await action(engine)

    try:
        return asyncio.run(run())
    except (RedisError, OSError) as exc:
        typer.echo(
            f"error: Redis unreachable at {redacted_url(settings.redis.url)} "
            f"({type(exc).__name__}); start redis-server or fix REDIS_URL",
            err=True,
        )
        raise typer.Exit(1) from None


def emit(data: object, as_json: bool) -> None:
    if as_json:
        typer.echo(msgspec.json.encode(data).decode())
        return
    for key, value in msgspec.to_builtins(data).items():
        typer.echo(f"{key:>26}: {value}")


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 3000).")] = None,
    host: Annotated[
        str | None, typer.Option(help="Interface (default: HOST or 127.0.0.1).")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Gateway worker processes (they share only Redis).")
    ] = 1,
    engine_only: Annotated[
        bool,
        typer.Option(
            "--engine-only", help="Serve the new engine alone (a remote NEW_CHAT_URL for gateways)."
        ),
    ] = False,
) -> None:
    """Run the gateway (new engine in-process, legacy at LEGACY_URL) in the foreground."""
    import uvicorn  # noqa: PLC0415 - the web stack loads only for the commands that serve

    settings = settings_or_exit()
    server = {
        "host": host or settings.server.host,
        "port": port or settings.server.port,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "server_header": False,  # the backend's Server and Date headers pass through unchanged
        "date_header": False,
        "proxy_headers": False,  # X-Forwarded-For is judged by TRUSTED_PROXIES, not rewritten
    }
    if engine_only:
        from newchat.app import create_app  # noqa: PLC0415

        uvicorn.run(create_app(settings), **server)  # type: ignore[arg-type]
        return
    from proxy import create_gateway_app, load_gateway_settings  # noqa: PLC0415

    try:
        gateway = load_gateway_settings(os.environ, settings)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if workers > 1:
        if settings.session.secret_is_ephemeral:
            typer.echo("error: --workers needs SESSION_SECRET (shared by every worker)", err=True)
            raise typer.Exit(2)
        uvicorn.run("proxy.asgi:app", factory=True, workers=workers, **server)  # type: ignore[arg-type]
        return
    uvicorn.run(create_gateway_app(settings, gateway), **server)  # type: ignore[arg-type]


@app.command()
def worker(
    burst: Annotated[bool, typer.Option("--burst", help="Drain the queue, then exit.")] = False,
) -> None:
    """Run the lead worker: submit queued leads to LeadProsper."""
    settings = settings_or_exit()
    configure_logging(settings.log)

    async def run(engine: Engine) -> int:
        lead_worker = engine.worker()
        lead_worker.install_signal_handlers()
        summary = await lead_worker.run(burst=burst)
        typer.echo(msgspec.json.encode(summary).decode())
        return 0

    raise typer.Exit(with_engine(settings, run))


@app.command()
def detect() -> None:
    """Classify messages: one per stdin line in, one JSON object per line out."""
    settings = settings_or_exit()
    quiet_logs(settings)

    async def run(engine: Engine) -> int:
        for line in sys.stdin:
            text = line.strip()
            if not text:
                continue
            result = await engine.detector.detect(text)
            out: dict[str, object] = {
                "category": result.category,
                "confidence": result.confidence,
                "method": result.method,
            }
            if result.fallback_reason and result.fallback_reason != "not_configured":
                out["fallback_reason"] = result.fallback_reason
            typer.echo(msgspec.json.encode(out).decode())
        return 0

    raise typer.Exit(with_engine(settings, run))


@app.command()
def health(as_json: JsonOpt = False) -> None:
    """The runbook's health checks in one command (gateway, Redis, legacy, OpenAI, LeadProsper,
    queue, worker heartbeat); exit 1 when something is down or degraded."""
    from newchat.ops_health import operator_checks  # noqa: PLC0415

    settings = settings_or_exit()
    quiet_logs(settings)

    async def run(engine: Engine) -> HealthReport:
        report = await health_report(engine)
        async with httpx.AsyncClient(timeout=3.0) as client:
            report.checks.update(await operator_checks(settings, client))
        report.failing = [name for name, check in report.checks.items() if not check.ok]
        if any(report.checks[name].critical for name in report.failing):
            report.status = "down"
        elif report.failing:
            report.status = "degraded"
        return report

    report = with_engine(settings, run)
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
    else:
        typer.echo(f"status: {report.status}")
        for name, check in report.checks.items():
            mark = "ok  " if check.ok else "FAIL"
            typer.echo(f"  [{mark}] {name}: {check.detail}")
            if check.action and not check.ok:
                typer.echo(f"         -> {check.action}")
        for state, count in report.queue.items():
            typer.echo(f"  queue {state}: {count}")
    raise typer.Exit(0 if report.status == "ok" else 1)


@queue_app.command("status")
def queue_status(as_json: JsonOpt = False) -> None:
    """Counts per queue state (runbook: llen lead_queue, hlen lead_processing, hlen lead_failed)."""
    settings = settings_or_exit()
    quiet_logs(settings)

    async def run(engine: Engine) -> object:
        return await engine.queue.status()

    emit(with_engine(settings, run), as_json)


@queue_app.command("retry-failed")
def retry_failed(
    lead_id: Annotated[str | None, typer.Option("--id", help="Only this lead.")] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Move failed leads back to the queue with their attempts reset."""
    settings = settings_or_exit()
    quiet_logs(settings)

    async def run(engine: Engine) -> int:
        if dry_run:
            ids = [as_text(k) for k in await engine.redis.hkeys(keys.LEAD_FAILED)]
            chosen = [i for i in ids if lead_id in (None, i)]
            typer.echo(f"dry run: would re-queue {len(chosen)} failed lead(s): {', '.join(chosen)}")
            return 0 if chosen or lead_id is None else 1
        moved = await engine.queue.retry_failed(lead_id)
        typer.echo(f"re-queued {moved} failed lead(s)")
        return 0 if moved or lead_id is None else 1

    raise typer.Exit(with_engine(settings, run))


@queue_app.command("requeue-stuck")
def requeue_stuck(
    older_than: Annotated[
        float | None, typer.Option(help="Seconds since claim (default: the visibility timeout).")
    ] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Return leads claimed by a dead worker to the queue."""
    settings = settings_or_exit()
    quiet_logs(settings)

    async def run(engine: Engine) -> int:
        if dry_run:
            status = await engine.queue.status()
            typer.echo(f"dry run: {status.stuck} lead(s) past the visibility timeout would move")
            return 0
        moved = await engine.queue.requeue_stuck(older_than)
        typer.echo(f"re-queued {moved} stuck lead(s)")
        return 0

    raise typer.Exit(with_engine(settings, run))


report_app = typer.Typer(help="Reports for operators.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("performance")
def report_performance(
    log: Annotated[
        list[Path] | None,
        typer.Option(
            help="Default: LOG_FILE. Repeat it to add nginx's split-mode chat log "
            "(NGINX_CHAT_LOG), whose turns never reach the gateway's log."
        ),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only the last DURATION (24h, 7d).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Latency percentiles, error rates and lead submission rate from the log, against the
    runbook's targets; exit 1 when a target is missed."""
    from newchat.performance_report import from_files  # noqa: PLC0415
    from proxy._shadow_report import parse_duration  # noqa: PLC0415

    settings = settings_or_exit()
    paths = log or [Path(settings.log.file)]
    try:
        seconds = parse_duration(since) if since else None
        report = from_files(paths, seconds)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: cannot read {exc.filename}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
    else:
        typer.echo(f"{report.requests} chat requests ({report.per_backend}); latency ms "
                   f"{report.latency_ms}; status {report.status_classes}")  # fmt: skip
        typer.echo(f"leads: {report.leads_final} (pending retry: {report.leads_pending_retry})")
        for target in report.targets:
            state = "-" if target.met is None else "ok" if target.met else "MISSED"
            typer.echo(f"  {target.name:<17} {target.value!s:>8}  target {target.limit:g}  {state}")
        typer.echo(f"verdict: {report.verdict}")
    raise typer.Exit(1 if report.verdict == "targets missed" else 0)


@app.command()
def stack() -> None:
    """Run the whole stack in the foreground (what `make run` does); Ctrl-C stops it all."""
    from newchat.stack import run_stack  # noqa: PLC0415 - only this command needs process control

    raise typer.Exit(run_stack(os.environ))


def main() -> None:
    app()
