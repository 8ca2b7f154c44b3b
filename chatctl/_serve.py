"""`chatctl serve`, `worker` and `detect`: the processes of the chat, and the classifier by hand."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from chatctl._support import environment, fail, loaded, quiet_logs, settings_or_exit, with_services
from common import configure_logging
from newchat import Services


def _server_options(host: str, port: int, max_connections: int) -> dict[str, Any]:
    """uvicorn as the gateway runs it. httptools (under `GatewayHttpProtocol`, which bounds
    header size and read time and keeps pre-app answers in the JSON contract) and uvloop are
    named, not left to "auto": they are what the benchmarks measured (docs/benchmarks.md)."""
    from proxy import GatewayHttpProtocol  # noqa: PLC0415 - the web stack loads only to serve

    return {
        "host": host,
        "port": port,
        "http": GatewayHttpProtocol,
        "loop": "uvloop",
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "server_header": False,  # the backend's Server and Date headers pass through unchanged
        "date_header": False,
        "proxy_headers": False,  # X-Forwarded-For is judged by TRUSTED_PROXIES, not rewritten
        # an idle keep-alive connection closes after 5 s, after nginx's upstream keepalive_timeout
        # (4 s), so nginx never sends a turn on a connection the gateway is closing
        "timeout_keep_alive": 5,
        # more connections than this get the JSON 503 at once instead of memory
        "limit_concurrency": max_connections,
    }


_METRICS_PREFIX = "chat-gateway-metrics-"


def _sweep_metrics_dirs() -> None:
    """Removes metrics folders of `serve --workers` masters that are gone (one killed with -9
    could not remove its own): each is named after its master's pid."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_METRICS_PREFIX}*-*"):
        pid = folder.name.removeprefix(_METRICS_PREFIX).split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            continue


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
    server = _server_options(
        host or settings.server.host,
        port or settings.server.port,
        settings.server.max_connections,
    )
    if engine_only:
        from newchat import create_app  # noqa: PLC0415

        uvicorn.run(create_app(settings), **server)
        return
    from proxy import create_gateway_app, load_gateway_settings  # noqa: PLC0415

    gateway = loaded(lambda environ: load_gateway_settings(environ, settings))
    if workers > 1:
        if settings.session.secret_is_ephemeral:
            raise fail("--workers needs SESSION_SECRET (shared by every worker)", 2)
        os.environ.update(environment())  # each worker reads it again in `proxy.asgi:app`
        # one metrics folder for all workers (prometheus_client's multiprocess mode): a scrape
        # saw one worker's counters, 19 or 21 of 40 requests, dropping between scrapes
        _sweep_metrics_dirs()
        metrics_dir = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        try:
            uvicorn.run("proxy.asgi:app", factory=True, workers=workers, **server)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return
    uvicorn.run(create_gateway_app(settings, gateway), **server)


def worker(
    burst: Annotated[bool, typer.Option("--burst", help="Drain the queue, then exit.")] = False,
) -> None:
    """Run the lead worker: submit queued leads to LeadProsper."""
    settings = settings_or_exit()
    configure_logging(settings.log)

    async def run(services: Services) -> int:
        lead_worker = services.worker()
        lead_worker.install_signal_handlers()
        summary = await lead_worker.run(burst=burst)
        typer.echo(msgspec.json.encode(summary).decode())
        return 0

    raise typer.Exit(with_services(settings, run))


def detect() -> None:
    """Classify messages: one per stdin line in, one JSON object per line out."""
    settings = settings_or_exit()
    quiet_logs(settings)

    async def run(services: Services) -> int:
        for line in sys.stdin:
            text = line.strip()
            if not text:
                continue
            result = await services.detector.detect(text)
            out: dict[str, object] = {
                "category": result.category,
                "confidence": result.confidence,
                "method": result.method,
            }
            if result.fallback_reason and result.fallback_reason != "not_configured":
                out["fallback_reason"] = result.fallback_reason
            typer.echo(msgspec.json.encode(out).decode())
        return 0

    raise typer.Exit(with_services(settings, run))
