"""`create_gateway_app(settings, gateway_settings)`: the gateway nginx sends chat traffic to.

Routes: `/api/chat` (routed new or legacy), `/api/cron/process-leads` (the new engine's lead
queue), `/healthz`, `/readyz`, `/metrics`. Clients (Redis, the legacy pool, the in-process engine
or a remote one, the flag watcher, Unleash) open in the lifespan, in the server's event loop.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
from litestar import Litestar, Response, get
from litestar.handlers import asgi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from flags import Flags, FlagSnapshot, FlagWatcher, UnleashRollout
from newchat.app import engine_asgi_app
from newchat.engine import Engine, build_engine, default_http_client, open_redis
from newchat.logs import configure_logging, flush_logs, get_logger
from newchat.metrics import Metrics
from newchat.settings import Settings
from proxy._compare import load_rules
from proxy._gateway import (
    ChatGateway,
    ClientGone,
    GatewayConfig,
    RequestRejected,
    error_reply,
    read_body,
    send_reply,
)
from proxy._headers import forwarding_headers
from proxy._in_process import InProcessEngine
from proxy._metrics import GatewayMetrics
from proxy._pins import PinStore, TokenSigner
from proxy._pressure import LoopLag
from proxy._readiness import readiness
from proxy._route_hint import ROUTE_HINT_PATH, RouteHint
from proxy._settings import GatewaySettings, UpstreamSettings, derive_secret
from proxy._shadow import ShadowConfig, ShadowMirror
from proxy._stats import StatsPublisher
from proxy._upstream import ForwardRequest, HttpUpstream, Upstream, UpstreamError

_log = get_logger("proxy.app")
_json = msgspec.json.Encoder()
CRON_PATH = "/api/cron/process-leads"


@dataclass
class Runtime:
    """What the lifespan opens and the handlers use; empty until startup completes."""

    metrics: Metrics
    gateway_metrics: GatewayMetrics
    redis: Redis | None = None
    legacy: HttpUpstream | None = None
    new: Upstream | None = None
    flags: Flags | None = None
    gateway: ChatGateway | None = None
    route_hint: RouteHint | None = None
    shadow: ShadowMirror | None = None
    engine: Engine | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)


def _instance_id(configured: str) -> str:
    return configured or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def _json_response(body: object, status: int = 200) -> Response[bytes]:
    return Response(_json.encode(body), status_code=status, media_type="application/json")


def create_gateway_app(
    settings: Settings,
    gateway: GatewaySettings,
    *,
    http_factory: Callable[[], httpx.AsyncClient] | None = None,
    configure_logs: bool = True,
) -> GatewayApp:
    """`http_factory` builds the in-process engine's client for OpenAI/LeadProsper (tests: respx)."""
    runtime = Runtime(metrics := Metrics(), GatewayMetrics(metrics.registry))

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if configure_logs:
            configure_logging(settings.log)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(flush_logs)  # last, once everything has logged its shutdown
            await _open(runtime, settings, gateway, http_factory, stack)
            _log.info(
                "Gateway started",
                instance=runtime.flags.watcher.instance_id if runtime.flags else None,
                legacy=gateway.legacy.url,
                new_engine=gateway.new_chat_url or "in-process",
                flag_version=runtime.flags.snapshot.version if runtime.flags else None,
            )
            yield

    @asgi("/api/chat", is_mount=False, copy_scope=False)
    async def chat(scope: Any, receive: Any, send: Any) -> None:
        if runtime.gateway is None:
            return
        await runtime.gateway(scope, receive, send)

    @asgi(CRON_PATH, is_mount=False, copy_scope=False)
    async def cron(scope: Any, receive: Any, send: Any) -> None:
        await _forward_cron(runtime, scope, receive, send, settings)

    @get("/healthz", include_in_schema=False)
    async def healthz() -> Response[bytes]:
        return _json_response({"status": "alive"})

    @get("/readyz", include_in_schema=False)
    async def readyz() -> Response[bytes]:
        if runtime.flags is None or runtime.redis is None or runtime.legacy is None:
            return _json_response({"status": "starting"}, 503)
        report = await readiness(runtime.flags, runtime.redis, settings.redis.url, runtime.legacy)
        return _json_response(report, 503 if report.status == "down" else 200)

    @get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response[bytes]:
        if runtime.flags is not None:
            status = runtime.flags.watcher.status()
            runtime.gateway_metrics.flags_redis_up.set(1 if status.redis_ok else 0)
            if runtime.flags.unleash is not None:
                up = runtime.flags.unleash.status().reachable
                runtime.gateway_metrics.unleash_up.set(1 if up else 0)
        if runtime.engine is not None:
            await _queue_gauges(runtime.engine)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    litestar = Litestar(
        route_handlers=[chat, cron, healthz, readyz, prometheus_metrics],
        lifespan=[lifespan],
        openapi_config=None,
        logging_config=None,
    )
    return GatewayApp(litestar, runtime)


class GatewayApp:
    """The ASGI app servers run. `/api/chat` goes straight to the gateway; everything else
    (lifespan, health, metrics, cron, other spellings of the path) goes through Litestar.

    Skipping Litestar's router and middleware on the one hot path saves about 30 µs a request,
    a tenth of the legacy hop's cost (README, "Gateway performance").
    """

    def __init__(self, litestar: Litestar, runtime: Runtime) -> None:
        self.litestar = litestar
        self._runtime = runtime

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"] if scope["type"] == "http" else None
        gateway, hint = self._runtime.gateway, self._runtime.route_hint
        if path == "/api/chat" and gateway is not None:
            await self._chat(gateway, scope, receive, send)
        elif path == ROUTE_HINT_PATH and hint is not None:
            await hint(scope, receive, send)
        else:
            await self.litestar(scope, receive, send)

    @staticmethod
    async def _chat(gateway: ChatGateway, scope: Any, receive: Any, send: Any) -> None:
        try:
            await gateway(scope, receive, send)
        except Exception:
            _log.exception("Unhandled error in the chat gateway", path=scope["path"])
            reply = error_reply(500, "internal_error", "unexpected error; it has been logged")
            with contextlib.suppress(Exception):  # fails if the reply had already started
                await send_reply(send, scope, reply, None)


async def _queue_gauges(engine: Engine) -> None:
    """Lead queue depth at scrape time (the backlog alert reads it); skipped when Redis is down."""
    try:
        status = await engine.queue.status()
    except (RedisError, OSError):
        return
    depth = {
        "queued": status.queued,
        "processing": status.processing,
        "stuck": status.stuck,
        "retry": status.retry_scheduled,
        "failed": status.failed,
    }
    for state, count in depth.items():
        engine.metrics.queue_depth.labels(state=state).set(count)


async def _open(
    runtime: Runtime,
    settings: Settings,
    gateway: GatewaySettings,
    http_factory: Callable[[], httpx.AsyncClient] | None,
    stack: contextlib.AsyncExitStack,
) -> None:
    redis = open_redis(settings)
    stack.push_async_callback(redis.aclose)
    legacy = HttpUpstream(gateway.legacy)
    await legacy.start()
    stack.push_async_callback(legacy.close)
    runtime.redis, runtime.legacy = redis, legacy
    runtime.new = await _open_new_engine(runtime, settings, gateway, http_factory, stack)

    def on_change(snapshot: FlagSnapshot) -> None:
        runtime.gateway_metrics.flag_version.set(snapshot.version)

    instance = _instance_id(gateway.instance_id)
    watcher = FlagWatcher(
        redis,
        gateway.flag_defaults,
        kill_switch=gateway.kill_switch,
        instance_id=instance,
        poll_interval=gateway.flag_poll_interval_seconds,
        on_change=on_change,
    )
    await watcher.start()
    stack.push_async_callback(watcher.stop)
    unleash = None
    if gateway.unleash is not None:
        unleash = UnleashRollout(
            gateway.unleash,
            group_id=gateway.group_id,
            bootstrap=watcher.snapshot.values,
            instance_id=instance,
        )
        await unleash.start()
        stack.push_async_callback(unleash.stop)
    runtime.flags = Flags(
        watcher,
        group_id=gateway.group_id,
        shadow_group_id=gateway.unleash.shadow_toggle if gateway.unleash else "new-chat-shadow",
        unleash=unleash,
    )
    pressure = LoopLag(threshold=gateway.shadow.max_loop_lag_seconds)
    await pressure.start()
    stack.push_async_callback(pressure.stop)
    runtime.shadow = ShadowMirror(
        flags=runtime.flags,
        upstreams={"new": runtime.new, "legacy": legacy},
        redis=redis,
        rules=load_rules(gateway.shadow.rules_file or None),
        metrics=runtime.gateway_metrics,
        config=ShadowConfig(
            max_in_flight=gateway.shadow.max_in_flight,
            timeout_seconds=gateway.shadow.timeout_seconds,
            noise_percent=gateway.shadow.noise_percent,
            shadow_key=derive_secret(settings.session.secret, "shadow"),
        ),
        pressure=pressure,
    )
    stack.push_async_callback(runtime.shadow.drain, 5.0)
    runtime.gateway = ChatGateway(
        flags=runtime.flags,
        legacy=legacy,
        new=runtime.new,
        pins=PinStore(redis, gateway.session_ttl_seconds),
        signer=(signer := TokenSigner(gateway.routing_secret)),
        metrics=runtime.gateway_metrics,
        config=GatewayConfig(
            trusted_proxies=settings.server.trusted_proxies,
            max_body_bytes=settings.server.max_body_bytes,
            cookie_secure=gateway.cookie_secure,
            cookie_max_age=gateway.session_ttl_seconds,
        ),
        shadow=runtime.shadow,
    )
    runtime.route_hint = RouteHint(
        flags=runtime.flags, signer=signer, metrics=runtime.gateway_metrics
    )
    publisher = StatsPublisher(redis, instance, runtime.gateway.new_engine_stats)
    await publisher.start()
    stack.push_async_callback(publisher.stop)


async def _open_new_engine(
    runtime: Runtime,
    settings: Settings,
    gateway: GatewaySettings,
    http_factory: Callable[[], httpx.AsyncClient] | None,
    stack: contextlib.AsyncExitStack,
) -> Upstream:
    if gateway.new_chat_url:
        remote = HttpUpstream(
            UpstreamSettings(
                url=gateway.new_chat_url,
                connect_timeout_seconds=gateway.legacy.connect_timeout_seconds,
                read_timeout_seconds=gateway.new_chat_timeout_seconds,
            )
        )
        await remote.start()
        stack.push_async_callback(remote.close)
        return remote
    http = (http_factory or default_http_client)()
    stack.push_async_callback(http.aclose)
    assert runtime.redis is not None  # noqa: S101 - opened just before
    runtime.engine = build_engine(settings, runtime.redis, http, runtime.metrics)
    app = engine_asgi_app(settings)
    app.state.engine = runtime.engine
    return InProcessEngine(runtime.engine, app, gateway.new_chat_timeout_seconds)  # type: ignore[arg-type]


async def _forward_cron(
    runtime: Runtime, scope: Any, receive: Any, send: Any, settings: Settings
) -> None:
    """The lead queue belongs to the new engine: its cron endpoint is forwarded there unrouted."""
    reply = error_reply(503, "starting", "the gateway is starting")
    if runtime.new is not None:
        try:
            body = await read_body(scope, receive, settings.server.max_body_bytes)
            headers = forwarding_headers(
                scope["headers"],
                peer=scope["client"][0] if scope.get("client") else None,
                scheme=scope.get("scheme", "http"),
                trusted=settings.server.trusted_proxies,
            )
            request = ForwardRequest(
                scope["method"], scope.get("query_string", b""), headers, body, scope, CRON_PATH
            )
            reply = await runtime.new.send(request)
        except RequestRejected as exc:
            reply = error_reply(exc.status, exc.code, exc.detail)
        except UpstreamError as exc:
            reply = error_reply(502, f"new_chat_{exc.kind}", "the new chat engine did not answer")
        except ClientGone:
            return
    await send_reply(send, scope, reply, "new")
