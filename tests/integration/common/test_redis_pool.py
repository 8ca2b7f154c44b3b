"""The shared Redis client: commands start no Task each, and a hung Redis still times out."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis import exceptions

from common import RedisSettings, open_redis
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


async def test_a_redis_that_never_answers_times_out() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
