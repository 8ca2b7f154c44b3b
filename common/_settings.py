"""Reading settings from an environment mapping: the rules every `load_*_settings` shares.

Nothing here reads `os.environ`: each process passes its environment once, at start-up.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import urlsplit

import msgspec

from common._errors import SettingsError

N = TypeVar("N", int, float)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """`true/false`, `1/0`, `yes/no`, `on/off`; raises SettingsError naming `name` otherwise."""
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def env_number(environ: Mapping[str, str], name: str, default: N, kind: type[N], minimum: N) -> N:
    """A number of `kind` no smaller than `minimum`; unset or empty gives `default`."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_http_url(environ: Mapping[str, str], name: str) -> str:
    """An http(s) URL with a host, or "" when unset; raises SettingsError otherwise."""
    url = environ.get(name, "").strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SettingsError(f"{name}={url!r} is not an http(s) URL")
    return url


def derive_secret(secret: str, purpose: str) -> str:
    """A separate key per purpose (HMAC-SHA256 of the purpose under `secret`, hex), so one
    leaked key does not forge another kind of token."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


class RedisSettings(msgspec.Struct, frozen=True):
    url: str = "redis://127.0.0.1:6379/0"
    """Sessions, leads, flags, pins and rate limits live here (redis://, rediss://, unix://)."""
    socket_timeout: float = 2.0
    """Seconds before a Redis call is abandoned, so a hung Redis fails fast and visibly."""
    max_connections: int = 64
    """Connections per process. A chat turn holds one for under a millisecond at a time, so 64
    serve thousands of turns a second; a burst beyond them waits (`pool_timeout`), never fails."""
    pool_timeout: float = 2.0
    """Seconds a command waits for a free connection before it fails as `pool_exhausted`."""


def load_redis_settings(environ: Mapping[str, str]) -> RedisSettings:
    """`REDIS_URL` (default redis://127.0.0.1:6379/0), `REDIS_MAX_CONNECTIONS` (64),
    `REDIS_POOL_TIMEOUT` (seconds, 2)."""
    return RedisSettings(
        url=environ.get("REDIS_URL", "").strip() or "redis://127.0.0.1:6379/0",
        max_connections=env_number(environ, "REDIS_MAX_CONNECTIONS", 64, int, 1),
        pool_timeout=env_number(environ, "REDIS_POOL_TIMEOUT", 2.0, float, 0.0),
    )


class LogSettings(msgspec.Struct, frozen=True):
    file: str = "logs/application.log"
    """JSON lines are appended here (the folder is created); empty: no file."""
    level: str = "INFO"
    stdout: bool = True
    flush_interval_seconds: float = 0.1
    """INFO lines are written in batches within this; 0 writes every line at once."""


def load_log_settings(environ: Mapping[str, str]) -> LogSettings:
    """`LOG_FILE`, `LOG_LEVEL`, `LOG_STDOUT`, `LOG_FLUSH_MS`."""
    return LogSettings(
        file=environ.get("LOG_FILE", "logs/application.log"),
        level=environ.get("LOG_LEVEL", "INFO").upper(),
        stdout=env_bool(environ, "LOG_STDOUT", True),
        flush_interval_seconds=env_number(environ, "LOG_FLUSH_MS", 100, int, 0) / 1000,
    )
