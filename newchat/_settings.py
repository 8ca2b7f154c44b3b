"""The engine's settings, read once from an environment mapping by `load_settings` (never at
import time); a bad value raises `common.SettingsError` naming the variable."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import msgspec

from common import (
    LogSettings,
    RedisSettings,
    derive_secret,
    env_bool,
    env_number,
    load_log_settings,
    load_redis_settings,
)


class ServerSettings(msgspec.Struct, frozen=True):
    host: str = "127.0.0.1"
    """Interface the HTTP server binds to."""
    port: int = 3000
    """The runbook's port (`curl http://localhost:3000/api/chat`)."""
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    """Peers whose X-Forwarded-For / X-Real-IP headers are believed (nginx on the same host)."""
    max_body_bytes: int = 16_384
    """Larger request bodies get 413 before they are read."""
    read_timeout_seconds: float = 10.0
    """A request's headers, and then its body, must each arrive within this (nginx's
    `client_header_timeout` / `client_body_timeout` in front); else 408 (`HTTP_READ_TIMEOUT`)."""
    max_connections: int = 2048
    """Open connections (or requests in progress) past which a request gets the JSON 503
    `overloaded` at once instead of memory (`HTTP_MAX_CONNECTIONS`)."""


class SessionSettings(msgspec.Struct, frozen=True):
    secret: str = ""
    """HMAC key for session cookies. Unset means an ephemeral key (cookies die on restart)."""
    secret_is_ephemeral: bool = False
    cookie_name: str = "chat_sid"
    cookie_secure: bool = False
    """Set in production (HTTPS) so browsers never send the cookie in clear."""
    ttl_seconds: int = 604_800
    """Seven days, refreshed on every turn (runbook: `expire sess:<id> 604800`)."""
    max_message_chars: int = 2_000
    value_key: str = ""
    """`SHADOW_VALUE_KEY`: the key contact values are hashed under for comparisons (`value_key`
    derives one from `secret` when empty)."""


class OpenAISettings(msgspec.Struct, frozen=True):
    api_key: str = ""
    """Unset: practice areas come from the offline classifier only."""
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    timeout_seconds: float = 4.0
    """Per attempt; the visitor waits at most about twice this before the fallback answers."""
    max_attempts: int = 2
    """Attempts on timeouts and 5xx; a 429 falls back at once and pauses OpenAI for a while."""
    request_budget_seconds: float = 8.0
    """What one visitor's detection may take in all, retries included."""
    rate_limit_cooldown_seconds: float = 30.0
    """The pause after a 429 that says nothing of when to come back (no `Retry-After`)."""

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)


class LeadProsperSettings(msgspec.Struct, frozen=True):
    api_url: str = ""
    """Full URL leads are POSTed to. Unset: leads stay queued and health says so."""
    api_key: str = ""
    campaign_id: str = ""
    supplier_id: str = ""
    timeout_seconds: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.api_url and self.api_key and self.campaign_id and self.supplier_id)


class WorkerSettings(msgspec.Struct, frozen=True):
    concurrency: int = 16
    """Leads submitted at once by one worker process."""
    max_attempts: int = 6
    """Retryable failures beyond this move the lead to lead_failed."""
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    visibility_timeout_seconds: float = 120.0
    """A lead claimed longer ago than this is presumed orphaned by a dead worker and re-queued."""
    heartbeat_ttl_seconds: int = 10
    """Renewed every third of it: a worker killed with -9 stops counting as alive within 10 s
    (30 s had `chatctl health` list a dead worker for half a minute)."""
    poll_interval_seconds: float = 0.5
    shutdown_grace_seconds: float = 20.0
    maintenance_interval_seconds: float = 5.0
    """How often a running worker promotes due retries and re-queues stuck leads."""


class RateLimitSettings(msgspec.Struct, frozen=True):
    window_seconds: int = 60
    normal_limit: int = 30
    """Chat turns per client per window."""
    emergency_limit: int = 5
    """Applies while Redis key `emergency_rate_limit` is `1`, at once, with no restart."""


class CronSettings(msgspec.Struct, frozen=True):
    secret: str = ""
    """`POST /api/cron/process-leads` needs it in `x-cron-secret`; unset refuses everyone."""
    budget_seconds: float = 8.0
    """How long one cron call drains the queue: less than the gateway's hop timeout
    (`NEW_CHAT_TIMEOUT`, 10 s), so the caller gets its counts rather than a 504."""


class Settings(msgspec.Struct, frozen=True):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    session: SessionSettings = msgspec.field(default_factory=SessionSettings)
    openai: OpenAISettings = msgspec.field(default_factory=OpenAISettings)
    leadprosper: LeadProsperSettings = msgspec.field(default_factory=LeadProsperSettings)
    worker: WorkerSettings = msgspec.field(default_factory=WorkerSettings)
    rate_limit: RateLimitSettings = msgspec.field(default_factory=RateLimitSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    cron: CronSettings = msgspec.field(default_factory=CronSettings)
    ops_token: str = ""


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build settings from an environment mapping; raises SettingsError naming a bad variable."""
    get = environ.get
    secret = get("SESSION_SECRET", "")
    server = ServerSettings(
        host=get("HOST", "127.0.0.1"),
        port=env_number(environ, "PORT", 3000, int, 1),
        trusted_proxies=tuple(
            p.strip() for p in get("TRUSTED_PROXIES", "127.0.0.1,::1").split(",") if p.strip()
        ),
        max_body_bytes=env_number(environ, "MAX_BODY_BYTES", 16_384, int, 256),
        read_timeout_seconds=env_number(environ, "HTTP_READ_TIMEOUT", 10.0, float, 0.1),
        max_connections=env_number(environ, "HTTP_MAX_CONNECTIONS", 2048, int, 1),
    )
    return Settings(
        server=server,
        redis=load_redis_settings(environ),
        session=SessionSettings(
            secret=secret or secrets.token_urlsafe(32),
            secret_is_ephemeral=not secret,
            cookie_secure=env_bool(environ, "COOKIE_SECURE", False),
            max_message_chars=env_number(environ, "MAX_MESSAGE_CHARS", 2_000, int, 1),
            value_key=get("SHADOW_VALUE_KEY", ""),
        ),
        openai=OpenAISettings(
            api_key=get("OPENAI_API_KEY", ""),
            base_url=get("OPENAI_BASE_URL", "") or "https://api.openai.com/v1",
            model=get("OPENAI_MODEL", "") or "gpt-4o-mini",
            timeout_seconds=env_number(environ, "OPENAI_TIMEOUT", 4.0, float, 0.1),
        ),
        leadprosper=LeadProsperSettings(
            api_url=get("LEADPROSPER_API_URL", ""),
            api_key=get("LEADPROSPER_API_KEY", ""),
            campaign_id=get("LEADPROSPER_CAMPAIGN_ID", ""),
            supplier_id=get("LEADPROSPER_SUPPLIER_ID", ""),
        ),
        worker=WorkerSettings(
            concurrency=env_number(environ, "WORKER_CONCURRENCY", 16, int, 1),
            visibility_timeout_seconds=env_number(
                environ, "LEAD_VISIBILITY_TIMEOUT", 120.0, float, 1.0
            ),
            max_attempts=env_number(environ, "LEAD_MAX_ATTEMPTS", 6, int, 1),
        ),
        rate_limit=RateLimitSettings(
            normal_limit=env_number(environ, "RATE_LIMIT_PER_MINUTE", 30, int, 1),
            emergency_limit=env_number(environ, "EMERGENCY_RATE_LIMIT_PER_MINUTE", 5, int, 1),
        ),
        log=load_log_settings(environ),
        cron=CronSettings(
            secret=get("CRON_SECRET", ""),
            budget_seconds=env_number(environ, "CRON_BUDGET", 8.0, float, 0.1),
        ),
        ops_token=get("OPS_TOKEN", ""),
    )


def value_key(session: SessionSettings) -> str:
    """The key contact values are hashed under for comparisons (`common.ValueDigest`):
    `SHADOW_VALUE_KEY`, else derived from `SESSION_SECRET`. Every gateway and engine of a site
    must share it, or equal values read as different."""
    return session.value_key or derive_secret(session.secret, "shadow-values")


def shadow_key(session: SessionSettings) -> str:
    """What a gateway sends in `X-Shadow-Auth` with a mirrored turn to a remote engine, so no
    visitor can ask for shadow mode; derived from `SESSION_SECRET`, shared by both."""
    return derive_secret(session.secret, "shadow")
