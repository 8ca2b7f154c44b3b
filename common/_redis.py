"""The Redis client every process opens, and the translation of its errors into `StoreUnavailable`.

redis-py bounds each write with `asyncio.wait_for` when `socket_timeout` is set, and on Python
3.11 `wait_for` starts a Task for every command: about 25 µs, three times per chat turn. The
connections here keep the same bound with `asyncio.timeout`, which starts none.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from common import keys
from common._errors import StoreUnavailable
from common._health import Check
from common._settings import RedisSettings

REDIS_FAILURES: tuple[type[Exception], ...] = (exceptions.RedisError, OSError, TimeoutError)
"""What a Redis call can raise when Redis (or the network to it) fails. `BrokenPipeError` of
the caller's own stdout is an OSError too: catch these only around Redis calls."""

POOL_EXHAUSTED = "No connection available."
"""redis-py's message when `BlockingConnectionPool` waited `timeout` for a connection in vain."""

STORE_FAILURES: tuple[type[Exception], ...] = (StoreUnavailable, *REDIS_FAILURES)
"""What code that calls both stores (translated) and Redis itself may see fail."""


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


class _TimedOut(Exception):
    """Carries a timeout past `Retry`'s loop (it is not one of the errors it retries)."""

    def __init__(self, error: exceptions.TimeoutError) -> None:
        self.error = error


class RetryDroppedConnection(Retry):
    """redis-py's `Retry` (once, no backoff) for a connection that was dropped, and not for a
    timeout. Both still go through the failure callback, which disconnects the connection and,
    in a watched transaction, raises `WatchError` (`supported_errors` alone cannot do this:
    an error outside them skips the callback, leaving a half-read connection in the pool)."""

    def __init__(self) -> None:
        super().__init__(
            NoBackoff(), 1, supported_errors=(exceptions.ConnectionError, exceptions.TimeoutError)
        )

    async def call_with_retry(  # type: ignore[override]
        self,
        do: Callable[[], Coroutine[Any, Any, T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        async def once_on_timeout() -> T:
            try:
                return await do()
            except exceptions.TimeoutError as error:
                await (fail(error, 1) if with_failure_count else fail(error))
                raise _TimedOut(error) from None

        try:
            return await super().call_with_retry(
                once_on_timeout, fail, is_retryable, with_failure_count
            )
        except _TimedOut as timed_out:
            raise timed_out.error from None


def open_redis(settings: RedisSettings, **options: Any) -> Redis:
    """A client for `settings.url` whose commands give up after `settings.socket_timeout`
    seconds (connecting, writing or reading), retry once on a fresh connection when theirs was
    dropped, and wait up to `settings.pool_timeout` for one of `settings.max_connections`.
    Opening connects lazily: nothing is raised here."""
    pool = BlockingConnectionPool.from_url(
        settings.url,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.socket_timeout,
        health_check_interval=30,
        max_connections=settings.max_connections,
        timeout=settings.pool_timeout,
        retry=RetryDroppedConnection(),
        **options,
    )
    pool.connection_class = _task_free(pool.connection_class)
    return Redis.from_pool(pool)


def as_text(value: bytes | str) -> str:
    """redis-py types replies `bytes | str` (it depends on `decode_responses`); we use bytes."""
    return value.decode() if isinstance(value, bytes) else value


def as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def redacted_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def translate_redis_error(exc: BaseException, url: str = "") -> StoreUnavailable:
    """What a redis-py (or socket) error means, and what an operator should do about it."""
    where = f" at {redacted_url(url)}" if url else ""
    name = type(exc).__name__
    if isinstance(exc, exceptions.ReadOnlyError):
        return StoreUnavailable(
            "read_only",
            f"Redis{where} is a read-only replica ({name})",
            "point REDIS_URL at the primary (or at Sentinel); writes are refused",
        )
    if isinstance(exc, exceptions.OutOfMemoryError) or str(exc).startswith("OOM"):
        return StoreUnavailable(
            "out_of_memory",
            f"Redis{where} is out of memory (maxmemory reached)",
            "free memory or raise maxmemory; flags cannot be written meanwhile: use the "
            "ENABLE_NEW_CHAT=false kill switch to move traffic to legacy",
        )
    if isinstance(exc, exceptions.BusyLoadingError) or str(exc).startswith("BUSY"):
        return StoreUnavailable(
            "busy",
            f"Redis{where} is busy (loading its data or running a long script)",
            "wait for Redis to finish loading; check SLOWLOG and running scripts",
        )
    if isinstance(exc, exceptions.ConnectionError) and str(exc) == POOL_EXHAUSTED:
        return StoreUnavailable(
            "pool_exhausted",
            f"Redis{where}: no free connection in the pool in time",
            "raise REDIS_MAX_CONNECTIONS (or REDIS_POOL_TIMEOUT); check Redis latency (SLOWLOG)",
        )
    if isinstance(exc, exceptions.TimeoutError | TimeoutError):
        return StoreUnavailable(
            "timeout",
            f"Redis{where} did not answer in time ({name})",
            "check Redis load (INFO, SLOWLOG) and the network; start redis-server if it is down",
        )
    if isinstance(exc, exceptions.ConnectionError | OSError):
        return StoreUnavailable(
            "unreachable",
            f"Redis unreachable{where} ({name})",
            "start redis-server or fix REDIS_URL",
        )
    return StoreUnavailable("error", f"Redis{where} failed ({name})", "check the Redis logs")


P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound=type)


def _translated(
    call: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """An async function whose Redis failures leave it as `StoreUnavailable`."""

    @functools.wraps(call)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await call(*args, **kwargs)
        except REDIS_FAILURES as exc:
            raise translate_redis_error(exc) from exc

    return translated


def redis_store(cls: C) -> C:
    """Class decorator for a store: Redis failures of its public async methods surface as
    `StoreUnavailable`. Applied to the class rather than to each method, the methods stay plain
    functions, which the mutation tests can mutate (mutmut leaves decorated functions alone)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _translated(member))
    return cls


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Inside it (awaits included), Redis failures become `StoreUnavailable`."""
    try:
        yield
    except REDIS_FAILURES as exc:
        raise translate_redis_error(exc) from exc


async def probe_redis(redis: Redis, url: str, consequence: str, *, critical: bool) -> Check:
    """A health check of Redis by a write (`SET health:probe`, 10 s TTL), not a PING: a Redis out
    of memory or a read-only replica answers PING and refuses every session, pin and flag write.
    A failure is named for what it is (`translate_redis_error`) with the action and
    `consequence` (what stops working meanwhile)."""
    started = time.perf_counter()
    try:
        await redis.set(keys.HEALTH_PROBE, "1", ex=10)
    except REDIS_FAILURES as exc:
        failure = translate_redis_error(exc, url)
        return Check(
            ok=False,
            critical=critical,
            detail=failure.detail,
            action=f"{failure.action}; {consequence}",
        )
    ms = round((time.perf_counter() - started) * 1000, 2)
    return Check(ok=True, detail=f"write in {ms} ms", latency_ms=ms)
