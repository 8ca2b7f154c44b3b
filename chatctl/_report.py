"""`chatctl report performance`: the log against the runbook's targets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer

from chatctl._support import JsonOpt, fail, settings_or_exit, shown
from common import parse_duration
from rollback import performance_report_from_files

report_app = typer.Typer(help="Reports for operators.", no_args_is_help=True)


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
    settings = settings_or_exit()
    paths = log or [Path(settings.log.file)]
    try:
        seconds = parse_duration(since) if since else None
        report = performance_report_from_files(paths, seconds)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    except OSError as exc:
        raise fail(f"cannot read {exc.filename}: {exc.strerror}", 1) from None
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
    else:
        typer.echo(f"{report.requests} chat requests (by backend: {shown(report.per_backend)}); "
                   f"latency ms: {shown(report.latency_ms)}; status: "
                   f"{shown(report.status_classes)}")  # fmt: skip
        typer.echo(f"leads: {shown(report.leads_final)} (pending retry: "
                   f"{report.leads_pending_retry})")  # fmt: skip
        for target in report.targets:
            state = "-" if target.met is None else "ok" if target.met else "MISSED"
            typer.echo(f"  {target.name:<17} {shown(target.value):>8}  target {target.limit:g}  "
                       f"{state}")  # fmt: skip
        typer.echo(f"verdict: {report.verdict}")
    raise typer.Exit(1 if report.verdict == "targets missed" else 0)
