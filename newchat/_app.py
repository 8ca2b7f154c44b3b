"""`create_app(settings)`: the engine alone over HTTP (`chatctl serve --engine-only`, a remote
`NEW_CHAT_URL` for gateways). The gateway does not mount this app: it calls the same endpoints
in-process (`newchat._endpoints`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
from litestar import Litestar
from litestar.datastructures import State

from common import configure_logging, flush_logs, get_logger
from newchat._metrics import Metrics
from newchat._middleware import performance_middleware
from newchat._services import provide_http_client, provide_redis, provide_services
from newchat._settings import Settings, shadow_key
from newchat._web import EXCEPTION_HANDLERS, ROUTES

_log = get_logger("newchat.app")


def create_app(
    settings: Settings,
    *,
    http_factory: Callable[[], httpx.AsyncClient] | None = None,
    configure_logs: bool = True,
) -> Litestar:
    """An app whose clients open on startup and close on shutdown, in the server's event loop.

    `http_factory` builds the client for services outside the machine (tests pass one backed
    by respx); by default a pooled httpx client over aiohttp.
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
        redis = provide_redis(settings)
        try:
            async with (http_factory or provide_http_client)() as http:
                app.state.services = provide_services(settings, redis, http, metrics)
                yield
        finally:
            await redis.aclose()
            flush_logs()

    return Litestar(
        route_handlers=ROUTES,
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[performance_middleware(metrics)],
        request_max_body_size=settings.server.max_body_bytes,
        state=State({"shadow_key": shadow_key(settings.session)}),
        openapi_config=None,
        logging_config=None,
    )
