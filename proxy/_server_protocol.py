"""`GatewayHttpProtocol`: the HTTP/1.1 server protocol the gateway runs under uvicorn.

uvicorn's httptools protocol with what nginx has and llhttp lacks, and with the answers uvicorn
makes before any app runs in the chat's JSON contract:

- request headers within `MAX_HEADER_BYTES` (32 KiB, nginx's `large_client_header_buffers 4
  8k` here): more is 431 (RFC 6585 §5); a client once sent 50 MB and the process grew to 638 MB;
- headers within `HEADER_TIMEOUT_S` (10 s, nginx's `client_header_timeout` here; the app's
  `header_timeout_s`, HTTP_READ_TIMEOUT, for the gateway) of a
  connection opening or a request's first byte: a connection that sends nothing is closed, one
  stuck mid-headers gets 408 (RFC 9110 §15.5.9); slow clients were kept for ever;
- a request llhttp cannot parse gets a JSON 400 (uvicorn wrote `text/plain`), as do two Host
  headers (RFC 9112 §3.2) and a body with `Upgrade` (llhttp drops it);
- past the connection limit (`limit_concurrency`) a JSON 503 (uvicorn wrote `text/plain`).

Each of these is counted and logged by the app when it offers `PreAppAnswers` (the gateway
does); the body's own read time is bounded in the app (`proxy._gateway.read_body`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol, runtime_checkable

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 32 * 1024
HEADER_TIMEOUT_S = 10.0
LINGER_S = 2.0
"""How long a refused connection is read and dropped before it is closed (nginx: 5 s)."""
OVERLOADED_DETAIL = "the chat service is busy; please try again shortly"

_NOT_HTTP = "the request is not valid HTTP/1.1"
_json = msgspec.json.Encoder()
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@runtime_checkable
class PreAppAnswers(Protocol):
    """What an app offers so the answers made before it runs are counted like its own."""

    @property
    def header_timeout_s(self) -> float:
        """Seconds a request's headers may take (`HEADER_TIMEOUT_S` for other apps)."""

    def answered_before_app(self, status: int, reason: str, started: float) -> None:
        """Count and log one answer (`started`: `time.perf_counter()` at its start)."""

    async def overloaded(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI app that answers a request past the connection limit."""


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _refusal(status: int, code: str, detail: str) -> bytes:
    body = _json.encode({"error": code, "detail": detail})
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )


class GatewayHttpProtocol(HttpToolsProtocol):
    """Pass as uvicorn's `http=` (a class, so `--workers` can import it in each worker)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_headers = True
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._bad_request_detail = _NOT_HTTP
        self._refusal: tuple[int, str, str] | None = None
        self._discarding = False
        self._header_size = 0
        self._started = time.perf_counter()
        app = self.app
        self._header_timeout = (
            app.header_timeout_s if isinstance(app, PreAppAnswers) else HEADER_TIMEOUT_S
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:  # after a refusal: read and dropped until the close
            return
        if self._reading_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if not self._reading_headers or self.transport.is_closing():
            return
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(431, "headers_too_large", f"request headers over {MAX_HEADER_BYTES} bytes")
        elif self._header_bytes and self._header_timer is None:
            # armed only for headers split over reads: a request whose headers come in one read
            # (nearly all) costs no timer (arming one per request put 1.5 ms on the p99)
            self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._started = time.perf_counter()
        self._header_size = 0

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_header_bytes(self, size: int) -> None:
        """Headers parsed so far, however they arrived: a 100 KB header in one read passed
        the per-read count (a fresh helper, issue 17). Raising stops llhttp; uvicorn then calls
        `send_400_response`, which sends this 431 instead."""
        self._header_size += size
        if self._header_size > MAX_HEADER_BYTES:
            self._refusal = (
                431,
                "headers_too_large",
                f"request headers over {MAX_HEADER_BYTES} bytes",
            )
            raise ValueError(self._refusal[2])

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._cancel_header_timer()
        hosts = sum(1 for name, _ in self.headers if name == b"host")
        if hosts > 1 or (hosts == 0 and self.parser.get_http_version() == "1.1"):
            # RFC 9112 §3.2: exactly one Host, or 400 (nginx refuses two; the gateway took
            # either). Raising stops llhttp; uvicorn then calls send_400_response.
            self._bad_request_detail = "an HTTP/1.1 request needs exactly one Host header"
            raise ValueError(self._bad_request_detail)
        if self.parser.should_upgrade() and not self._should_upgrade() and _has_body(self.headers):
            # llhttp skips the body of a request that asks for an upgrade uvicorn then ignores
            # (`Upgrade: h2c`): the turn reached legacy empty. Without a body it is served.
            self._bad_request_detail = "a request with a body cannot ask for a protocol upgrade"
            raise ValueError(self._bad_request_detail)
        limit = self.limit_concurrency
        over = limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)
        if not over or not isinstance(self.app, PreAppAnswers):
            super().on_headers_complete()
            return
        app, self.app, self.limit_concurrency = self.app, self.app.overloaded, None
        try:  # uvicorn's own check would pick its plain-text 503: the app's JSON one instead
            super().on_headers_complete()
        finally:
            self.app, self.limit_concurrency = app, limit

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_headers = True  # what follows is the next request's
        self._header_bytes = 0

    def send_400_response(self, msg: str) -> None:
        detail, self._bad_request_detail = self._bad_request_detail, _NOT_HTTP
        refusal, self._refusal = self._refusal, None
        self._refuse(*(refusal or (400, "bad_request", detail)))

    def _refuse(self, status: int, code: str, detail: str) -> None:
        self._cancel_header_timer()
        if self.transport.is_closing() or self._discarding:
            return
        if isinstance(self.app, PreAppAnswers):
            self.app.answered_before_app(status, code, self._started)
        self.transport.write(_refusal(status, code, detail))
        # a lingering close, as nginx's: closing with the client's bytes still unread sends a
        # reset that can destroy the answer before the client reads it (seen under load with
        # 100 KB of headers); so the write side is shut, what still comes is read and dropped,
        # and the connection closes once the client does or after `LINGER_S`
        self._discarding = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self._header_timeout, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self._reading_headers or self.transport.is_closing():
            return
        if self._header_bytes:  # a request begun and never finished: say so
            self._refuse(408, "request_timeout", f"headers took over {self._header_timeout:g} s")
        else:  # nothing sent: close, as nginx does
            self.transport.close()
