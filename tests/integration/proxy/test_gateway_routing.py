"""Routing through the gateway against the real Redis and the real PHP legacy: kill switch, master
switch, rollout percentages, stickiness, drain mode and testers' overrides."""

from __future__ import annotations

import asyncio
import http.cookiejar
import secrets
import time

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from common import derive_secret, keys
from flags import bucket
from proxy import TokenSigner
from tests.integration.conftest import GatewayOpener, set_flag, wait_for_version
from tests.support.processes import PhpLegacy

FIRST = "I was rear-ended on the freeway and hurt my neck"


def backend(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-chat-backend"]


async def start_conversation(gw: AsyncTestClient, **body: object) -> httpx.Response:  # type: ignore[type-arg]
    """A fresh visitor: no cookies from earlier conversations."""
    gw.cookies.clear()
    return await gw.post("/api/chat", json={"message": FIRST, **body})


def decision_count(metrics_text: str, backend_name: str, reason: str) -> float:
    prefix = f'gateway_decisions_total{{backend="{backend_name}",reason="{reason}"}} '
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


async def test_ids_picked_offline_land_where_the_evidence_says(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    """A visitor cannot pick their backend by picking an id: at 10 % rollout, 50 ids chosen
    offline to bucket onto the new engine all landed there (issue 18). An unpinned id goes to
    the new engine only when it holds that session, else to legacy, and is pinned there."""
    chosen: list[str] = []
    while len(chosen) < 50:
        candidate = secrets.token_urlsafe(18)
        if bucket("new-chat", candidate) <= 10:
            chosen.append(candidate)
    async with open_gateway(NEW_CHAT_PERCENT="10") as gw:
        replies = [await start_conversation(gw, sessionId=i) for i in chosen]
        metrics = (await gw.get("/metrics")).text
    assert [backend(reply) for reply in replies] == ["legacy"] * len(chosen)
    # counted as what they are: routed by evidence, not "pinned" (no pin existed)
    assert decision_count(metrics, "legacy", "evidence") == len(chosen)
    assert decision_count(metrics, "legacy", "pinned") == 0
    answered = [reply.json()["sessionId"] for reply in replies[:5]]
    assert [await redis.get(keys.route_pin(i)) for i in answered] == [b"legacy"] * 5

    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        held = (await start_conversation(gw)).json()["sessionId"]
    await redis.delete(keys.route_pin(held))  # the pin is gone; the engine's session is not
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        again = await start_conversation(gw, sessionId=held)
    assert backend(again) == "new"
    assert await redis.get(keys.route_pin(held)) == b"new"


async def test_sessionless_visitors_split_close_to_the_percentage(
    open_gateway: GatewayOpener,
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="30") as gw:
        observed = [backend(await start_conversation(gw)) for _ in range(300)]
    share = observed.count("new") / 3
    assert 22 <= share <= 38, f"{share:.1f}% new at a 30% rollout"


async def test_conversation_stays_on_its_backend_across_turns_and_a_percentage_drop(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        first = await start_conversation(gw)
        assert backend(first) == "new"
        cookies = dict(gw.cookies)
        version = await set_flag(redis, "new_chat_percent", "0")
        await wait_for_version(gw, version)
        for message in ("Ann Lee", "555-201-7788"):
            gw.cookies.clear()
            gw.cookies.update(cookies)
            turn = await gw.post("/api/chat", json={"message": message})
            assert backend(turn) == "new"
            assert turn.json()["sessionId"] == first.json()["sessionId"]
        assert turn.json()["step"] == "email"
        fresh = await start_conversation(gw)
        assert backend(fresh) == "legacy"
        metrics = (await gw.get("/metrics")).text
        assert decision_count(metrics, "new", "pinned") == 2


async def test_cookieless_client_is_pinned_by_session_id_in_redis(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        first = await start_conversation(gw)
        assert backend(first) == "legacy"
        session_id = first.json()["sessionId"]
        assert await redis.get(f"route:pin:{session_id}") == b"legacy"
        assert 0 < await redis.ttl(f"route:pin:{session_id}") <= 604_800
        version = await set_flag(redis, "new_chat_percent", "100")
        await wait_for_version(gw, version)
        gw.cookies.clear()
        turn = await gw.post("/api/chat", json={"message": "Ann Lee", "sessionId": session_id})
        assert backend(turn) == "legacy"
        assert turn.json()["step"] == "phone"  # legacy's own conversation went on


async def test_a_lost_routing_cookie_does_not_move_a_conversation(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    """The browser keeps `chat_sid` (renewed every turn) longer than `chat_route` (set once):
    with only the engine's cookie left, the conversation stays where it lives (found by the
    Redis pin of that cookie's session id), with what the visitor already gave."""
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        first = await start_conversation(gw)
        await gw.post("/api/chat", json={"message": "Ann Lee"})
        session_cookie = gw.cookies["chat_sid"]
        version = await set_flag(redis, "new_chat_percent", "0")
        await wait_for_version(gw, version)
        gw.cookies.clear()
        gw.cookies.set("chat_sid", session_cookie)
        turn = await gw.post("/api/chat", json={"message": "555-201-7788"})
        assert backend(turn) == "new"
        assert turn.json()["sessionId"] == first.json()["sessionId"]
        assert turn.json()["step"] == "email"  # name and phone kept
        gw.cookies.clear()
        gw.cookies.set("chat_sid", session_cookie.split(".")[0] + ".forged")
        forged = await gw.post("/api/chat", json={"message": "ann@example.com"})
        assert backend(forged) == "legacy"  # an unsigned id is no evidence: a new visitor


async def test_pin_survives_a_gateway_restart(open_gateway: GatewayOpener, redis: Redis) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        first = await start_conversation(gw)
        cookies = dict(gw.cookies)
    await set_flag(redis, "new_chat_percent", "0")
    async with open_gateway(NEW_CHAT_PERCENT="0") as restarted:
        restarted.cookies.update(cookies)
        turn = await restarted.post("/api/chat", json={"message": "Ann Lee"})
        assert backend(turn) == "new"
        restarted.cookies.clear()
        by_id = await restarted.post(
            "/api/chat", json={"message": "555-201-7788", "sessionId": first.json()["sessionId"]}
        )
        assert backend(by_id) == "new"
        assert by_id.json()["step"] == "email"


async def test_kill_switch_in_environment_beats_every_runtime_flag(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    await set_flag(redis, "enable_new_chat", "true")
    await set_flag(redis, "new_chat_percent", "100")
    await set_flag(redis, "drain", "true")
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        pinned = await start_conversation(gw)
        assert backend(pinned) == "new"
        cookies = dict(gw.cookies)
    async with open_gateway(ENABLE_NEW_CHAT="false") as gw:
        assert backend(await start_conversation(gw)) == "legacy"
        gw.cookies.update(cookies)
        assert backend(await gw.post("/api/chat", json={"message": "Ann Lee"})) == "legacy"
        ready = (await gw.get("/readyz")).json()
        assert ready["flags"]["kill_switch"] is True
        metrics = (await gw.get("/metrics")).text
        assert decision_count(metrics, "legacy", "kill_switch") == 2


async def test_master_switch_off_moves_everyone_to_legacy_at_run_time(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        await start_conversation(gw)
        cookies = dict(gw.cookies)
        version = await set_flag(redis, "enable_new_chat", "false")
        await wait_for_version(gw, version)
        gw.cookies.update(cookies)
        moved = await gw.post("/api/chat", json={"message": "Ann Lee"})
        assert backend(moved) == "legacy"
        assert backend(await start_conversation(gw)) == "legacy"


async def test_drain_lets_pinned_new_conversations_finish(
    open_gateway: GatewayOpener, redis: Redis, legacy: PhpLegacy
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        await start_conversation(gw)
        on_new = dict(gw.cookies)
        gw.cookies.clear()
        await set_flag(redis, "drain", "true")
        version = await set_flag(redis, "enable_new_chat", "false")
        await wait_for_version(gw, version)
        gw.cookies.update(on_new)
        for message in ("Ann Lee", "555-201-7788", "ann@example.com", "90210", "yes"):
            turn = await gw.post("/api/chat", json={"message": message})
            assert backend(turn) == "new"
        assert turn.json()["done"] is True
        assert backend(await start_conversation(gw)) == "legacy"
        metrics = (await gw.get("/metrics")).text
        assert decision_count(metrics, "new", "drain") == 5
        assert await redis.llen("lead_queue") == 1  # the drained conversation's lead is queued
        version = await set_flag(redis, "drain", "false")
        await wait_for_version(gw, version)
        gw.cookies.clear()
        gw.cookies.update(on_new)
        assert backend(await gw.post("/api/chat", json={"message": "hello?"})) == "legacy"


def override_token(tester: str, backend_name: str = "new", ttl: float = 3600) -> str:
    signer = TokenSigner(derive_secret("test-session-secret", "routing"))
    return signer.override_token(tester, backend_name, int(time.time() + ttl))  # type: ignore[arg-type]


async def test_tester_override_needs_a_valid_token_and_the_allow_list(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    token = override_token("ann")
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        header = {"X-Chat-Override": token}
        gw.cookies.clear()
        not_listed = await gw.post("/api/chat", json={"message": FIRST}, headers=header)
        assert backend(not_listed) == "legacy"
        version = await set_flag(redis, "testers", "ann,bob")
        await wait_for_version(gw, version)
        gw.cookies.clear()
        assert backend(await gw.post("/api/chat", json={"message": FIRST}, headers=header)) == "new"
        gw.cookies.clear()
        gw.cookies.set("chat_override", token)
        assert backend(await gw.post("/api/chat", json={"message": FIRST})) == "new"
        for bad in (
            token[:-2] + "xx",  # tampered signature
            token.replace("ann.", "bob.", 1),  # another tester's name on ann's signature
            override_token("ann", ttl=-10),  # expired
            override_token("eve"),  # not on the allow-list
            "ann.n.99999999999.forged",
            "garbage\tvalue",
        ):
            gw.cookies.clear()
            response = await gw.post(
                "/api/chat", json={"message": FIRST}, headers={"X-Chat-Override": bad}
            )
            assert backend(response) == "legacy", bad
        version = await set_flag(redis, "testers", "bob")  # revokes ann's tokens
        await wait_for_version(gw, version)
        gw.cookies.clear()
        assert (
            backend(await gw.post("/api/chat", json={"message": FIRST}, headers=header)) == "legacy"
        )


async def test_forged_routing_cookie_is_ignored(open_gateway: GatewayOpener) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        first = await start_conversation(gw)
        session_id = first.json()["sessionId"]
        real = gw.cookies["chat_route"]
        forged = "n." + real.split(".", 1)[1]  # claims the new engine with legacy's signature
        for value in (forged, f"n.{session_id}.AAAAAAAAAAAAAAAAAAAAAA", "n..", "x" * 500):
            gw.cookies.clear()
            gw.cookies.set("chat_route", value)
            response = await gw.post("/api/chat", json={"message": "Ann Lee"})
            assert backend(response) == "legacy"


async def test_health_probe_sees_the_same_backend_on_every_try(open_gateway: GatewayOpener) -> None:
    """A probe buckets by its client. The rollout here puts this client's probe on the new
    engine, whose health reply sets a session cookie: that cookie names no conversation and
    must not move the next probe (a random id lands outside the rollout about half the time)."""
    percent = bucket("new-chat", "probe:testclient")  # the test client's address
    async with open_gateway(NEW_CHAT_PERCENT=str(percent)) as gw:
        seen = [(await gw.get("/api/chat")).headers["x-chat-backend"] for _ in range(20)]
        assert "chat_sid" in gw.cookies
    assert set(seen) == {"new"}


async def test_header_injection_through_ids_and_tokens_goes_nowhere(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    evil = "abcdefgh12345678\r\nSet-Cookie: evil=1"
    async with open_gateway(NEW_CHAT_PERCENT="50") as gw:
        for percent_backend in range(4):
            gw.cookies.clear()
            response = await gw.post(
                "/api/chat",
                json={"message": FIRST, "sessionId": evil},
                headers={"X-Chat-Override": "ann.n.9999999999.x\\r\\nX-Evil: 1"},
            )
            assert response.status_code == 200, percent_backend
            assert "evil" not in response.headers.get("set-cookie", "")
            assert "x-evil" not in response.headers
    assert [k async for k in redis.scan_iter(match="route:pin:*\r*")] == []


@pytest.mark.parametrize(("secure", "extra"), [("false", set()), ("true", {"secure"})])
async def test_the_routing_cookie_is_httponly_lax_and_secure_when_asked(
    open_gateway: GatewayOpener, secure: str, extra: set[str]
) -> None:
    """Scripts on the page never read where a conversation is pinned."""
    async with open_gateway(NEW_CHAT_PERCENT="0", COOKIE_SECURE=secure) as gw:
        first = await start_conversation(gw)
    route = next(c for c in first.headers.get_list("set-cookie") if c.startswith("chat_route="))
    attributes = {part.strip().lower() for part in route.split(";")[1:]}
    assert attributes == {"httponly", "samesite=lax", "path=/", "max-age=604800"} | extra


async def test_a_turn_pinned_by_its_cookie_writes_no_pin(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    """The pin is written once, when the conversation is placed; a later turn carried by its
    routing cookie leaves the stored pin alone (here: its shortened TTL is not renewed)."""
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        first = await start_conversation(gw)
        key = f"route:pin:{first.json()['sessionId']}"
        assert await redis.get(key) == b"new"
        await redis.expire(key, 100)
        turn = await gw.post("/api/chat", json={"message": "Ann Lee"})
        assert backend(turn) == "new"
    assert 0 < await redis.ttl(key) <= 100


PIN_RACE_CONVERSATIONS = 10_000


@pytest.mark.slow
async def test_an_immediate_second_turn_never_moves_a_cookieless_conversation(
    open_gateway: GatewayOpener,
) -> None:
    """At 50 % rollout, each visitor sends turn 2 (its `sessionId` in the body, no cookies) the
    moment turn 1's reply arrives: 11 of 13,000 conversations were re-bucketed when the pin was
    written after the reply (issue 16). Now 0 of `PIN_RACE_CONVERSATIONS` may move."""
    jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    async with open_gateway(NEW_CHAT_PERCENT="50") as gw:
        gw.cookies = jar  # keeps no cookie: every turn is as cookieless as the app's
        limit = asyncio.Semaphore(16)

        async def conversation() -> tuple[str, str]:
            async with limit:
                first = await gw.post("/api/chat", json={"message": FIRST})
                second = await gw.post(
                    "/api/chat", json={"message": "Ann Lee", "sessionId": first.json()["sessionId"]}
                )
                return backend(first), backend(second)

        results = await asyncio.gather(*(conversation() for _ in range(PIN_RACE_CONVERSATIONS)))
    moved = [pair for pair in results if pair[0] != pair[1]]
    assert moved == []
    started_new = sum(1 for pair in results if pair[0] == "new")
    assert 0.4 < started_new / PIN_RACE_CONVERSATIONS < 0.6


async def test_a_replayed_new_engine_route_cookie_starts_no_new_engine_conversation(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    """A signed `chat_route=n.<id>` cookie from any earlier conversation, replayed without the
    engine's cookie or a `sessionId`, started new-engine conversations at 0 % (10 of 10: a
    fresh helper, issue 18). It pins only the conversation it names."""
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        first = await start_conversation(gw)
        assert backend(first) == "new"
        route_cookie = gw.cookies["chat_route"]
        engine_cookie = gw.cookies["chat_sid"]
        version = await set_flag(redis, "new_chat_percent", "0")
        await wait_for_version(gw, version)
        replayed = []
        for _ in range(10):
            gw.cookies.clear()
            gw.cookies.set("chat_route", route_cookie)
            replayed.append(await gw.post("/api/chat", json={"message": FIRST}))
        gw.cookies.clear()
        gw.cookies.update({"chat_route": route_cookie, "chat_sid": engine_cookie})
        going_on = await gw.post("/api/chat", json={"message": "Ann Lee"})
    assert [backend(reply) for reply in replayed] == ["legacy"] * 10
    assert backend(going_on) == "new"  # the conversation it names still continues there
    assert going_on.json()["sessionId"] == first.json()["sessionId"]
