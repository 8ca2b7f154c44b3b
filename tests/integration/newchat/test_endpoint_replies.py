"""The engine's endpoints called as the gateway calls them in-process (typed request in,
`EngineReply` out), against the real redis-server: the conversation each reply names, the
session cookie it sets, rate limits counted by mode, the cookie probe, cron's burst, and a Redis
outage answered 503 and logged with the path it hit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec
import pytest
import respx
from redis.asyncio import Redis

from common import LogSettings, configure_logging, flush_logs, keys
from newchat import Services, load_settings, provide_redis, provide_services
from newchat._endpoints import (
    CHAT_PATH,
    CRON_PATH,
    ChatMessage,
    TurnRequest,
    chat_health,
    chat_turn,
    cookie_probe,
    cron_process,
    cron_status,
    parse_chat_message,
)
from newchat._errors import InvalidField, InvalidRequest
from tests.conftest import LEADPROSPER_URL
from tests.support.leads import make_lead
from tests.support.processes import free_port

FIRST = b'{"message": "my landlord kept my security deposit"}'


def turn(body: bytes, *, cookie: str | None = None, shadow: bool = False) -> TurnRequest:
    return TurnRequest(body, cookie, "203.0.113.9", shadow)


@pytest.fixture
def log_lines(tmp_path: Path) -> Callable[[], list[dict[str, object]]]:
    log_file = tmp_path / "endpoint.log"
    configure_logging(LogSettings(file=str(log_file), stdout=False, flush_interval_seconds=0))

    def read() -> list[dict[str, object]]:
        flush_logs()
        return [json.loads(line) for line in log_file.read_text().splitlines()]

    return read


@pytest.mark.parametrize(
    ("body", "error", "detail"),
    [
        (b"", InvalidRequest, 'the request body is empty; send JSON like {"message": "..."}'),
        (b"  \n", InvalidRequest, 'the request body is empty; send JSON like {"message": "..."}'),
        (b"not json", InvalidRequest, "the request body is not valid UTF-8 JSON"),
        (b'{"message": "caf\xe9"}', InvalidRequest, "the request body is not valid UTF-8 JSON"),
        (b'{"message": 5}', InvalidField, "Expected `str`, got `int` - at `$.message`"),
        (b'{"message": " \\t "}', InvalidField, "message must not be empty"),
        (b'{"message": "0123456789x"}', InvalidField, "message is longer than 10 characters"),
        (b'{"message": "a\\u0000b"}', InvalidField, "message contains a NUL character"),
    ],
)
def test_a_bad_chat_body_is_refused_with_what_is_wrong(
    body: bytes, error: type[Exception], detail: str
) -> None:
    with pytest.raises(error) as raised:
        parse_chat_message(body, max_chars=10)
    assert raised.value.detail == detail  # type: ignore[attr-defined]


def test_a_message_of_exactly_the_limit_is_taken_trimmed() -> None:
    body = b'{"message": "  0123456789  ", "sessionId": "abc"}'
    assert parse_chat_message(body, max_chars=10) == ChatMessage("0123456789", "abc")


async def test_a_turn_names_its_conversation_and_sets_its_cookie(engine: Services) -> None:
    first = await chat_turn(engine, turn(FIRST))
    assert first.status == 200
    session_id = msgspec.json.decode(first.body)["sessionId"]
    assert first.session_id == session_id
    assert first.set_cookie is not None
    cookie = first.set_cookie.split(";")[0].split("=", 1)[1]
    assert engine.cookies.unsign(cookie) == session_id

    by_cookie = await chat_turn(engine, turn(b'{"message": "Ann Lee"}', cookie=cookie))
    assert by_cookie.session_id == session_id
    assert msgspec.json.decode(by_cookie.body)["step"] == "phone"


async def test_a_shadow_turn_names_its_shadow_conversation_and_continues_it(
    engine: Services, redis: Redis
) -> None:
    first = await chat_turn(engine, turn(FIRST, shadow=True))
    assert first.status == 200
    assert first.set_cookie is None  # a mirrored turn has no visitor to set it on
    session_id = first.session_id
    assert session_id is not None
    assert await redis.exists(keys.shadow_session(session_id)) == 1
    assert await redis.exists(keys.session(session_id)) == 0
    body = msgspec.json.encode({"message": "Ann Lee", "sessionId": session_id})
    second = await chat_turn(engine, turn(body, shadow=True))
    assert second.session_id == session_id
    assert msgspec.json.decode(second.body)["step"] == "phone"


async def test_rate_limited_turns_are_refused_and_counted_by_mode(
    base_env: dict[str, str], redis: Redis, outside_http: httpx.AsyncClient
) -> None:
    env = base_env | {"RATE_LIMIT_PER_MINUTE": "2", "EMERGENCY_RATE_LIMIT_PER_MINUTE": "1"}
    engine = provide_services(load_settings(env), redis, outside_http)
    replies = [await chat_turn(engine, turn(FIRST)) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 429]
    refused = replies[2]
    assert msgspec.json.decode(refused.body) == {
        "error": "rate_limited",
        "detail": "too many messages; please wait a moment",
    }
    assert refused.retry_after is not None
    assert 1 <= refused.retry_after <= 60

    def refused_in(mode: str) -> float | None:
        return engine.metrics.registry.get_sample_value("chat_rate_limited_total", {"mode": mode})

    assert (refused_in("normal"), refused_in("emergency")) == (1, None)
    await redis.set(keys.EMERGENCY_RATE_LIMIT, "1")
    assert (await chat_turn(engine, turn(FIRST))).status == 429
    assert (refused_in("normal"), refused_in("emergency")) == (1, 1)


async def test_the_cookie_probe_keeps_a_valid_session_and_starts_none(engine: Services) -> None:
    first = await chat_turn(engine, turn(FIRST))
    assert first.set_cookie is not None
    cookie = first.set_cookie.split(";")[0].split("=", 1)[1]
    for probe in (cookie_probe(engine, cookie), await chat_health(engine, cookie)):
        assert probe.status == 200
        assert probe.set_cookie == engine.cookies.set_cookie(first.session_id or "")
    fresh = cookie_probe(engine, "forged.cookie")
    assert (fresh.status, fresh.body) == (200, b"")
    assert fresh.set_cookie is not None
    assert first.session_id not in fresh.set_cookie


async def test_cron_returns_when_the_queue_is_drained_not_at_its_budget(
    base_env: dict[str, str],
    redis: Redis,
    outside_http: httpx.AsyncClient,
    outside: respx.MockRouter,
) -> None:
    outside.post(LEADPROSPER_URL).respond(200, json={"status": "ACCEPTED"})
    engine = provide_services(load_settings(base_env | {"CRON_BUDGET": "600"}), redis, outside_http)
    for n in range(2):
        await engine.queue.enqueue(make_lead(n))
    async with asyncio.timeout(20):  # far under the 600 s budget: a burst ends when done
        reply = await cron_process(engine, "test-cron-secret")
    assert reply.status == 200
    assert msgspec.json.decode(reply.body)["processed"]["accepted"] == 2


async def test_redis_down_is_a_503_naming_the_store_and_logged_with_its_path(
    base_env: dict[str, str],
    outside_http: httpx.AsyncClient,
    log_lines: Callable[[], list[dict[str, object]]],
) -> None:
    settings = load_settings(base_env | {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    down = provide_redis(settings)
    engine = provide_services(settings, down, outside_http)
    replies = {
        CHAT_PATH: await chat_turn(engine, turn(FIRST)),
        CRON_PATH: await cron_status(engine),
        f"{CRON_PATH} (POST)": await cron_process(engine, "test-cron-secret"),
    }
    for reply in replies.values():
        assert reply.status == 503
        body = msgspec.json.decode(reply.body)
        assert body["error"] == "dependency_unavailable"
        assert body["detail"] == "the chat's session store (Redis) is unreachable"
        assert body["action"] == "retry shortly"  # what operators do is in the log, not here
    logged = [
        (line["path"], line["level"])
        for line in log_lines()
        if line["event"] == "Dependency unavailable"
    ]
    # one outage, one ERROR: the rest are warnings (the runbook counts ERROR lines)
    assert logged == [(CHAT_PATH, "ERROR"), (CRON_PATH, "WARNING"), (CRON_PATH, "WARNING")]
    engine.redis_outage.end()  # a success ends it: the next failure is an ERROR again
    await chat_turn(engine, turn(FIRST))
    assert [line["level"] for line in log_lines() if line["event"] == "Dependency unavailable"][
        -1
    ] == "ERROR"
    await down.aclose()
