"""Structured JSON logging to the log file and stdout, with personal data kept out.

Lines carry the runbook's greppable phrases as event names (`Category detection`,
`Lead submission`, `Performance:`) and the level in capitals, so `grep -c ERROR` counts errors.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import msgspec
import structlog
from structlog.typing import EventDict, WrappedLogger

from common._redaction import redact
from common._settings import LogSettings

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


def _finish(_: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """Level in capitals, timestamp, and personal data redacted, in one pass."""
    event["level"] = _LEVELS.get(method, method.upper())
    event["timestamp"] = _clock.now()
    return redact(event)


def _serialize(event: EventDict, **_: Any) -> bytes:
    """Anything msgspec cannot encode natively (exceptions, paths) is written as its str()."""
    return _encoder.encode(event)


class LogPipeline:
    """One logging set-up: its sinks, the batch of pending INFO lines, and the flusher thread.

    Warnings and errors are written at once. INFO and DEBUG lines (one per chat request) are
    batched and written within `flush_interval` seconds by this pipeline's flusher thread: two
    write calls per request were a fifth of the legacy hop's cost. A crash loses at most that
    much of INFO, never a warning or an error, and lines keep their order. `close()` writes what
    is pending, stops the thread and closes the log file.
    """

    def __init__(
        self, sinks: list[IO[bytes]], flush_interval: float, owned: list[IO[bytes]]
    ) -> None:
        self._sinks = sinks
        self._owned = owned
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self.flush_interval = flush_interval
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        if flush_interval > 0:
            self._thread = threading.Thread(
                target=self._flush_forever, name="log-flusher", daemon=True
            )
            self._thread.start()

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

    def close(self) -> None:
        """Writes pending lines, stops the flusher and closes the files this pipeline opened."""
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.flush()
        for sink in self._owned:
            with contextlib.suppress(OSError):
                sink.close()

    def _flush_forever(self) -> None:
        while not self._closed.wait(self.flush_interval):
            self.flush()

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
_installed: LogPipeline | None = None
"""The pipeline structlog writes to. Process-wide because structlog's configuration is."""


def flush_logs() -> None:
    """Writes batched INFO lines now (at shutdown, or before reading the log file)."""
    if _installed is not None:
        _installed.flush()


def configure_logging(
    settings: LogSettings, *, extra_sinks: list[IO[bytes]] | None = None
) -> LogPipeline:
    """Points structlog at the log file (created with its folder) and, when asked, stdout;
    the previous set-up is flushed and closed first. Returns the new pipeline."""
    global _installed  # noqa: PLW0603 - mirrors structlog's own process-wide configuration
    sinks: list[IO[bytes]] = list(extra_sinks or [])
    owned: list[IO[bytes]] = []
    if settings.stdout:
        sinks.append(sys.stdout.buffer)
    if settings.file:
        path = Path(settings.file)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # 0600 from creation: a line may name a lead's id, a client's address, an error's text
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        owned.append(os.fdopen(fd, "ab"))
        sinks.append(owned[-1])
    previous, _installed = _installed, None
    if previous is None:
        atexit.register(flush_logs)
    else:
        previous.close()  # lines of the previous set-up go where they were meant to
    pipeline = _installed = LogPipeline(sinks, settings.flush_interval_seconds, owned)
    level = logging.getLevelNamesMapping().get(settings.level, logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,  # before _finish: tracebacks are redacted too
            _finish,
            structlog.processors.JSONRenderer(serializer=_serialize),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_: pipeline,
        cache_logger_on_first_use=False,
    )
    # Library loggers (httpx logs a line per request at INFO) stay quiet unless they warn.
    for noisy in ("httpx", "httpcore", "openai", "UnleashClient", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return pipeline


class _CachedLogger:
    """A module's logger, bound once per `configure_logging` call.

    structlog's own lazy proxy binds a fresh logger on every call (about 5 µs, on every chat
    request), and its `cache_logger_on_first_use` would pin the first configuration forever,
    while tests and `chatctl` configure logging more than once per process.
    """

    __slots__ = ("_bound", "_bound_to", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._bound_to: LogPipeline | None = None
        self._bound: Any = None

    def __getattr__(self, method: str) -> Any:
        if self._bound_to is not _installed or self._bound is None:
            self._bound = structlog.get_logger(self._name).bind()
            self._bound_to = _installed
        return getattr(self._bound, method)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return _CachedLogger(name)
