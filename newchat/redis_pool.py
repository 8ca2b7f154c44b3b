"""The Redis client every part of the project opens: the same timeouts, without a Task per write.

redis-py bounds each write with `asyncio.wait_for` when `socket_timeout` is set, and on Python
3.11 `wait_for` starts a Task for every command: about 25 µs, three times per chat turn. The
connections here keep the same bound with `asyncio.timeout`, which starts none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from redis import exceptions
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection


class _TaskFreeWrites(AbstractConnection):
    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        limit, self.socket_timeout = self.socket_timeout, None  # no wait_for inside
        try:
            async with asyncio.timeout(limit):
                await super().send_packed_command(command, check_health)
        except TimeoutError:
            # redis-py has already dropped the connection (a write may be half done)
            raise exceptions.TimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = limit


_TASK_FREE: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _task_free(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    if connection_class not in _TASK_FREE:
        name = f"TaskFree{connection_class.__name__}"
        _TASK_FREE[connection_class] = type(name, (_TaskFreeWrites, connection_class), {})
    return _TASK_FREE[connection_class]


def open_redis(url: str, timeout_seconds: float, **options: Any) -> Redis:
    """A client for `url` (redis://, rediss://, unix://) whose commands give up after
    `timeout_seconds` (connecting, writing or reading)."""
    pool = ConnectionPool.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        **options,
    )
    pool.connection_class = _task_free(pool.connection_class)
    return Redis.from_pool(pool)
