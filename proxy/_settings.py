"""Gateway settings, read once from the environment by `load_gateway_settings(environ, base)`;
a bad value raises `common.SettingsError` naming the variable."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

import msgspec
from cryptography.fernet import Fernet

from common import SettingsError, derive_secret, env_http_url, env_number, parse_duration
from flags import FlagSettings, load_flag_settings
from newchat import Settings
from proxy._transcript import MAX_TURNS


class UpstreamSettings(msgspec.Struct, frozen=True):
    url: str
    """Full URL of the chat endpoint; the visitor's query string is appended, the path is not."""
    connect_timeout_seconds: float = 1.0
    read_timeout_seconds: float = 10.0
    """Longest wait for the whole reply once connected (a hung backend becomes a 504)."""
    max_reply_bytes: int = 1_048_576
    pool_size: int = 256
    """Most connections open to this backend at once (requests beyond it wait)."""
    keepalive_seconds: float = 4.0
    """An idle connection is closed after this; keep it below the backend's own keep-alive
    timeout (Apache's default is 5 s, nginx's 75 s) so the gateway never reuses one it drops."""
    stripped_reply_headers: tuple[str, ...] = ("x-powered-by", "server")
    """Reply headers that tell visitors about the backend (`STRIPPED_REPLY_HEADERS`, comma
    separated; legacy's `X-Powered-By: PHP/8.2`); `Host` is never returned either way."""


class ShadowSettings(msgspec.Struct, frozen=True):
    timeout_seconds: float = 5.0
    """Longest a mirrored turn may take; then it is abandoned and counted."""
    max_in_flight: int = 64
    """Mirrored turns running at once per gateway; beyond it turns are dropped and counted."""
    noise_percent: int = 10
    """Share of shadowed conversations also replayed on a twin to measure noise."""
    rules_file: str = ""
    """Comparison rules (TOML); empty: `proxy/shadow_rules.toml`."""
    max_loop_lag_seconds: float = 0.003
    """While the event loop runs later than this, new shadow turns are dropped (CPU pressure)."""


class RecordingSettings(msgspec.Struct, frozen=True):
    key: str
    """A Fernet key (32 bytes, URL-safe base64): RECORD_KEY, else `record_key(secret)`."""
    max_age_seconds: int = 604_800
    max_conversations: int = 10_000
    max_turns: int = MAX_TURNS


def record_key(secret: str) -> str:
    """A Fernet key derived from SESSION_SECRET (SHA-256 of a purpose-tagged secret)."""
    digest = hashlib.sha256(f"chat-recording|{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


class GatewaySettings(msgspec.Struct, frozen=True):
    legacy: UpstreamSettings
    stale_after_seconds: float = 5.0
    """`GATEWAY_STALE_AFTER`: see `proxy._gateway.GatewayConfig.stale_after_seconds`."""
    legacy_cookie: str = "legacy_chat"
    """`LEGACY_SESSION_COOKIE`: legacy's own session cookie (the PHP stand-in's name; a PHP
    site's is often `PHPSESSID`), evidence of a conversation legacy holds."""
    new_chat_url: str = ""
    """A remote new engine; empty means the engine runs inside the gateway process."""
    new_chat_timeout_seconds: float = 10.0
    flags: FlagSettings = msgspec.field(default_factory=FlagSettings)
    routing_secret: str = ""
    """Signs routing cookies and testers' override tokens."""
    cookie_secure: bool = False
    session_ttl_seconds: int = 604_800
    instance_id: str = ""
    shadow: ShadowSettings = msgspec.field(default_factory=ShadowSettings)
    recording: RecordingSettings | None = None
    """How recorded legacy conversations are kept (`record_percent` says which are)."""
    metrics_dir: str = ""
    """`PROMETHEUS_MULTIPROC_DIR` (set by `chatctl serve --workers N`): every worker process
    writes its metrics there and `/metrics` sums them all (prometheus_client's multiprocess
    mode), so one scrape sees the whole gateway, not whichever worker answered."""


def load_routing_secret(environ: Mapping[str, str]) -> str:
    """`ROUTING_SECRET`, else one derived from `SESSION_SECRET` (so every gateway sharing that
    secret agrees), else "" (the caller decides: a gateway uses its ephemeral session secret)."""
    if environ.get("ROUTING_SECRET"):
        return environ["ROUTING_SECRET"]
    session_secret = environ.get("SESSION_SECRET", "")
    return derive_secret(session_secret, "routing") if session_secret else ""


def load_gateway_settings(environ: Mapping[str, str], base: Settings) -> GatewaySettings:
    """The gateway's settings on top of the engine's (`base`: server, session and Redis)."""
    legacy_url = env_http_url(environ, "LEGACY_URL")
    if not legacy_url:
        raise SettingsError(
            "LEGACY_URL is not set: the gateway needs the legacy chat endpoint "
            "(e.g. http://127.0.0.1:8080/api/chat); `make run` starts a PHP stand-in for it"
        )
    return GatewaySettings(
        legacy=UpstreamSettings(
            url=legacy_url,
            connect_timeout_seconds=env_number(environ, "LEGACY_CONNECT_TIMEOUT", 1.0, float, 0.05),
            read_timeout_seconds=env_number(environ, "LEGACY_TIMEOUT", 10.0, float, 0.1),
            pool_size=env_number(environ, "LEGACY_POOL_SIZE", 256, int, 1),
            keepalive_seconds=env_number(environ, "LEGACY_KEEPALIVE", 4.0, float, 0.1),
            stripped_reply_headers=tuple(
                name.strip().lower()
                for name in environ.get("STRIPPED_REPLY_HEADERS", "x-powered-by,server").split(",")
                if name.strip()
            ),
        ),
        legacy_cookie=environ.get("LEGACY_SESSION_COOKIE", "").strip() or "legacy_chat",
        stale_after_seconds=env_number(environ, "GATEWAY_STALE_AFTER", 5.0, float, 0.5),
        new_chat_url=env_http_url(environ, "NEW_CHAT_URL"),
        new_chat_timeout_seconds=env_number(environ, "NEW_CHAT_TIMEOUT", 10.0, float, 0.1),
        flags=load_flag_settings(environ),
        routing_secret=load_routing_secret(environ)
        or derive_secret(base.session.secret, "routing"),
        cookie_secure=base.session.cookie_secure,
        session_ttl_seconds=base.session.ttl_seconds,
        instance_id=environ.get("GATEWAY_INSTANCE_ID", ""),
        shadow=ShadowSettings(
            timeout_seconds=env_number(environ, "SHADOW_TIMEOUT", 5.0, float, 0.05),
            max_in_flight=env_number(environ, "SHADOW_MAX_IN_FLIGHT", 64, int, 1),
            noise_percent=min(100, env_number(environ, "SHADOW_NOISE_PERCENT", 10, int, 0)),
            rules_file=environ.get("SHADOW_RULES", ""),
            max_loop_lag_seconds=env_number(environ, "SHADOW_MAX_LOOP_LAG_MS", 3.0, float, 0.1)
            / 1000,
        ),
        recording=load_recording_settings(environ, base.session.secret),
        metrics_dir=environ.get("PROMETHEUS_MULTIPROC_DIR", ""),
    )


def load_recording_settings(environ: Mapping[str, str], secret: str) -> RecordingSettings:
    """RECORD_KEY (a Fernet key: 32 bytes, URL-safe base64; else derived from SESSION_SECRET),
    RECORD_MAX_AGE (a duration, default 7d), RECORD_MAX_CONVERSATIONS (default 10,000)."""
    key = environ.get("RECORD_KEY", "") or record_key(secret)
    try:
        Fernet(key.encode())
    except ValueError:
        raise SettingsError(
            "RECORD_KEY is not a Fernet key (32 bytes, URL-safe base64: "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
        ) from None
    try:
        max_age = parse_duration(environ.get("RECORD_MAX_AGE", "") or "7d")
    except ValueError as exc:
        raise SettingsError(f"RECORD_MAX_AGE: {exc}") from None
    if max_age < 60:
        raise SettingsError(f"RECORD_MAX_AGE is {max_age:g} s: at least 60 s (1m)")
    return RecordingSettings(
        key=key,
        max_age_seconds=int(max_age),
        max_conversations=env_number(environ, "RECORD_MAX_CONVERSATIONS", 10_000, int, 1),
    )
