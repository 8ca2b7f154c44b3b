"""Per-client rate limiting in Redis, tightened at once when `emergency_rate_limit` is `1`.

One Lua call reads the emergency switch and counts the request, so the limit holds across every
worker process and gateway instance and the switch needs no restart. Fixed one-minute windows.
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis

from newchat import keys
from newchat.settings import RateLimitSettings

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
        self._settings = settings
        self._script = redis.register_script(_COUNT)

    async def hit(self, client_key: str) -> RateDecision:
        window = self._settings.window_seconds
        now = time.time()
        index = int(now // window)
        count, limit, emergency = await self._script(
            keys=[keys.rate_limit(client_key, index), keys.EMERGENCY_RATE_LIMIT],
            args=[self._settings.normal_limit, self._settings.emergency_limit, window * 2],
        )
        retry_after = max(1, int((index + 1) * window - now))
        return RateDecision(
            allowed=count <= limit,
            limit=limit,
            remaining=max(0, limit - count),
            retry_after=retry_after,
            emergency=bool(emergency),
        )
