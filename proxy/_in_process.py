"""The new engine running in the gateway's process, as an upstream.

It calls the engine's endpoints (`newchat.chat_turn`, `chat_health`, `cookie_probe`,
`cron_status`, `cron_process`) with what the gateway has already read (the body, the session
cookie, the visitor's address) and gets typed replies that carry the session id: no request
header bytes are built for it, and its reply body is never parsed. The same endpoints serve the
engine's own HTTP app, so a turn behaves the same in-process and remote.
"""

from __future__ import annotations

import asyncio

from common import RawHeaders, header_value
from newchat import (
    CHAT_PATH,
    CRON_PATH,
    EngineReply,
    Services,
    TurnRequest,
    chat_health,
    chat_turn,
    cookie_probe,
    cron_process,
    cron_status,
    error_reply,
    not_allowed,
)
from proxy._errors import UpstreamError
from proxy._upstream import ForwardRequest, UpstreamReply

_JSON = (b"content-type", b"application/json")


def reply_headers(reply: EngineReply) -> RawHeaders:
    """The engine reply's headers as the visitor gets them."""
    headers = [_JSON]
    if reply.set_cookie is not None:
        headers.append((b"set-cookie", reply.set_cookie.encode("latin-1")))
    if reply.retry_after is not None:
        headers.append((b"retry-after", str(reply.retry_after).encode()))
    if reply.allow is not None:
        headers.append((b"allow", reply.allow.encode()))
    return headers


class EngineUpstream:
    def __init__(self, services: Services, timeout_seconds: float) -> None:
        self._services = services
        self._timeout = timeout_seconds
        self.cookie_name = services.settings.session.cookie_name
        """The engine's session cookie, which the gateway reads with its own."""

    async def send(self, request: ForwardRequest) -> UpstreamReply:
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._call(request)
        except TimeoutError as exc:
            raise UpstreamError("timeout", f"no reply within {self._timeout:g}s") from exc
        return UpstreamReply(reply.status, reply_headers(reply), reply.body, reply.session_id)

    async def _call(self, request: ForwardRequest) -> EngineReply:
        services = self._services
        cookie = request.visitor.cookies.get(self.cookie_name)
        path = request.path or CHAT_PATH
        method = request.method
        if path == CHAT_PATH:
            if method == "POST":
                turn = TurnRequest(request.body, cookie, request.visitor.address, request.shadow)
                return await chat_turn(services, turn)
            if method == "GET":
                return await chat_health(services, cookie, request.visitor.address)
            if method == "HEAD":
                return cookie_probe(services, cookie)
            return not_allowed("GET, HEAD, POST")
        if path == CRON_PATH:
            secret = header_value(request.headers, b"x-cron-secret")
            if method in ("GET", "HEAD"):
                return await cron_status(
                    services, secret.decode("latin-1") if secret else None, request.visitor.address
                )
            if method == "POST":
                return await cron_process(
                    services, secret.decode("latin-1") if secret else None, request.visitor.address
                )
            return not_allowed("GET, POST")
        return error_reply(LookupError(path), path)  # the gateway sends no other path
