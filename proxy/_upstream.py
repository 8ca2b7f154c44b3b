"""Backends the gateway sends a request to. One method: `send(request) -> UpstreamReply`.

`HttpUpstream` speaks HTTP/1.1 over a pool of keep-alive connections (`_http1`, chosen by
measurement: see docs/benchmarks.md): legacy PHP, or a remote new engine. The new engine in the
gateway's own process is `EngineUpstream` (`_in_process`), which calls its endpoints directly.

Both raise only `UpstreamError`, whose `kind` says what went wrong (connect, timeout, bad_reply,
too_large, failed); the gateway turns it into a clean 502/504 or a failover. Each reply carries
the conversation it names (`session_id`), read once where the reply is received.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

from common import RawHeaders
from proxy._errors import Http1Error, UpstreamError
from proxy._headers import Visitor, forwarding_headers, returned_headers
from proxy._http1 import Http1Pool
from proxy._pins import session_id_in
from proxy._settings import UpstreamSettings


class ForwardRequest(NamedTuple):
    method: str
    query: bytes
    headers: RawHeaders
    """The visitor's headers as received; an HTTP backend gets them filtered
    (`_headers.forwarding_headers`), the in-process engine never reads them."""
    body: bytes
    visitor: Visitor
    path: str | None = None
    """A path other than the backend's configured chat endpoint (e.g. the cron endpoint)."""
    shadow: bool = False
    """A mirrored turn: the backend is told (`X-Shadow-Request: 1`) and keeps no side effects.
    Its `headers` are not forwarded: a mirrored turn carries its message only."""


class UpstreamReply(NamedTuple):
    status: int
    headers: RawHeaders
    body: bytes
    session_id: str | None = None
    """The conversation a chat turn's reply names (validated: it names Redis keys), or None."""


class Upstream(Protocol):
    async def send(self, request: ForwardRequest) -> UpstreamReply: ...


_SHADOW_HEADERS: RawHeaders = [(b"content-type", b"application/json"), (b"x-shadow-request", b"1")]


class HttpUpstream:
    """A backend reached over HTTP. The connection pool is opened in the running loop by `start()`.

    `shadow_key`, for a remote new engine, goes with mirrored turns in `X-Shadow-Auth`; legacy
    gets none (it honours `X-Shadow-Request` only when the operator marked it safe)."""

    def __init__(self, settings: UpstreamSettings, *, shadow_key: str = "") -> None:
        self._settings = settings
        parts = urlsplit(settings.url)
        self._path = parts.path or "/"
        self._query = parts.query.encode("latin-1")
        self._shadow_headers = _SHADOW_HEADERS + (
            [(b"x-shadow-auth", shadow_key.encode())] if shadow_key else []
        )
        self._pool: Http1Pool | None = None
        self._stripped = frozenset(h.encode("latin-1") for h in settings.stripped_reply_headers)

    async def start(self) -> None:
        s = self._settings
        self._pool = Http1Pool(
            s.url,
            pool_size=s.pool_size,
            connect_timeout=s.connect_timeout_seconds,
            read_timeout=s.read_timeout_seconds,
            max_reply_bytes=s.max_reply_bytes,
            idle_seconds=s.keepalive_seconds,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @property
    def url(self) -> str:
        return self._settings.url

    def target_for(self, query: bytes, path: str | None = None) -> bytes:
        """The configured path (or `path`) with the configured query string (`LEGACY_URL`'s,
        for the configured path only) and the visitor's appended after it: a legacy routed by
        `?route=chat` keeps its route whatever the visitor adds."""
        target = (path or self._path).encode("latin-1")
        configured = self._query if path is None else b""
        joined = b"&".join(part for part in (configured, query) if part)
        return target + b"?" + joined if joined else target

    async def send(self, request: ForwardRequest) -> UpstreamReply:
        if self._pool is None:
            raise UpstreamError("failed", "the gateway's HTTP client is not started")
        headers = (
            self._shadow_headers
            if request.shadow
            else forwarding_headers(request.headers, request.visitor)
        )
        try:
            reply = await self._pool.request(
                request.method, self.target_for(request.query, request.path), headers, request.body
            )
        except Http1Error as exc:
            raise UpstreamError(exc.kind, exc.detail) from exc
        turn = request.method == "POST" and request.path is None
        return UpstreamReply(
            reply.status,
            returned_headers(reply.headers, self._stripped),
            reply.body,
            session_id_in(reply.body) if turn else None,
        )
