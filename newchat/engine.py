"""Builds the engine's services from settings and open clients; shared by HTTP, CLI and gateway.

Opening and closing clients is the caller's job (the app lifespan or a CLI command), so the same
`Engine` can run inside the gateway's process or on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import httpx
from redis.asyncio import Redis

from newchat import keys, redis_pool
from newchat.conversation import Conversation
from newchat.detection.detector import CategoryDetector, RemoteDetector
from newchat.detection.offline import OfflineClassifier
from newchat.leads.leadprosper import LeadProsperClient
from newchat.leads.queue import LeadQueue
from newchat.leads.shadow import ShadowLeadRecorder
from newchat.leads.worker import LeadWorker
from newchat.metrics import Metrics
from newchat.ratelimit import RateLimiter
from newchat.sessions import CookieSigner, SessionStore
from newchat.settings import Settings, derive_secret


@dataclass(frozen=True, slots=True)
class Engine:
    settings: Settings
    redis: Redis
    http: httpx.AsyncClient
    metrics: Metrics
    sessions: SessionStore
    detector: CategoryDetector
    conversation: Conversation
    queue: LeadQueue
    leadprosper: LeadProsperClient
    limiter: RateLimiter
    signer: CookieSigner
    openai: RemoteDetector | None
    shadow_conversation: Conversation
    """Mirrored turns: sessions under `shadow:sess:`, leads recorded instead of queued."""
    shadow_key: str
    """What the gateway sends in `X-Shadow-Auth`, so no visitor can ask for shadow mode."""

    def worker(self, worker_id: str | None = None) -> LeadWorker:
        return LeadWorker(
            self.redis, self.queue, self.leadprosper, self.settings.worker, self.metrics, worker_id
        )


_OFFLINE = OfflineClassifier()
"""Built once per process: the lexicon index is immutable and takes a few milliseconds to build."""


def open_redis(settings: Settings) -> Redis:
    return redis_pool.open_redis(settings.redis.url, settings.redis.socket_timeout)


def build_engine(
    settings: Settings, redis: Redis, http: httpx.AsyncClient, metrics: Metrics | None = None
) -> Engine:
    metrics = metrics or Metrics()
    remote: RemoteDetector | None = None
    if settings.openai.enabled:
        # The SDK takes most of a second to import; processes without a key never load it.
        from newchat.detection.openai_detector import OpenAIDetector  # noqa: PLC0415

        remote = OpenAIDetector(settings.openai, http)
    detector = CategoryDetector(_OFFLINE, metrics, remote)
    sessions = SessionStore(redis, settings.session.ttl_seconds)
    queue = LeadQueue(redis, settings.worker.visibility_timeout_seconds)
    return Engine(
        settings=settings,
        redis=redis,
        http=http,
        metrics=metrics,
        sessions=sessions,
        detector=detector,
        conversation=Conversation(sessions, detector, queue, metrics),
        queue=queue,
        leadprosper=LeadProsperClient(settings.leadprosper, http),
        limiter=RateLimiter(redis, settings.rate_limit),
        signer=CookieSigner(settings.session.secret),
        openai=remote,
        shadow_conversation=Conversation(
            SessionStore(redis, settings.session.ttl_seconds, key_for=keys.shadow_session),
            detector,
            ShadowLeadRecorder(redis),
            metrics,
        ),
        shadow_key=derive_secret(settings.session.secret, "shadow"),
    )


def default_http_client() -> httpx.AsyncClient:
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


@contextlib.asynccontextmanager
async def running_engine(settings: Settings) -> AsyncIterator[Engine]:
    """Opens Redis and an HTTP client for the engine and closes them afterwards."""
    redis = open_redis(settings)
    async with default_http_client() as http:
        try:
            yield build_engine(settings, redis, http)
        finally:
            await redis.aclose()
