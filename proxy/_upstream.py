"""Backends the gateway sends a request to. One method: `send(request) -> UpstreamReply`.

`HttpUpstream` speaks HTTP/1.1 over a pool of keep-alive connections (`_http1`, chosen by
measurement: see README "Gateway performance").
`AsgiUpstream` calls the new engine's ASGI app in the same process, with no socket at all.

Both raise only `UpstreamError`, whose `kind` says what went wrong (connect, timeout, bad_reply,
too_large, failed); the gateway turns it into a clean 502/504 or a failover.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple, Protocol
from urllib.parse import urlsplit

from proxy._headers import RawHeaders, returned_headers
from proxy._http1 import Http1Error, Http1Pool
from proxy._settings import UpstreamSettings

UpstreamErrorKind = Literal["connect", "timeout", "bad_reply", "too_large", "failed"]
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class UpstreamError(Exception):
    def __init__(self, kind: UpstreamErrorKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class ForwardRequest(NamedTuple):
    method: str
    query: bytes
    headers: RawHeaders
    """Lower-case names, already filtered for forwarding (see `_headers.forwarding_headers`)."""
    body: bytes
    scope: dict[str, Any]
    """The visitor's ASGI scope (client address, scheme), for in-process backends."""
    path: str | None = None
    """A path other than the backend's configured chat endpoint (e.g. the cron endpoint)."""


class UpstreamReply(NamedTuple):
    status: int
    headers: RawHeaders
    body: bytes


class Upstream(Protocol):
    async def send(self, request: ForwardRequest) -> UpstreamReply: ...


class HttpUpstream:
    """A backend reached over HTTP. The connection pool is opened in the running loop by `start()`."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self._settings = settings
        parts = urlsplit(settings.url)
        self._path = parts.path or "/"
        self._query = parts.query.encode("latin-1")
        self._pool: Http1Pool | None = None

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
        """The configured path (or `path`) with the visitor's raw query string, else the
        configured one."""
        target = (path or self._path).encode("latin-1")
        query = query or (self._query if path is None else b"")
        return target + b"?" + query if query else target

    async def send(self, request: ForwardRequest) -> UpstreamReply:
        if self._pool is None:
            raise UpstreamError("failed", "the gateway's HTTP client is not started")
        try:
            reply = await self._pool.request(
                request.method,
                self.target_for(request.query, request.path),
                request.headers,
                request.body,
            )
        except Http1Error as exc:
            raise UpstreamError(exc.kind, exc.detail) from exc
        return UpstreamReply(reply.status, returned_headers(reply.headers), reply.body)


class AsgiUpstream:
    """The new engine's ASGI app in this process: same HTTP semantics, no socket."""

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self._app = app
        self._timeout = timeout_seconds

    async def send(self, request: ForwardRequest) -> UpstreamReply:
        visitor = request.scope
        headers = [*request.headers]
        headers.append((b"content-length", str(len(request.body)).encode()))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": visitor.get("http_version", "1.1"),
            "method": request.method,
            "scheme": visitor.get("scheme", "http"),
            "path": request.path or visitor["path"],
            "raw_path": (request.path or visitor["path"]).encode(),
            "root_path": "",
            "query_string": request.query,
            "headers": headers,
            "client": visitor.get("client"),
            "server": visitor.get("server"),
            "state": {},
        }
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if sent_body:
                await asyncio.Event().wait()  # like a client that stays connected
            sent_body = True
            return {"type": "http.request", "body": request.body, "more_body": False}

        status = 500
        reply_headers: RawHeaders = []
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, reply_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                reply_headers = returned_headers(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            async with asyncio.timeout(self._timeout):
                await self._app(scope, receive, send)
        except TimeoutError as exc:
            raise UpstreamError("timeout", f"no reply within {self._timeout:g}s") from exc
        except Exception as exc:
            raise UpstreamError("failed", f"{type(exc).__name__}") from exc
        return UpstreamReply(status, reply_headers, b"".join(chunks))
