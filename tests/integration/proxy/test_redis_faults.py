"""Redis faults under a real gateway process (`chatctl serve`) on its own redis-server: a crash
right after a rollback, a crash that loses the flags, dropped connections, a burst, a Redis out of
memory. Each test counts what was lost (flag changes, conversations moved, visitor errors)."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from common import RedisSettings, keys, open_redis
from newchat.leads import LeadQueue
from tests.support.fake_leadprosper import FakeLeadProsper
from tests.support.leads import make_lead
from tests.support.processes import ChatctlProcess, RedisServer, free_port
from tests.support.processes import run_chatctl as chatctl

pytestmark = pytest.mark.slow

FIRST = "I was rear-ended on the freeway and hurt my neck"


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis without persistence: a crash loses everything, as `make run`'s did before AOF."""
    server = RedisServer(tmp_path / "volatile", persistent=False)
    yield server
    server.stop()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """`make run`'s persistence: AOF, `appendfsync everysec`."""
    server = RedisServer(tmp_path / "durable", persistent=True)
    yield server
    server.stop()


def gateway(env: dict[str, str]) -> ChatctlProcess:
    port = free_port()
    # LOG_STDOUT off: nobody reads the process's stdout pipe, and a full pipe stalls the gateway
    return ChatctlProcess(["serve"], env | {"PORT": str(port), "LOG_STDOUT": "false"}, port)


def cookieless(timeout: float = 15) -> httpx.AsyncClient:
    """A client that never keeps a cookie: each turn carries only what the test gives it, as an
    app that sends `sessionId` in the body does."""
    jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(timeout=timeout, cookies=jar)


async def first_turns(url: str, count: int, concurrency: int = 20) -> list[httpx.Response]:
    """`count` new conversations (no cookies), `concurrency` at a time."""
    limit = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient) -> httpx.Response:
        async with limit:
            return await client.post(url, json={"message": FIRST})

    async with cookieless() as client:
        return list(await asyncio.gather(*(one(client) for _ in range(count))))


def backends(replies: list[httpx.Response]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reply in replies:
        key = f"{reply.status_code} {reply.headers.get('x-chat-backend')}"
        counts[key] = counts.get(key, 0) + 1
    return counts


async def ready(url: str) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=5) as client:
        reply: dict[str, object] = (await client.get(f"{url}/readyz")).json()
        return reply


async def until(predicate: object, within: float, what: str) -> float:
    """Polls the async `predicate` until true; the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        if await predicate():  # type: ignore[operator]
            return loop.time() - started
        if loop.time() - started > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


def error_lines(log_file: str, message: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in Path(log_file).read_text().splitlines() if line]
    return [
        line
        for line in lines
        if str(line.get("level")).lower() == "error" and message in line["event"]
    ]


async def test_a_crash_that_loses_the_rollback_does_not_undo_it_and_reapply_restores_redis(
    gateway_env: dict[str, str], volatile_redis: RedisServer
) -> None:
    env = gateway_env | {"REDIS_URL": volatile_redis.url, "NEW_CHAT_PERCENT": "100"}
    served = gateway(env)
    url = f"http://127.0.0.1:{served.port}"
    try:
        assert backends(await first_turns(f"{url}/api/chat", 10)) == {"200 new": 10}
        rolled = chatctl(env, "rollback", "flags", "--reason", "incident 42")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        assert backends(await first_turns(f"{url}/api/chat", 10)) == {"200 legacy": 10}

        volatile_redis.kill()
        volatile_redis.restart()  # empty: flags, audit log, version all gone

        async def flags_check_failing() -> bool:
            return "flags" in (await ready(url))["checks"]  # type: ignore[operator]

        await until(flags_check_failing, 5, "/readyz names the lost flags")
        report = await ready(url)
        assert report["status"] == "degraded"
        assert "chatctl flags reapply" in report["checks"]["flags"]["action"]  # type: ignore[index]
        assert report["flags"]["redis_version"] == 0  # type: ignore[index]
        assert report["flags"]["values"]["enable_new_chat"] is False  # type: ignore[index]
        # still rolled back: 0 of 20 new conversations reach the new engine
        assert backends(await first_turns(f"{url}/api/chat", 20)) == {"200 legacy": 20}

        shown = chatctl(env, "flags", "show")
        assert "FLAGS REGRESSED" in shown.stdout
        health = chatctl(env | {"GATEWAY_URL": url}, "health")
        assert health.returncode == 1
        assert "chatctl flags reapply" in health.stdout, health.stdout  # serving, not "ok"
        refused = chatctl(env, "flags", "set", "shadow_percent", "5", "--reason", "x")
        assert refused.returncode == 1
        assert "re-apply first" in refused.stderr

        reapplied = chatctl(env, "flags", "reapply", "--reason", "redis lost its data")
        assert reapplied.returncode == 0, reapplied.stdout + reapplied.stderr
        assert "verified: 1 instance(s)" in reapplied.stdout
        redis = Redis.from_url(volatile_redis.url)
        try:
            assert await redis.hgetall(keys.FLAGS_RUNTIME) == {
                b"enable_new_chat": b"false",
                b"drain": b"false",
            }
            assert int(await redis.get(keys.FLAGS_VERSION) or 0) > 2
            (entry,) = await redis.xrange(keys.FLAGS_AUDIT)
            assert entry[1][b"flag"] == b"reapply"
            assert entry[1][b"reason"] == b"redis lost its data"
        finally:
            await redis.aclose()

        async def flags_check_gone() -> bool:
            return "flags" not in (await ready(url))["checks"]  # type: ignore[operator]

        await until(flags_check_gone, 2, "/readyz clears once Redis holds the flags again")
        assert backends(await first_turns(f"{url}/api/chat", 10)) == {"200 legacy": 10}
    finally:
        served.stop()
    logged = error_lines(env["LOG_FILE"], "Flags in Redis are older")
    assert len(logged) == 1  # once per regression, not once per poll
    assert "chatctl flags reapply" in str(logged[0]["action"])


async def test_a_rollback_survives_kill_9_of_a_redis_with_make_runs_persistence(
    gateway_env: dict[str, str], durable_redis: RedisServer
) -> None:
    env = gateway_env | {"REDIS_URL": durable_redis.url, "NEW_CHAT_PERCENT": "50"}
    served = gateway(env)
    url = f"http://127.0.0.1:{served.port}"
    redis = open_redis(RedisSettings(url=durable_redis.url))  # reconnects after the crash
    try:
        before = await first_turns(f"{url}/api/chat", 60)
        assert {r.status_code for r in before} == {200}
        rolled = chatctl(env, "rollback", "flags", "--reason", "incident 43")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        sessions = len(await redis.keys(keys.SESSION_PREFIX + "*"))
        pins = len(await redis.keys(keys.ROUTE_PIN_PREFIX + "*"))
        audit = await redis.xlen(keys.FLAGS_AUDIT)
        assert pins == 60, backends(before)

        durable_redis.kill()  # at once: no shutdown save
        durable_redis.restart()

        # nothing the visitors or the operator were told about is gone
        assert len(await redis.keys(keys.SESSION_PREFIX + "*")) == sessions
        assert len(await redis.keys(keys.ROUTE_PIN_PREFIX + "*")) == pins
        assert await redis.xlen(keys.FLAGS_AUDIT) == audit
        history = chatctl(env, "flags", "history")
        assert "incident 43" in history.stdout
        report = await ready(url)
        assert report["flags"]["values"]["enable_new_chat"] is False  # type: ignore[index]
        assert "flags" not in report["checks"]  # type: ignore[operator]
        assert backends(await first_turns(f"{url}/api/chat", 20)) == {"200 legacy": 20}
    finally:
        await redis.aclose()
        served.stop()


async def test_dropped_connections_and_a_burst_never_reach_a_visitor(
    gateway_env: dict[str, str], volatile_redis: RedisServer
) -> None:
    env = gateway_env | {
        "REDIS_URL": volatile_redis.url,
        "NEW_CHAT_PERCENT": "100",
        "REDIS_MAX_CONNECTIONS": "8",  # the burst below is 25 times the pool
    }
    served = gateway(env)
    url = f"http://127.0.0.1:{served.port}/api/chat"
    admin = Redis.from_url(volatile_redis.url)
    try:
        burst = await first_turns(url, 200, concurrency=200)
        assert backends(burst) == {"200 new": 200}  # 0 x 503, 0 failovers
        async with cookieless() as client:
            for conversation in burst[:5]:
                killed = await admin.client_kill_filter(_type="normal", skipme=True)
                assert killed > 0
                turn = await client.post(
                    url,
                    json={"message": "Jane Roe", "sessionId": conversation.json()["sessionId"]},
                )
                assert (turn.status_code, turn.headers["x-chat-backend"]) == (200, "new")
                assert turn.json()["step"] == "phone"  # the conversation went on, not over
    finally:
        await admin.aclose()
        served.stop()
    metrics = Path(env["LOG_FILE"]).read_text()
    assert "Dependency unavailable" not in metrics
    assert "Failover to legacy" not in metrics


async def test_a_redis_out_of_memory_is_named_as_such_everywhere(
    gateway_env: dict[str, str], volatile_redis: RedisServer
) -> None:
    env = gateway_env | {"REDIS_URL": volatile_redis.url, "NEW_CHAT_PERCENT": "100"}
    served = gateway(env)
    url = f"http://127.0.0.1:{served.port}"
    admin = Redis.from_url(volatile_redis.url)
    try:
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")  # every write is refused with OOM

        report = await ready(url)
        check = report["checks"]["redis"]  # type: ignore[index]
        assert check["ok"] is False
        assert "out of memory" in check["detail"]
        assert "ENABLE_NEW_CHAT=false" in check["action"]

        turn = (await first_turns(f"{url}/api/chat", 1))[0]
        assert turn.status_code in (200, 503)
        if turn.status_code == 503:
            assert "unreachable" not in turn.text

        health = chatctl(env, "health")
        assert "out of memory" in health.stdout
        assert "start redis-server" not in health.stdout

        refused = chatctl(env, "flags", "set", "shadow_percent", "5", "--reason", "x")
        assert refused.returncode == 1
        assert "out of memory" in refused.stderr
        assert "ENABLE_NEW_CHAT=false" in refused.stderr
        rollback = chatctl(env, "rollback", "flags", "--reason", "oom")
        assert rollback.returncode == 1
        assert "out of memory" in rollback.stderr + rollback.stdout
        assert "Nothing was changed" in rollback.stderr  # never "already done" when it was not
        assert "ENABLE_NEW_CHAT=false" in rollback.stderr
        dry = chatctl(env, "rollback", "flags", "--reason", "oom", "--dry-run")
        assert dry.returncode == 1  # a dry run says the real one would fail
        assert "would FAIL" in dry.stderr
        shown = chatctl(env, "flags", "show")  # reading flags needs no write
        assert shown.returncode == 0, shown.stderr
        assert "flag version" in shown.stdout
    finally:
        await admin.config_set("maxmemory", "0")
        await admin.aclose()
        served.stop()


async def two_turn_visitor(
    url: str, turns: list[tuple[str, int, str]], stop: asyncio.Event
) -> None:
    """New conversations until `stop`: turn 1, then at once turn 2 with only the `sessionId`;
    each adds (turn 1's backend, turn 2's status, turn 2's backend) to `turns`."""
    async with cookieless(timeout=10) as client:
        while not stop.is_set():
            first = await client.post(f"{url}/api/chat", json={"message": FIRST})
            if first.status_code != 200:
                continue
            second = await client.post(
                f"{url}/api/chat",
                json={"message": "Jane Roe", "sessionId": first.json()["sessionId"]},
            )
            turns.append(
                (
                    first.headers["x-chat-backend"],
                    second.status_code,
                    second.headers.get("x-chat-backend", "none"),
                )
            )


async def test_a_three_second_outage_moves_no_conversation_and_everything_recovers(
    gateway_env: dict[str, str], durable_redis: RedisServer
) -> None:
    leadprosper = FakeLeadProsper()
    env = gateway_env | {
        "REDIS_URL": durable_redis.url,
        "NEW_CHAT_PERCENT": "50",
        "LEADPROSPER_API_URL": leadprosper.url,
        "LOG_STDOUT": "false",
    }
    served = gateway(env)
    worker = ChatctlProcess(["worker"], env)
    url = f"http://127.0.0.1:{served.port}"
    turns: list[tuple[str, int, str]] = []  # (first turn's backend, 2nd status, 2nd backend)
    stop = asyncio.Event()

    async def conversations_at_least(count: int) -> bool:
        return len(turns) >= count

    visitors = [asyncio.create_task(two_turn_visitor(url, turns, stop)) for _ in range(6)]
    redis = open_redis(RedisSettings(url=durable_redis.url))
    try:
        await until(lambda: conversations_at_least(30), 20, "traffic before the outage")
        durable_redis.kill()
        await asyncio.sleep(3)  # the outage itself
        durable_redis.restart()
        restarted_at = time.time()

        async def ready_again() -> bool:
            return (await ready(url))["status"] == "ok"

        assert await until(ready_again, 2, "/readyz green after Redis returns") <= 2
        during = len(turns)
        await until(lambda: conversations_at_least(during + 30), 20, "traffic after it")
        stop.set()
        await asyncio.gather(*visitors)

        async def heartbeat_resumed() -> bool:
            beats = [await redis.get(k) for k in await redis.keys("worker:heartbeat:*")]
            return any(b is not None and float(b) >= restarted_at for b in beats)

        await until(heartbeat_resumed, 12, "the worker's heartbeat after the outage")
        lead_id = await LeadQueue(redis, visibility_timeout=120).enqueue(make_lead(7))

        async def submitted() -> bool:
            return lead_id in leadprosper.accepted

        await until(submitted, 10, "a lead queued after the outage reaches LeadProsper")
        assert worker.process.poll() is None  # it rode the outage out
    finally:
        stop.set()
        for task in visitors:
            task.cancel()
        await redis.aclose()
        worker.stop()
        served.stop()
        leadprosper.stop()
    moved = [t for t in turns if t[1] < 500 and t[2] != t[0]]
    assert moved == []  # 0 conversations changed backend
    assert len(turns) >= 60
    paused = error_lines(env["LOG_FILE"], "Lead worker paused")
    assert len(paused) == 1  # once per outage, not per retry
    assert len(error_lines(env["LOG_FILE"], "Dependency unavailable")) <= 1  # not one per turn


async def test_a_gateway_restarted_after_redis_lost_its_flags_keeps_the_rollback(
    gateway_env: dict[str, str], volatile_redis: RedisServer
) -> None:
    """A host reboot empties a Redis without persistence and restarts every gateway: with no
    live peer to learn from, the restarted gateway went back to the environment's 100 % and
    /readyz said ok (a fresh helper, issue 16). Its state file keeps what it applied."""
    env = gateway_env | {"REDIS_URL": volatile_redis.url, "NEW_CHAT_PERCENT": "100"}
    served = gateway(env)
    url = f"http://127.0.0.1:{served.port}"
    try:
        rolled = chatctl(env, "rollback", "flags", "--reason", "incident 44")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    finally:
        served.stop()
    state = Path(env["FLAG_STATE_FILE"])
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    volatile_redis.kill()
    volatile_redis.restart()  # the reboot: Redis empty, no gateway running

    restarted = gateway(env)
    url = f"http://127.0.0.1:{restarted.port}"
    try:
        assert backends(await first_turns(f"{url}/api/chat", 10)) == {"200 legacy": 10}
        report = await ready(url)
        assert report["status"] == "degraded"
        assert "flags" in report["checks"]  # type: ignore[operator]
        shown = chatctl(env, "flags", "show")
        assert "FLAGS REGRESSED" in shown.stdout
        reapplied = chatctl(env, "flags", "reapply", "--reason", "after the reboot")
        assert reapplied.returncode == 0, reapplied.stdout + reapplied.stderr
        assert backends(await first_turns(f"{url}/api/chat", 5)) == {"200 legacy": 5}
    finally:
        restarted.stop()
