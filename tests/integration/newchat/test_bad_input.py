"""Bad input gets a clear 4xx JSON error, never a 500, and nothing stored is lost."""

from __future__ import annotations

import json

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from common import keys
from newchat import cron_process, load_settings, provide_services
from tests.integration.conftest import say

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "invalid_request"),
        (b"", 400, "invalid_request"),
        (b'{"message": "caf\xe9"}', 400, "invalid_request"),  # Latin-1, not UTF-8
        (b"[1, 2]", 422, "invalid_field"),
        (b"{}", 422, "invalid_field"),
        (b'{"message": 42}', 422, "invalid_field"),
        (b'{"message": null}', 422, "invalid_field"),
        (b'{"message": "hi", "sessionId": 7}', 422, "invalid_field"),
        (b'{"message": "hi", "admin": true}', 422, "invalid_field"),
        (b'{"message": "   "}', 422, "invalid_field"),
        (b'{"message": "' + b"a" * 2001 + b'"}', 422, "invalid_field"),
        (b'{"message": "a\\u0000b"}', 422, "invalid_field"),
    ],
)
async def test_bad_chat_bodies_get_a_clear_json_error(
    client: AsyncTestClient,
    body: bytes,
    status: int,
    code: str,  # type: ignore[type-arg]
) -> None:
    response = await client.post("/api/chat", content=body, headers=JSON)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["detail"]


async def test_an_oversized_body_is_refused_with_413(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.post("/api/chat", content=b"x" * 20_000, headers=JSON)
    assert response.status_code == 413
    assert "error" in response.json()


async def test_bad_input_mid_conversation_changes_nothing_stored(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    session_id = (await say(client, "I need a divorce")).json()["sessionId"]
    before = await redis.get(keys.session(session_id))
    for body in [b"{", b'{"message": 1}', b'{"message": ""}']:
        response = await client.post("/api/chat", content=body, headers=JSON)
        assert response.status_code in (400, 422)
    assert await redis.get(keys.session(session_id)) == before
    reply = (await say(client, "Ann Lee")).json()
    assert (reply["sessionId"], reply["step"]) == (session_id, "phone")


async def test_unknown_route_and_method_are_json_4xx(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await client.get("/api/nope")).status_code == 404
    response = await client.delete("/api/chat")
    assert response.status_code == 405
    assert response.json()["error"] == "http_error"


@pytest.mark.parametrize("secret", [None, "", "wrong", "test-cron-secre", "test-cron-secret "])
async def test_processing_leads_needs_the_exact_cron_secret(
    client: AsyncTestClient,
    secret: str | None,  # type: ignore[type-arg]
) -> None:
    headers = {} if secret is None else {"x-cron-secret": secret}
    response = await client.post("/api/cron/process-leads", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


async def test_a_visitor_cannot_ask_for_shadow_mode(client: AsyncTestClient, redis: Redis) -> None:  # type: ignore[type-arg]
    """Shadow mode skips the rate limit and writes elsewhere: only the gateway's key unlocks it."""
    for headers in (
        {"X-Shadow-Request": "1"},
        {"X-Shadow-Request": "1", "X-Shadow-Auth": "guess"},
    ):
        response = await client.post("/api/chat", json={"message": "hi"}, headers=headers)
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
    assert [k async for k in redis.scan_iter(match="*sess:*")] == []


@pytest.mark.parametrize("secret", [None, "", "anything"])
async def test_without_a_cron_secret_configured_nobody_processes_leads(
    base_env: dict[str, str], redis: Redis, outside_http: httpx.AsyncClient, secret: str | None
) -> None:
    """An unset `CRON_SECRET` refuses everyone (an empty one must never match an empty header)."""
    settings = load_settings(base_env | {"CRON_SECRET": ""})
    reply = await cron_process(provide_services(settings, redis, outside_http), secret)
    assert reply.status == 401
    assert json.loads(reply.body) == {"error": "unauthorized", "detail": "CRON_SECRET is not set"}
