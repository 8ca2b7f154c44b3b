"""`create_app(settings)`: the engine's Litestar app (used alone, or mounted by the gateway)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from litestar import Litestar, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from newchat.engine import Engine, build_engine, open_redis
from newchat.logs import configure_logging, get_logger
from newchat.metrics import Metrics
from newchat.middleware import performance_middleware
from newchat.settings import Settings
from newchat.web import EXCEPTION_HANDLERS, ROUTES

_log = get_logger("newchat.app")


def create_app(
    settings: Settings,
    *,
    redis: Redis | None = None,
    http: httpx.AsyncClient | None = None,
    configure_logs: bool = True,
) -> Litestar:
    """An app whose clients open on startup and close on shutdown (unless passed in)."""
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
        own_redis = redis is None
        own_http = http is None
        redis_client = redis or open_redis(settings)
        http_client = http or httpx.AsyncClient(timeout=10.0)
        app.state.engine = build_engine(settings, redis_client, http_client, metrics)
        try:
            yield
        finally:
            if own_http:
                await http_client.aclose()
            if own_redis:
                await redis_client.aclose()

    @get("/metrics", include_in_schema=False)
    async def prometheus_metrics(state: State) -> Response[bytes]:
        engine: Engine = state.engine
        return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Litestar(
        route_handlers=[*ROUTES, prometheus_metrics],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[performance_middleware(metrics)],
        request_max_body_size=settings.server.max_body_bytes,
        openapi_config=None,
        logging_config=None,
    )
