"""What every package shares: Redis key names, logging, settings rules, the Redis client, HTTP
details (headers, cookies, the visitor's address), ids and signing, health checks, statistics
and background tasks. Imports nothing else of this project.
"""

from common import keys
from common._durations import parse_duration
from common._errors import SettingsError, StoreFailure, StoreUnavailable
from common._files import write_private
from common._health import Check, Status, overall
from common._http import (
    RawHeaders,
    client_address,
    header_value,
    header_values,
    read_cookies,
    request_cookies,
    set_cookie,
)
from common._ids import is_session_id, new_session_id, session_hash
from common._json import decode_json
from common._logs import LogPipeline, configure_logging, flush_logs, get_logger
from common._outage import OutageLog, OutageState
from common._redaction import PERSONAL_FIELDS, redact, scrub
from common._redis import (
    REDIS_FAILURES,
    STORE_FAILURES,
    as_bytes,
    as_text,
    open_redis,
    probe_redis,
    redacted_url,
    redis_errors,
    redis_store,
    translate_redis_error,
)
from common._settings import (
    LogSettings,
    RedisSettings,
    derive_secret,
    env_bool,
    env_http_url,
    env_number,
    load_log_settings,
    load_redis_settings,
)
from common._signing import Signer
from common._stats import LATENCY_BOUNDS, NewEngineStats, p95, percentile
from common._tasks import BackgroundTask, Stopping
from common._value_digest import VALUE_FIELDS, ValueDigest, ValueField, normalise_value

__all__ = [
    "LATENCY_BOUNDS",
    "PERSONAL_FIELDS",
    "REDIS_FAILURES",
    "STORE_FAILURES",
    "VALUE_FIELDS",
    "BackgroundTask",
    "Check",
    "LogPipeline",
    "LogSettings",
    "NewEngineStats",
    "OutageLog",
    "OutageState",
    "RawHeaders",
    "RedisSettings",
    "SettingsError",
    "Signer",
    "Status",
    "Stopping",
    "StoreFailure",
    "StoreUnavailable",
    "ValueDigest",
    "ValueField",
    "as_bytes",
    "as_text",
    "client_address",
    "configure_logging",
    "decode_json",
    "derive_secret",
    "env_bool",
    "env_http_url",
    "env_number",
    "flush_logs",
    "get_logger",
    "header_value",
    "header_values",
    "is_session_id",
    "keys",
    "load_log_settings",
    "load_redis_settings",
    "new_session_id",
    "normalise_value",
    "open_redis",
    "overall",
    "p95",
    "parse_duration",
    "percentile",
    "probe_redis",
    "read_cookies",
    "redact",
    "redacted_url",
    "redis_errors",
    "redis_store",
    "request_cookies",
    "scrub",
    "session_hash",
    "set_cookie",
    "translate_redis_error",
    "write_private",
]
