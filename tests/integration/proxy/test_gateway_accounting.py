"""What the gateway counts and logs when the new engine fails: the numbers the guardian and the
runbook's alerts read (`gateway:stats`, `gateway_upstream_errors_total`,
`gateway_failovers_total`) and the line an operator finds in the log."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from common import NewEngineStats, keys, session_hash
from tests.integration.conftest import GatewayOpener, gateway_services
from tests.support.bad_backends import CRASH_SESSION, BadBackend
from tests.support.processes import free_port

FIRST = "I was rear-ended on the freeway and hurt my neck"
UNAVAILABLE = "the chat service is temporarily unavailable; please try again shortly"


Logs = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines(gateway_env: dict[str, str]) -> Logs:
    """`log_lines()`: the lines the gateway wrote to its log file (read once it has stopped,
    when its batched lines are flushed)."""
    path = Path(gateway_env["LOG_FILE"])
    return lambda: [msgspec.json.decode(line) for line in path.read_bytes().splitlines() if line]


def served_lines(log_lines: Logs) -> list[dict[str, Any]]:
    return [line for line in log_lines() if line["event"] == "Performance: request served"]


async def turn_pinned_to_new(
    open_gateway: GatewayOpener, redis: Redis, engine_url: str, **env: str
) -> tuple[httpx.Response, str, NewEngineStats]:
    """A turn of a conversation pinned to a new engine at `engine_url`: the reply, the
    gateway's metrics and its new-engine counters after it."""
    await redis.set(keys.route_pin(CRASH_SESSION), "new")
    async with open_gateway(NEW_CHAT_URL=engine_url, NEW_CHAT_PERCENT="100", **env) as gw:
        reply = await gw.post("/api/chat", json={"message": "Ann Lee", "sessionId": CRASH_SESSION})
        metrics = (await gw.get("/metrics")).text
        stats = gateway_services(gw).chat.new_engine_stats
    return reply, metrics, stats


@pytest.mark.parametrize("bad_backend", ["crash"], indirect=True)
async def test_a_new_engine_500_fails_a_new_conversation_over_and_counts_once(
    open_gateway: GatewayOpener, bad_backend: BadBackend, log_lines: Logs
) -> None:
    async with open_gateway(NEW_CHAT_URL=bad_backend.url, NEW_CHAT_PERCENT="100") as gw:
        started = time.perf_counter()
        reply = await gw.post("/api/chat", json={"message": FIRST})
        took_ms = (time.perf_counter() - started) * 1000
        metrics = (await gw.get("/metrics")).text
        stats = gateway_services(gw).chat.new_engine_stats
    assert reply.status_code == 200
    assert reply.headers["x-chat-backend"] == "legacy"
    assert 'gateway_upstream_errors_total{backend="new",kind="status_500"} 1.0' in metrics
    assert 'gateway_failovers_total{reason="status_500"} 1.0' in metrics
    assert 'gateway_decisions_total{backend="new",reason="rollout"} 1.0' in metrics
    assert (stats.attempts, stats.failures) == (1, 1)  # the guardian sees the failure
    [served] = served_lines(log_lines)
    assert (served["backend"], served["failover"], served["status"]) == (
        "legacy",
        "status_500",
        200,
    )
    assert "session_hash" not in served  # answered: nothing for the operator to trace
    assert 0 < served["latency_ms"] <= took_ms + 0.01  # within the request, not a clock reading


@pytest.mark.parametrize("bad_backend", ["crash"], indirect=True)
async def test_a_new_engine_500_in_a_conversation_on_it_is_passed_on_and_traceable(
    open_gateway: GatewayOpener, bad_backend: BadBackend, redis: Redis, log_lines: Logs
) -> None:
    reply, metrics, stats = await turn_pinned_to_new(
        open_gateway, redis, bad_backend.url, SHADOW_PERCENT="100"
    )
    assert reply.status_code == 500  # no silent move of a conversation legacy never saw
    assert reply.headers["x-chat-backend"] == "new"
    assert reply.json()["error"] == "internal"
    assert "set-cookie" not in reply.headers
    assert 'gateway_upstream_errors_total{backend="new",kind="status_500"} 1.0' in metrics
    assert "gateway_failovers_total{" not in metrics
    assert 'gateway_decisions_total{backend="new",reason="pinned"} 1.0' in metrics
    assert "gateway_shadow_skipped_total{" not in metrics  # a failed turn is never mirrored
    assert (stats.attempts, stats.failures) == (1, 1)
    [served] = served_lines(log_lines)
    assert (served["backend"], served["status"]) == ("new", 500)
    assert served["session_hash"] == session_hash(CRASH_SESSION)
    assert "failover" not in served
    assert await redis.get(keys.route_pin(CRASH_SESSION)) == b"new"


@pytest.mark.parametrize(
    ("bad_backend", "status", "kind"),
    [("garbage", 502, "bad_reply"), ("hang", 504, "timeout")],
    indirect=["bad_backend"],
)
async def test_a_new_engine_down_in_a_conversation_on_it_is_said_plainly(
    open_gateway: GatewayOpener, bad_backend: BadBackend, redis: Redis, status: int, kind: str
) -> None:
    reply, metrics, _ = await turn_pinned_to_new(
        open_gateway, redis, bad_backend.url, NEW_CHAT_TIMEOUT="0.3"
    )
    assert reply.status_code == status
    assert reply.headers["x-chat-backend"] == "new"
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"error": "new_chat_unavailable", "detail": UNAVAILABLE}
    assert f'gateway_upstream_errors_total{{backend="new",kind="{kind}"}} 1.0' in metrics


@pytest.mark.parametrize(
    ("bad_backend", "status"), [("garbage", 502), ("hang", 504)], indirect=["bad_backend"]
)
async def test_legacy_down_is_said_plainly_and_counted(
    open_gateway: GatewayOpener, bad_backend: BadBackend, status: int
) -> None:
    async with open_gateway(
        LEGACY_URL=bad_backend.url, LEGACY_TIMEOUT="0.3", NEW_CHAT_PERCENT="0"
    ) as gw:
        reply = await gw.post("/api/chat", json={"message": FIRST})
        metrics = (await gw.get("/metrics")).text
        stats = gateway_services(gw).chat.new_engine_stats
    kind = "bad_reply" if status == 502 else "timeout"
    assert reply.status_code == status
    assert reply.json() == {"error": f"legacy_{kind}", "detail": UNAVAILABLE}
    assert f'gateway_upstream_errors_total{{backend="legacy",kind="{kind}"}} 1.0' in metrics
    assert (stats.attempts, stats.failures) == (0, 0)  # the new engine was never asked


async def test_a_new_engine_4xx_is_the_visitors_answer_with_no_pin_and_no_failure(
    open_gateway: GatewayOpener, redis: Redis
) -> None:
    refusing = BadBackend("crash", status=400)
    try:
        async with open_gateway(
            NEW_CHAT_URL=refusing.url, NEW_CHAT_PERCENT="100", SHADOW_PERCENT="100"
        ) as gw:
            reply = await gw.post("/api/chat", json={"message": FIRST})
            metrics = (await gw.get("/metrics")).text
            stats = gateway_services(gw).chat.new_engine_stats
    finally:
        refusing.stop()
    assert reply.status_code == 400
    assert reply.headers["x-chat-backend"] == "new"
    assert "chat_route" not in reply.headers.get("set-cookie", "")
    assert await redis.get(keys.route_pin(CRASH_SESSION)) is None  # no conversation to pin
    assert "gateway_upstream_errors_total{" not in metrics
    assert (stats.attempts, stats.failures) == (1, 0)  # the visitor's mistake, not the engine's
    # a 4xx turn is worth mirroring: offered to the shadow (legacy is not marked safe here)
    assert 'gateway_shadow_skipped_total{reason="legacy_not_marked_safe"} 1.0' in metrics


async def test_pin_store_failures_are_counted_by_operation(open_gateway: GatewayOpener) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with open_gateway(NEW_CHAT_PERCENT="0", REDIS_URL=dead_redis) as gw:
        first = await gw.post("/api/chat", json={"message": FIRST})  # pinned: a write
        gw.cookies.clear()
        session_id = first.json()["sessionId"]
        await gw.post("/api/chat", json={"message": "Ann Lee", "sessionId": session_id})  # a read
        metrics = (await gw.get("/metrics")).text
    assert first.status_code == 200  # legacy answers; the pin is lost, not the visitor
    assert 'gateway_pin_store_errors_total{operation="write"} 2.0' in metrics
    assert 'gateway_pin_store_errors_total{operation="read"} 1.0' in metrics

    async with open_gateway(ENABLE_NEW_CHAT="false", REDIS_URL=dead_redis) as gw:
        await gw.post("/api/chat", json={"message": "Ann Lee", "sessionId": session_id})
        metrics = (await gw.get("/metrics")).text
    assert 'gateway_pin_store_errors_total{operation="read"}' not in metrics  # the switch decides
