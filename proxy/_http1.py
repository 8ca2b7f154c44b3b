"""A small HTTP/1.1 keep-alive client for the gateway's hop to a backend it forwards to.

Why not aiohttp's client: measured alone against the legacy, aiohttp made about 5,600 requests/s
and this client about 11,500; a minimal forwarding app under uvicorn ran at 30 % of nginx
`proxy_pass` with the first and 62 % with the second (docs/benchmarks.md). The bytes are parsed
by llhttp (through httptools, the parser uvicorn serves with); this module only owns
connections: a bounded LIFO pool of keep-alive sockets, one request per connection at a time,
timeouts, replies bounded in size, and one resend when a kept-alive socket turns out closed.

What it does not do, on purpose: redirects, cookies, decompression, proxies, HTTP/2, streaming.
A reply is read whole (bounded by `max_reply_bytes`) before the visitor gets it.

Every failure is an `Http1Error` whose `kind` says what went wrong: `connect` (refused or no
connection within the connect timeout), `timeout` (no complete reply in time, or no free
connection), `bad_reply` (not HTTP, or closed mid-reply), `too_large`.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from typing import NamedTuple
from urllib.parse import urlsplit

import httptools

from common import RawHeaders
from proxy._errors import Http1Error, Http1ErrorKind

NON_IDEMPOTENT = frozenset({"POST", "PATCH", "LOCK"})
"""Methods never sent twice (RFC 9110 §9.2.2; nginx's `proxy_next_upstream` rule)."""


class _StaleConnection(Exception):
    """A reused keep-alive connection closed before a single byte of reply: an idempotent
    request is sent again."""


class Http1Reply(NamedTuple):
    status: int
    headers: RawHeaders
    """As the backend sent them (names in its own case, hop-by-hop ones included)."""
    body: bytes


class Origin(NamedTuple):
    """Where a pool connects, and the `Host` header it sends (RFC 9110 section 7.2: the port
    only when it is not the scheme's default; an IPv6 literal in brackets; IDNA for names)."""

    host: str
    port: int
    tls: bool
    host_header: bytes


def parse_origin(url: str) -> Origin:
    """Raises ValueError naming `url` when it is not an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    tls = parts.scheme == "https"
    default_port = 443 if tls else 80
    port = parts.port or default_port
    netloc = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port != default_port:
        netloc += f":{port}"
    return Origin(parts.hostname, port, tls, netloc.encode("idna"))


class _Connection(asyncio.Protocol):
    """One socket to the backend and the parser of the reply in progress on it."""

    def __init__(self, pool: Http1Pool) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.requests = 0
        self.reusable = False
        self._reply: asyncio.Future[Http1Reply] | None = None
        self._limit = 0
        self._head = False
        self._reset()

    def _reset(self) -> None:
        self._headers: RawHeaders = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._framed = False
        self._got_bytes = False

    def start(self, reply: asyncio.Future[Http1Reply], limit: int, head: bool) -> None:
        self._reply, self._limit, self._head = reply, limit, head
        self.reusable = False
        self._reset()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reply = self._reply
        if reply is None or reply.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("bad_reply", "the backend switched protocols")
        except httptools.HttpParserError as exc:
            self._fail("bad_reply", f"malformed HTTP reply ({exc})")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reply = self._reply
        if reply is None or reply.done():
            self._pool.forget(self)
            return
        if self._headers_done and not self._framed:
            self._finish()  # a body delimited by the end of the connection (HTTP/1.0 style)
        elif not self._got_bytes and self.requests > 1:
            reply.set_exception(_StaleConnection())
        else:
            where = "mid-reply" if self._got_bytes else "without a reply"
            self._fail("bad_reply", f"the backend closed the connection {where}")

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._headers_done:  # after the headers: chunked trailer fields, dropped as
            self._headers.append((name, value))  # nginx drops them (no Set-Cookie by a trailer)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if not 100 <= status <= 599:  # RFC 9110 §15: a server can send no other status line
            self._fail("bad_reply", f"status {status} is not an HTTP status")
            return
        if 100 <= status < 200:
            return  # an interim reply (100 Continue...): the real one follows
        self._headers_done = True
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"transfer-encoding":
                self._framed = True
            elif lowered == b"content-length":
                self._framed = True
                if value.strip().isdigit() and int(value) > self._limit:
                    self._fail("too_large", f"a reply of {int(value)} bytes")
                    return
        if self._head:
            self._finish(keep_alive=False)  # no body follows; the socket is not reused

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._limit:
            self._fail("too_large", f"a reply over {self._limit} bytes")
        else:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._headers = []
            return
        self._finish(keep_alive=self._parser.should_keep_alive())

    # outcome

    def _finish(self, keep_alive: bool = False) -> None:
        reply = self._reply
        if reply is None or reply.done():
            self.close()  # a second reply to one request: the connection is out of step
            return
        self.reusable = keep_alive and not self.closed
        status = self._parser.get_status_code()
        reply.set_result(Http1Reply(status, self._headers, b"".join(self._chunks)))

    def _fail(self, kind: Http1ErrorKind, detail: str) -> None:
        reply = self._reply
        if reply is not None and not reply.done():
            reply.set_exception(Http1Error(kind, detail))
        self.close()

    def send(self, data: bytes) -> None:
        """Writes a request. A transport already closing drops the bytes; asyncio calls
        connection_lost after every close, and that fails (or retries) the reply."""
        if self.transport is not None:
            self.transport.write(data)

    def timed_out(self, seconds: float) -> None:
        self._fail("timeout", f"no complete reply within {seconds:g}s")

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()  # idempotent: a closing transport ignores it


class Http1Pool:
    """Keep-alive connections to one origin. Use from one event loop; `close()` when done."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int,
        connect_timeout: float,
        read_timeout: float,
        max_reply_bytes: int,
        idle_seconds: float,
    ) -> None:
        """Limits in connections, seconds and bytes (their defaults live in
        `proxy.UpstreamSettings`). Raises ValueError when `url` is not an http(s) URL."""
        origin = parse_origin(url)
        self._host, self._port, self._host_header = origin.host, origin.port, origin.host_header
        self._ssl = ssl.create_default_context() if origin.tls else None
        self._size = pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_reply = max_reply_bytes
        self._idle_seconds = idle_seconds
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._closing = False

    @property
    def open_connections(self) -> int:
        return self._open

    async def request(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes = b""
    ) -> Http1Reply:
        """`target` is the path and query (`/api/chat?x=1`). The `Host` and `Content-Length`
        headers are the pool's to write; `headers` must come from a parsed request (no CR/LF)."""
        head = self._head_bytes(method, target, headers, body)
        try:
            return await self._exchange(head, body, method == "HEAD")
        except _StaleConnection:
            if method in NON_IDEMPOTENT:
                raise Http1Error(
                    "bad_reply",
                    "the backend closed a kept-alive connection without a reply; not sent "
                    "again (it may have run it)",
                ) from None
        # A kept-alive connection closed without a byte of reply: usually the backend dropped
        # an idle socket (its keep-alive timeout, a graceful reload) as it was reused. An
        # idempotent request is sent once more on a fresh connection, as browsers and nginx do
        # (a fresh connection is never stale: one that closes without a reply is a bad_reply).
        # A POST is not: the backend may have run it before dying (a chat turn sent twice made
        # legacy read a name as a phone number); idle connections are dropped before the
        # backend's own keep-alive timeout (`LEGACY_KEEPALIVE`), so that race stays rare.
        return await self._exchange(head, body, method == "HEAD", fresh=True)

    def _head_bytes(self, method: str, target: bytes, headers: RawHeaders, body: bytes) -> bytes:
        lines = [b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method.encode(), target, self._host_header)]
        lines.extend(b"%s: %s\r\n" % pair for pair in headers)
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            lines.append(b"content-length: %d\r\n" % len(body))
        lines.append(b"\r\n")
        return b"".join(lines)

    async def _exchange(
        self, head: bytes, body: bytes, is_head: bool, *, fresh: bool = False
    ) -> Http1Reply:
        loop = asyncio.get_running_loop()
        connection = await self._acquire(loop, fresh)
        reply: asyncio.Future[Http1Reply] = loop.create_future()
        connection.start(reply, self._max_reply, is_head)
        connection.requests += 1
        timer = loop.call_later(self._read_timeout, connection.timed_out, self._read_timeout)
        try:
            connection.send(head + body)  # one send; bodies are bounded (MAX_BODY_BYTES)
            return await reply
        finally:
            timer.cancel()
            self._release(connection)

    async def _acquire(self, loop: asyncio.AbstractEventLoop, fresh: bool) -> _Connection:
        self._refuse_if_closed()
        now = time.monotonic()
        while self._idle and not fresh:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self._idle_seconds:
                return connection
            connection.close()
            self._lost_slot()
        if self._open >= self._size:
            handed = await self._wait_for_turn(loop)
            if handed is not None:
                return handed
        return await self._connect(loop)

    def _refuse_if_closed(self) -> None:
        if self._closing:
            raise Http1Error("connect", "the client is closed")

    async def _wait_for_turn(self, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        """Waits for a released connection, or (None) for a free slot to connect in."""
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await waiter
        # Leaving the wait by timeout or cancellation cancels the waiter, unless a connection
        # (or a slot) was handed to it first: a waiter is always done past this point.
        except TimeoutError:
            if not waiter.cancelled():
                return waiter.result()  # handed over just as the wait ran out
            raise Http1Error(
                "timeout", f"all {self._size} connections busy for {self._connect_timeout:g}s"
            ) from None
        except BaseException:
            if not waiter.cancelled():
                handed = waiter.result()  # ours, but the request is gone: pass it on
                if handed is None:
                    self._hand_over(None)
                else:
                    self._release(handed)
            raise

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        self._refuse_if_closed()
        self._open += 1
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self),
                    self._host,
                    self._port,
                    ssl=self._ssl,  # verified against the host's name (asyncio's default)
                )
        except TimeoutError:
            self._lost_slot()
            raise Http1Error(
                "connect",
                f"no connection to {self._host}:{self._port} within {self._connect_timeout:g}s",
            ) from None
        except (OSError, ssl.SSLError) as exc:
            self._lost_slot()
            raise Http1Error(
                "connect", f"cannot connect to {self._host}:{self._port}: {exc}"
            ) from exc
        except BaseException:
            self._lost_slot()
            raise
        return connection

    def _release(self, connection: _Connection) -> None:
        """Back to the pool if the reply ended cleanly and the backend keeps the socket open."""
        if not connection.reusable or connection.closed or self._closing:
            connection.close()
            self._lost_slot()
            return
        if self._hand_over(connection):
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)
        oldest = self._idle[0]
        if connection.idle_since - oldest.idle_since >= self._idle_seconds:
            self._idle.pop(0)
            oldest.close()
            self._lost_slot()

    def forget(self, connection: _Connection) -> None:
        """The backend closed a connection that was idle (or already released)."""
        if connection in self._idle:
            self._idle.remove(connection)
            self._lost_slot()

    def _lost_slot(self) -> None:
        """A connection leaves the pool: each does once, from the idle list or from _release."""
        self._open -= 1
        self._hand_over(None)  # a slot is free: a waiting request opens its own connection

    def _hand_over(self, connection: _Connection | None) -> bool:
        """Gives a released connection (or a free slot) to the longest-waiting request."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    async def close(self) -> None:
        self._closing = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
            self._lost_slot()
        while self._hand_over(None):
            pass  # each queued request wakes to a free slot, which _connect refuses
        await asyncio.sleep(0)  # let the transports finish closing
