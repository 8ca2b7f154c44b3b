"""OpenAI structured-output detection and its fallbacks (OpenAI mocked at the HTTP layer)."""

from __future__ import annotations

import email.utils
import json

import httpx
import pytest
import respx
from redis.asyncio import Redis

from newchat import check_openai, load_settings, provide_services
from newchat.detection import DetectionUnavailable, openai_detector
from tests.conftest import OPENAI_URL

COMPLETIONS = f"{OPENAI_URL}/chat/completions"


def completion(content: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
    }


@pytest.fixture
def openai_engine(base_env: dict[str, str], redis: Redis, outside_http: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    env = base_env | {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": OPENAI_URL,
        "OPENAI_TIMEOUT": "0.5",
    }
    return provide_services(load_settings(env), redis, outside_http)


async def test_openai_answer_is_used_with_the_schema_enum(
    openai_engine, outside: respx.MockRouter
) -> None:  # type: ignore[no-untyped-def]
    route = outside.post(COMPLETIONS).respond(
        200, json=completion(json.dumps({"category": "immigration", "confidence": 0.93}))
    )
    result = await openai_engine.detector.detect("mi esposo tiene problemas con sus papeles")
    assert (result.category, result.confidence, result.method) == ("immigration", 0.93, "openai")
    sent = json.loads(route.calls[0].request.content)
    schema = sent["response_format"]["json_schema"]["schema"]
    assert "general" in schema["properties"]["category"]["enum"]
    assert route.calls[0].request.headers["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    ("mock", "reason"),
    [
        ({"side_effect": httpx.ReadTimeout("slow")}, "timeout"),
        ({"side_effect": httpx.ConnectError("refused")}, "connection"),
        (
            {"return_value": httpx.Response(503, json={"error": {"message": "down"}})},
            "server_error",
        ),
        ({"return_value": httpx.Response(200, json=completion("not json at all"))}, "malformed"),
        (
            {
                "return_value": httpx.Response(
                    200, json=completion('{"category": "tax", "confidence": 1}')
                )
            },
            "malformed",
        ),
        (
            {"return_value": httpx.Response(401, json={"error": {"message": "bad key"}})},
            "api_error",
        ),
    ],
)
async def test_failures_fall_back_to_the_offline_classifier(
    openai_engine,
    outside: respx.MockRouter,
    mock: dict[str, object],
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    outside.post(COMPLETIONS).mock(**mock)
    result = await openai_engine.detector.detect("I got a DUI last night")
    assert (result.category, result.method, result.fallback_reason) == ("dui", "offline", reason)


async def test_timeouts_and_5xx_are_retried_a_bounded_number_of_times(
    openai_engine, outside: respx.MockRouter
) -> None:  # type: ignore[no-untyped-def]
    route = outside.post(COMPLETIONS).mock(side_effect=httpx.ReadTimeout("slow"))
    await openai_engine.detector.detect("I need a divorce")
    assert route.call_count == 2


async def test_a_429_is_not_retried_and_pauses_openai(
    openai_engine, outside: respx.MockRouter
) -> None:  # type: ignore[no-untyped-def]
    route = outside.post(COMPLETIONS).respond(429, json={"error": {"message": "rate limited"}})
    first = await openai_engine.detector.detect("I need a divorce")
    assert (first.category, first.fallback_reason) == ("family", "rate_limited")
    second = await openai_engine.detector.detect("I was fired")
    assert (second.category, second.fallback_reason) == ("employment", "rate_limited")
    assert route.call_count == 1  # the second visitor did not wait on OpenAI
    assert openai_engine.openai.paused


async def test_no_key_means_offline_without_any_http(engine, outside: respx.MockRouter) -> None:  # type: ignore[no-untyped-def]
    result = await engine.detector.detect("my landlord won't return my deposit")
    assert (result.category, result.method) == ("real_estate", "offline")
    assert not outside.calls


class FakeClock:
    """Monotonic and wall time the test moves by hand: no sleeping."""

    def __init__(self) -> None:
        self.monotonic = 1000.0
        self.wall = 1_796_000_000.0

    def advance(self, seconds: float) -> None:
        self.monotonic += seconds
        self.wall += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def paused_detector(outside_http: httpx.AsyncClient, clock: FakeClock, base_env: dict[str, str]):  # type: ignore[no-untyped-def]
    settings = load_settings(
        base_env | {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": OPENAI_URL}
    )
    return openai_detector(
        settings.openai,
        outside_http,
        clock=lambda: clock.monotonic,
        wall_clock=lambda: clock.wall,
    )


@pytest.mark.parametrize(
    ("header", "pause"),
    [
        (lambda wall: {"retry-after": "120"}, 120),
        (lambda wall: {"retry-after": email.utils.formatdate(wall + 90, usegmt=True)}, 90),
        (lambda wall: {}, 30),  # no Retry-After: the configured cooldown
    ],
)
async def test_a_429_pauses_openai_for_the_retry_after_it_came_with(
    paused_detector, clock: FakeClock, outside: respx.MockRouter, header, pause: int
) -> None:  # type: ignore[no-untyped-def]
    route = outside.post(COMPLETIONS).respond(
        429, json={"error": {"message": "rate limited"}}, headers=header(clock.wall)
    )
    with pytest.raises(DetectionUnavailable) as refused:
        await paused_detector.detect("I need a divorce")
    assert refused.value.reason == "rate_limited"
    assert route.call_count == 1  # never retried inside the visitor's request
    clock.advance(pause - 1)
    assert paused_detector.paused
    with pytest.raises(DetectionUnavailable):
        await paused_detector.detect("I was fired")
    assert route.call_count == 1  # paused: no visitor waits on OpenAI
    clock.advance(2)
    assert not paused_detector.paused
    route.respond(200, json=completion(json.dumps({"category": "employment", "confidence": 0.9})))
    assert await paused_detector.detect("I was fired") == ("employment", 0.9)
    assert route.call_count == 2


async def test_the_pause_shows_in_health_with_what_to_do(
    openai_engine, outside: respx.MockRouter
) -> None:  # type: ignore[no-untyped-def]
    outside.post(COMPLETIONS).respond(429, json={"error": {}}, headers={"retry-after": "120"})
    await openai_engine.detector.detect("I need a divorce")
    check = check_openai(openai_engine)
    assert (check.ok, check.action) == (False, "check the OpenAI usage dashboard and quota")
    assert "rate limited (429)" in check.detail
