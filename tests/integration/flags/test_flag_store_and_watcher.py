"""Run-time flags in the real Redis: atomic change + audit, and a watcher that survives outages."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from common import keys
from flags import FlagStore, FlagValues, FlagWatcher, live_instances
from rollback import roll_back_flags
from tests.support.processes import RedisServer


async def test_each_change_is_versioned_audited_and_announced(redis: Redis) -> None:
    store = FlagStore(redis)
    pubsub = redis.pubsub()
    await pubsub.subscribe("flags:changed")
    first = await store.set("new_chat_percent", 10, actor="ann@ops", reason="start", source="cli")
    second = await store.set("new_chat_percent", 30, actor="bob@ops", reason="more", source="cli")
    removed = await store.set(
        "new_chat_percent", None, actor="ann@ops", reason="back", source="cli"
    )
    assert (first.version, second.version, removed.version) == (1, 2, 3)
    assert (second.old, second.new) == ("10", "30")
    loaded = await store.load()
    assert loaded.values == {}
    assert loaded.version == 3
    history = await store.history()
    assert [(e.flag, e.old, e.new, e.actor, e.reason, e.version) for e in history] == [
        ("new_chat_percent", "30", "", "ann@ops", "back", 3),
        ("new_chat_percent", "10", "30", "bob@ops", "more", 2),
        ("new_chat_percent", "", "10", "ann@ops", "start", 1),
    ]
    announced = []
    for _ in range(10):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message:
            announced.append(int(message["data"]))
    assert announced == [1, 2, 3]
    await pubsub.aclose()


async def test_unreadable_stored_value_falls_back_to_the_default(redis: Redis) -> None:
    await redis.hset("flags:runtime", mapping={"new_chat_percent": "150", "drain": "true"})
    loaded = await FlagStore(redis).load()
    assert loaded.values == {"drain": True}
    assert loaded.unreadable == ("new_chat_percent",)


async def test_watcher_follows_changes_and_keeps_the_last_flags_when_redis_dies(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path)
    client = Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    watcher = FlagWatcher(
        client,
        FlagValues(new_chat_percent=5),
        kill_switch=False,
        instance_id="t1",
        poll_interval=0.2,
    )
    try:
        await watcher.start()
        assert watcher.snapshot.values.new_chat_percent == 5
        await FlagStore(client).set("new_chat_percent", 40, actor="t", reason="t", source="t")
        for _ in range(50):
            if watcher.snapshot.version == 1:
                break
            await asyncio.sleep(0.05)
        assert watcher.snapshot.values.new_chat_percent == 40
        assert [r.version for r in await live_instances(client)] == [1]
        server.stop()
        for _ in range(50):
            if not watcher.status().redis_ok:
                break
            await asyncio.sleep(0.05)
        status = watcher.status()
        assert status.redis_ok is False
        assert status.last_error
        assert watcher.snapshot.values.new_chat_percent == 40  # last good state kept
        assert await watcher.refresh() is False  # never raises
    finally:
        await watcher.stop()
        await client.aclose()


def _watcher(
    redis: Redis, instance: str, state_file: Path | None = None, identity: str = ""
) -> FlagWatcher:
    return FlagWatcher(
        redis,
        FlagValues(),
        kill_switch=False,
        instance_id=instance,
        poll_interval=0.1,
        state_file=state_file,
        redis_identity=identity,
    )


async def test_flags_that_went_back_are_not_applied_and_a_new_gateway_takes_its_peers(
    redis: Redis,
) -> None:
    """Redis lost flags: a lower version, or the same version with other values (issue 16)."""
    store = FlagStore(redis)
    await store.set("enable_new_chat", False, actor="t", reason="rollback", source="t")
    await store.set("new_chat_percent", 40, actor="t", reason="t", source="t")
    running = _watcher(redis, "running")
    await running.start()
    try:
        assert running.snapshot.version == 2
        await redis.hdel(keys.FLAGS_RUNTIME, "enable_new_chat")  # same version, other values
        assert await running.refresh() is False
        assert running.status().redis_version == 2
        assert running.snapshot.values.enable_new_chat is False
        await redis.flushall()  # version 0: everything gone
        await running.refresh()
        assert running.status().redis_version == 0
        assert running.snapshot.values == FlagValues(enable_new_chat=False, new_chat_percent=40)
        report = (await live_instances(redis))[0]
        assert report.runtime == {"enable_new_chat": "false", "new_chat_percent": "40"}
        assert report.redis_version == 0

        started_later = _watcher(redis, "started-later")
        await started_later.start()
        try:
            assert started_later.snapshot.version == 2
            assert started_later.snapshot.values.enable_new_chat is False
            assert started_later.status().redis_version == 0
        finally:
            await started_later.stop()

        change = await store.reapply(
            report.runtime, applied_version=report.version, actor="t", reason="restore"
        )
        assert change.version == 3
        await running.refresh()  # the same values under a newer version: applied
        assert running.snapshot.version == 3
        assert running.snapshot.values == FlagValues(enable_new_chat=False, new_chat_percent=40)
        assert running.status().redis_version is None
        # a change after the loss goes above every gateway's version, so it is taken
        rolled = await store.set("drain", True, actor="t", reason="t", source="rollback", above=10)
        assert rolled.version == 11
        await running.refresh()
        assert running.snapshot.version == 11
        assert running.snapshot.values.drain is True
    finally:
        await running.stop()


async def test_the_state_file_restores_the_applied_flags_only_for_its_own_redis(
    redis: Redis, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "flags.json"
    store = FlagStore(redis)
    await store.set("enable_new_chat", False, actor="t", reason="rollback", source="t")
    first = _watcher(redis, "a", state, "redis://one")
    await first.start()
    await first.stop()
    assert (state.parent.stat().st_mode & 0o777, state.stat().st_mode & 0o777) == (0o700, 0o600)
    await redis.flushall()  # Redis lost everything, and no gateway is running

    again = _watcher(redis, "b", state, "redis://one")
    await again.start()
    try:
        assert again.snapshot.version == 1
        assert again.snapshot.values.enable_new_chat is False
        assert again.status().redis_version == 0
    finally:
        await again.stop()
    elsewhere = _watcher(redis, "c", state, "redis://two")
    await elsewhere.start()
    try:
        assert elsewhere.snapshot.version == 0  # a file about another Redis is not used
        assert elsewhere.status().redis_version is None
    finally:
        await elsewhere.stop()
    state.write_text("{not json")
    broken = _watcher(redis, "d", state, "redis://one")
    await broken.start()  # an unreadable file is ignored, never fatal
    await broken.stop()
    assert broken.snapshot.version == 0


async def test_a_rollback_while_redis_lost_flags_keeps_every_other_flag(redis: Redis) -> None:
    """A rollback on top of a Redis that lost its flags reset `new_chat_percent` to the
    environment's value without a word (a fresh helper, issue 16): it re-applies first."""
    store = FlagStore(redis)
    await store.set("new_chat_percent", 50, actor="t", reason="t", source="t")
    await store.set("testers", ("ann",), actor="t", reason="t", source="t")
    running = _watcher(redis, "running")
    await running.start()
    said: list[str] = []
    try:
        await redis.flushall()
        await running.refresh()
        assert running.status().redis_version == 0
        done: list[str] = []
        ok = await roll_back_flags(
            redis,
            drain=True,
            reason="incident",
            actor="t",
            deadline=3,
            unleash=None,
            say=lambda text, error=False: said.append(text),
            done=done.append,
        )
        assert ok
        stored = await store.load()
        assert stored.values == {
            "new_chat_percent": 50,
            "testers": ("ann",),
            "drain": True,
            "enable_new_chat": False,
        }
        assert running.snapshot.values.enable_new_chat is False
        assert running.snapshot.values.new_chat_percent == 50
        assert running.status().redis_version is None
        assert [e.flag for e in await store.history()] == ["enable_new_chat", "drain", "reapply"]
        assert len(done) == 3
        assert any("re-applied" in line for line in said)
    finally:
        await running.stop()
