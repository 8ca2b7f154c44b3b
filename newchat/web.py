"""HTTP layer of the engine: thin Litestar handlers over `Engine`.

Routes (the public contract): POST/GET/HEAD /api/chat, GET/POST /api/cron/process-leads. A chat
turn itself and the mapping of errors to HTTP live in `newchat.turn`, shared with the gateway.
"""

from __future__ import annotations

import hmac
import time

import msgspec
from litestar import Request, Response, get, head, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException

from newchat.engine import Engine
from newchat.health import health_report
from newchat.sessions import new_session_id
from newchat.turn import (
    JSON,
    ErrorBody,
    HttpReply,
    TurnRequest,
    chat_turn,
    error_reply,
    session_cookie,
)

_json = msgspec.json.Encoder()
CRON_TIME_BUDGET_SECONDS = 20.0


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


@post("/api/chat", dependencies=ENGINE)
async def chat(request: Request[object, object, State], engine: EngineDep) -> Response[bytes]:
    turn = TurnRequest(
        body=await request.body(),
        headers=request.headers,
        session_cookie=request.cookies.get(engine.settings.session.cookie_name),
        peer=request.client.host if request.client else None,
    )
    return as_response(await chat_turn(engine, turn))


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


def as_response(reply: HttpReply) -> Response[bytes]:
    return Response(
        reply.body, status_code=reply.status, media_type=JSON, headers=dict(reply.headers)
    )


def _error_response(request: Request[object, object, State], exc: Exception) -> Response[bytes]:
    if isinstance(exc, HTTPException):  # Litestar's own: unknown route, wrong method, too large
        return json_response(
            ErrorBody("http_error", exc.detail), exc.status_code, headers=exc.headers
        )
    return as_response(error_reply(exc, request.url.path))


EXCEPTION_HANDLERS = {Exception: _error_response, HTTPException: _error_response}
ROUTES = [chat, chat_health, chat_head, queue_status, process_leads]
