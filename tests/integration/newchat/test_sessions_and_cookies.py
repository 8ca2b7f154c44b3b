"""Session cookies: signed, HttpOnly, SameSite, Secure when configured; bad ones start fresh."""

from __future__ import annotations

import httpx
import pytest
import respx
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from common import RedisSettings, StoreUnavailable, keys, open_redis
from newchat import SessionStore, create_app, load_settings
from tests.integration.conftest import say
from tests.support.processes import free_port


async def test_reply_sets_a_signed_httponly_samesite_cookie(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await say(client, "I was arrested last night")
    cookie = response.headers["set-cookie"]
    session_id = response.json()["sessionId"]
    assert cookie.startswith(f"chat_sid={session_id}.")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert attributes == {"httponly", "samesite=lax", "path=/", "max-age=604800"}  # no Secure


async def test_secure_flag_when_configured(
    base_env: dict[str, str], outside: respx.MockRouter
) -> None:
    app = create_app(
        load_settings(base_env | {"COOKIE_SECURE": "true"}),
        http_factory=lambda: httpx.AsyncClient(
            transport=httpx.MockTransport(outside.async_handler)
        ),
    )
    async with AsyncTestClient(app=app) as client:
        head = await client.head("/api/chat")
        assert "Secure" in head.headers["set-cookie"]
        assert "HttpOnly" in head.headers["set-cookie"]


async def test_cookie_alone_carries_the_conversation(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    first = (await say(client, "I need help with a green card")).json()
    second = (await say(client, "Ann Lee")).json()
    assert second["sessionId"] == first["sessionId"]
    assert second["step"] == "phone"


async def test_body_session_id_works_without_a_cookie(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    session_id = (await say(client, "my landlord is evicting me")).json()["sessionId"]
    client.cookies.clear()
    reply = (await say(client, "Ann Lee", sessionId=session_id)).json()
    assert (reply["sessionId"], reply["step"]) == (session_id, "phone")


async def test_tampered_cookie_starts_a_fresh_session_without_error(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    victim = (await say(client, "I got a DUI")).json()["sessionId"]
    client.cookies.clear()
    client.cookies.set("chat_sid", f"{victim}.forgedsignature")
    response = await say(client, "hello")
    assert response.status_code == 200
    assert response.json()["sessionId"] != victim
    assert (await redis.exists(keys.session(victim))) == 1


async def test_unknown_or_malformed_session_ids_start_fresh_with_a_new_id(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    for bogus in ["doesnotexist1234567890", "../../etc/passwd", "x" * 500, ""]:
        client.cookies.clear()
        response = await say(client, "hello", sessionId=bogus)
        assert response.status_code == 200
        assert response.json()["sessionId"] != bogus
        assert response.json()["step"] == "describe"


async def test_unreadable_stored_session_is_replaced_not_a_500(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    session_id = (await say(client, "I need a will")).json()["sessionId"]
    await redis.set(keys.session(session_id), b"\xc1garbage")
    response = await say(client, "Ann Lee")
    assert response.status_code == 200
    assert response.json()["step"] == "describe"


async def test_expired_session_starts_over(client: AsyncTestClient, redis: Redis) -> None:  # type: ignore[type-arg]
    session_id = (await say(client, "I was fired")).json()["sessionId"]
    await redis.delete(keys.session(session_id))
    reply = (await say(client, "Ann Lee")).json()
    assert reply["sessionId"] != session_id


async def test_a_session_store_without_redis_says_redis_is_unreachable() -> None:
    dead = open_redis(RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5))
    store = SessionStore(dead)
    try:
        with pytest.raises(StoreUnavailable) as loading:
            await store.load("abcdefgh12345678")
        with pytest.raises(StoreUnavailable) as saving:
            await store.save(store.new())
    finally:
        await dead.aclose()
    assert loading.value.kind == saving.value.kind == "unreachable"


async def test_an_unreadable_session_starts_over_without_an_error(redis: Redis) -> None:
    store = SessionStore(redis)
    await redis.set(keys.session("abcdefgh12345678"), b"\xc1 not msgpack")
    assert await store.load("abcdefgh12345678") is None


async def test_a_saved_session_loads_back_with_its_ttl(redis: Redis) -> None:
    store = SessionStore(redis, ttl_seconds=600)
    state = store.new()
    assert state.updated_at == state.created_at  # a fresh conversation, not yet saved
    assert store.new().id != state.id
    state.description = "rear ended"
    await store.save(state)
    loaded = await store.load(state.id)
    assert loaded is not None
    assert (loaded.id, loaded.description) == (state.id, "rear ended")
    assert loaded.updated_at >= loaded.created_at
    assert 590 < await redis.ttl(keys.session(state.id)) <= 600
    assert await store.load("somebodyelse0001") is None
