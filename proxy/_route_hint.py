"""`/api/chat/route`: where nginx should send a chat request, for the site's split mode.

In split mode nginx asks this endpoint first (`auth_request`, headers only) and carries the bytes
of pinned legacy conversations itself, so most legacy traffic never crosses Python. It answers
`204` with `X-Chat-Upstream: chat_legacy` only for a request whose signed route cookie pins it to
legacy and that nothing else claims: no tester's override, not in the shadow sample. Everything
else goes `chat_gateway`, which decides with the whole request as in gateway mode: first turns
(they get their pin there), clients without cookies (`sessionId` in the body), conversations on
the new engine, testers, shadowed conversations.

No I/O: the cookie is checked by its HMAC and the flags are the watcher's in-memory snapshot.
"""

from __future__ import annotations

from typing import Any

from common import header_value, request_cookies
from flags import Flags
from proxy._headers import OVERRIDE_HEADER
from proxy._metrics import GatewayMetrics
from proxy._pins import OVERRIDE_COOKIE, ROUTE_COOKIE, TokenSigner

ROUTE_HINT_PATH = "/api/chat/route"
_ROUTING_COOKIES = (ROUTE_COOKIE, OVERRIDE_COOKIE)
LEGACY_UPSTREAM = "chat_legacy"
GATEWAY_UPSTREAM = "chat_gateway"
"""Names of the upstream blocks in `nginx/chat-system.conf.template`."""


class RouteHint:
    def __init__(self, *, flags: Flags, signer: TokenSigner, metrics: GatewayMetrics) -> None:
        self._flags = flags
        self._signer = signer
        self._counted = {
            name: metrics.route_hints.labels(upstream=name)
            for name in (LEGACY_UPSTREAM, GATEWAY_UPSTREAM)
        }

    def upstream_for(self, headers: list[tuple[bytes, bytes]]) -> str:
        cookies = request_cookies(headers, _ROUTING_COOKIES)
        route = self._signer.read_route_cookie(cookies.get(ROUTE_COOKIE))
        if route is None or route.backend != "legacy":
            return GATEWAY_UPSTREAM
        if header_value(headers, OVERRIDE_HEADER) or OVERRIDE_COOKIE in cookies:
            return GATEWAY_UPSTREAM
        if self._flags.shadowed(route.session_id):
            return GATEWAY_UPSTREAM
        return LEGACY_UPSTREAM

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        upstream = self.upstream_for(scope["headers"])
        self._counted[upstream].inc()
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [(b"x-chat-upstream", upstream.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})
