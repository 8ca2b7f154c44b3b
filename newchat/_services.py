"""The engine's services, built by `provide_*` functions from settings and open clients; shared
by the engine's HTTP app, the gateway's in-process hop, the worker and `chatctl`.

Opening and closing clients is the caller's job (an app lifespan, or `open_services` for a
command), so the same `Services` run inside the gateway's process or on their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import httpx
from redis.asyncio import Redis

from common import OutageState, ValueDigest, keys, open_redis
from newchat._conversation import Conversation
from newchat._language import LanguageDetector
from newchat._metrics import Metrics
from newchat._ratelimit import RateLimiter
from newchat._replies import Replies
from newchat._sessions import SessionCookies, SessionStore
from newchat._settings import Settings, value_key
from newchat.detection import (
    CategoryDetector,
    OfflineClassifier,
    RemoteDetector,
    openai_detector,
)
from newchat.leads import LeadProsperClient, LeadQueue, LeadWorker, ShadowLeadRecorder


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: Redis
    http: httpx.AsyncClient
    """For services outside the machine (OpenAI, LeadProsper); each call sets its timeout."""
    metrics: Metrics
    cookies: SessionCookies
    detector: CategoryDetector
    openai: RemoteDetector | None
    conversation: Conversation
    shadow_conversation: Conversation
    """Mirrored turns: sessions under `shadow:sess:`, leads recorded instead of queued."""
    queue: LeadQueue
    leadprosper: LeadProsperClient
    limiter: RateLimiter
    redis_outage: OutageState = field(default_factory=OutageState)
    """Redis failures on the request path: the first of an outage is logged as an ERROR."""

    def worker(self, worker_id: str | None = None) -> LeadWorker:
        return LeadWorker(
            self.redis, self.queue, self.leadprosper, self.settings.worker, self.metrics, worker_id
        )


def provide_redis(settings: Settings) -> Redis:
    return open_redis(settings.redis)


def provide_http_client() -> httpx.AsyncClient:
    """One pooled client for OpenAI and LeadProsper; each call sets its own timeout.

    httpx's API (tests swap the transport for respx) over aiohttp's connection pool
    (httpx-aiohttp): on this machine httpx's own pool fell from about 1,400 to 180 requests/s as
    concurrency rose from 1 to 32, which capped the lead worker; aiohttp's pool gives about 2,400.
    """
    from httpx_aiohttp import AiohttpTransport  # noqa: PLC0415 - imports aiohttp

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=30, ttl_dns_cache=300)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return httpx.AsyncClient(timeout=10.0, transport=AiohttpTransport(client=session))


def provide_remote_detector(settings: Settings, http: httpx.AsyncClient) -> RemoteDetector | None:
    """OpenAI when `OPENAI_API_KEY` is set. The SDK takes most of a second to import, so
    processes without a key never load it."""
    if not settings.openai.enabled:
        return None
    return openai_detector(settings.openai, http)


@functools.cache
def provide_replies() -> Replies:
    """The reply catalogs, compiled once per process (they never change while it runs)."""
    return Replies()


@functools.cache
def provide_language_detector() -> LanguageDetector:
    """The language model, loaded once per process (30 ms, about 1 MB)."""
    return LanguageDetector()


def provide_services(
    settings: Settings, redis: Redis, http: httpx.AsyncClient, metrics: Metrics | None = None
) -> Services:
    metrics = metrics or Metrics()
    remote = provide_remote_detector(settings, http)
    detector = CategoryDetector(OfflineClassifier(), metrics, remote)
    cookies = SessionCookies(settings.session)
    sessions = SessionStore(redis, settings.session.ttl_seconds, mint_id=cookies.mint_id)
    queue = LeadQueue(redis, settings.worker.visibility_timeout_seconds)
    shadow_sessions = SessionStore(redis, settings.session.ttl_seconds, key_for=keys.shadow_session)
    replies, languages = provide_replies(), provide_language_detector()
    return Services(
        settings=settings,
        redis=redis,
        http=http,
        metrics=metrics,
        cookies=cookies,
        detector=detector,
        openai=remote,
        conversation=Conversation(
            sessions, detector, queue, metrics, replies=replies, languages=languages
        ),
        shadow_conversation=Conversation(
            shadow_sessions,
            detector,
            ShadowLeadRecorder(redis, ValueDigest(value_key(settings.session))),
            metrics,
            replies=replies,
            languages=languages,
        ),
        queue=queue,
        leadprosper=LeadProsperClient(settings.leadprosper, http),
        limiter=RateLimiter(redis, settings.rate_limit),
    )


REPLAY_SESSION_TTL_SECONDS = 3_600


def replay_services(services: Services) -> Services:
    """The services a replay runs on: mirrored turns (`TurnRequest.shadow`) go to replay stores,
    sessions under `replay:sess:` (an hour at most; the replayer deletes each once compared: a
    replayed conversation's contact details must not outlive its erasable recording) and leads
    recorded (hashed values only) under `replay:leads`, apart from live shadow's."""
    redis = services.redis
    sessions = SessionStore(redis, REPLAY_SESSION_TTL_SECONDS, key_for=keys.replay_session)
    recorder = ShadowLeadRecorder(
        redis, ValueDigest(value_key(services.settings.session)), key=keys.REPLAY_LEADS
    )
    conversation = services.shadow_conversation.elsewhere(sessions, recorder)
    return dataclasses.replace(services, shadow_conversation=conversation)


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    http_factory: Callable[[], httpx.AsyncClient] | None = None,
    metrics: Metrics | None = None,
) -> AsyncIterator[Services]:
    """Services with their own Redis and HTTP clients, closed on exit (commands, the worker)."""
    redis = provide_redis(settings)
    try:
        async with (http_factory or provide_http_client)() as http:
            yield provide_services(settings, redis, http, metrics)
    finally:
        await redis.aclose()
