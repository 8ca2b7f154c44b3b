"""Per-client rate limiting in Redis, tightened at once when `emergency_rate_limit` is `1`.

One Lua call reads the emergency switch and counts the request, so the limit holds across every
worker process and gateway instance and the switch needs no restart. Fixed one-minute windows.
`hit_and_read` also reads other keys (a turn's session) in the same round trip.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from common import REDIS_FAILURES, keys, translate_redis_error
from newchat._settings import RateLimitSettings

_COUNT = """
local limit = tonumber(ARGV[1])
local emergency = redis.call('GET', KEYS[2]) == '1'
if emergency then limit = tonumber(ARGV[2]) end
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {count, limit, emergency and 1 or 0}
"""


class RateDecision(msgspec.Struct, frozen=True):
    allowed: bool
    limit: int
    remaining: int
    retry_after: int
    emergency: bool


class RateLimiter:
    def __init__(self, redis: Redis, settings: RateLimitSettings) -> None:
        self._redis = redis
        self._settings = settings
        self._script = redis.register_script(_COUNT)

    async def hit(self, client_key: str) -> RateDecision:
        """Counts one request of `client_key`; raises `common.StoreUnavailable`."""
        index, now = self._window()
        try:
            counted = await self._script(keys=self._keys(client_key, index), args=self._args())
        except REDIS_FAILURES as exc:
            raise translate_redis_error(exc) from exc
        return self._decision(counted, index, now)

    async def hit_and_read(
        self, client_key: str, read: Sequence[str]
    ) -> tuple[RateDecision, list[bytes | None]]:
        """Counts the request and GETs the `read` keys in one round trip (about 30 µs of
        redis-py less than two calls). A pipeline with `EVALSHA` rather than redis-py's
        `Script`, which asks `SCRIPT EXISTS` first, a round trip of its own; after a Redis
        restart or `SCRIPT FLUSH` the script is loaded again. Raises `common.StoreUnavailable`."""
        if not read:
            return await self.hit(client_key), []
        try:
            return await self._hit_and_read(client_key, read)
        except REDIS_FAILURES as exc:
            raise translate_redis_error(exc) from exc

    async def _hit_and_read(
        self, client_key: str, read: Sequence[str]
    ) -> tuple[RateDecision, list[bytes | None]]:
        index, now = self._window()
        for attempt in (1, 2):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.evalsha(self._script.sha, 2, *self._keys(client_key, index), *self._args())
                for key in read:
                    pipe.get(key)
                results = await pipe.execute(raise_on_error=False)
            if isinstance(results[0], NoScriptError) and attempt == 1:
                await self._redis.script_load(_COUNT)
                continue
            for result in results:
                if isinstance(result, Exception):
                    raise result
            break
        return self._decision(results[0], index, now), results[1:]

    def _window(self) -> tuple[int, float]:
        now = time.time()
        return int(now // self._settings.window_seconds), now

    @staticmethod
    def _keys(client_key: str, index: int) -> list[str]:
        return [keys.rate_limit(client_key, index), keys.EMERGENCY_RATE_LIMIT]

    def _args(self) -> list[int]:
        s = self._settings
        return [s.normal_limit, s.emergency_limit, s.window_seconds * 2]

    def _decision(self, counted: list[int], index: int, now: float) -> RateDecision:
        count, limit, emergency = counted
        return RateDecision(
            allowed=count <= limit,
            limit=limit,
            remaining=max(0, limit - count),
            retry_after=max(1, int((index + 1) * self._settings.window_seconds - now)),
            emergency=bool(emergency),
        )
