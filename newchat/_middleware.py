"""Per-request context: a request id, the `Performance:` log line and the latency histogram."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from common import get_logger
from newchat._metrics import Metrics

_log = get_logger("newchat.performance")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def performance_middleware(metrics: Metrics) -> type:
    """An ASGI middleware class bound to one app's metrics."""

    class PerformanceMiddleware:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await self.app(scope, receive, send)
                return
            incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
            request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex[:16]
            status = 500
            started = time.perf_counter()

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ]
                await send(message)

            structlog.contextvars.bind_contextvars(request_id=request_id)
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = scope["path"] if scope["path"].startswith("/api/") else "other"
                metrics.request_seconds.labels(route=route, status=str(status)).observe(elapsed)
                _log.info(
                    "Performance: request served",
                    method=scope["method"],
                    route=route,
                    status=status,
                    latency_ms=round(elapsed * 1000, 2),
                )
                structlog.contextvars.unbind_contextvars("request_id")

    return PerformanceMiddleware
