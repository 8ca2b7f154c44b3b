"""The root of `chatctl`: every command group in one Typer app.

Exit status: 0 on verified success, 1 when a check or an operation failed, 2 on bad usage or
settings. A closed stdout (`chatctl flags show | head -1`) ends the command quietly (Click's own
handling, exit 1), never as a reported Redis failure.
"""

from __future__ import annotations

import typer

from chatctl._flags import flags_app
from chatctl._health import health
from chatctl._queue import queue_app
from chatctl._replay import record_app, replay
from chatctl._report import report_app
from chatctl._rollback import backup_app, guard, nginx_app, rollback_app
from chatctl._serve import detect, serve, worker
from chatctl._shadow import shadow_app
from chatctl._stack import stack
from chatctl._support import environment

app = typer.Typer(
    help="Operate the chat migration: gateway, engine, worker, flags, shadow, rollback, health. "
    "In a folder where `make run` is running, its settings (var/stack.env) are used; "
    "explicit environment variables win.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _each_invocation() -> None:
    """Reads the environment afresh for each invocation (tests invoke the app many times in
    one process; a command line is one invocation anyway)."""
    environment.cache_clear()


app.command()(serve)
app.command()(worker)
app.command()(detect)
app.command()(health)
app.command()(stack)
app.command()(replay)
app.command("guard")(guard)  # also `chatctl rollback guard`
app.add_typer(queue_app, name="queue")
app.add_typer(flags_app, name="flags")
app.add_typer(shadow_app, name="shadow")
app.add_typer(record_app, name="record")
app.add_typer(rollback_app, name="rollback")
app.add_typer(backup_app, name="backup")
app.add_typer(nginx_app, name="nginx")
app.add_typer(report_app, name="report")


def main() -> None:
    app()
