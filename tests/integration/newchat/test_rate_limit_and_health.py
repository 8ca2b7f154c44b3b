"""Rate limits (normal and emergency, shared through Redis) and the health endpoint."""

from __future__ import annotations

import httpx
import respx
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from common import keys
from newchat import create_app, load_settings
from tests.integration.conftest import say
from tests.support.processes import free_port


def make_app(env: dict[str, str], outside: respx.MockRouter):  # type: ignore[no-untyped-def]
    return create_app(
        load_settings(env),
        http_factory=lambda: httpx.AsyncClient(
            transport=httpx.MockTransport(outside.async_handler)
        ),
    )


async def test_normal_limit_then_429_with_retry_after(
    base_env: dict[str, str], redis: Redis, outside: respx.MockRouter
) -> None:
    env = base_env | {"RATE_LIMIT_PER_MINUTE": "3"}
    async with AsyncTestClient(app=make_app(env, outside)) as client:
        statuses = [(await say(client, "hello")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await say(client, "hello")
        assert refused.json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_emergency_switch_tightens_limits_at_once_across_instances(
    base_env: dict[str, str], redis: Redis, outside: respx.MockRouter
) -> None:
    env = base_env | {"RATE_LIMIT_PER_MINUTE": "10", "EMERGENCY_RATE_LIMIT_PER_MINUTE": "2"}
    async with (
        AsyncTestClient(app=make_app(env, outside)) as first,
        AsyncTestClient(app=make_app(env, outside)) as second,
    ):
        assert (await say(first, "hello")).status_code == 200
        await redis.set(keys.EMERGENCY_RATE_LIMIT, "1")  # runbook: set emergency_rate_limit 1
        assert (await say(second, "hello")).status_code == 200
        assert (await say(first, "hello")).status_code == 429
        assert (await say(second, "hello")).status_code == 429
        await redis.delete(keys.EMERGENCY_RATE_LIMIT)
        assert (await say(second, "hello")).status_code == 200


async def test_forwarded_for_is_trusted_only_from_trusted_proxies(
    base_env: dict[str, str], redis: Redis, outside: respx.MockRouter
) -> None:
    env = base_env | {"RATE_LIMIT_PER_MINUTE": "1", "TRUSTED_PROXIES": "testclient"}
    async with AsyncTestClient(app=make_app(env, outside)) as client:
        for visitor in ("203.0.113.5", "203.0.113.6"):
            response = await client.post(
                "/api/chat", json={"message": "hi"}, headers={"x-forwarded-for": visitor}
            )
            assert response.status_code == 200  # one each: counted per real visitor
    env = base_env | {"RATE_LIMIT_PER_MINUTE": "1", "TRUSTED_PROXIES": "10.9.9.9"}
    await redis.flushall()
    async with AsyncTestClient(app=make_app(env, outside)) as client:
        codes = [
            (
                await client.post(
                    "/api/chat", json={"message": "hi"}, headers={"x-forwarded-for": ip}
                )
            ).status_code
            for ip in ("203.0.113.5", "203.0.113.6")
        ]
        assert codes == [200, 429]  # spoofed header ignored: same peer, same bucket


ON_THIS_HOST = {"x-forwarded-for": "127.0.0.1"}
"""With TRUSTED_PROXIES naming the test client (its address is `testclient`), a visitor on
this host: operators' detail is for them alone."""


async def test_health_is_ok_with_redis_and_names_what_is_missing(
    base_env: dict[str, str], outside: respx.MockRouter, redis: Redis
) -> None:
    env = base_env | {"TRUSTED_PROXIES": "testclient"}
    async with AsyncTestClient(app=make_app(env, outside)) as client:
        response = await client.get("/api/chat", headers=ON_THIS_HOST)
        public = await client.get("/api/chat", headers={"x-forwarded-for": "203.0.113.9"})
    assert public.json() == {"status": response.json()["status"]}  # nothing else, to visitors
    assert public.status_code == response.status_code
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["openai"]["detail"].startswith("not configured")
    assert "worker" in body["failing"]  # no worker heartbeat in this test
    assert body["checks"]["worker"]["action"]


async def test_health_is_503_naming_redis_when_it_is_down(
    base_env: dict[str, str], outside: respx.MockRouter
) -> None:
    env = base_env | {
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "TRUSTED_PROXIES": "testclient",
    }
    async with AsyncTestClient(app=make_app(env, outside)) as client:
        health = await client.get("/api/chat", headers=ON_THIS_HOST)
        assert health.status_code == 503
        assert health.json()["failing"] == ["redis"]
        assert "redis-server" in health.json()["checks"]["redis"]["action"]
        chat = await say(client, "hello")
        assert chat.status_code == 503
        assert chat.json()["error"] == "dependency_unavailable"


async def test_limit_and_conversation_survive_redis_forgetting_its_scripts(
    base_env: dict[str, str], redis: Redis, outside: respx.MockRouter
) -> None:
    """A turn counts the visitor and reads the session in one round trip (EVALSHA + GET); after
    a Redis restart or `SCRIPT FLUSH` the script is loaded again and nothing is lost."""
    env = base_env | {"RATE_LIMIT_PER_MINUTE": "3"}
    async with AsyncTestClient(app=make_app(env, outside)) as client:
        first = await say(client, "I was rear-ended on the freeway and hurt my neck")
        await redis.script_flush()
        second = await say(client, "Ann Lee")
        assert second.status_code == 200
        assert second.json()["sessionId"] == first.json()["sessionId"]
        assert second.json()["step"] == "phone"  # the session was read in the same round trip
        await redis.script_flush()
        assert (await say(client, "555-201-7788")).status_code == 200
        assert (await say(client, "ann@example.com")).status_code == 429  # every turn counted
