"""Backends the gateway sends a request to. One method: `send(request) -> UpstreamReply`.

`HttpUpstream` speaks HTTP/1.1 over a pool of keep-alive connections (aiohttp's client: on this
machine it forwards at about eight times the rate of httpx, see README "Gateway performance").
`AsgiUpstream` calls the new engine's ASGI app in the same process, with no socket at all.

Both raise only `UpstreamError`, whose `kind` says what went wrong (connect, timeout, bad_reply,
too_large, failed); the gateway turns it into a clean 502/504 or a failover.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple, Protocol

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from proxy._headers import RawHeaders, returned_headers
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
    headers: list[tuple[str, str]]
    """Already filtered for forwarding (see `_headers.forwarding_headers`)."""
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
    """A backend reached over HTTP. The session is opened in the running loop by `start()`."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self._settings = settings
        self._base = URL(settings.url)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        s = self._settings
        connector = aiohttp.TCPConnector(
            limit=s.pool_size, limit_per_host=s.pool_size, keepalive_timeout=15, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # visitors' cookies must never be shared
            auto_decompress=False,  # bytes pass through as the backend sent them
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(
                total=s.connect_timeout_seconds + s.read_timeout_seconds,
                connect=s.connect_timeout_seconds,
                sock_read=s.read_timeout_seconds,
            ),
            read_bufsize=2**16,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def url(self) -> str:
        return self._settings.url

    def url_for(self, query: bytes, path: str | None = None) -> URL:
        """The configured URL (or its origin plus `path`) with the visitor's raw query string."""
        base = self._base if path is None else self._base.with_path(path)
        if not query:
            return base
        return URL(f"{str(base).split('?', 1)[0]}?{query.decode('latin-1')}", encoded=True)

    async def send(self, request: ForwardRequest) -> UpstreamReply:
        if self._session is None:
            raise UpstreamError("failed", "the gateway's HTTP client is not started")
        try:
            async with self._session.request(
                request.method,
                self.url_for(request.query, request.path),
                headers=CIMultiDict(request.headers),
                data=request.body or None,
                allow_redirects=False,
            ) as response:
                body = await self._read_bounded(response)
                return UpstreamReply(response.status, returned_headers(response.raw_headers), body)
        except UpstreamError:
            raise
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError("connect", f"cannot connect: {exc.os_error}") from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamError("timeout", "no complete reply within the timeout") from exc
        except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError) as exc:
            raise UpstreamError("bad_reply", f"malformed HTTP reply: {exc}") from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise UpstreamError("bad_reply", "closed the connection without a reply") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise UpstreamError("failed", f"{type(exc).__name__}: {exc}") from exc

    async def _read_bounded(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._settings.max_reply_bytes
        if response.content_length is not None and response.content_length > limit:
            raise UpstreamError("too_large", f"reply of {response.content_length} bytes")
        if response.content_length is not None:
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(2**16):
            size += len(chunk)
            if size > limit:
                raise UpstreamError("too_large", f"reply over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


class AsgiUpstream:
    """The new engine's ASGI app in this process: same HTTP semantics, no socket."""

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self._app = app
        self._timeout = timeout_seconds

    async def send(self, request: ForwardRequest) -> UpstreamReply:
        visitor = request.scope
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers]
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
