"""Structured JSON logging to the log file and stdout, with personal data kept out.

Lines carry the runbook's greppable phrases as event names (`Category detection`,
`Lead submission`, `Performance:`) and the level in capitals, so `grep -c ERROR` counts errors.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import msgspec
import structlog
from structlog.typing import EventDict, WrappedLogger

from newchat.settings import LogSettings

PERSONAL_FIELDS = frozenset(
    {
        "message",
        "text",
        "reply",
        "name",
        "first_name",
        "last_name",
        "full_name",
        "phone",
        "email",
        "zip",
        "zip_code",
        "description",
        "body",
        "cookie",
        "authorization",
        "token",
        "api_key",
        "secret",
        "password",
    }
)
"""Keys whose values never reach a log line, whatever the caller passes."""

_encoder = msgspec.json.Encoder(enc_hook=str)


_LEVELS = {name: name.upper() for name in ("debug", "info", "warning", "error", "critical")}
_LEVELS |= {"warn": "WARNING", "exception": "ERROR", "fatal": "CRITICAL"}


class _Clock:
    """ISO-8601 UTC timestamps; the seconds part is formatted once per second (hot path)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        moment = time.time()
        second = int(moment)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((moment - second) * 1_000_000):06d}Z"


_clock = _Clock()
_generation = 0
"""Bumped by each `configure_logging`: cached loggers rebind on their next call."""


def _finish(_: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """Level in capitals, timestamp, and personal data redacted, in one pass."""
    event["level"] = _LEVELS.get(method, method.upper())
    event["timestamp"] = _clock.now()
    for key in PERSONAL_FIELDS.intersection(event):
        event[key] = "[redacted]"
    return event


def _serialize(event: EventDict, **_: Any) -> bytes:
    """Anything msgspec cannot encode natively (exceptions, paths) is written as its str()."""
    return _encoder.encode(event)


class _TeeLogger:
    """Writes each rendered line to every sink; a lock keeps lines whole across threads.

    Warnings and errors are written at once. INFO and DEBUG lines (one per chat request) are
    batched and written within `flush_interval` seconds by the flusher thread: two write calls
    per request were a fifth of the legacy hop's cost. A crash loses at most that much of INFO,
    never a warning or an error, and lines keep their order.
    """

    def __init__(self, sinks: list[IO[bytes]], flush_interval: float) -> None:
        self._sinks = sinks
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self.flush_interval = flush_interval

    def later(self, line: bytes) -> None:
        with self._lock:
            self._pending.append(line)
            if self.flush_interval <= 0 or len(self._pending) >= _MAX_PENDING_LINES:
                self._write_pending()

    def now(self, line: bytes) -> None:
        with self._lock:
            self._pending.append(line)
            self._write_pending()

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._write_pending()

    def _write_pending(self) -> None:
        self._pending.append(b"")
        data = b"\n".join(self._pending)
        self._pending.clear()
        for sink in self._sinks:
            with contextlib.suppress(OSError, ValueError):  # a closed stdout must not stop logs
                sink.write(data)
                sink.flush()

    debug = info = later
    msg = log = warning = warn = error = critical = exception = fatal = now


_MAX_PENDING_LINES = 512
_current_tee: _TeeLogger | None = None
_flusher_started = threading.Event()
_set_up_changed = threading.Event()
"""Wakes the flusher when logging is set up again, so a shorter interval applies at once."""


def flush_logs() -> None:
    """Writes batched INFO lines now (at shutdown, or before reading the log file)."""
    if _current_tee is not None:
        _current_tee.flush()


def _flusher() -> None:
    """One thread per process writes batched lines of whichever set-up is current."""
    while True:
        tee = _current_tee
        if _set_up_changed.wait(tee.flush_interval if tee and tee.flush_interval > 0 else 0.1):
            _set_up_changed.clear()  # a new set-up: wait again with its interval
            continue
        flush_logs()


def _start_flusher() -> None:
    if not _flusher_started.is_set():
        _flusher_started.set()
        threading.Thread(target=_flusher, name="log-flusher", daemon=True).start()
        atexit.register(flush_logs)


def configure_logging(settings: LogSettings, *, extra_sinks: list[IO[bytes]] | None = None) -> None:
    """Point structlog at the log file (created with its folder) and, when asked, stdout."""
    sinks: list[IO[bytes]] = list(extra_sinks or [])
    if settings.stdout:
        sinks.append(sys.stdout.buffer)
    if settings.file:
        path = Path(settings.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        sinks.append(path.open("ab"))
    global _generation, _current_tee  # noqa: PLW0603 - one logging set-up per process, by design
    _generation += 1
    flush_logs()  # lines of the previous set-up go where they were meant to
    tee = _current_tee = _TeeLogger(sinks, settings.flush_interval_seconds)
    _set_up_changed.set()
    _start_flusher()
    level = logging.getLevelNamesMapping().get(settings.level, logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _finish,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_serialize),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_: tee,
        cache_logger_on_first_use=False,
    )
    # Library loggers (httpx logs a line per request at INFO) stay quiet unless they warn.
    for noisy in ("httpx", "httpcore", "openai", "UnleashClient", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _CachedLogger:
    """A module's logger, bound once per `configure_logging` call.

    structlog's own lazy proxy binds a fresh logger on every call (about 5 µs, on every chat
    request), and its `cache_logger_on_first_use` would pin the first configuration forever,
    while tests and `chatctl` configure logging more than once per process.
    """

    __slots__ = ("_bound", "_generation", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._generation = -1
        self._bound: Any = None

    def __getattr__(self, method: str) -> Any:
        if self._generation != _generation:
            self._bound = structlog.get_logger(self._name).bind()
            self._generation = _generation
        return getattr(self._bound, method)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return _CachedLogger(name)
