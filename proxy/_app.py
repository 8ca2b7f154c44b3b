"""`create_gateway_app(settings, gateway_settings)`: the gateway nginx sends chat traffic to.

Routes: `/api/chat` (routed new or legacy), `/api/chat/route` (split mode's route hint),
`/api/cron/process-leads` (the new engine's lead queue), `/healthz`, `/readyz`, `/metrics`.
The services (`GatewayServices`) open in the lifespan, in the server's event loop; until they
have, `/api/chat` and the cron path answer 503 `starting`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.exceptions import HTTPException
from litestar.handlers import asgi
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from common import StoreUnavailable, configure_logging, flush_logs, get_logger
from newchat import CRON_PATH, Metrics, Settings
from proxy._errors import ClientGone, RequestRejected, UpstreamError
from proxy._gateway import (
    ChatGateway,
    answered_itself,
    closing,
    error_reply,
    read_body,
    read_visitor,
    send_reply,
)
from proxy._metrics import GatewayMetrics
from proxy._readiness import readiness
from proxy._route_hint import ROUTE_HINT_PATH
from proxy._server_protocol import OVERLOADED_DETAIL
from proxy._services import GatewayServices, HttpFactory, provide_gateway_services
from proxy._settings import GatewaySettings
from proxy._upstream import ForwardRequest

_log = get_logger("proxy.app")
_json = msgspec.json.Encoder()
_STARTING = error_reply(503, "starting", "the gateway is starting")
_OVERLOADED = error_reply(503, "overloaded", OVERLOADED_DETAIL)


def _json_response(body: object, status: int = 200) -> Response[bytes]:
    return Response(_json.encode(body), status_code=status, media_type="application/json")


class GatewayApp:
    """The ASGI app servers run. `/api/chat` goes straight to the gateway and the route hint
    straight to its handler; everything else (lifespan, health, metrics, cron, other spellings
    of the path) goes through Litestar.

    Skipping Litestar's router and middleware on the one hot path saves about 30 µs a request,
    a tenth of the legacy hop's cost (docs/benchmarks.md).
    """

    def __init__(
        self,
        settings: Settings,
        gateway: GatewaySettings,
        *,
        http_factory: HttpFactory | None = None,
        configure_logs: bool = True,
    ) -> None:
        self._settings = settings
        self._gateway = gateway
        self._http_factory = http_factory
        self._configure_logs = configure_logs
        self.metrics = Metrics()
        self._gateway_metrics = GatewayMetrics(self.metrics.registry)
        self.services: GatewayServices | None = None
        """Set once the lifespan has opened everything; None before and after."""
        self.litestar = self._litestar()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"] if scope["type"] == "http" else None
        services = self.services
        if path == "/api/chat":
            if services is None:
                started = time.perf_counter()
                await send_reply(send, scope, _STARTING, None)
                answered_itself(self._gateway_metrics, scope, 503, "starting", started)
            else:
                await self._chat(services.chat, scope, receive, send)
        elif path == ROUTE_HINT_PATH and services is not None:
            await services.route_hint(scope, receive, send)
        else:
            await self.litestar(scope, receive, send)

    @property
    def header_timeout_s(self) -> float:
        return self._settings.server.read_timeout_seconds

    def answered_before_app(self, status: int, reason: str, started: float) -> None:
        """Counts an answer the server protocol made before any request reached the app
        (`proxy._server_protocol`: malformed HTTP, oversized or slow headers)."""
        answered_itself(self._gateway_metrics, {"method": "-"}, status, reason, started)

    async def overloaded(self, scope: Any, receive: Any, send: Any) -> None:
        """The answer past the server's connection limit: the contract's JSON 503, counted."""
        started = time.perf_counter()
        await send_reply(send, scope, _OVERLOADED, None, ((b"connection", b"close"),))
        answered_itself(self._gateway_metrics, scope, 503, "overloaded", started)

    async def _chat(self, gateway: ChatGateway, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await gateway(scope, receive, send)
        except Exception:
            _log.exception("Unhandled error in the chat gateway", path=scope["path"])
            reply = error_reply(500, "internal_error", "unexpected error; it has been logged")
            with contextlib.suppress(Exception):  # fails if the reply had already started
                await send_reply(send, scope, reply, None)
            answered_itself(self._gateway_metrics, scope, 500, "internal_error", started)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: Litestar) -> AsyncIterator[None]:
        if self._configure_logs:
            configure_logging(self._settings.log)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(flush_logs)  # last, once everything has logged its shutdown
            self.services = await provide_gateway_services(
                self._settings,
                self._gateway,
                stack,
                metrics=self.metrics,
                gateway_metrics=self._gateway_metrics,
                http_factory=self._http_factory,
            )
            stack.callback(setattr, self, "services", None)  # first: stop routing to them
            _log.info(
                "Gateway started",
                instance=self.services.instance_id,
                legacy=self._gateway.legacy.url,
                new_engine=self._gateway.new_chat_url or "in-process",
                flag_version=self.services.flags.snapshot.version,
            )
            yield

    def _litestar(self) -> Litestar:
        app = self

        @asgi(CRON_PATH, is_mount=False, copy_scope=False)
        async def cron(scope: Any, receive: Any, send: Any) -> None:
            await app._cron(scope, receive, send)

        @get("/healthz", include_in_schema=False)
        async def healthz() -> Response[bytes]:
            return _json_response({"status": "alive"})

        @get("/readyz", include_in_schema=False)
        async def readyz() -> Response[bytes]:
            services = app.services
            if services is None:
                return _json_response({"status": "starting"}, 503)
            report = await readiness(
                services.flags, services.redis, services.settings.redis.url, services.legacy
            )
            return _json_response(report, 503 if report.status == "down" else 200)

        @get("/metrics", include_in_schema=False)
        async def prometheus_metrics() -> Response[bytes]:
            if app.services is not None:
                await _scrape_time_gauges(app.services)
            if app._gateway.metrics_dir:  # every worker's, summed (multiprocess mode)
                registry = CollectorRegistry()
                MultiProcessCollector(registry, path=app._gateway.metrics_dir)  # type: ignore[no-untyped-call]
                body = generate_latest(registry)
            else:
                body = generate_latest(app.metrics.registry)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        return Litestar(
            route_handlers=[cron, healthz, readyz, prometheus_metrics],
            lifespan=[self._lifespan],
            exception_handlers={HTTPException: _http_error},
            openapi_config=None,
            logging_config=None,
        )

    async def _cron(self, scope: Any, receive: Any, send: Any) -> None:
        """The lead queue belongs to the new engine: its cron endpoint is passed there unrouted."""
        services = self.services
        if services is None:
            await send_reply(send, scope, _STARTING, "new")
            return
        config = services.chat.config
        try:
            body = await read_body(
                scope, receive, config.max_body_bytes, self._settings.server.read_timeout_seconds
            )
            visitor = read_visitor(scope, config.trusted_proxies, ())
            request = ForwardRequest(
                scope["method"],
                scope["query_string"],
                scope["headers"],
                body,
                visitor,
                CRON_PATH,
            )
            reply = await services.new.send(request)
        except RequestRejected as exc:
            await send_reply(send, scope, error_reply(exc.status, exc.code, exc.detail), "new",
                             closing(exc))  # fmt: skip
            return
        except UpstreamError as exc:
            reply = error_reply(502, f"new_chat_{exc.kind}", "the new chat engine did not answer")
        except ClientGone:
            return
        await send_reply(send, scope, reply, "new")


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own refusals (unknown path, wrong method) in the contract's error shape."""
    body = {"error": "http_error", "detail": exc.detail}
    return Response(
        _json.encode(body),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )


async def _scrape_time_gauges(services: GatewayServices) -> None:
    """Flag, Unleash and lead-queue gauges, read when Prometheus scrapes (the backlog alert
    reads the queue depth); the queue is skipped when Redis is down."""
    metrics = services.gateway_metrics
    status = services.flags.watcher.status()
    metrics.flags_redis_up.set(1 if status.redis_ok else 0)
    if services.flags.unleash is not None:
        metrics.unleash_up.set(1 if services.flags.unleash.status().reachable else 0)
    routing = services.flags.effective()
    new_share = routing.new_chat_percent if routing.new_chat_enabled else 0
    metrics.routing_percent.labels(share="new_chat").set(new_share)
    metrics.routing_percent.labels(share="shadow").set(routing.shadow_percent)
    for source in ("env+redis", "unleash", "unleash-cache", "bootstrap"):
        metrics.routing_source.labels(source=source).set(1 if source == routing.source else 0)
    if services.engine is None:
        return
    try:
        queue = await services.engine.queue.status()
    except StoreUnavailable:  # Redis down: the gauges keep their last values
        return
    depth = {
        "queued": queue.queued,
        "processing": queue.processing,
        "stuck": queue.stuck,
        "retry": queue.retry_scheduled,
        "failed": queue.failed,
    }
    for state, count in depth.items():
        services.metrics.queue_depth.labels(state=state).set(count)


def create_gateway_app(
    settings: Settings,
    gateway: GatewaySettings,
    *,
    http_factory: HttpFactory | None = None,
    configure_logs: bool = True,
) -> GatewayApp:
    """`http_factory` builds the in-process engine's client for OpenAI/LeadProsper (tests: respx)."""
    return GatewayApp(settings, gateway, http_factory=http_factory, configure_logs=configure_logs)
