"""The shared Redis client: commands start no Task each, and a hung Redis still times out."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis import exceptions

from common import RedisSettings, open_redis, translate_redis_error
from tests.support.processes import RedisServer


async def test_commands_work_and_start_no_task_each(redis_server: RedisServer) -> None:
    client = open_redis(RedisSettings(url=redis_server.url, socket_timeout=2.0))
    loop = asyncio.get_running_loop()
    created = 0
    default_factory = loop.get_task_factory()

    def counting_factory(
        loop: asyncio.AbstractEventLoop, coro: object, **kwargs: object
    ) -> asyncio.Task[object]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)  # type: ignore[arg-type]

    try:
        await client.set("pool:probe", "1")
        loop.set_task_factory(counting_factory)  # type: ignore[arg-type]
        for n in range(50):
            await client.set("pool:probe", str(n))
            assert await client.get("pool:probe") == str(n).encode()
    finally:
        loop.set_task_factory(default_factory)
        await client.delete("pool:probe")
        await client.aclose()
    assert created == 0


async def test_a_redis_that_never_answers_times_out_without_a_retry() -> None:
    connections = 0

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(-1)  # reads everything, answers nothing
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = open_redis(RedisSettings(url=f"redis://127.0.0.1:{port}/0", socket_timeout=0.3))
    started = time.monotonic()
    try:
        with pytest.raises(exceptions.TimeoutError):
            await client.get("anything")
    finally:
        await client.aclose()
        server.close()
    assert time.monotonic() - started < 3
    assert connections == 1  # a command Redis may have applied is not sent again


async def test_a_dropped_connection_is_retried_on_a_fresh_one(redis_server: RedisServer) -> None:
    client = open_redis(RedisSettings(url=redis_server.url, socket_timeout=2.0))
    admin = open_redis(RedisSettings(url=redis_server.url))
    try:
        await client.client_setname("pool-victim")
        await client.set("pool:probe", "before")
        killed = 0
        for round_ in range(5):
            killed += await admin.client_kill_filter(_type="normal", skipme=True)
            # every command after the kill still succeeds: none of these raises
            await client.set("pool:probe", str(round_))
            assert await client.get("pool:probe") == str(round_).encode()
        assert killed >= 5
    finally:
        await client.delete("pool:probe")
        await client.aclose()
        await admin.aclose()


async def test_a_burst_beyond_the_pool_waits_for_a_connection(redis_server: RedisServer) -> None:
    client = open_redis(RedisSettings(url=redis_server.url, max_connections=4, pool_timeout=5.0))
    try:
        # 200 commands at once through 4 connections: the other 196 queue for one
        results = await asyncio.gather(
            *(
                client.eval(
                    "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]", 1, f"pool:b{n}", n
                )
                for n in range(200)
            ),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        assert len(client.connection_pool._in_use_connections) == 0
        assert len(client.connection_pool._available_connections) <= 4
    finally:
        await client.delete(*(f"pool:b{n}" for n in range(200)))
        await client.aclose()


async def test_an_exhausted_pool_is_named_as_such(redis_server: RedisServer) -> None:
    client = open_redis(RedisSettings(url=redis_server.url, max_connections=1, pool_timeout=0.1))
    try:
        held = await client.connection_pool.get_connection()
        with pytest.raises(exceptions.ConnectionError) as caught:
            await client.get("pool:probe")
        assert translate_redis_error(caught.value).kind == "pool_exhausted"
        await client.connection_pool.release(held)
        assert await client.get("pool:probe") is None
    finally:
        await client.aclose()
