"""One chat turn as HTTP sees it, with no web framework in between.

The engine's Litestar route and the gateway's in-process hop both call `chat_turn`, so a turn
runs the same code either way; the gateway just skips Litestar's routing, dependency injection
and response objects, about a third of the engine's CPU per turn (README, "Benchmarks").
Every outcome is an `HttpReply`: domain errors become their JSON status here, in one place.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping
from typing import NamedTuple

import msgspec
from redis.exceptions import RedisError

from newchat.clientip import client_address
from newchat.engine import Engine
from newchat.errors import (
    ChatError,
    DependencyDown,
    Forbidden,
    InvalidField,
    InvalidRequest,
    RateLimited,
)
from newchat.logs import get_logger

_log = get_logger("newchat.turn")
_json = msgspec.json.Encoder()
JSON = "application/json"


class ChatRequest(msgspec.Struct, forbid_unknown_fields=True):
    message: str
    sessionId: str | None = None  # noqa: N815 - the public contract's spelling


class ErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    detail: str
    action: str | None = None


class TurnRequest(NamedTuple):
    body: bytes
    headers: Mapping[str, str]
    """Lower-case names (a plain dict, or a framework's case-insensitive headers)."""
    session_cookie: str | None
    """The signed session cookie as sent, if any."""
    peer: str | None
    """The address of whoever opened the connection (a proxy, or the visitor)."""


class HttpReply(NamedTuple):
    status: int
    body: bytes
    headers: list[tuple[str, str]]
    """Besides `content-type: application/json`, which every reply has."""


def parse_chat_request(body: bytes, max_chars: int) -> ChatRequest:
    if not body.strip():
        raise InvalidRequest('the request body is empty; send JSON like {"message": "..."}')
    try:
        request = msgspec.json.decode(body, type=ChatRequest)
    except msgspec.ValidationError as exc:
        raise InvalidField(str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise InvalidRequest("the request body is not valid UTF-8 JSON") from None
    message = request.message.strip()
    if not message:
        raise InvalidField("message must not be empty")
    if len(message) > max_chars:
        raise InvalidField(f"message is longer than {max_chars} characters")
    if "\x00" in message:
        raise InvalidField("message contains a NUL character")
    return ChatRequest(message=message, sessionId=request.sessionId)


def session_cookie(engine: Engine, session_id: str) -> str:
    """The session cookie's `Set-Cookie` value. Written by hand: the signed id needs no quoting,
    and Litestar's `Cookie` costs about 40 µs a turn (it goes through `dataclasses.asdict`)."""
    s = engine.settings.session
    cookie = (
        f"{s.cookie_name}={engine.signer.sign(session_id)}; Path=/; Max-Age={s.ttl_seconds}; "
        "HttpOnly; SameSite=lax"
    )
    return f"{cookie}; Secure" if s.cookie_secure else cookie


def is_shadow_request(headers: Mapping[str, str], engine: Engine) -> bool:
    """A mirrored turn from the gateway. `X-Shadow-Request` without the gateway's key is refused:
    no visitor can make the engine skip its rate limit or write outside the real namespace."""
    if headers.get("x-shadow-request") != "1":
        return False
    given = headers.get("x-shadow-auth", "").encode()
    if not hmac.compare_digest(given, engine.shadow_key.encode()):
        raise Forbidden("shadow requests are accepted from the gateway only")
    return True


async def chat_turn(engine: Engine, request: TurnRequest) -> HttpReply:
    """POST /api/chat. Never raises for anything a request or a dependency can cause."""
    try:
        return await _turn(engine, request)
    except Exception as exc:
        return error_reply(exc, "/api/chat")


async def _turn(engine: Engine, request: TurnRequest) -> HttpReply:
    chat_request = parse_chat_request(request.body, engine.settings.session.max_message_chars)
    if is_shadow_request(request.headers, engine):
        shadow = engine.shadow_conversation
        state = await shadow.resume(chat_request.sessionId)
        return HttpReply(200, _json.encode(await shadow.turn(state, chat_request.message)), [])
    visitor = client_address(request.peer, request.headers, engine.settings.server.trusted_proxies)
    conversation = engine.conversation
    candidates = conversation.candidates(
        chat_request.sessionId, engine.signer.unsign(request.session_cookie)
    )
    # One round trip: count the visitor and read the conversation's session.
    decision, sessions = await engine.limiter.hit_and_read(
        visitor, [conversation.session_key(session_id) for session_id in candidates]
    )
    if not decision.allowed:
        engine.metrics.rate_limited.labels(
            mode="emergency" if decision.emergency else "normal"
        ).inc()
        raise RateLimited("too many messages; please wait a moment", decision.retry_after)
    state = conversation.resume_read(zip(candidates, sessions, strict=True))
    reply = await conversation.turn(state, chat_request.message)
    return HttpReply(
        200, _json.encode(reply), [("set-cookie", session_cookie(engine, reply.sessionId))]
    )


def _as_domain_error(exc: Exception) -> Exception:
    """Redis failures reach the handler as redis-py errors; they mean one thing to a visitor."""
    if isinstance(exc, RedisError | ConnectionError | asyncio.TimeoutError):
        return DependencyDown(
            "redis",
            "the chat's session store (Redis) is unreachable",
            "retry shortly; operators: start redis-server or fix REDIS_URL",
        )
    return exc


def error_reply(exc: Exception, path: str) -> HttpReply:
    """The engine's errors as JSON replies: the one place they become HTTP."""
    original, exc = exc, _as_domain_error(exc)
    if isinstance(exc, RateLimited):
        body = _json.encode(ErrorBody(exc.code, exc.detail))
        return HttpReply(429, body, [("retry-after", str(exc.retry_after))])
    if isinstance(exc, DependencyDown):
        _log.error(
            "Dependency unavailable",
            dependency=exc.dependency,
            path=path,
            error=type(original).__name__,
            action=exc.action,
        )
        return HttpReply(503, _json.encode(ErrorBody(exc.code, exc.detail, exc.action)), [])
    if isinstance(exc, ChatError):
        status = (
            422 if isinstance(exc, InvalidField) else 403 if isinstance(exc, Forbidden) else 400
        )
        return HttpReply(status, _json.encode(ErrorBody(exc.code, exc.detail)), [])
    _log.exception("Unhandled error", path=path)
    body = _json.encode(ErrorBody("internal_error", "something went wrong on our side"))
    return HttpReply(500, body, [])
