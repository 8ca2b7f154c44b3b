"""`chatctl replay` and `chatctl record`: evidence before live traffic. Recorded (or exported)
legacy conversations are run through the new engine in shadow mode and compared by the live
shadow's rules; recordings are listed, exported and erased."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from redis.asyncio import Redis

from chatctl._shadow import print_report, thresholds
from chatctl._support import (
    JsonOpt,
    environment,
    fail,
    loaded,
    quiet_logs,
    settings_or_exit,
    with_redis,
    with_services,
)
from common import ValueDigest, keys, parse_duration, write_private
from newchat import Services, replay_services, value_key
from proxy import (
    EngineUpstream,
    Experiment,
    ImportTally,
    Replayer,
    ShadowReport,
    Transcript,
    TranscriptError,
    TranscriptRecorder,
    build_report,
    from_php_sessions,
    load_recording_settings,
    load_rules,
    read_transcripts,
    render_html,
    write_transcripts,
)

record_app = typer.Typer(
    help="Recorded legacy conversations (record_percent): list, export, erase, import.",
    no_args_is_help=True,
)
SinceOpt = Annotated[
    str | None, typer.Option(help="Only conversations recorded in the last DURATION (2h, 7d).")
]


def _recorder(redis: Redis) -> TranscriptRecorder:
    settings = settings_or_exit()
    recording = loaded(lambda environ: load_recording_settings(environ, settings.session.secret))
    return TranscriptRecorder(redis, recording)


def _warn_unreadable(unreadable: int) -> None:
    if unreadable:
        typer.echo(
            f"warning: {unreadable} recorded turn(s) could not be read: another RECORD_KEY "
            "(or SESSION_SECRET) than the gateways', or past RECORD_MAX_AGE; left out",
            err=True,
        )


def _seconds(since: str | None) -> float | None:
    try:
        return parse_duration(since) if since else None
    except ValueError as exc:
        raise fail(str(exc), 2) from None


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Any]:
    """A progress bar on a terminal (stderr), nothing otherwise."""
    if not sys.stderr.isatty() or total < 2:
        yield None
        return
    with typer.progressbar(length=total, label="replaying", file=sys.stderr) as bar:
        yield bar


def replay(
    file: Annotated[
        Path | None, typer.Argument(help="A transcript file (JSON lines; README: Replay).")
    ] = None,
    recorded: Annotated[
        bool, typer.Option("--recorded", help="Replay what the gateways recorded.")
    ] = False,
    since: SinceOpt = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Conversations at once.")] = 8,
    html: Annotated[
        Path | None, typer.Option(help="Also write the report as an HTML page (offline).")
    ] = None,
    min_agreement: Annotated[
        list[str] | None,
        typer.Option(help="FIELD=PERCENT a field must reach (as `shadow report`)."),
    ] = None,
    min_similarity: Annotated[float, typer.Option(help="Median reply similarity needed.")] = 0.5,
    min_turns: Annotated[int, typer.Option(help="Fewer compared turns: not enough data.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Run recorded conversations through the new engine in shadow mode (no `sess:*`, no
    `lead_queue`, no LeadProsper) and print the shadow report for them. Exit 0 when ready for
    more traffic, 1 otherwise, 2 on bad input."""
    if (file is None) == (not recorded):
        raise fail("give a transcript FILE or --recorded (one of them)", 2)
    seconds = _seconds(since)
    limits = thresholds(min_agreement or [])
    settings = settings_or_exit()
    quiet_logs(settings)
    try:
        rules = load_rules(environment().get("SHADOW_RULES") or None)
        transcripts = list(read_transcripts(file)) if file is not None else []
    except (ValueError, TranscriptError) as exc:
        raise fail(str(exc), 2) from None
    if file is not None and not transcripts:
        raise fail(f"{file}: no conversations in it", 2)

    async def run(services: Services) -> tuple[ShadowReport, float]:
        if file is not None:
            found = transcripts
        else:
            found, unreadable = await _recorder(services.redis).load(seconds)
            _warn_unreadable(unreadable)
        experiment = Experiment(
            rules, lambda op, exc: None, digest=ValueDigest(value_key(settings.session))
        )
        replaying = replay_services(services)
        engine = EngineUpstream(replaying, timeout_seconds=10.0)

        async def forget(session_id: str) -> None:
            await services.redis.delete(keys.replay_session(session_id))

        started = time.perf_counter()
        with _progress(len(found)) as bar:
            replayer = Replayer(engine, experiment, concurrency=concurrency, forget=forget,
                                progress=(lambda: bar.update(1)) if bar else None)  # fmt: skip
            results = await replayer.run(found)
        elapsed = time.perf_counter() - started
        report = build_report(
            results, thresholds=limits, min_similarity=min_similarity, min_turns=min_turns
        )
        return report, elapsed

    report, elapsed = with_services(settings, run)
    if html is not None:
        write_private(html, [render_html(report, "Replay report").encode()])
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
    else:
        rate = report.conversations / elapsed if elapsed > 0 else 0.0
        typer.echo(f"replayed {report.conversations} conversations in {elapsed:.1f}s "
                   f"({rate:.1f}/s, {concurrency} at once)")  # fmt: skip
        print_report(report, "replayed")
    raise typer.Exit(0 if report.verdict == "ready for more traffic" else 1)


@record_app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """How many conversations are recorded (the share is the `record_percent` flag)."""

    async def run(redis: Redis) -> int:
        return await _recorder(redis).count()

    count = with_redis(run)
    if as_json:
        typer.echo(msgspec.json.encode({"conversations": count}).decode())
    else:
        typer.echo(f"recorded conversations: {count} (set the share: chatctl flags set "
                   "record_percent N)")  # fmt: skip


@record_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Transcript file to write (0600).")],
    since: SinceOpt = None,
) -> None:
    """Write the recorded conversations as a transcript file (they hold personal data)."""
    seconds = _seconds(since)

    async def run(redis: Redis) -> tuple[list[Transcript], int]:
        return await _recorder(redis).load(seconds)

    found, unreadable = with_redis(run)
    count = write_transcripts(out, found)
    typer.echo(f"wrote {count} conversations to {out}")
    _warn_unreadable(unreadable)
    raise typer.Exit(1 if unreadable else 0)


@record_app.command("erase")
def erase(
    conversation: Annotated[str, typer.Argument(help="A session id, or its 12-hex hash.")],
) -> None:
    """Delete one conversation's recording now (exit 1 when there was none)."""

    async def run(redis: Redis) -> bool:
        return await _recorder(redis).erase(conversation)

    if not with_redis(run):
        typer.echo("no recording of that conversation")
        raise typer.Exit(1)
    typer.echo("erased")


@record_app.command("import-php")
def import_php(
    folder: Annotated[
        Path, typer.Argument(help="The PHP stand-in's sessions folder (LEGACY_DATA_DIR/sessions).")
    ],
    out: Annotated[Path, typer.Option(help="Transcript file to write (0600).")],
) -> None:
    """Turn the PHP stand-in's conversations into a transcript file for `chatctl replay`."""
    if not folder.is_dir():
        raise fail(f"{folder} is not a folder", 2)
    tally = ImportTally()
    count = write_transcripts(out, from_php_sessions(folder, tally))
    typer.echo(f"wrote {count} conversations to {out}")
    if tally.without_log:
        typer.echo(f"skipped {tally.without_log} session(s) without a turn log (older ones)")
    if tally.unreadable:
        shown = ", ".join(tally.unreadable[:5]) + (" ..." if len(tally.unreadable) > 5 else "")
        typer.echo(f"error: {len(tally.unreadable)} file(s) are not stand-in sessions: {shown}",
                   err=True)  # fmt: skip
        raise typer.Exit(1)
