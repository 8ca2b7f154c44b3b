"""The engine's HTTP routes: thin Litestar handlers over `newchat._endpoints`.

Routes (the public contract): POST/GET/HEAD /api/chat, GET/POST /api/cron/process-leads, and
GET /metrics. Each handler reads what the endpoint needs from the request (the body, the
session cookie by `common.request_cookies`, the visitor's address by `common.client_address`,
the gateway's shadow headers) and writes the `EngineReply` back.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Request, Response, get, head, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common import RawHeaders, client_address, header_value, request_cookies
from newchat._endpoints import (
    CHAT_PATH,
    CRON_PATH,
    EngineReply,
    ErrorBody,
    TurnRequest,
    chat_health,
    chat_turn,
    cookie_probe,
    cron_process,
    cron_status,
    error_reply,
    is_shadow_request,
)
from newchat._services import Services

_json = msgspec.json.Encoder()
AnyRequest = Request[Any, Any, State]


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


SERVICES = {"services": Provide(provide_services, sync_to_thread=False)}
ServicesDep = NamedDependency[Services]


def as_response(reply: EngineReply) -> Response[bytes]:
    headers: dict[str, str] = {}
    if reply.set_cookie is not None:
        headers["set-cookie"] = reply.set_cookie
    if reply.retry_after is not None:
        headers["retry-after"] = str(reply.retry_after)
    if reply.allow is not None:
        headers["allow"] = reply.allow
    return Response(
        reply.body, status_code=reply.status, media_type="application/json", headers=headers
    )


def _headers(request: AnyRequest) -> RawHeaders:
    return cast(RawHeaders, request.scope["headers"])  # a list, as ASGI servers give it


def _session_cookie(request: AnyRequest, services: Services) -> str | None:
    name = services.settings.session.cookie_name
    return request_cookies(_headers(request), (name,)).get(name)


def _header(request: AnyRequest, name: bytes) -> str | None:
    value = header_value(_headers(request), name)
    return None if value is None else value.decode("latin-1")


@post(CHAT_PATH, dependencies=SERVICES)
async def chat(request: AnyRequest, services: ServicesDep) -> Response[bytes]:
    try:
        shadow = is_shadow_request(
            _header(request, b"x-shadow-request"),
            _header(request, b"x-shadow-auth"),
            request.app.state.shadow_key,
        )
    except Exception as exc:
        return as_response(error_reply(exc, CHAT_PATH))
    peer = request.client.host if request.client else None
    turn = TurnRequest(
        body=await request.body(),
        session_cookie=_session_cookie(request, services),
        client=client_address(peer, _headers(request), services.settings.server.trusted_proxies),
        shadow=shadow,
    )
    return as_response(await chat_turn(services, turn))


@get(CHAT_PATH, dependencies=SERVICES)
async def chat_health_route(request: AnyRequest, services: ServicesDep) -> Response[bytes]:
    peer = request.client.host if request.client else None
    client = client_address(peer, _headers(request), services.settings.server.trusted_proxies)
    return as_response(await chat_health(services, _session_cookie(request, services), client))


@head(CHAT_PATH, dependencies=SERVICES)
async def chat_head(request: AnyRequest, services: ServicesDep) -> Response[None]:
    """`curl -I /api/chat` (runbook: check cookie configuration) shows the cookie's settings."""
    reply = cookie_probe(services, _session_cookie(request, services))
    return Response(None, headers={"set-cookie": reply.set_cookie or ""})


@get(CRON_PATH, dependencies=SERVICES)
async def queue_status(request: AnyRequest, services: ServicesDep) -> Response[bytes]:
    peer = request.client.host if request.client else None
    client = client_address(peer, _headers(request), services.settings.server.trusted_proxies)
    return as_response(await cron_status(services, _header(request, b"x-cron-secret"), client))


@post(CRON_PATH, dependencies=SERVICES, status_code=200)
async def process_leads(request: AnyRequest, services: ServicesDep) -> Response[bytes]:
    peer = request.client.host if request.client else None
    client = client_address(peer, _headers(request), services.settings.server.trusted_proxies)
    return as_response(await cron_process(services, _header(request, b"x-cron-secret"), client))


@get("/metrics", include_in_schema=False, dependencies=SERVICES)
async def prometheus_metrics(services: ServicesDep) -> Response[bytes]:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _error_response(request: AnyRequest, exc: Exception) -> Response[bytes]:
    if isinstance(exc, HTTPException):  # Litestar's own: unknown route, wrong method, too large
        body = _json.encode(ErrorBody("http_error", exc.detail))
        return Response(
            body, status_code=exc.status_code, media_type="application/json", headers=exc.headers
        )
    return as_response(error_reply(exc, request.url.path))


EXCEPTION_HANDLERS = {Exception: _error_response, HTTPException: _error_response}
ROUTES = [chat, chat_health_route, chat_head, queue_status, process_leads, prometheus_metrics]
