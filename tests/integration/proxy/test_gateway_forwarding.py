"""What crosses the gateway to legacy and back, and what happens when a backend misbehaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redis.asyncio import Redis

from common import keys
from proxy import TokenSigner
from tests.integration.conftest import GatewayOpener, gateway_services
from tests.support.bad_backends import BadBackend
from tests.support.processes import PhpLegacy, free_port

FIRST = "I was rear-ended on the freeway and hurt my neck"


async def test_legacy_request_and_reply_pass_through_unchanged(open_gateway: GatewayOpener) -> None:
    async with open_gateway() as gw:
        response = await gw.post(
            "/api/chat?debug=echo&x=1&y=a%20b",
            content=b'{"message": "hi", "extra": [1, 2]}',
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Cookie": "legacy_chat=abc123; other=1",
                "X-Custom": "kept",
                "User-Agent": "widget/2.1",
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "dropped because Connection names it",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "X-Forwarded-For": "6.6.6.6",
                "X-Real-IP": "6.6.6.6",
                "X-Shadow-Request": "1",
            },
        )
    assert response.status_code == 201  # legacy's own status comes back
    assert response.headers["x-chat-backend"] == "legacy"
    assert response.headers["x-legacy-backend"] == "php"
    assert response.headers.get_list("set-cookie")[:2] == [
        "first=1; Path=/",
        "second=2; Path=/; HttpOnly",
    ]
    echo = response.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/api/chat"
    assert echo["query"] == "debug=echo&x=1&y=a%20b"
    assert echo["body"] == '{"message": "hi", "extra": [1, 2]}'
    assert echo["cookies"] == {"legacy_chat": "abc123", "other": "1"}
    seen = echo["headers"]
    assert seen["x-custom"] == "kept"
    assert seen["user-agent"] == "widget/2.1"
    assert seen["content-type"] == "application/json; charset=utf-8"
    for hop in ("x-hop", "keep-alive", "te", "x-shadow-request"):
        assert hop not in seen, hop
    # The test client is not a trusted proxy: its forwarding headers are replaced, not believed.
    assert seen["x-forwarded-for"] == "testclient"
    assert seen["x-real-ip"] == "testclient"


async def test_forwarding_headers_from_a_trusted_proxy_are_kept(
    open_gateway: GatewayOpener,
) -> None:
    async with open_gateway(TRUSTED_PROXIES="testclient") as gw:
        response = await gw.post(
            "/api/chat?debug=echo",
            json={"message": "hi"},
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        )
    seen = response.json()["headers"]
    assert seen["x-forwarded-for"] == "203.0.113.9, testclient"
    assert seen["x-real-ip"] == "203.0.113.9"
    assert seen["x-forwarded-proto"] == "https"


async def test_get_and_head_are_routed_and_labelled(open_gateway: GatewayOpener) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        get = await gw.get("/api/chat")
        head = await gw.head("/api/chat")
    assert get.status_code == 200
    assert get.json() == {"status": "ok", "backend": "legacy"}
    assert get.headers["x-chat-backend"] == "legacy"
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["x-chat-backend"] == "legacy"


async def test_oversized_body_is_refused_before_any_backend(
    open_gateway: GatewayOpener, legacy: PhpLegacy
) -> None:
    async with open_gateway(MAX_BODY_BYTES="1024", NEW_CHAT_PERCENT="0") as gw:
        declared = await gw.post("/api/chat", json={"message": "x" * 5000})
        bad_length = await gw.post("/api/chat", content=b"{}", headers={"Content-Length": "x"})
        metrics = (await gw.get("/metrics")).text
    assert declared.status_code == 413
    assert declared.json()["error"] == "payload_too_large"
    assert bad_length.status_code == 400
    assert 'gateway_rejected_total{reason="payload_too_large"} 1.0' in metrics
    assert "gateway_decisions_total{" not in metrics  # refused before routing: nothing forwarded


DEEP = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize("percent", ["0", "100"])
async def test_malformed_chat_requests_get_a_clean_4xx_from_either_backend(
    open_gateway: GatewayOpener, percent: str
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT=percent) as gw:
        for body in (
            b"not json",
            b"",
            b"[1,2]",
            b'{"message": 5}',
            b'{"message": "\xff\xfe"}',
            DEEP,  # nested past msgspec's recursion limit: was a 500
            b'{"message": "hi", "sessionId": "' + b"a" * 16 + b'", "x": ' + DEEP + b"}",
        ):
            gw.cookies.clear()
            response = await gw.post("/api/chat", content=body)
            assert 400 <= response.status_code < 500, (body, response.status_code)
            assert "error" in response.json()


async def test_legacy_down_gives_a_clean_502(open_gateway: GatewayOpener) -> None:
    async with open_gateway(LEGACY_URL=f"http://127.0.0.1:{free_port()}/api/chat") as gw:
        response = await gw.post("/api/chat", json={"message": FIRST})
        ready = await gw.get("/readyz")
        metrics = (await gw.get("/metrics")).text
    assert response.status_code == 502
    assert response.headers["x-chat-backend"] == "legacy"
    assert response.json()["error"] == "legacy_connect"
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["legacy"]
    assert 'gateway_upstream_errors_total{backend="legacy",kind="connect"} 1.0' in metrics


async def test_slow_legacy_gives_a_clean_504(open_gateway: GatewayOpener) -> None:
    async with open_gateway(LEGACY_TIMEOUT="0.3") as gw:
        response = await gw.post("/api/chat?sleep_ms=2000", json={"message": FIRST})
    assert response.status_code == 504
    assert response.json()["error"] == "legacy_timeout"


@pytest.mark.parametrize(
    ("bad_backend", "status", "error"),
    [("garbage", 502, "legacy_bad_reply"), ("hang", 504, "legacy_timeout")],
    indirect=["bad_backend"],
)
async def test_legacy_answering_garbage_or_hanging_is_handled(
    open_gateway: GatewayOpener, bad_backend: BadBackend, status: int, error: str
) -> None:
    async with open_gateway(LEGACY_URL=bad_backend.url, LEGACY_TIMEOUT="0.3") as gw:
        response = await gw.post("/api/chat", json={"message": FIRST})
    assert response.status_code == status
    assert response.json()["error"] == error
    assert bad_backend.connections >= 1


@pytest.mark.parametrize(
    ("bad_backend", "cause"),
    [("garbage", "bad_reply"), ("hang", "timeout"), ("close", "bad_reply")],
    indirect=["bad_backend"],
)
async def test_failing_new_engine_fails_over_to_legacy_for_new_conversations(
    open_gateway: GatewayOpener, bad_backend: BadBackend, cause: str, redis: Redis
) -> None:
    """...and the conversation is pinned where it was answered (legacy), in the cookie and in
    Redis, so its next turn goes on there rather than to a new engine that never saw it."""
    async with open_gateway(
        NEW_CHAT_URL=bad_backend.url,
        NEW_CHAT_TIMEOUT="0.3",
        NEW_CHAT_PERCENT="100",
        ROUTING_SECRET="failover-secret",
    ) as gw:
        response = await gw.post("/api/chat", json={"message": FIRST})
        metrics = (await gw.get("/metrics")).text
        route = gw.cookies["chat_route"]
        following = await gw.post("/api/chat", json={"message": "Ann Lee"})
    assert response.status_code == 200
    assert response.headers["x-chat-backend"] == "legacy"
    assert response.json()["step"] == "name"
    assert f'gateway_failovers_total{{reason="{cause}"}} 1.0' in metrics
    session_id = response.json()["sessionId"]
    assert await redis.get(keys.route_pin(session_id)) == b"legacy"
    assert TokenSigner("failover-secret").read_route_cookie(route) == ("legacy", session_id)
    assert following.headers["x-chat-backend"] == "legacy"
    assert following.json()["step"] == "phone"


async def test_new_engine_with_redis_down_fails_over_then_errors_cleanly_once_started(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        await gw.post("/api/chat", json={"message": FIRST})
        on_new = dict(gw.cookies)
    async with open_gateway(NEW_CHAT_PERCENT="100", REDIS_URL=dead_redis) as gw:
        gw.cookies.clear()
        fresh = await gw.post("/api/chat", json={"message": FIRST})
        assert fresh.status_code == 200
        assert fresh.headers["x-chat-backend"] == "legacy"  # failover: it had not started on new
        gw.cookies.clear()
        gw.cookies.update(on_new)
        started = await gw.post("/api/chat", json={"message": "Ann Lee"})
        assert started.status_code == 503  # its session is on the new engine: no silent move
        assert started.headers["x-chat-backend"] == "new"
        assert started.json()["error"] == "dependency_unavailable"
        ready = await gw.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["failing"] == ["redis"]


async def test_cron_endpoint_reaches_the_new_engine(open_gateway: GatewayOpener) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        anonymous = await gw.get("/api/cron/process-leads")  # the test client is not loopback
        status = await gw.get(
            "/api/cron/process-leads", headers={"x-cron-secret": "test-cron-secret"}
        )
        refused = await gw.post("/api/cron/process-leads", headers={"x-cron-secret": "wrong"})
        allowed = await gw.post(
            "/api/cron/process-leads", headers={"x-cron-secret": "test-cron-secret"}
        )
    assert anonymous.status_code == 401
    assert "worker" not in anonymous.text
    assert status.status_code == 200
    assert status.headers["x-chat-backend"] == "new"
    assert status.json()["queued"] == 0
    assert refused.status_code == 401
    assert allowed.status_code == 200


async def test_health_endpoints(open_gateway: GatewayOpener) -> None:
    async with open_gateway() as gw:
        live = await gw.get("/healthz")
        ready = await gw.get("/readyz")
        await gw.post("/api/chat", json={"message": FIRST})
        metrics = await gw.get("/metrics")
    assert live.json() == {"status": "alive"}
    body = ready.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"redis", "legacy"}
    assert body["flags"]["source"] == "env+redis"
    text = metrics.text
    assert 'gateway_decisions_total{backend="legacy",reason="rollout"} 1.0' in text
    assert 'gateway_requests_total{backend="legacy",status="2xx"} 1.0' in text
    assert 'gateway_request_seconds_count{backend="legacy"} 1.0' in text
    assert "chat_turns_total" in text  # the in-process engine's metrics on the same page
    assert 'chat_lead_queue_depth{state="queued"} 0.0' in text


async def test_cookies_set_by_legacy_never_leak_into_another_visitors_request(
    open_gateway: GatewayOpener, legacy: PhpLegacy
) -> None:
    # A host name, not an IP: a default client cookie jar would keep cookies for it.
    async with open_gateway(LEGACY_URL=f"http://localhost:{legacy.port}/api/chat") as gw:
        await gw.post("/api/chat?debug=echo", json={"message": "hi"})  # legacy sets two cookies
        gw.cookies.clear()  # the next request is another visitor
        echo = (await gw.post("/api/chat?debug=echo", json={"message": "hi"})).json()
    assert not echo["cookies"]


async def test_an_unexpected_gateway_error_is_a_clean_json_500_and_logged(
    open_gateway: GatewayOpener, monkeypatch: pytest.MonkeyPatch, base_env: dict[str, str]
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("a bug in the gateway")

    monkeypatch.setattr("proxy._gateway.ChatGateway._route", broken)
    async with open_gateway() as gw:
        response = await gw.post("/api/chat", json={"message": FIRST})
        too_big = await gw.post("/api/chat", content=b"x" * 20_000)
        alive = await gw.get("/healthz")
        metrics = (await gw.get("/metrics")).text
    # every answer is counted and has its Performance line, the gateway's own included
    # (its 500s were in neither: the error-rate alert could not fire, issue 17)
    assert 'gateway_requests_total{backend="gateway",status="5xx"} 1.0' in metrics
    assert 'gateway_requests_total{backend="gateway",status="4xx"} 1.0' in metrics
    lines = [json.loads(line) for line in Path(base_env["LOG_FILE"]).read_text().splitlines()]
    served = [
        (line["status"], line["reason"])
        for line in lines
        if line["event"] == "Performance: request served"
    ]
    assert served == [(500, "internal_error"), (413, "payload_too_large")]
    assert too_big.status_code == 413
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert "a bug" not in response.text
    assert "Traceback" not in response.text
    assert alive.status_code == 200  # the gateway keeps serving
    log = Path(base_env["LOG_FILE"]).read_text()
    assert "Unhandled error in the chat gateway" in log


async def test_in_process_engine_turns_keep_the_engines_http_contract(
    open_gateway: GatewayOpener,
) -> None:
    """Chat turns reach the in-process engine without Litestar; what the visitor sees is the
    engine's own contract: its session cookie and its limits, per visitor address."""
    async with open_gateway(NEW_CHAT_PERCENT="100", RATE_LIMIT_PER_MINUTE="2") as gw:
        first = await gw.post("/api/chat", json={"message": FIRST})
        session_cookie = next(c for c in first.headers.get_list("set-cookie") if "chat_sid=" in c)
        second = await gw.post("/api/chat", json={"message": "Ann Lee"})
        refused = await gw.post("/api/chat", json={"message": "555-201-7788"})
        other_visitor = await gw.post(
            "/api/chat", json={"message": FIRST}, headers={"X-Forwarded-For": "203.0.113.9"}
        )
    assert first.status_code == second.status_code == 200
    assert second.json()["step"] == "phone"  # the cookie carried the conversation
    attributes = {part.strip().lower() for part in session_cookie.split(";")[1:]}
    assert attributes == {"httponly", "samesite=lax", "path=/", "max-age=604800"}
    assert refused.status_code == 429
    assert refused.headers["x-chat-backend"] == "new"
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert other_visitor.status_code == 429  # not a trusted proxy: same peer, same bucket


async def test_the_gateways_own_refusals_keep_the_contracts_error_shape(
    open_gateway: GatewayOpener,
) -> None:
    async with open_gateway() as gw:
        unknown = await gw.get("/api/nowhere")
        wrong_method = await gw.delete("/healthz")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "http_error"
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "http_error", "detail": "Method Not Allowed"}
    assert "GET" in wrong_method.headers["allow"]


async def test_nothing_about_the_backend_reaches_the_visitor(open_gateway: GatewayOpener) -> None:
    """Legacy's `Host: 127.0.0.1:<port>` and `X-Powered-By: PHP/8.2` reached visitors
    (issue 18)."""
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        reply = await gw.post("/api/chat", json={"message": "I was rear-ended"})
    assert reply.status_code == 200
    assert reply.headers["x-chat-backend"] == "legacy"
    for header in ("host", "x-powered-by"):
        assert header not in reply.headers, (header, reply.headers[header])
    assert "php" not in reply.headers.get("server", "").lower()


async def test_the_emergency_rate_limit_holds_for_turns_routed_to_legacy(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    """At 0 % rollout `emergency_rate_limit = 1` had no effect: every turn went to legacy
    uncounted (issue 18). Legacy-bound turns count against the same limit as the engine's."""
    await redis.set(keys.EMERGENCY_RATE_LIMIT, "1")
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        statuses = []
        for _ in range(8):
            gw.cookies.clear()
            reply = await gw.post("/api/chat", json={"message": "I was rear-ended"})
            statuses.append(reply.status_code)
        metrics = (await gw.get("/metrics")).text
    limit = 5  # EMERGENCY_RATE_LIMIT_PER_MINUTE's default
    assert statuses == [200] * limit + [429] * (8 - limit)
    assert reply.headers["x-chat-backend"] == "legacy"
    assert reply.json()["error"] == "rate_limited"
    assert int(reply.headers["retry-after"]) >= 1
    assert 'gateway_rejected_total{reason="rate_limited"} 3.0' in metrics


async def test_one_cookie_rule_on_every_path_the_first_of_two_wins(
    open_gateway: GatewayOpener,
) -> None:
    """`Cookie: chat_sid=A; chat_sid=B`, both valid: POST continued A while HEAD and GET
    set-cookie'd B (issue 17). Every path takes the first (RFC 6265 §5.4 lists the
    more specific cookie first)."""
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        signed = []
        for _ in range(2):
            gw.cookies.clear()
            first = await gw.post("/api/chat", json={"message": "I slipped at a store"})
            signed.append(first.cookies["chat_sid"])
        gw.cookies.clear()
        both = {"cookie": f"chat_sid={signed[0]}; chat_sid={signed[1]}"}
        turn = await gw.post("/api/chat", json={"message": "Ann Lee"}, headers=both)
        probe = await gw.head("/api/chat", headers=both)
        health = await gw.get("/api/chat", headers=both)
    a = signed[0].split(".")[0]
    assert turn.json()["sessionId"] == a
    assert turn.json()["step"] == "phone"  # A's conversation went on
    for reply in (probe, health):
        assert reply.headers["set-cookie"].startswith(f"chat_sid={a}."), reply.headers


FRAMINGS = {
    # (method, what legacy sends) -> what the visitor must get: status, content-length, body
    "head_keeps_the_backends_length": (
        "HEAD",
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 123\r\n\r\n",
        (200, "123", b""),
    ),
    "head_without_a_length_gets_none": (
        "HEAD",
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-chat-backend: new\r\n\r\n",
        (200, None, b""),
    ),
    "204_has_no_length": ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", (204, None, b"")),
    "304_has_no_length": (  # nginx passes 25; uvicorn sends no length without a body
        "GET",
        b'HTTP/1.1 304 Not Modified\r\netag: "x"\r\ncontent-length: 25\r\n\r\n',
        (304, None, b""),
    ),
    "trailers_are_dropped": (
        "GET",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: set-cookie, x-trail\r\n\r\n"
        b"5\r\nhello\r\n0\r\nset-cookie: planted=1\r\nx-trail: 1\r\n\r\n",
        (200, "5", b"hello"),
    ),
}


@pytest.mark.parametrize("case", list(FRAMINGS))
async def test_reply_framing_is_forwarded_as_nginx_does(
    open_gateway: GatewayOpener, case: str
) -> None:
    """HEAD said `Content-Length: 0` where GET said 34, a 204 got `Content-Length: 0`, a 304's
    length became 0, and chunked trailer fields (a Set-Cookie among them) reached the visitor
    as headers (issue 17). RFC 9110 §8.6, and nginx `proxy_pass`, which drops trailers."""
    method, raw, (status, length, body) = FRAMINGS[case]
    backend = BadBackend("scripted", raw=raw)
    try:
        async with open_gateway(LEGACY_URL=backend.url) as gw:
            reply = await gw.request(method, "/api/chat")
    finally:
        backend.stop()
    assert reply.status_code == status
    assert reply.headers.get("content-length") == length
    assert reply.content == body
    assert "set-cookie" not in reply.headers
    assert "x-trail" not in reply.headers
    assert reply.headers.get_list("x-chat-backend") == ["legacy"]  # legacy's own is dropped


async def test_legacy_urls_own_query_is_kept_and_the_visitors_appended(
    open_gateway: GatewayOpener,
) -> None:
    """With LEGACY_URL=.../index.php?route=chat a visitor's `?utm_source=ad` replaced the route
    (a fresh helper, issue 17)."""
    backend = BadBackend("scripted", raw=b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    try:
        legacy_url = f"http://127.0.0.1:{backend.port}/index.php?route=chat"
        async with open_gateway(LEGACY_URL=legacy_url) as gw:
            services = gateway_services(gw)
            assert services.legacy.target_for(b"utm_source=ad") == (
                b"/index.php?route=chat&utm_source=ad"
            )
            assert services.legacy.target_for(b"") == b"/index.php?route=chat"
            reply = await gw.post("/api/chat?utm_source=ad", json={"message": FIRST})
    finally:
        backend.stop()
    assert reply.status_code == 200
