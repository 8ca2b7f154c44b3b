"""The `/api/chat` hop: read the request, decide new or legacy, forward, answer, record.

A raw ASGI handler on purpose: the bytes of a legacy conversation pass through without being
parsed into a framework request, and the visitor's headers are forwarded exactly as they came.
Every response carries `X-Chat-Backend`; every decision is counted and logged with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from common import (
    NewEngineStats,
    StoreUnavailable,
    client_address,
    get_logger,
    header_value,
    request_cookies,
    session_hash,
    set_cookie,
)
from flags import Backend, Decision, Flags
from newchat import RateLimiter, SessionCookies
from proxy._errors import ClientGone, RequestRejected, UpstreamError
from proxy._headers import OVERRIDE_HEADER, Visitor
from proxy._metrics import GatewayMetrics
from proxy._pins import (
    OVERRIDE_COOKIE,
    ROUTE_COOKIE,
    PinStore,
    RouteCookie,
    TokenSigner,
    session_id_in,
)
from proxy._recording import RecordingTap
from proxy._shadow import ShadowMirror
from proxy._upstream import ForwardRequest, Upstream, UpstreamReply

_log = get_logger("proxy.gateway")
Scope = dict[str, Any]


_error_json = msgspec.json.Encoder()


class GatewayConfig(NamedTuple):
    trusted_proxies: tuple[str, ...]
    max_body_bytes: int
    cookie_secure: bool
    cookie_max_age: int
    session_cookie: str = "chat_sid"
    """The engine's session cookie, read with the gateway's own in the same pass."""
    body_timeout_seconds: float = 10.0
    """`HTTP_READ_TIMEOUT`: the most a request body may take to arrive (else 408)."""
    stale_after_seconds: float = 5.0
    """A request nginx stamped (`X-Request-Start: t=<epoch s>`) this long ago is not forwarded:
    nginx gives up after 15 s, so one started later than 15 - 10 (the hop timeout) could reach
    a backend after its visitor got nginx's 502 (`GATEWAY_STALE_AFTER`)."""
    legacy_cookie: str = "legacy_chat"
    """Legacy's own session cookie (`LEGACY_SESSION_COOKIE`): a turn that carries it and names
    no conversation otherwise continues a legacy one (nginx's fallback set no pin)."""


class Answer(NamedTuple):
    reply: UpstreamReply
    backend: Backend
    failover: str | None = None


class Routed(NamedTuple):
    answer: Answer
    decision: Decision
    request: ForwardRequest
    cookies: list[tuple[bytes, bytes]]
    """`Set-Cookie` headers the gateway adds (the routing pin)."""
    new_pin: tuple[str, Backend] | None
    """(session id, backend) to record in Redis once the visitor has the reply."""
    session_id: str | None
    """The conversation the reply names (a POST answered below 500)."""


def error_reply(status: int, code: str, detail: str) -> UpstreamReply:
    """The gateway's own JSON error: `{"error": code, "detail": detail}`."""
    body = {"error": code, "detail": detail}
    return UpstreamReply(status, [(b"content-type", b"application/json")], _error_json.encode(body))


_UPSTREAM_STATUS = {"timeout": 504}
RATE_LIMITED_CODE = "rate_limited"
RATE_LIMITED_DETAIL = "too many messages; please wait a moment"
"""The 429's JSON (`error_reply`); nginx's own 429s (split and legacy modes) say the same."""
_STALE = error_reply(504, "stale_request", "the request waited too long to be served")
_LEGACY_DOWN_DETAIL = "the chat service is temporarily unavailable; please try again shortly"


async def read_body(scope: Scope, receive: Any, limit: int, timeout_s: float) -> bytes:
    """The request body, at most `limit` bytes within `timeout_s` seconds (`HTTP_READ_TIMEOUT`,
    as nginx's `client_body_timeout` in front). Raises
    RequestRejected (400 bad length, 413 too large, 408 too slow: a client trickling a body
    held a connection and a task for ever) or ClientGone."""
    declared = header_value(scope["headers"], b"content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestRejected(400, "invalid_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise RequestRejected(413, "payload_too_large", f"the body is over {limit} bytes")
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_chunks(receive, limit)
    except TimeoutError:
        raise RequestRejected(
            408, "request_timeout", f"the body took over {timeout_s:g} s to arrive"
        ) from None


async def _read_chunks(receive: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestRejected(413, "payload_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def closing(exc: RequestRejected) -> tuple[tuple[bytes, bytes], ...]:
    """`Connection: close` after a 408: the rest of a slow body must not be read as the next
    request, and the client is not waited for again (nginx closes there too)."""
    return ((b"connection", b"close"),) if exc.status == 408 else ()


def read_visitor(scope: Scope, trusted: tuple[str, ...], cookie_names: tuple[str, ...]) -> Visitor:
    """Who sent this request, read once: the peer, the visitor's address and the cookies."""
    headers = scope["headers"]
    client = scope.get("client")
    peer = client[0] if client else None
    return Visitor(
        peer=peer,
        scheme=scope.get("scheme", "http"),
        address=client_address(peer, headers, trusted),
        peer_trusted=peer is not None and peer in trusted,
        cookies=request_cookies(headers, cookie_names),
    )


def content_length(reply: UpstreamReply, method: str) -> bytes | None:
    """The `Content-Length` the visitor gets, as nginx `proxy_pass` gives it (RFC 9110 §8.6):
    none on 1xx, 204 and 304 (nginx passes a 304's own, but uvicorn refuses to send a length
    with no body after it, and the RFC lets a 304 omit it); on a HEAD reply the backend's own,
    if it sent one (the length a GET would carry), none if it sent none, the body's for the
    gateway's own replies; otherwise the length of the body."""
    if reply.status < 200 or reply.status in (204, 304):
        return None
    if method == "HEAD":
        declared = [v for k, v in reply.headers if k == b"content-length"]
        if declared:
            return declared[0]
        if not reply.body:  # a backend's HEAD without a length: none is invented
            return None
    return str(len(reply.body)).encode()


async def send_reply(
    send: Any,
    scope: Scope,
    reply: UpstreamReply,
    backend: Backend | None,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Writes a backend's (or the gateway's own) reply, labelled with the backend that answered."""
    headers = [(k, v) for k, v in (*reply.headers, *extra) if k != b"content-length"]
    if backend is not None:
        headers.append((b"x-chat-backend", backend.encode()))
    length = content_length(reply, scope["method"])
    if length is not None:
        headers.append((b"content-length", length))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    body = b"" if scope["method"] == "HEAD" else reply.body
    await send({"type": "http.response.body", "body": body})


def answered_itself(
    metrics: GatewayMetrics, scope: Scope, status: int, reason: str, started: float
) -> None:
    """Counts and logs (`Performance: request served`, backend `gateway`) a chat request the
    gateway answered itself: `chatctl report performance` and the error-rate alert see every
    response (a 500 of the gateway's own was in neither)."""
    elapsed = time.perf_counter() - started
    metrics.answered_itself(status, elapsed)
    _log.info(
        "Performance: request served",
        method=scope["method"],
        route="/api/chat",
        backend="gateway",
        reason=reason,
        status=status,
        latency_ms=round(elapsed * 1000, 2),
    )


class ChatGateway:
    def __init__(
        self,
        *,
        flags: Flags,
        legacy: Upstream,
        new: Upstream,
        pins: PinStore,
        signer: TokenSigner,
        metrics: GatewayMetrics,
        config: GatewayConfig,
        shadow: ShadowMirror | None = None,
        recording: RecordingTap | None = None,
        session_cookies: SessionCookies | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._shadow = shadow
        self._recording = recording
        self._limiter = limiter
        """Counts legacy-bound turns (the new engine counts its own)."""
        self._session_cookies = session_cookies
        """Checks the engine's `chat_sid` (same SESSION_SECRET), the last evidence of a pin."""
        self.new_engine_stats = NewEngineStats()
        self._flags = flags
        self._legacy = legacy
        self._new = new
        self._pins = pins
        self._signer = signer
        self._metrics = metrics
        self._config = config
        self._cookie_names = (
            ROUTE_COOKIE,
            OVERRIDE_COOKIE,
            config.session_cookie,
            config.legacy_cookie,
        )

    @property
    def config(self) -> GatewayConfig:
        return self._config

    def _queued_for(self, scope: Scope) -> float | None:
        """Seconds since nginx received the request (`X-Request-Start: t=<epoch seconds>`,
        believed from a trusted proxy only); None without the stamp."""
        stamp = header_value(scope["headers"], b"x-request-start")
        client = scope.get("client")
        if stamp is None or not client or client[0] not in self._config.trusted_proxies:
            return None
        try:
            return time.time() - float(stamp.removeprefix(b"t="))
        except ValueError:
            return None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            config = self._config
            body = await read_body(
                scope, receive, config.max_body_bytes, config.body_timeout_seconds
            )
        except ClientGone:
            return
        except RequestRejected as exc:
            self._metrics.rejected.labels(reason=exc.code).inc()
            reply = error_reply(exc.status, exc.code, exc.detail)
            await send_reply(send, scope, reply, None, closing(exc))
            answered_itself(self._metrics, scope, exc.status, exc.code, started)
            return
        age = self._queued_for(scope)
        if age is not None and age > config.stale_after_seconds:
            # a gateway that stalled (SIGSTOP, a blocked loop) resumed on a request nginx had
            # already answered with its 502: sent on, the turn reached legacy 16 s after the
            # visitor was told to retry, and was counted twice (a fresh helper, issue 17)
            self._metrics.stale_requests.inc()
            _log.warning("Dropped a request its visitor no longer waits for", age_s=round(age, 1),
                         action="the gateway fell behind: check its CPU and event-loop lag")  # fmt: skip
            with contextlib.suppress(Exception):
                await send_reply(send, scope, _STALE, None, ((b"connection", b"close"),))
            return
        routed = await self._route(scope, body)
        answer = routed.answer
        if routed.new_pin is not None:
            # before the reply: a cookieless visitor's next turn, sent the moment this reply
            # arrives, must find it (one Redis write, on a conversation's first turn only)
            await self._store_pin(*routed.new_pin)
        await send_reply(send, scope, answer.reply, answer.backend, routed.cookies)
        elapsed = time.perf_counter() - started
        self._record(scope, answer, routed.decision, elapsed)
        if self._shadow is not None:
            # the visitor has the reply by now
            self._shadow.submit(answer.backend, routed.request, answer.reply, routed.session_id)
        if self._recording is not None:
            self._recording.submit(answer.backend, routed.request, answer.reply, routed.session_id)

    async def _route(self, scope: Scope, body: bytes) -> Routed:
        method = scope["method"]
        visitor = read_visitor(scope, self._config.trusted_proxies, self._cookie_names)
        cookies = visitor.cookies
        route = self._signer.read_route_cookie(cookies.get(ROUTE_COOKIE))
        body_sid = session_id_in(body) if method == "POST" else None
        engine_sid: str | None = None  # the engine's signed cookie, checked once at most
        if route is not None and route.backend == "new" and body_sid is None and method == "POST":
            # A new-engine pin holds only for the conversation it names: the engine continues
            # the one its own cookie names, so without that cookie this turn starts a new
            # conversation, bucketed as any other (a replayed old cookie reached the new
            # engine at 0 % rollout, 10 of 10: a fresh helper, issue 18)
            engine_sid = self._engine_cookie_id(cookies)
            if engine_sid != route.session_id:
                route = None
        session_id = body_sid or (route.session_id if route else None)
        if session_id is None and method == "POST":
            # The engine's own cookie outlives a routing cookie the browser lost or let
            # expire (it is renewed every turn): its id finds the pin in Redis. Turns only: a
            # health probe's cookie names no conversation (the probe buckets by its client).
            if engine_sid is None:
                engine_sid = self._engine_cookie_id(cookies)
            session_id = engine_sid
        pin: Backend | None = None
        inferred = False  # a pin read off the evidence, to be stored after this turn
        if route is not None and body_sid in (None, route.session_id):
            pin = route.backend
        elif session_id is not None and self._pin_matters():
            if engine_sid is None:  # the id came from the body or a routing cookie
                engine_sid = self._engine_cookie_id(cookies)
            pin, inferred = await self._pin_or_evidence(
                session_id, engine_issued=session_id == engine_sid
            )
        elif session_id is None and method == "POST" and cookies.get(self._config.legacy_cookie):
            # legacy's own cookie and nothing else: a conversation legacy holds, begun while
            # the gateway was down (nginx's fallback pins nothing); it moved to the new engine
            # when the gateway came back (a fresh helper, issue 17)
            pin, inferred = "legacy", True
        override = self._signer.read_override(
            (header_value(scope["headers"], OVERRIDE_HEADER) or b"").decode("latin-1")
            or cookies.get(OVERRIDE_COOKIE),
            self._flags.snapshot.values.testers,
        )
        decision = self._flags.decide(
            pin=pin, override=override, bucket_id=session_id or self._bucket_for(scope)
        )
        if inferred and decision.reason == "pinned":
            decision = decision._replace(reason="evidence")  # no pin: where the evidence says
        request = ForwardRequest(method, scope["query_string"], scope["headers"], body, visitor)
        answer = await self._dispatch(decision, request, started_on_new=pin == "new")
        status = answer.reply.status
        answer_sid = answer.reply.session_id if status < 500 else None
        set_cookies: list[tuple[bytes, bytes]] = []
        new_pin: tuple[str, Backend] | None = None
        if answer_sid is not None and status < 400:  # a conversation turn: pin it
            set_cookies = self._route_cookie(answer.backend, answer_sid, route)
            settled = pin == answer.backend and not inferred
            new_pin = None if settled else (answer_sid, answer.backend)
        return Routed(answer, decision, request, set_cookies, new_pin, answer_sid)

    @staticmethod
    def _bucket_for(scope: Scope) -> str:
        """A new conversation buckets at random; a health check (`curl /api/chat`) by its
        client, so the same operator sees the same backend on every try."""
        if scope["method"] == "POST":
            return secrets.token_hex(8)
        client = scope.get("client")
        return f"probe:{client[0] if client else 'unknown'}"

    def _pin_matters(self) -> bool:
        snapshot = self._flags.snapshot
        if snapshot.kill_switch:
            return False
        return snapshot.values.enable_new_chat or snapshot.values.drain

    def _engine_cookie_id(self, cookies: dict[str, str]) -> str | None:
        if self._session_cookies is None:
            return None
        return self._session_cookies.unsign(cookies.get(self._config.session_cookie))

    async def _pin_or_evidence(
        self, session_id: str, *, engine_issued: bool
    ) -> tuple[Backend, bool]:
        """(backend, whether it was inferred) for a turn naming `session_id`: its pin; else the
        evidence, never the rollout bucket, so nobody picks a backend by picking an id (50 ids
        chosen offline all landed on the new engine at 10 % rollout) and no conversation moves
        when a pin cannot be read. The new engine when it holds the session, signed the
        visitor's session cookie for it, or minted the id itself (`SessionCookies.minted`, no
        Redis needed); legacy otherwise."""
        try:
            pin, held = await self._pins.get_with_evidence(session_id)
        except StoreUnavailable:
            self._metrics.pin_store_errors.labels(operation="read").inc()
            held = False
            pin = None
        if pin is not None:
            return pin, False
        minted = self._session_cookies is not None and self._session_cookies.minted(session_id)
        return ("new" if held or engine_issued or minted else "legacy"), True

    async def _rate_limited(self, request: ForwardRequest) -> UpstreamReply | None:
        """The 429 for a legacy-bound turn over the visitor's limit (the same counter and
        emergency switch the new engine applies to its own turns, so the runbook's
        `emergency_rate_limit` holds at 0 % rollout too); None to go on."""
        if request.method != "POST":
            return None
        retry_after = await self.legacy_turn_limited(request.visitor.address)
        if retry_after is None:
            return None
        reply = error_reply(429, RATE_LIMITED_CODE, RATE_LIMITED_DETAIL)
        reply.headers.append((b"retry-after", str(retry_after).encode()))
        return reply

    async def legacy_turn_limited(self, address: str) -> int | None:
        """Counts one legacy-bound turn of the visitor at `address`: the seconds to wait when it
        is over the limit, else None. Also asked by the split-mode route hint for the turns
        nginx carries to legacy itself. Redis failing lets the turn through: legacy does not
        need it (the outage is reported by /readyz and the engine's own turns)."""
        if self._limiter is None:
            return None
        try:
            decision = await self._limiter.hit(address)
        except StoreUnavailable:
            return None
        if decision.allowed:
            return None
        self._metrics.rejected.labels(reason="rate_limited").inc()
        return decision.retry_after

    async def _dispatch(
        self, decision: Decision, request: ForwardRequest, *, started_on_new: bool
    ) -> Answer:
        if decision.backend == "legacy":
            limited = await self._rate_limited(request)
            return Answer(limited or await self._send_legacy(request), "legacy")
        failure: str
        try:
            reply = await self._new.send(request)
        except UpstreamError as exc:
            failure, reply_or_none = exc.kind, None
        else:
            if reply.status < 500:
                return Answer(reply, "new")
            failure, reply_or_none = f"status_{reply.status}", reply
        self._metrics.upstream_errors.labels(backend="new", kind=failure).inc()
        if started_on_new or request.method != "POST":
            _log.error(
                "New engine failed for a conversation on it",
                cause=failure,
                action="check `chatctl health` and the engine's logs; legacy serves new visitors",
            )
            return Answer(
                reply_or_none
                or error_reply(
                    _UPSTREAM_STATUS.get(failure, 502),
                    "new_chat_unavailable",
                    _LEGACY_DOWN_DETAIL,
                ),
                "new",
            )
        self._metrics.failovers.labels(reason=failure).inc()
        _log.warning("Failover to legacy", cause=failure, decided=decision.reason)
        return Answer(await self._send_legacy(request), "legacy", failure)

    async def _send_legacy(self, request: ForwardRequest) -> UpstreamReply:
        try:
            return await self._legacy.send(request)
        except UpstreamError as exc:
            self._metrics.upstream_errors.labels(backend="legacy", kind=exc.kind).inc()
            _log.error(
                "Legacy backend failed",
                cause=exc.kind,
                error=exc.detail,
                action="check the legacy PHP backend (LEGACY_URL) and its logs",
            )
            return error_reply(
                _UPSTREAM_STATUS.get(exc.kind, 502), f"legacy_{exc.kind}", _LEGACY_DOWN_DETAIL
            )

    async def _store_pin(self, session_id: str, backend: Backend) -> None:
        """A conversation's first turn (or its move after a failover) is pinned in Redis too,
        for clients that send `sessionId` without cookies."""
        try:
            await self._pins.set(session_id, backend)
        except StoreUnavailable:
            self._metrics.pin_store_errors.labels(operation="write").inc()

    def _route_cookie(
        self, backend: Backend, session_id: str, route: RouteCookie | None
    ) -> list[tuple[bytes, bytes]]:
        """A `chat_route` cookie, unless the visitor's one already says the same."""
        if route == RouteCookie(backend, session_id):
            return []
        cookie = set_cookie(
            ROUTE_COOKIE,
            self._signer.route_cookie(backend, session_id),
            max_age=self._config.cookie_max_age,
            secure=self._config.cookie_secure,
        )
        return [(b"set-cookie", cookie.encode())]

    def _record(self, scope: Scope, answer: Answer, decision: Decision, elapsed: float) -> None:
        status = answer.reply.status
        self._metrics.served(decision.backend, decision.reason, answer.backend, status, elapsed)
        if decision.backend == "new":
            failed = answer.failover is not None or (answer.backend == "new" and status >= 500)
            self.new_engine_stats.record(elapsed, failed)
        fields: dict[str, object] = {}
        if answer.failover:
            fields["failover"] = answer.failover
        if status >= 500 and answer.reply.session_id:
            fields["session_hash"] = session_hash(answer.reply.session_id)
        _log.info(
            "Performance: request served",
            method=scope["method"],
            route="/api/chat",
            backend=answer.backend,
            reason=decision.reason,
            status=status,
            latency_ms=round(elapsed * 1000, 2),
            flag_version=self._flags.snapshot.version,
            **fields,
        )
