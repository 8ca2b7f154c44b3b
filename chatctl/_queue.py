"""`chatctl queue status|retry-failed|requeue-stuck`: inspect and repair the lead queue."""

from __future__ import annotations

from typing import Annotated

import typer

from chatctl._support import (
    Changes,
    DryRunOpt,
    JsonOpt,
    emit,
    quiet_logs,
    settings_or_exit,
    with_services,
)
from newchat import Services
from newchat.leads import QueueStatus

queue_app = typer.Typer(help="Inspect and repair the lead queue.", no_args_is_help=True)


@queue_app.command("status")
def queue_status(as_json: JsonOpt = False) -> None:
    """Counts per queue state (runbook: llen lead_queue, hlen lead_processing, hlen lead_failed)."""
    settings = settings_or_exit()
    quiet_logs(settings)

    async def run(services: Services) -> QueueStatus:
        return await services.queue.status()

    emit(with_services(settings, run), as_json)


@queue_app.command("retry-failed")
def retry_failed(
    lead_id: Annotated[str | None, typer.Option("--id", help="Only this lead.")] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Move failed leads back to the queue with their attempts reset (exit 1 when `--id` names
    no failed lead)."""
    settings = settings_or_exit()
    quiet_logs(settings)
    changes = Changes()

    async def run(services: Services) -> int:
        if dry_run:
            chosen = [i for i in await services.queue.failed_ids() if lead_id in (None, i)]
            typer.echo(f"dry run: would re-queue {len(chosen)} failed lead(s): {', '.join(chosen)}")
            return 0 if chosen or lead_id is None else 1
        moved = await services.queue.retry_failed(lead_id)
        changes.record(f"re-queued {moved} failed lead(s)")
        typer.echo(f"re-queued {moved} failed lead(s)")
        return 0 if moved or lead_id is None else 1

    raise typer.Exit(with_services(settings, run, changes=changes))


@queue_app.command("requeue-stuck")
def requeue_stuck(
    older_than: Annotated[
        float | None,
        typer.Option(min=0, help="Seconds since claim (default: the visibility timeout)."),
    ] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Return leads claimed by a dead worker to the queue."""
    settings = settings_or_exit()
    quiet_logs(settings)
    changes = Changes()

    async def run(services: Services) -> int:
        if dry_run:
            status = await services.queue.status()
            typer.echo(f"dry run: {status.stuck} lead(s) past the visibility timeout would move")
            return 0
        moved = await services.queue.requeue_stuck(older_than)
        changes.record(f"re-queued {moved} stuck lead(s)")
        typer.echo(f"re-queued {moved} stuck lead(s)")
        return 0

    raise typer.Exit(with_services(settings, run, changes=changes))
