"""The lead sink of shadow conversations: records what would have been submitted, submits nothing.

Nothing here reaches `lead_queue`, so no worker and no LeadProsper call can ever see a shadow lead.
Only the session hash, the practice area and the keyed hashes of the contact values
(`common.ValueDigest`, for lead-level agreement) are kept, never the values.
"""

from __future__ import annotations

import time
import uuid

import msgspec
from redis.asyncio import Redis

from common import ValueDigest, keys, redis_store
from newchat.leads._models import Lead

SHADOW_LEADS_KEPT = 1_000


class ShadowLeadRecord(msgspec.Struct, frozen=True):
    session_hash: str
    category: str
    at: float
    values: dict[str, str] = msgspec.field(default_factory=dict)
    """Field -> keyed hash of its normal form (`name`, `phone`, `email`, `zip`)."""


@redis_store
class ShadowLeadRecorder:
    def __init__(self, redis: Redis, digest: ValueDigest, key: str = keys.SHADOW_LEADS) -> None:
        self._redis = redis
        self._digest = digest
        self._key = key

    async def enqueue(self, lead: Lead) -> str:
        values = self._digest.digests(
            {
                "name": f"{lead.first_name} {lead.last_name}",
                "phone": lead.phone,
                "email": lead.email,
                "zip": lead.zip,
            }
        )
        record = ShadowLeadRecord(lead.session_hash, lead.category, time.time(), values)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self._key, msgspec.json.encode(record))
            pipe.ltrim(self._key, 0, SHADOW_LEADS_KEPT - 1)
            await pipe.execute()
        return f"shadow-{uuid.uuid4().hex[:12]}"

    async def amend(self, lead_id: str, contact: dict[str, str]) -> bool:
        """Always True: a shadow record holds no contact details, so a correction after the end
        changes nothing kept here (and the shadow reply matches the live one)."""
        return True
