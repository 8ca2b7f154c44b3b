"""The gateway's services, built once per process in the app's lifespan by `provide_*`
functions. Each provider opens what it needs in the running event loop and registers its closing
on the lifespan's exit stack, so shutdown closes everything in reverse order of opening.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis

from common import NewEngineStats, ValueDigest, redacted_url
from flags import Backend, Flags, FlagSnapshot, FlagWatcher, UnleashRollout
from newchat import (
    Metrics,
    RateLimiter,
    Services,
    SessionCookies,
    Settings,
    provide_http_client,
    provide_redis,
    shadow_key,
    value_key,
)
from newchat import provide_services as provide_engine_services
from proxy._compare import load_rules
from proxy._gateway import ChatGateway, GatewayConfig
from proxy._in_process import EngineUpstream
from proxy._metrics import GatewayMetrics
from proxy._pins import PinStore, TokenSigner
from proxy._pressure import LoopLag
from proxy._recording import RecordingTap, TranscriptRecorder
from proxy._route_hint import RouteHint
from proxy._settings import GatewaySettings, UpstreamSettings, load_recording_settings
from proxy._shadow import ShadowConfig, ShadowMirror
from proxy._stats import StatsPublisher
from proxy._upstream import HttpUpstream, Upstream

HttpFactory = Callable[[], httpx.AsyncClient]


@dataclass(frozen=True, slots=True)
class GatewayServices:
    settings: Settings
    gateway: GatewaySettings
    metrics: Metrics
    """The engine's metrics; the gateway's share their registry (one `/metrics`)."""
    gateway_metrics: GatewayMetrics
    redis: Redis
    legacy: HttpUpstream
    new: Upstream
    engine: Services | None
    """The in-process engine's services (None when `NEW_CHAT_URL` names a remote one)."""
    flags: Flags
    shadow: ShadowMirror
    chat: ChatGateway
    route_hint: RouteHint

    @property
    def instance_id(self) -> str:
        return self.flags.watcher.instance_id


def instance_id(configured: str) -> str:
    """`GATEWAY_INSTANCE_ID`, or `<host>-<pid>-<random>` (unique across restarts)."""
    return configured or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


async def provide_legacy(
    gateway: GatewaySettings, stack: contextlib.AsyncExitStack
) -> HttpUpstream:
    legacy = HttpUpstream(gateway.legacy)
    await legacy.start()
    stack.push_async_callback(legacy.close)
    return legacy


async def provide_new_engine(
    settings: Settings,
    gateway: GatewaySettings,
    redis: Redis,
    metrics: Metrics,
    http_factory: HttpFactory | None,
    stack: contextlib.AsyncExitStack,
) -> tuple[Upstream, Services | None]:
    """A remote engine at `NEW_CHAT_URL`, or the engine's services in this process."""
    if gateway.new_chat_url:
        remote = HttpUpstream(
            UpstreamSettings(
                url=gateway.new_chat_url,
                connect_timeout_seconds=gateway.legacy.connect_timeout_seconds,
                read_timeout_seconds=gateway.new_chat_timeout_seconds,
            ),
            shadow_key=shadow_key(settings.session),
        )
        await remote.start()
        stack.push_async_callback(remote.close)
        return remote, None
    http = (http_factory or provide_http_client)()
    stack.push_async_callback(http.aclose)
    engine = provide_engine_services(settings, redis, http, metrics)
    return EngineUpstream(engine, gateway.new_chat_timeout_seconds), engine


async def provide_flags(
    redis: Redis,
    redis_url: str,
    gateway: GatewaySettings,
    instance: str,
    metrics: GatewayMetrics,
    stack: contextlib.AsyncExitStack,
) -> Flags:
    """The flag watcher (loaded once before the first request), and Unleash when configured."""
    settings = gateway.flags

    def on_change(snapshot: FlagSnapshot) -> None:
        metrics.flag_version.set(snapshot.version)

    watcher = FlagWatcher(
        redis,
        settings.defaults,
        kill_switch=settings.kill_switch,
        instance_id=instance,
        poll_interval=settings.poll_interval_seconds,
        on_change=on_change,
        state_file=Path(settings.state_file) if settings.state_file else None,
        redis_identity=redacted_url(redis_url),
    )
    await watcher.start()
    stack.push_async_callback(watcher.stop)
    unleash = None
    if settings.unleash is not None:
        unleash = UnleashRollout(
            settings.unleash,
            group_id=settings.group_id,
            bootstrap=watcher.snapshot.values,
            instance_id=instance,
        )
        await unleash.start()
        stack.push_async_callback(unleash.stop)
    flags = Flags(
        watcher,
        group_id=settings.group_id,
        shadow_group_id=settings.unleash.shadow_toggle if settings.unleash else "new-chat-shadow",
        unleash=unleash,
    )
    watcher.describe_routing_with(flags.effective)
    return flags


def provide_recording(
    gateway: GatewaySettings, redis: Redis, flags: Flags, metrics: GatewayMetrics
) -> RecordingTap:
    recorder = TranscriptRecorder(redis, gateway.recording or load_recording_settings({}, ""))
    return RecordingTap(
        recorder, flags.recorded, lambda reason: metrics.recordings_dropped.labels(reason).inc()
    )


async def provide_shadow(
    gateway: GatewaySettings,
    flags: Flags,
    upstreams: dict[Backend, Upstream],
    redis: Redis,
    metrics: GatewayMetrics,
    stack: contextlib.AsyncExitStack,
    digest: ValueDigest,
) -> ShadowMirror:
    pressure = LoopLag(threshold=gateway.shadow.max_loop_lag_seconds)
    await pressure.start()
    stack.push_async_callback(pressure.stop)
    shadow = ShadowMirror(
        flags=flags,
        upstreams=upstreams,
        redis=redis,
        rules=load_rules(gateway.shadow.rules_file or None),
        metrics=metrics,
        config=ShadowConfig(
            max_in_flight=gateway.shadow.max_in_flight,
            timeout_seconds=gateway.shadow.timeout_seconds,
            noise_percent=gateway.shadow.noise_percent,
        ),
        pressure=pressure,
        digest=digest,
    )
    stack.push_async_callback(shadow.drain, 5.0)
    return shadow


async def provide_stats_publisher(
    redis: Redis, instance: str, stats: NewEngineStats, stack: contextlib.AsyncExitStack
) -> None:
    publisher = StatsPublisher(redis, instance, stats)
    await publisher.start()
    stack.push_async_callback(publisher.stop)


async def provide_gateway_services(
    settings: Settings,
    gateway: GatewaySettings,
    stack: contextlib.AsyncExitStack,
    *,
    metrics: Metrics,
    gateway_metrics: GatewayMetrics,
    http_factory: HttpFactory | None = None,
) -> GatewayServices:
    """Everything the gateway serves with, opened in order; closed by `stack` in reverse.
    The metrics are the app's (created once with it, so a restarted lifespan re-registers
    nothing)."""
    redis = provide_redis(settings)
    stack.push_async_callback(redis.aclose)
    legacy = await provide_legacy(gateway, stack)
    new, engine = await provide_new_engine(settings, gateway, redis, metrics, http_factory, stack)
    instance = instance_id(gateway.instance_id)
    flags = await provide_flags(
        redis, settings.redis.url, gateway, instance, gateway_metrics, stack
    )
    shadow = await provide_shadow(
        gateway,
        flags,
        {"new": new, "legacy": legacy},
        redis,
        gateway_metrics,
        stack,
        ValueDigest(value_key(settings.session)),
    )
    recording = provide_recording(gateway, redis, flags, gateway_metrics)
    stack.push_async_callback(recording.drain)
    signer = TokenSigner(gateway.routing_secret)
    chat = ChatGateway(
        flags=flags,
        legacy=legacy,
        new=new,
        pins=PinStore(redis, gateway.session_ttl_seconds),
        signer=signer,
        metrics=gateway_metrics,
        config=GatewayConfig(
            trusted_proxies=settings.server.trusted_proxies,
            max_body_bytes=settings.server.max_body_bytes,
            cookie_secure=gateway.cookie_secure,
            cookie_max_age=gateway.session_ttl_seconds,
            session_cookie=settings.session.cookie_name,
            body_timeout_seconds=settings.server.read_timeout_seconds,
            legacy_cookie=gateway.legacy_cookie,
            stale_after_seconds=gateway.stale_after_seconds,
        ),
        shadow=shadow,
        recording=recording,
        limiter=RateLimiter(redis, settings.rate_limit),
        session_cookies=SessionCookies(settings.session),
    )
    await provide_stats_publisher(redis, instance, chat.new_engine_stats, stack)
    return GatewayServices(
        settings=settings,
        gateway=gateway,
        metrics=metrics,
        gateway_metrics=gateway_metrics,
        redis=redis,
        legacy=legacy,
        new=new,
        engine=engine,
        flags=flags,
        shadow=shadow,
        chat=chat,
        route_hint=RouteHint(
            flags=flags,
            signer=signer,
            metrics=gateway_metrics,
            limited=chat.legacy_turn_limited,
            trusted_proxies=settings.server.trusted_proxies,
        ),
    )
