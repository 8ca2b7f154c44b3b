"""The new engine running in the gateway's process, as an upstream.

Chat turns (`POST` to the chat path) call `newchat.turn.chat_turn` directly: the same code the
engine's own Litestar route runs, without Litestar's routing, dependency injection and response
objects (about a third of the engine's CPU per turn). Anything else (`GET`/`HEAD` health probes,
the cron endpoint) goes through the engine's ASGI app.
"""

from __future__ import annotations

import asyncio

from newchat.cookies import read_cookies
from newchat.engine import Engine
from newchat.turn import TurnRequest, chat_turn
from proxy._upstream import ASGIApp, AsgiUpstream, ForwardRequest, UpstreamError, UpstreamReply

_TURN_HEADERS = frozenset({b"x-forwarded-for", b"x-real-ip", b"x-shadow-request", b"x-shadow-auth"})
_JSON = (b"content-type", b"application/json")


class InProcessEngine:
    def __init__(self, engine: Engine, app: ASGIApp, timeout_seconds: float) -> None:
        self._engine = engine
        self._asgi = AsgiUpstream(app, timeout_seconds)
        self._timeout = timeout_seconds
        self._cookie_name = engine.settings.session.cookie_name

    async def send(self, request: ForwardRequest) -> UpstreamReply:
        if request.method != "POST" or request.path is not None:
            return await self._asgi.send(request)
        headers: dict[str, str] = {}
        cookie_headers: list[str] = []
        for name, value in request.headers:
            if name in _TURN_HEADERS:
                headers[name.decode("latin-1")] = value.decode("latin-1")
            elif name == b"cookie":
                cookie_headers.append(value.decode("latin-1"))
        cookie = read_cookies(cookie_headers, (self._cookie_name,)).get(self._cookie_name)
        client = request.scope.get("client")
        turn = TurnRequest(request.body, headers, cookie, client[0] if client else None)
        try:
            async with asyncio.timeout(self._timeout):
                reply = await chat_turn(self._engine, turn)
        except TimeoutError as exc:
            raise UpstreamError("timeout", f"no reply within {self._timeout:g}s") from exc
        extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers]
        return UpstreamReply(reply.status, [_JSON, *extra], reply.body)
