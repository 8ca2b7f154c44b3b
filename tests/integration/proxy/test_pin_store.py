"""The Redis pin store: a pin lives as long as its conversation, and only a backend is a pin."""

from __future__ import annotations

from redis.asyncio import Redis

from common import keys
from proxy import PinStore


async def test_a_pin_is_renewed_each_time_it_is_read(redis: Redis) -> None:
    pins = PinStore(redis, ttl_seconds=604_800)
    await redis.set(keys.route_pin("abcdefgh12345678"), "new", ex=5)
    assert (await pins.get_with_evidence("abcdefgh12345678"))[0] == "new"
    assert 604_000 < await redis.ttl(keys.route_pin("abcdefgh12345678")) <= 604_800


async def test_a_pin_is_written_with_the_conversations_ttl(redis: Redis) -> None:
    pins = PinStore(redis, ttl_seconds=600)
    await pins.set("abcdefgh12345678", "legacy")
    assert await redis.get(keys.route_pin("abcdefgh12345678")) == b"legacy"
    assert 590 < await redis.ttl(keys.route_pin("abcdefgh12345678")) <= 600
    assert (await pins.get_with_evidence("abcdefgh12345678"))[0] == "legacy"


async def test_anything_but_a_backend_is_no_pin(redis: Redis) -> None:
    pins = PinStore(redis, ttl_seconds=600)
    await redis.set(keys.route_pin("abcdefgh12345678"), "banana")
    assert (await pins.get_with_evidence("abcdefgh12345678"))[0] is None
    assert (await pins.get_with_evidence("nothingstored0001"))[0] is None


async def test_the_evidence_for_an_unpinned_id_is_whether_the_engine_holds_it(
    redis: Redis,
) -> None:
    """An id with no pin is routed by evidence (the gateway): the pin, renewed, and whether
    `sess:<id>` exists, read together."""
    pins = PinStore(redis, ttl_seconds=600)
    assert await pins.get_with_evidence("abcdefgh12345678") == (None, False)
    await redis.set(keys.session("abcdefgh12345678"), b"state")
    assert await pins.get_with_evidence("abcdefgh12345678") == (None, True)
    await redis.set(keys.route_pin("abcdefgh12345678"), "legacy", ex=5)
    assert await pins.get_with_evidence("abcdefgh12345678") == ("legacy", True)
    assert 590 < await redis.ttl(keys.route_pin("abcdefgh12345678")) <= 600
    await redis.set(keys.route_pin("abcdefgh12345678"), "banana")
    assert await pins.get_with_evidence("abcdefgh12345678") == (None, True)
    await redis.set(keys.route_pin("ijklmnop12345678"), b"new")
    assert await pins.get_with_evidence("ijklmnop12345678") == ("new", False)
