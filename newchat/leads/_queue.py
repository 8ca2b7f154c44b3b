"""A reliable lead queue on the runbook's keys: `lead_queue`, `lead_processing`, `lead_failed`.

Every state change is one Lua script, so a lead is always in exactly one place: queued, claimed
(with its claim time), waiting out a retry backoff (`lead_retry`), or failed. A worker that dies
leaves its leads in `lead_processing`; `requeue_stuck` returns them after the visibility timeout.
Delivery is at-least-once; `lead_done:<id>` markers and the per-session idempotency key make the
observable effect once. Redis failures surface as `common.StoreUnavailable`.
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis

from common import as_text, keys, redis_store
from newchat.leads._models import FailedEnvelope, Lead, lead_decoder, lead_encoder

DONE_MARKER_TTL = keys.LEAD_MARKER_TTL_SECONDS
IDEMPOTENCY_TTL = keys.LEAD_MARKER_TTL_SECONDS

# The raw lead JSON is kept byte for byte: envelopes are built by concatenation and the lead is
# cut back out after the fixed `,"lead":` separator (escaped inside any JSON string before it).
_LEAD_TAIL = """
local function lead_of(envelope)
  local at = string.find(envelope, ',"lead":', 1, true)
  if not at then return nil end
  return string.sub(envelope, at + 8, -2)
end
"""

_ENQUEUE = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('LPUSH', KEYS[2], ARGV[2])
return ARGV[1]
"""

_REDIS_NOW = """
local clock = redis.call('TIME')
local now = string.format('%.6f', tonumber(clock[1]) + tonumber(clock[2]) / 1000000)
"""
# One clock for claim times and the stuck cutoff, Redis's: a worker host whose clock ran 300 s
# fast took a lead claimed 3 s earlier for stuck, and LeadProsper got it twice.

_CLAIM = (
    _REDIS_NOW
    + """
local out = {}
for _ = 1, tonumber(ARGV[3]) do
  local raw = redis.call('RPOP', KEYS[1])
  if not raw then break end
  local ok, lead = pcall(cjson.decode, raw)
  if ok and type(lead) == 'table' and type(lead['id']) == 'string' then
    redis.call('HSET', KEYS[2], lead['id'],
      '{"claimed_at":' .. now .. ',"worker":' .. cjson.encode(ARGV[2]) .. ',"lead":' .. raw .. '}')
    table.insert(out, raw)
  else
    redis.call('HSET', KEYS[3], 'corrupt-' .. redis.sha1hex(raw),
      '{"failed_at":' .. now .. ',"error":"unreadable queue entry","raw":' .. cjson.encode(raw) .. '}')
  end
end
return out
"""
)

_ACK = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return removed
"""
# A submitted lead is in no other place: not failed either (a restore, or an operator's hand,
# may have put it there while a worker held it).

_RETRY_LATER = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""

_FAIL = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

_PROMOTE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, raw in ipairs(due) do
  redis.call('ZREM', KEYS[1], raw)
  redis.call('LPUSH', KEYS[2], raw)
end
return #due
"""

_REQUEUE_STUCK = (
    _LEAD_TAIL
    + _REDIS_NOW
    + """
local cutoff = tonumber(now) - tonumber(ARGV[1])
local moved = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local id, envelope = all[i], all[i + 1]
  local claimed_at = tonumber(string.match(envelope, '^{"claimed_at":([%d%.eE%+%-]+)'))
  local lead = lead_of(envelope)
  if lead and (ARGV[2] == id or (ARGV[2] == '' and claimed_at and claimed_at < cutoff)) then
    redis.call('HDEL', KEYS[1], id)
    redis.call('RPUSH', KEYS[2], lead)
    moved = moved + 1
  end
end
return moved
"""
)

_REQUEUE_FAILED = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
return 1
"""


_SWAP_WAITING = """
local at = redis.call('LPOS', KEYS[1], ARGV[1])
if at then
  redis.call('LSET', KEYS[1], at, ARGV[2])
  return 1
end
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if due then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[2], due, ARGV[2])
  return 1
end
return 0
"""

CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "zip")
"""What a visitor may still change in a queued lead (`LeadQueue.amend`)."""


class QueueStatus(msgspec.Struct, frozen=True):
    queued: int
    processing: int
    stuck: int
    retry_scheduled: int
    failed: int
    oldest_claim_age_seconds: float | None
    workers: list[str]


@redis_store
class LeadQueue:
    def __init__(self, redis: Redis, visibility_timeout: float) -> None:
        self._redis = redis
        self.visibility_timeout = visibility_timeout
        register = redis.register_script
        self._enqueue = register(_ENQUEUE)
        self._claim = register(_CLAIM)
        self._ack = register(_ACK)
        self._retry_later = register(_RETRY_LATER)
        self._fail = register(_FAIL)
        self._promote = register(_PROMOTE_DUE)
        self._requeue_stuck = register(_REQUEUE_STUCK)
        self._requeue_failed = register(_REQUEUE_FAILED)
        self._swap_waiting = register(_SWAP_WAITING)

    async def enqueue(self, lead: Lead) -> str:
        """Queues the lead unless its idempotency key was queued before; returns the lead id."""
        lead_id: bytes | str = await self._enqueue(
            keys=[keys.lead_idempotency(lead.idempotency_key), keys.LEAD_QUEUE],
            args=[lead.id, lead_encoder.encode(lead), IDEMPOTENCY_TTL],
        )
        return as_text(lead_id)

    async def amend(self, lead_id: str, contact: dict[str, str]) -> bool:
        """Replaces the contact fields (`CONTACT_FIELDS`) of a lead no worker has claimed yet,
        in `lead_queue` or waiting out a retry in `lead_retry`, in place (same id, position and
        due time). False when the lead is claimed, sent or failed: it can no longer change.
        Reads both keys whole, which is fine for a visitor's rare correction after the end."""
        prefix = msgspec.json.encode({"id": lead_id})[:-1] + b","  # the encoder puts id first
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lrange(keys.LEAD_QUEUE, 0, -1)
            pipe.zrange(keys.LEAD_RETRY, 0, -1)
            queued, retrying = await pipe.execute()
        for raw in [*queued, *retrying]:
            if not raw.startswith(prefix):
                continue
            lead = lead_decoder.decode(raw)
            changes = {f: v for f, v in contact.items() if f in CONTACT_FIELDS}
            amended = lead_encoder.encode(msgspec.structs.replace(lead, **changes))
            swapped: int = await self._swap_waiting(
                keys=[keys.LEAD_QUEUE, keys.LEAD_RETRY], args=[raw, amended]
            )
            return bool(swapped)
        return False

    async def claim(self, worker_id: str, count: int) -> list[Lead]:
        raws = await self._claim(
            keys=[keys.LEAD_QUEUE, keys.LEAD_PROCESSING, keys.LEAD_FAILED],
            args=["", worker_id, count],  # the claim time is Redis's own
        )
        return [lead_decoder.decode(raw) for raw in raws]

    async def is_done(self, lead_id: str) -> bool:
        return bool(await self._redis.exists(keys.lead_done(lead_id)))

    async def ack(self, lead_id: str, outcome: str) -> None:
        await self._ack(
            keys=[keys.LEAD_PROCESSING, keys.lead_done(lead_id), keys.LEAD_FAILED],
            args=[lead_id, outcome, DONE_MARKER_TTL],
        )

    async def retry_later(self, lead: Lead, error: str, delay: float) -> bool:
        updated = msgspec.structs.replace(lead, attempts=lead.attempts + 1, last_error=error)
        return bool(
            await self._retry_later(
                keys=[keys.LEAD_PROCESSING, keys.LEAD_RETRY],
                args=[lead.id, lead_encoder.encode(updated), repr(time.time() + delay)],
            )
        )

    async def fail(self, lead: Lead, error: str) -> bool:
        updated = msgspec.structs.replace(lead, attempts=lead.attempts + 1, last_error=error)
        envelope = FailedEnvelope(failed_at=time.time(), error=error, lead=updated)
        return bool(
            await self._fail(
                keys=[keys.LEAD_PROCESSING, keys.LEAD_FAILED],
                args=[lead.id, lead_encoder.encode(envelope)],
            )
        )

    async def promote_due(self, limit: int = 500) -> int:
        """Moves leads whose backoff has passed from `lead_retry` back to `lead_queue`."""
        moved: int = await self._promote(
            keys=[keys.LEAD_RETRY, keys.LEAD_QUEUE], args=[repr(time.time()), limit]
        )
        return moved

    async def requeue_stuck(self, older_than: float | None = None) -> int:
        """Returns leads claimed longer ago than the visibility timeout (seconds, by Redis's
        clock, as claim times are) to the queue's head."""
        age = self.visibility_timeout if older_than is None else older_than
        moved: int = await self._requeue_stuck(
            keys=[keys.LEAD_PROCESSING, keys.LEAD_QUEUE], args=[repr(age), ""]
        )
        return moved

    async def release(self, lead_id: str) -> bool:
        """Gives a claimed lead back at once (a worker shutting down before it could finish)."""
        return bool(
            await self._requeue_stuck(
                keys=[keys.LEAD_PROCESSING, keys.LEAD_QUEUE], args=["0", lead_id]
            )
        )

    async def failed_ids(self) -> list[str]:
        """Ids of the leads in `lead_failed`."""
        return [as_text(k) for k in await self._redis.hkeys(keys.LEAD_FAILED)]

    async def retry_failed(self, lead_id: str | None = None) -> int:
        """Re-queues failed leads (all, or one) with their attempt count reset."""
        entries = await self._redis.hgetall(keys.LEAD_FAILED)
        moved = 0
        for raw_id, raw in sorted(entries.items()):  # in id order, whatever Redis's hash order
            entry_id = as_text(raw_id)
            if lead_id is not None and entry_id != lead_id:
                continue
            try:
                envelope = msgspec.json.decode(raw, type=FailedEnvelope)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # unreadable entries stay for an operator to inspect
            fresh = msgspec.structs.replace(envelope.lead, attempts=0, last_error=None)
            moved += await self._requeue_failed(
                keys=[keys.LEAD_FAILED, keys.LEAD_QUEUE],
                args=[entry_id, lead_encoder.encode(fresh)],
            )
        return moved

    async def status(self) -> QueueStatus:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.llen(keys.LEAD_QUEUE)
            pipe.hvals(keys.LEAD_PROCESSING)
            pipe.zcard(keys.LEAD_RETRY)
            pipe.hlen(keys.LEAD_FAILED)
            queued, claims, retry, failed = await pipe.execute()
        seconds, micros = await self._redis.time()  # claim times are Redis's clock
        now = seconds + micros / 1e6
        ages = [now - at for at in map(_claimed_at, claims) if at is not None]
        workers = sorted(
            [
                k.decode().removeprefix(keys.WORKER_HEARTBEAT_PREFIX)
                async for k in self._redis.scan_iter(match=keys.WORKER_HEARTBEAT_PREFIX + "*")
            ]
        )
        return QueueStatus(
            queued=queued,
            processing=len(claims),
            stuck=sum(1 for age in ages if age > self.visibility_timeout),
            retry_scheduled=retry,
            failed=failed,
            oldest_claim_age_seconds=round(max(ages), 1) if ages else None,
            workers=workers,
        )


class _ClaimTime(msgspec.Struct):
    claimed_at: float


def _claimed_at(envelope: bytes) -> float | None:
    """When a claim was made (epoch seconds); None for an entry that is not a claim."""
    try:
        return msgspec.json.decode(envelope, type=_ClaimTime).claimed_at
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
