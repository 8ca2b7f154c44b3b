"""`/api/chat/route`: where nginx should send a chat request, for the site's split mode.

In split mode nginx asks this endpoint first (`auth_request`, headers only) and carries the bytes
of pinned legacy conversations itself, so most legacy traffic never crosses Python. It answers
`204` with `X-Chat-Upstream: chat_legacy` only for a request whose signed route cookie pins it to
legacy and that nothing else claims: no tester's override, not in the shadow sample. Everything
else goes `chat_gateway`, which decides with the whole request as in gateway mode: first turns
(they get their pin there), clients without cookies (`sessionId` in the body), conversations on
the new engine, testers, shadowed conversations.

The rate limit holds for the turns nginx carries itself: a legacy-bound `POST` (nginx passes the
method in `X-Original-Method`, an `auth_request` subrequest being a GET) is counted like a
gateway turn (`ChatGateway.legacy_turn_limited`, one Redis script, the only I/O here); over the
limit the answer is `403` with `X-Chat-Retry-After`, which nginx turns into the contract's JSON
429 (`auth_request` passes only 2xx, 401 and 403). Everything else: no I/O, the cookie is
checked by its HMAC and the flags are the watcher's in-memory snapshot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from common import client_address, header_value, request_cookies
from flags import Flags
from proxy._headers import OVERRIDE_HEADER
from proxy._metrics import GatewayMetrics
from proxy._pins import OVERRIDE_COOKIE, ROUTE_COOKIE, TokenSigner

ROUTE_HINT_PATH = "/api/chat/route"
_ROUTING_COOKIES = (ROUTE_COOKIE, OVERRIDE_COOKIE)
LEGACY_UPSTREAM = "chat_legacy"
GATEWAY_UPSTREAM = "chat_gateway"
"""Names of the upstream blocks in `nginx/chat-system.conf.template`."""


ORIGINAL_METHOD = b"x-original-method"
RETRY_AFTER = b"x-chat-retry-after"


class RouteHint:
    def __init__(
        self,
        *,
        flags: Flags,
        signer: TokenSigner,
        metrics: GatewayMetrics,
        limited: Callable[[str], Awaitable[int | None]] | None = None,
        trusted_proxies: tuple[str, ...] = (),
    ) -> None:
        self._flags = flags
        self._signer = signer
        self._limited = limited
        self._trusted = trusted_proxies
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
        headers = scope["headers"]
        upstream = self.upstream_for(headers)
        self._counted[upstream].inc()
        status, reply_headers = 204, [(b"x-chat-upstream", upstream.encode())]
        if (
            upstream == LEGACY_UPSTREAM
            and self._limited is not None
            and header_value(headers, ORIGINAL_METHOD) == b"POST"
        ):
            client = scope.get("client")
            address = client_address(client[0] if client else None, headers, self._trusted)
            retry_after = await self._limited(address)
            if retry_after is not None:
                status, reply_headers = 403, [(RETRY_AFTER, str(retry_after).encode())]
        await send({"type": "http.response.start", "status": status, "headers": reply_headers})
        await send({"type": "http.response.body", "body": b""})
