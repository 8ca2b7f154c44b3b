"""`create_app(settings)`: the engine's Litestar app (used alone, or mounted by the gateway)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
from litestar import Litestar, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from newchat.engine import Engine, build_engine, default_http_client, open_redis
from newchat.logs import configure_logging, flush_logs, get_logger
from newchat.metrics import Metrics
from newchat.middleware import performance_middleware
from newchat.settings import Settings
from newchat.web import EXCEPTION_HANDLERS, ROUTES

_log = get_logger("newchat.app")


def create_app(
    settings: Settings,
    *,
    http_factory: Callable[[], httpx.AsyncClient] | None = None,
    configure_logs: bool = True,
) -> Litestar:
    """An app whose clients open on startup and close on shutdown, in the server's event loop.

    `http_factory` builds the client for services outside the machine (tests pass one backed
    by respx); by default a plain pooled httpx client.
    """
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if configure_logs:
            configure_logging(settings.log)
        if settings.session.secret_is_ephemeral:
            _log.warning(
                "SESSION_SECRET not set: cookies will not survive a restart",
                action="set SESSION_SECRET to a long random value shared by all instances",
            )
        redis_client = open_redis(settings)
        http_client = (http_factory or default_http_client)()
        app.state.engine = build_engine(settings, redis_client, http_client, metrics)
        try:
            yield
        finally:
            await http_client.aclose()
            await redis_client.aclose()
            flush_logs()

    @get("/metrics", include_in_schema=False)
    async def prometheus_metrics(state: State) -> Response[bytes]:
        engine: Engine = state.engine
        return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Litestar(
        route_handlers=[*ROUTES, prometheus_metrics],  # same handlers as engine_asgi_app
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[performance_middleware(metrics)],
        request_max_body_size=settings.server.max_body_bytes,
        openapi_config=None,
        logging_config=None,
    )


def engine_asgi_app(settings: Settings) -> Litestar:
    """The engine's chat and cron routes with no lifespan of their own: the gateway owns the
    clients and sets `app.state.engine` before the first request."""
    return Litestar(
        route_handlers=ROUTES,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.server.max_body_bytes,
        openapi_config=None,
        logging_config=None,
    )
