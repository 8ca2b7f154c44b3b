"""The lead sink of shadow conversations: it records, submits nothing, keeps no contact details,
and keeps the newest thousand."""

from __future__ import annotations

import json
import re
import time

from redis.asyncio import Redis

from common import ValueDigest, keys
from newchat.leads import ShadowLeadRecorder
from tests.support.leads import make_lead

DIGEST = ValueDigest("a test key")


async def test_a_shadow_lead_is_recorded_without_contact_details(redis: Redis) -> None:
    lead = make_lead(7)
    lead.session_hash = "0bb7dae3713d"
    before = time.time()
    lead_id = await ShadowLeadRecorder(redis, DIGEST).enqueue(lead)
    assert re.fullmatch(r"shadow-[0-9a-f]{12}", lead_id)
    [raw] = await redis.lrange(keys.SHADOW_LEADS, 0, -1)
    record = json.loads(raw)
    assert set(record) == {"session_hash", "category", "at", "values"}
    assert (record["session_hash"], record["category"]) == ("0bb7dae3713d", "family")
    # the values as keyed hashes only: equal to a hash of the same value, in another spelling
    assert record["values"]["zip"] == DIGEST.digest("zip", lead.zip + "-1234")
    assert record["values"]["phone"] == DIGEST.digest("phone", "+1 " + lead.phone)
    assert record["values"]["name"] == DIGEST.digest(
        "name", f"{lead.first_name} {lead.last_name}".upper()
    )
    assert set(record["values"]) == {"name", "phone", "email", "zip"}
    assert before <= record["at"] <= time.time()
    assert await redis.llen(keys.LEAD_QUEUE) == 0  # nothing a worker could submit
    for detail in ("Ann", "Lee", "5552017788", "ann7@example.com", "90210", "divorce"):
        assert detail not in raw.decode()


async def test_the_newest_thousand_are_kept(redis: Redis) -> None:
    recorder = ShadowLeadRecorder(redis, DIGEST)
    for n in range(1001):
        lead = make_lead(n)
        lead.session_hash = f"{n:012d}"
        await recorder.enqueue(lead)
    kept = await redis.lrange(keys.SHADOW_LEADS, 0, -1)
    assert len(kept) == 1000
    assert json.loads(kept[0])["session_hash"] == f"{1000:012d}"  # newest first
    assert json.loads(kept[-1])["session_hash"] == f"{1:012d}"  # the oldest one went
