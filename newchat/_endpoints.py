"""The engine's endpoints with no web framework in between: typed requests in, `EngineReply` out.

The engine's own Litestar routes (`newchat._web`) and the gateway's in-process hop both call
these, so a turn runs the same code either way; in-process, the gateway hands over what it has
already read (body, session cookie, visitor address) and gets back the session id it needs for
routing, with no HTTP header bytes built and no reply body parsed in between.

Every outcome is an `EngineReply`; domain errors become their JSON status in `error_reply`,
the one place they meet HTTP. Nothing here raises for anything a request or a dependency causes.
"""

from __future__ import annotations

import hmac
import time
from typing import NamedTuple

import msgspec

from common import OutageState, StoreUnavailable, decode_json, get_logger, new_session_id
from newchat._conversation import ShadowChatReply, contact_values
from newchat._errors import (
    ChatError,
    DependencyDown,
    Forbidden,
    InvalidField,
    InvalidRequest,
    RateLimited,
)
from newchat._health import health_report
from newchat._services import Services

_log = get_logger("newchat.endpoints")
_json = msgspec.json.Encoder()
CHAT_PATH = "/api/chat"
CRON_PATH = "/api/cron/process-leads"


class ChatMessage(msgspec.Struct, forbid_unknown_fields=True):
    """The contract's request body."""

    message: str
    sessionId: str | None = None  # noqa: N815 - the public contract's spelling


class ErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    detail: str
    action: str | None = None


class TurnRequest(NamedTuple):
    """One chat turn as the engine needs it."""

    body: bytes
    """The request body as the visitor sent it (JSON, parsed here once)."""
    session_cookie: str | None
    """The signed session cookie (`chat_sid`) as sent, if any."""
    client: str
    """The visitor's address (the rate limit's key), resolved by the caller."""
    shadow: bool = False
    """A mirrored turn: shadow sessions, no rate limit, no cookie, no real lead. Only the
    gateway may ask for it (in-process, or with `X-Shadow-Auth` over HTTP)."""


class EngineReply(NamedTuple):
    """What the engine answers; `content-type: application/json` always applies."""

    status: int
    body: bytes
    session_id: str | None = None
    """The conversation this reply continues or starts (chat turns answered 200)."""
    set_cookie: str | None = None
    """The session cookie's `Set-Cookie` value."""
    retry_after: int | None = None
    """Seconds, with a 429."""
    allow: str | None = None
    """Methods allowed, with a 405."""


def parse_chat_message(body: bytes, max_chars: int) -> ChatMessage:
    """Raises InvalidRequest or InvalidField, saying what is wrong."""
    if not body.strip():
        raise InvalidRequest('the request body is empty; send JSON like {"message": "..."}')
    try:
        request = decode_json(body, type=ChatMessage)
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
    return ChatMessage(message=message, sessionId=request.sessionId)


def is_shadow_request(shadow_header: str | None, shadow_auth: str | None, key: str) -> bool:
    """For HTTP callers: `X-Shadow-Request: 1` is honoured only with the gateway's key in
    `X-Shadow-Auth` (constant-time compare); with a wrong or missing key it is Forbidden, so no
    visitor can skip the rate limit or write outside the real namespace."""
    if shadow_header != "1":
        return False
    if shadow_auth is None or not hmac.compare_digest(shadow_auth.encode(), key.encode()):
        raise Forbidden("shadow requests are accepted from the gateway only")
    return True


async def chat_turn(services: Services, request: TurnRequest) -> EngineReply:
    """POST /api/chat."""
    try:
        reply = await _turn(services, request)
    except Exception as exc:
        return error_reply(exc, CHAT_PATH, services.redis_outage)
    services.redis_outage.end()
    return reply


async def _turn(services: Services, request: TurnRequest) -> EngineReply:
    message = parse_chat_message(request.body, services.settings.session.max_message_chars)
    if request.shadow:
        shadow = services.shadow_conversation
        state = await shadow.resume(message.sessionId)
        reply = await shadow.turn(state, message.message)
        mirrored = ShadowChatReply(
            **msgspec.structs.asdict(reply), contact=contact_values(state.contact)
        )
        return EngineReply(200, _json.encode(mirrored), reply.sessionId)
    conversation = services.conversation
    candidates = conversation.candidates(
        message.sessionId, services.cookies.unsign(request.session_cookie)
    )
    # One round trip: count the visitor and read the conversation's session.
    decision, sessions = await services.limiter.hit_and_read(
        request.client, [conversation.session_key(session_id) for session_id in candidates]
    )
    if not decision.allowed:
        services.metrics.rate_limited.labels(
            mode="emergency" if decision.emergency else "normal"
        ).inc()
        raise RateLimited("too many messages; please wait a moment", decision.retry_after)
    state = conversation.resume_read(zip(candidates, sessions, strict=True))
    reply = await conversation.turn(state, message.message)
    cookie = services.cookies.set_cookie(reply.sessionId)
    return EngineReply(200, _json.encode(reply), reply.sessionId, cookie)


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
"""Clients on this host: the runbook's `curl localhost:3000/...` sees operators' detail."""


class PublicHealth(msgspec.Struct):
    status: str


async def chat_health(
    services: Services, session_cookie: str | None, client: str = "127.0.0.1"
) -> EngineReply:
    """GET /api/chat: the engine's dependencies; 503 when one it cannot serve without is down.
    The whole report (queue counts, live workers, what is configured, each failure's detail
    and action) only for a client on this host (its address as read through
    `TRUSTED_PROXIES`, as for the cron status); anyone else gets `{"status": ...}` alone.
    Sets the session cookie as `cookie_probe` does."""
    report = await health_report(services)  # each check reports its own failure
    status = 503 if report.status == "down" else 200
    cookie = cookie_probe(services, session_cookie).set_cookie
    shown = report if client in LOOPBACK else PublicHealth(report.status)
    return EngineReply(status, _json.encode(shown), set_cookie=cookie)


def cookie_probe(services: Services, session_cookie: str | None) -> EngineReply:
    """HEAD /api/chat (runbook: "check cookie configuration", `curl -I`): refreshes a valid
    cookie, or shows the settings on a fresh id that no session uses yet."""
    current = services.cookies.unsign(session_cookie)
    return EngineReply(
        200, b"", set_cookie=services.cookies.set_cookie(current or services.cookies.mint_id())
    )


async def _cron_secret_refusal(
    services: Services, secret: str | None, client: str
) -> EngineReply | None:
    """None when `secret` is the cron secret (constant-time compare); else the reply: 401, or
    429 once the client made too many attempts. Every attempt counts, right or wrong, and a
    limited client gets 429 whatever it sends, so the answer never tells a right guess from a
    wrong one (it did: 200 for the right secret while wrong ones got 429)."""
    expected = services.settings.cron.secret
    if not expected:
        return EngineReply(401, _json.encode(ErrorBody("unauthorized", "CRON_SECRET is not set")))
    try:
        decision = await services.limiter.hit(f"cron-auth:{client}")
    except StoreUnavailable as exc:
        return error_reply(exc, CRON_PATH, services.redis_outage)
    if not decision.allowed:
        services.metrics.rate_limited.labels(mode="cron_secret").inc()
        wait = RateLimited("too many cron requests; wait a moment", decision.retry_after)
        return error_reply(wait, CRON_PATH)
    if secret is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        detail = "missing or wrong x-cron-secret"
        return EngineReply(401, _json.encode(ErrorBody("unauthorized", detail)))
    return None


async def cron_status(
    services: Services, secret: str | None = None, client: str = "127.0.0.1"
) -> EngineReply:
    """GET /api/cron/process-leads: queue counts and whether LeadProsper is configured, for a
    client on this host (the runbook's `curl localhost:3000/...`; its address as read through
    `TRUSTED_PROXIES`) or with the cron secret: it names workers' hosts and pids, nothing a
    visitor through nginx should read."""
    if client not in LOOPBACK:
        refused = await _cron_secret_refusal(services, secret, client)
        if refused is not None:
            return refused
    try:
        status = await services.queue.status()
    except Exception as exc:
        return error_reply(exc, CRON_PATH, services.redis_outage)
    body = msgspec.structs.asdict(status) | {
        "leadprosper_configured": services.leadprosper.configured
    }
    return EngineReply(200, _json.encode(body))


async def cron_process(
    services: Services, secret: str | None, client: str = "unknown"
) -> EngineReply:
    """POST /api/cron/process-leads (runbook: "Process stuck jobs manually"): with the right
    `x-cron-secret` (`_cron_secret_refusal`: none configured refuses everyone; every attempt
    counts against the client's rate limit, then 429), re-queues stuck
    leads, promotes due retries, then drains the queue until its time budget
    (`CRON_BUDGET`, shorter than the gateway's hop timeout) runs out."""
    refused = await _cron_secret_refusal(services, secret, client)
    if refused is not None:
        return refused
    deadline = time.monotonic() + services.settings.cron.budget_seconds
    try:
        requeued = await services.queue.requeue_stuck()
        promoted = await services.queue.promote_due()
        worker = services.worker(worker_id=f"cron:{new_session_id()[:8]}")
        summary = await worker.run(burst=True, deadline=deadline)
        status = await services.queue.status()
    except Exception as exc:
        return error_reply(exc, CRON_PATH, services.redis_outage)
    body = {
        "requeued_stuck": requeued,
        "promoted_retries": promoted,
        "processed": msgspec.structs.asdict(summary),
        "queue": msgspec.structs.asdict(status),
    }
    return EngineReply(200, _json.encode(body))


def not_allowed(allowed: str) -> EngineReply:
    """A method the path does not take (405, with `Allow`)."""
    body = _json.encode(ErrorBody("http_error", "Method Not Allowed"))
    return EngineReply(405, body, allow=allowed)


def error_reply(exc: Exception, path: str, outage: OutageState | None = None) -> EngineReply:
    """The engine's errors as JSON replies: the one place they become HTTP. A Redis failure is
    logged as an ERROR when it starts an `outage` (or without one), else as a warning."""
    if isinstance(exc, StoreUnavailable):
        log = _log.error if outage is None or outage.begin() else _log.warning
        log(
            "Dependency unavailable",
            dependency="redis",
            path=path,
            error=exc.kind,
            action=exc.action,
        )
        state = "unreachable" if exc.kind in ("unreachable", "timeout") else "unavailable"
        body = ErrorBody(  # the operators' action goes to the log line above, not to visitors
            DependencyDown.code, f"the chat's session store (Redis) is {state}", "retry shortly"
        )
        return EngineReply(503, _json.encode(body))
    if isinstance(exc, RateLimited):
        return EngineReply(
            429, _json.encode(ErrorBody(exc.code, exc.detail)), retry_after=exc.retry_after
        )
    if isinstance(exc, DependencyDown):
        _log.error(
            "Dependency unavailable", dependency=exc.dependency, path=path, action=exc.action
        )
        return EngineReply(503, _json.encode(ErrorBody(exc.code, exc.detail, "retry shortly")))
    if isinstance(exc, ChatError):
        status = (
            422 if isinstance(exc, InvalidField) else 403 if isinstance(exc, Forbidden) else 400
        )
        return EngineReply(status, _json.encode(ErrorBody(exc.code, exc.detail)))
    _log.exception("Unhandled error", path=path)
    internal = ErrorBody("internal_error", "something went wrong on our side")
    return EngineReply(500, _json.encode(internal))
