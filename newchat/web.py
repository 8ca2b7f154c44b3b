"""HTTP layer of the engine: thin handlers over `Engine`, and the one place errors become HTTP.

Routes (the public contract): POST/GET/HEAD /api/chat, GET/POST /api/cron/process-leads.
"""

from __future__ import annotations

import asyncio
import hmac
import time

import msgspec
from litestar import Request, Response, get, head, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, PermissionDeniedException
from redis.exceptions import RedisError

from newchat.clientip import client_address
from newchat.conversation import ChatReply
from newchat.engine import Engine
from newchat.errors import ChatError, DependencyDown, InvalidField, InvalidRequest, RateLimited
from newchat.health import health_report
from newchat.logs import get_logger
from newchat.sessions import new_session_id

_log = get_logger("newchat.web")
_json = msgspec.json.Encoder()
CRON_TIME_BUDGET_SECONDS = 20.0


class ChatRequest(msgspec.Struct, forbid_unknown_fields=True):
    message: str
    sessionId: str | None = None  # noqa: N815 - the public contract's spelling


class ErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    detail: str
    action: str | None = None


def provide_engine(state: State) -> Engine:
    engine: Engine = state.engine
    return engine


ENGINE = {"engine": Provide(provide_engine, sync_to_thread=False)}
EngineDep = NamedDependency[Engine]


def json_response(
    body: object,
    status: int = 200,
    headers: dict[str, str] | None = None,
    set_cookie: str | None = None,
) -> Response[bytes]:
    if set_cookie is not None:
        headers = {**(headers or {}), "set-cookie": set_cookie}
    return Response(
        _json.encode(body), status_code=status, media_type="application/json", headers=headers
    )


def session_cookie(engine: Engine, session_id: str) -> str:
    """The session cookie's `Set-Cookie` value. Written by hand: the signed id needs no quoting,
    and Litestar's `Cookie` costs about 40 µs a turn (it goes through `dataclasses.asdict`)."""
    s = engine.settings.session
    cookie = (
        f"{s.cookie_name}={engine.signer.sign(session_id)}; Path=/; Max-Age={s.ttl_seconds}; "
        "HttpOnly; SameSite=lax"
    )
    return f"{cookie}; Secure" if s.cookie_secure else cookie


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


def client_key(request: Request[object, object, State], engine: EngineDep) -> str:
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers, engine.settings.server.trusted_proxies)


def is_shadow_request(request: Request[object, object, State], engine: Engine) -> bool:
    """A mirrored turn from the gateway. `X-Shadow-Request` without the gateway's key is refused:
    no visitor can make the engine skip its rate limit or write outside the real namespace."""
    if request.headers.get("x-shadow-request") != "1":
        return False
    given = request.headers.get("x-shadow-auth", "").encode()
    if not hmac.compare_digest(given, engine.shadow_key.encode()):
        raise PermissionDeniedException("shadow requests are accepted from the gateway only")
    return True


@post("/api/chat", dependencies=ENGINE)
async def chat(request: Request[object, object, State], engine: EngineDep) -> Response[bytes]:
    chat_request = parse_chat_request(
        await request.body(), engine.settings.session.max_message_chars
    )
    if is_shadow_request(request, engine):
        shadow = engine.shadow_conversation
        state = await shadow.resume(chat_request.sessionId)
        return json_response(await shadow.turn(state, chat_request.message))
    decision = await engine.limiter.hit(client_key(request, engine))
    if not decision.allowed:
        engine.metrics.rate_limited.labels(
            mode="emergency" if decision.emergency else "normal"
        ).inc()
        raise RateLimited("too many messages; please wait a moment", decision.retry_after)
    cookie_id = engine.signer.unsign(request.cookies.get(engine.settings.session.cookie_name))
    state = await engine.conversation.resume(chat_request.sessionId, cookie_id)
    reply: ChatReply = await engine.conversation.turn(state, chat_request.message)
    return json_response(reply, set_cookie=session_cookie(engine, reply.sessionId))


@get("/api/chat", dependencies=ENGINE)
async def chat_health(
    request: Request[object, object, State], engine: EngineDep
) -> Response[bytes]:
    report = await health_report(engine)
    status = 503 if report.status == "down" else 200
    return json_response(report, status, set_cookie=_probe_cookie(request, engine))


@head("/api/chat", dependencies=ENGINE)
async def chat_head(request: Request[object, object, State], engine: EngineDep) -> Response[None]:
    """`curl -I /api/chat` (runbook: check cookie configuration) shows the cookie's settings."""
    return Response(None, headers={"set-cookie": _probe_cookie(request, engine)})


def _probe_cookie(request: Request[object, object, State], engine: EngineDep) -> str:
    """Refreshes a valid cookie, or shows the settings on a fresh id that no session uses yet."""
    current = engine.signer.unsign(request.cookies.get(engine.settings.session.cookie_name))
    return session_cookie(engine, current or new_session_id())


@get(
    "/api/cron/process-leads",
    dependencies=ENGINE,
)
async def queue_status(engine: EngineDep) -> Response[bytes]:
    status = await engine.queue.status()
    body = msgspec.structs.asdict(status) | {
        "leadprosper_configured": engine.leadprosper.configured
    }
    return json_response(body)


@post(
    "/api/cron/process-leads",
    dependencies=ENGINE,
    status_code=200,
)
async def process_leads(
    request: Request[object, object, State], engine: EngineDep
) -> Response[bytes]:
    """Runbook: "Process stuck jobs manually". Re-queues stuck leads, then drains for a while."""
    given = request.headers.get("x-cron-secret", "")
    expected = engine.settings.cron_secret
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        detail = "missing or wrong x-cron-secret" if expected else "CRON_SECRET is not set"
        return json_response(ErrorBody("unauthorized", detail), 401)
    requeued = await engine.queue.requeue_stuck()
    promoted = await engine.queue.promote_due()
    worker = engine.worker(worker_id=f"cron:{new_session_id()[:8]}")
    summary = await worker.run(burst=True, deadline=time.monotonic() + CRON_TIME_BUDGET_SECONDS)
    status = await engine.queue.status()
    body = {
        "requeued_stuck": requeued,
        "promoted_retries": promoted,
        "processed": msgspec.structs.asdict(summary),
        "queue": msgspec.structs.asdict(status),
    }
    return json_response(body)


def _as_domain_error(exc: Exception) -> Exception:
    """Redis failures reach the handler as redis-py errors; they mean one thing to a visitor."""
    if isinstance(exc, RedisError | ConnectionError | asyncio.TimeoutError):
        return DependencyDown(
            "redis",
            "the chat's session store (Redis) is unreachable",
            "retry shortly; operators: start redis-server or fix REDIS_URL",
        )
    return exc


def _error_response(request: Request[object, object, State], exc: Exception) -> Response[bytes]:
    original, exc = exc, _as_domain_error(exc)
    if isinstance(exc, RateLimited):
        return json_response(
            ErrorBody(exc.code, exc.detail), 429, headers={"retry-after": str(exc.retry_after)}
        )
    if isinstance(exc, DependencyDown):
        _log.error(
            "Dependency unavailable",
            dependency=exc.dependency,
            path=request.url.path,
            error=type(original).__name__,
            action=exc.action,
        )
        return json_response(ErrorBody(exc.code, exc.detail, exc.action), 503)
    if isinstance(exc, ChatError):
        status = 422 if isinstance(exc, InvalidField) else 400
        return json_response(ErrorBody(exc.code, exc.detail), status)
    if isinstance(exc, HTTPException):
        return json_response(
            ErrorBody("http_error", exc.detail), exc.status_code, headers=exc.headers
        )
    _log.exception("Unhandled error", path=request.url.path)
    return json_response(ErrorBody("internal_error", "something went wrong on our side"), 500)


EXCEPTION_HANDLERS = {Exception: _error_response, HTTPException: _error_response}
ROUTES = [chat, chat_health, chat_head, queue_status, process_leads]
