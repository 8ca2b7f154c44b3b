"""The engine's endpoints called as the gateway calls them: every error as its exact reply, the
shadow key, and the cron endpoint's secret, budget and report."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import respx
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from common import RedisSettings, StoreUnavailable, keys, open_redis
from newchat import (
    DependencyDown,
    EngineReply,
    Forbidden,
    InvalidField,
    InvalidRequest,
    RateLimited,
    Services,
    create_app,
    cron_process,
    cron_status,
    error_reply,
    load_settings,
    provide_services,
    shadow_key,
)
from tests.conftest import LEADPROSPER_URL
from tests.support.leads import make_lead


@pytest.mark.parametrize(
    ("error", "status", "body", "retry_after"),
    [
        (InvalidRequest("not JSON"), 400, {"error": "invalid_request", "detail": "not JSON"}, None),
        (InvalidField("too long"), 422, {"error": "invalid_field", "detail": "too long"}, None),
        (Forbidden("no"), 403, {"error": "forbidden", "detail": "no"}, None),
        (
            RateLimited("slow down", 7),
            429,
            {"error": "rate_limited", "detail": "slow down"},
            7,
        ),
        (
            DependencyDown("openai", "OpenAI failed", "check the key"),
            503,
            {
                "error": "dependency_unavailable",
                "detail": "OpenAI failed",
                "action": "retry shortly",
            },
            None,
        ),
        (
            StoreUnavailable("unreachable", "Redis unreachable", "start redis-server"),
            503,
            {
                "error": "dependency_unavailable",
                "detail": "the chat's session store (Redis) is unreachable",
                "action": "retry shortly",
            },
            None,
        ),
        (
            StoreUnavailable("timeout", "Redis slow", "check load"),
            503,
            {
                "error": "dependency_unavailable",
                "detail": "the chat's session store (Redis) is unreachable",
                "action": "retry shortly",
            },
            None,
        ),
        (
            StoreUnavailable("out_of_memory", "Redis full", "free memory"),
            503,
            {
                "error": "dependency_unavailable",
                "detail": "the chat's session store (Redis) is unavailable",
                "action": "retry shortly",
            },
            None,
        ),
        (
            RuntimeError("a bug"),
            500,
            {"error": "internal_error", "detail": "something went wrong on our side"},
            None,
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_every_error_is_one_exact_json_reply(
    error: Exception, status: int, body: dict[str, str], retry_after: int | None
) -> None:
    reply = error_reply(error, "/api/chat")
    assert reply == EngineReply(status, reply.body, None, None, retry_after, None)
    assert json.loads(reply.body) == body


@pytest.fixture
async def engine_client(
    base_env: dict[str, str], redis: Redis, outside: respx.MockRouter
) -> AsyncTestClient:  # type: ignore[type-arg]
    def http_factory() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(outside.async_handler))

    app = create_app(load_settings(base_env), http_factory=http_factory)
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_the_gateways_key_opens_shadow_mode_and_nothing_else_does(
    engine_client: AsyncTestClient,  # type: ignore[type-arg]
    redis: Redis,
    base_env: dict[str, str],
) -> None:
    key = shadow_key(load_settings(base_env).session)
    turn = {"message": "I was rear ended and my neck hurts"}
    shadowed = await engine_client.post(
        "/api/chat", json=turn, headers={"X-Shadow-Request": "1", "X-Shadow-Auth": key}
    )
    assert shadowed.status_code == 200
    session_id = shadowed.json()["sessionId"]
    assert await redis.exists(keys.shadow_session(session_id))
    assert not await redis.exists(keys.session(session_id))
    assert "set-cookie" not in shadowed.headers
    refused = {"error": "forbidden", "detail": "shadow requests are accepted from the gateway only"}
    for headers in ({"X-Shadow-Request": "1"}, {"X-Shadow-Request": "1", "X-Shadow-Auth": ""}):
        denied = await engine_client.post("/api/chat", json=turn, headers=headers)
        assert (denied.status_code, denied.json()) == (403, refused)


async def test_the_health_check_sets_the_session_cookie_too(
    engine_client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    health = await engine_client.get("/api/chat")
    assert health.status_code == 200
    assert health.headers["set-cookie"].startswith("chat_sid=")


async def test_queue_status_lists_every_count(engine: Services, redis: Redis) -> None:
    await engine.queue.enqueue(make_lead(1))
    reply = await cron_status(engine)
    assert reply.status == 200
    assert json.loads(reply.body) == {
        "queued": 1,
        "processing": 0,
        "stuck": 0,
        "retry_scheduled": 0,
        "failed": 0,
        "oldest_claim_age_seconds": None,
        "workers": [],
        "leadprosper_configured": True,
    }


async def test_queue_status_without_redis_is_a_503(
    base_env: dict[str, str], outside_http: httpx.AsyncClient
) -> None:
    settings = load_settings(base_env | {"REDIS_URL": "redis://127.0.0.1:1/0"})
    services = provide_services(settings, _dead_redis(), outside_http)
    reply = await cron_status(services)
    assert reply.status == 503
    assert json.loads(reply.body)["error"] == "dependency_unavailable"


def _dead_redis() -> Redis:
    return open_redis(RedisSettings(url="redis://127.0.0.1:1/0", socket_timeout=0.5))


@pytest.mark.parametrize("secret", [None, "", "wrong"])
async def test_a_wrong_cron_secret_is_refused_by_name(engine: Services, secret: str | None) -> None:
    reply = await cron_process(engine, secret)
    assert reply.status == 401
    assert json.loads(reply.body) == {
        "error": "unauthorized",
        "detail": "missing or wrong x-cron-secret",
    }


async def test_processing_leads_reports_what_it_did(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    outside.post(LEADPROSPER_URL).respond(200, json={"status": "ACCEPTED", "lead_id": 1})
    await engine.queue.enqueue(make_lead(1))  # queued
    await engine.queue.enqueue(make_lead(2))
    [stuck] = await engine.queue.claim("dead-worker", 1)  # claimed long ago by a dead worker
    await engine.queue.enqueue(make_lead(3))
    [retrying] = await engine.queue.claim("w", 1)
    await engine.queue.retry_later(retrying, "HTTP 503", delay=0)  # due now
    await redis.hset(
        keys.LEAD_PROCESSING,
        stuck.id,
        (await redis.hget(keys.LEAD_PROCESSING, stuck.id) or b"").replace(
            b'"claimed_at":', b'"claimed_at":1.0,"was":', 1
        ),
    )
    reply = await cron_process(engine, "test-cron-secret")
    body = json.loads(reply.body)
    assert reply.status == 200
    assert (body["requeued_stuck"], body["promoted_retries"]) == (1, 1)
    assert body["processed"]["accepted"] == 3
    assert body["queue"]["queued"] == body["queue"]["processing"] == 0
    assert set(body) == {"requeued_stuck", "promoted_retries", "processed", "queue"}


async def test_processing_leads_stops_within_its_budget_and_loses_nothing(
    base_env: dict[str, str],
    redis: Redis,
    outside: respx.MockRouter,
    outside_http: httpx.AsyncClient,
) -> None:
    """LeadProsper hangs: the cron call answers after its budget, and the lead it was sending
    is back in the queue for the worker."""

    async def hanging(_: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    outside.post(LEADPROSPER_URL).mock(side_effect=hanging)
    settings = load_settings(base_env | {"CRON_BUDGET": "0.3"})
    services = provide_services(settings, redis, outside_http)
    await services.queue.enqueue(make_lead(1))
    started = time.monotonic()
    reply = await cron_process(services, "test-cron-secret")
    assert time.monotonic() - started < 3.0
    body = json.loads(reply.body)
    assert body["processed"]["released"] == 1
    assert await redis.llen(keys.LEAD_QUEUE) == 1
    assert await redis.hlen(keys.LEAD_PROCESSING) == 0


async def test_wrong_cron_secrets_are_rate_limited_per_client(engine: Services) -> None:
    """2,000 wrong secrets took 0.7 s (issue 18): each counts against the client's limit, then
    429 with Retry-After; another client is not held up. A limited client gets 429 even with
    the right secret, so the answer never tells a right guess from a wrong one (a fresh
    helper), and secrets sent to the status (GET) count too."""
    limit = engine.settings.rate_limit.normal_limit
    replies = [await cron_process(engine, f"guess-{n}", "203.0.113.7") for n in range(limit + 5)]
    assert [r.status for r in replies[:limit]] == [401] * limit
    assert {r.status for r in replies[limit:]} == {429}
    assert json.loads(replies[-1].body)["error"] == "rate_limited"
    assert replies[-1].retry_after is not None
    assert replies[-1].retry_after >= 1
    assert (await cron_process(engine, "guess", "203.0.113.8")).status == 401
    assert (await cron_process(engine, "test-cron-secret", "203.0.113.7")).status == 429
    assert (await cron_status(engine, "test-cron-secret", "203.0.113.7")).status == 429
    guesses = [await cron_status(engine, f"g{n}", "203.0.113.9") for n in range(limit + 1)]
    assert guesses[-1].status == 429
    assert (await cron_status(engine, None, "127.0.0.1")).status == 200  # this host: no secret


@pytest.mark.parametrize(
    ("client", "secret", "status"),
    [
        ("127.0.0.1", None, 200),  # the runbook's curl on the host
        ("::1", None, 200),
        ("203.0.113.7", None, 401),  # a visitor through nginx (address from TRUSTED_PROXIES)
        ("203.0.113.7", "wrong", 401),
        ("203.0.113.7", "test-cron-secret", 200),
    ],
)
async def test_queue_status_is_for_this_host_or_the_secret_holder(
    engine: Services, client: str, secret: str | None, status: int
) -> None:
    """It names workers' hosts and pids: through nginx it needed no secret (issue 18)."""
    await engine.queue.enqueue(make_lead(1))
    reply = await cron_status(engine, secret, client)
    assert reply.status == status
    body = json.loads(reply.body)
    assert ("queued" in body) == (status == 200)
