"""The lead worker's accounting to the letter, against the real redis-server (LeadProsper mocked
with respx): exact run summaries and metrics over several leads, never more submissions at once
than its concurrency, a crash in submission retried with its reason, a heartbeat that stays
alive, maintenance that keeps counting, and an unconfigured worker that submits nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import msgspec
import pytest
import respx
from redis.asyncio import Redis

from common import keys
from newchat import Services, WorkerSettings
from newchat.leads import FailedEnvelope, Lead, LeadWorker, RunSummary, submission_timeout
from tests.conftest import LEADPROSPER_URL
from tests.support.leads import make_lead
from tests.support.processes import RedisServer


def worker_with(engine: Services, **settings: float) -> LeadWorker:
    return LeadWorker(
        engine.redis,
        engine.queue,
        engine.leadprosper,
        msgspec.structs.replace(engine.settings.worker, **settings),
        engine.metrics,
        worker_id="w1",
    )


def verdict_by_email(request: httpx.Request) -> httpx.Response:
    """LeadProsper's answer chosen by the lead: ann0-1 accepted, 2-3 duplicated, 4-5 a 503,
    6-7 refused, 8 crashes the client."""
    number = int(json.loads(request.content)["email"].removeprefix("ann").split("@")[0])
    if number < 2:
        return httpx.Response(200, json={"status": "ACCEPTED", "lead_id": number})
    if number < 4:
        return httpx.Response(200, json={"status": "DUPLICATED", "message": "seen"})
    if number < 6:
        return httpx.Response(503, text="maintenance")
    if number < 8:
        return httpx.Response(200, json={"status": "ERROR", "message": "invalid zip"})
    raise RuntimeError("a bug in the client")


async def test_a_run_counts_every_outcome_exactly(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    outside.post(LEADPROSPER_URL).mock(side_effect=verdict_by_email)
    ids = [await engine.queue.enqueue(make_lead(n)) for n in range(9)]
    summary = await engine.worker().run(burst=True)
    assert summary == RunSummary(accepted=2, duplicated=2, retried=3, failed=2)

    registry = engine.metrics.registry

    def submissions(outcome: str) -> float | None:
        return registry.get_sample_value("chat_lead_submissions_total", {"outcome": outcome})

    assert [submissions(o) for o in ("accepted", "duplicated", "retry", "permanent")] == [
        2,
        2,
        3,
        2,
    ]
    assert registry.get_sample_value("chat_lead_submission_seconds_count") == 9
    total = registry.get_sample_value("chat_lead_submission_seconds_sum")
    assert total is not None
    assert 0 <= total < 9 * submission_timeout(engine.settings.worker)  # durations, not clocks

    retried = {
        lead.id: lead
        for lead in (
            msgspec.json.decode(raw, type=Lead)
            for raw in await redis.zrange(keys.LEAD_RETRY, 0, -1)
        )
    }
    assert sorted(retried) == sorted(ids[4:6] + ids[8:])
    assert retried[ids[8]].last_error == "internal error (RuntimeError)"  # never lost to a bug
    assert retried[ids[8]].attempts == 1
    assert retried[ids[4]].last_error == "LeadProsper answered HTTP 503"
    failed = await redis.hgetall(keys.LEAD_FAILED)
    assert sorted(failed) == sorted(i.encode() for i in ids[6:8])
    assert {msgspec.json.decode(v, type=FailedEnvelope).error for v in failed.values()} == {
        "invalid zip"
    }
    assert [await redis.get(keys.lead_done(i)) for i in ids[:4]] == [
        b"accepted",
        b"accepted",
        b"duplicated",
        b"duplicated",
    ]


async def test_never_more_submissions_at_once_than_the_concurrency(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    in_flight = 0
    most = 0
    release = asyncio.Event()

    async def slow(_: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await release.wait()
        in_flight -= 1
        return httpx.Response(200, json={"status": "ACCEPTED"})

    outside.post(LEADPROSPER_URL).mock(side_effect=slow)
    for n in range(5):
        await engine.queue.enqueue(make_lead(n))
    running = asyncio.create_task(
        worker_with(engine, concurrency=2, poll_interval_seconds=0.01).run(burst=True)
    )
    async with asyncio.timeout(5):
        while in_flight < 2:
            await asyncio.sleep(0.01)
    # A window of some twenty of the worker's passes: a full worker claims nothing more.
    watched_until = time.monotonic() + 0.2
    while time.monotonic() < watched_until:
        assert await redis.hlen(keys.LEAD_PROCESSING) == 2
        await asyncio.sleep(0.01)
    assert await redis.llen(keys.LEAD_QUEUE) == 3
    release.set()
    summary = await asyncio.wait_for(running, timeout=10)
    assert summary.accepted == 5
    assert most == 2


async def test_a_finished_submission_frees_its_slot_at_once_not_at_the_next_poll(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    """With a poll interval far beyond the test's patience, the worker still claims the next
    lead the moment a slot frees, whether the worker was full or not."""
    gates = {n: asyncio.Event() for n in range(4)}
    sent: list[int] = []

    async def gated(request: httpx.Request) -> httpx.Response:
        number = int(json.loads(request.content)["email"].removeprefix("ann").split("@")[0])
        sent.append(number)
        await gates[number].wait()
        return httpx.Response(200, json={"status": "ACCEPTED"})

    outside.post(LEADPROSPER_URL).mock(side_effect=gated)
    ids = [await engine.queue.enqueue(make_lead(n)) for n in range(3)]
    gates[2].set()  # the third goes through as soon as it is sent
    worker = worker_with(engine, concurrency=2, poll_interval_seconds=600)
    running = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while len(sent) < 2:
            await asyncio.sleep(0.01)
        assert sorted(sent) == [0, 1]
        gates[1].set()  # full worker, one slot frees: the third is claimed and sent
        while not await engine.queue.is_done(ids[2]):
            await asyncio.sleep(0.01)
        later = await engine.queue.enqueue(make_lead(3))
        gates[3].set()
        gates[0].set()  # half-full worker, its last submission ends: the new lead is seen
        while not await engine.queue.is_done(later):
            await asyncio.sleep(0.01)
    worker.stop()
    assert (await asyncio.wait_for(running, timeout=10)).accepted == 4


async def test_an_idle_worker_polls_at_its_interval(engine: Services, redis: Redis) -> None:
    """Nothing queued: one claim per poll interval, not a busy loop on Redis."""
    worker = worker_with(engine, poll_interval_seconds=0.1)
    running = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not await redis.exists(keys.worker_heartbeat("w1")):
            await asyncio.sleep(0.01)

    async def scripts_run() -> int:
        stats = await redis.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    before = await scripts_run()
    started = time.monotonic()
    await asyncio.sleep(0.5)  # the window observed, five poll intervals
    calls = await scripts_run() - before
    elapsed = time.monotonic() - started
    worker.stop()
    await asyncio.wait_for(running, timeout=10)
    assert 1 <= calls <= elapsed / 0.1 + 2


async def test_a_burst_on_an_empty_queue_ends_at_once(engine: Services) -> None:
    worker = worker_with(engine, poll_interval_seconds=600)
    async with asyncio.timeout(5):
        assert await worker.run(burst=True) == RunSummary()


async def test_a_burst_waits_for_its_submissions_rather_than_handing_them_back(
    engine: Services, outside: respx.MockRouter
) -> None:
    async def slow(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # LeadProsper taking its time
        return httpx.Response(200, json={"status": "ACCEPTED"})

    outside.post(LEADPROSPER_URL).mock(side_effect=slow)
    await engine.queue.enqueue(make_lead())
    worker = worker_with(engine, shutdown_grace_seconds=0, poll_interval_seconds=0.01)
    assert await worker.run(burst=True) == RunSummary(accepted=1)


async def test_a_burst_takes_a_retry_that_fell_due_while_it_worked(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    gate = asyncio.Event()
    sent = 0

    async def gated(_: httpx.Request) -> httpx.Response:
        nonlocal sent
        sent += 1
        await gate.wait()
        return httpx.Response(200, json={"status": "ACCEPTED"})

    outside.post(LEADPROSPER_URL).mock(side_effect=gated)
    await engine.queue.enqueue(make_lead(0))
    waiting = msgspec.json.encode(make_lead(1))
    await redis.zadd(keys.LEAD_RETRY, {waiting: time.time() + 3600})
    running = asyncio.create_task(worker_with(engine, poll_interval_seconds=0.01).run(burst=True))
    async with asyncio.timeout(5):
        while not sent:  # maintenance has run: the retry was not due then
            await asyncio.sleep(0.01)
    await redis.zadd(keys.LEAD_RETRY, {waiting: 0})  # now it is
    gate.set()
    assert await asyncio.wait_for(running, timeout=10) == RunSummary(accepted=2)


async def test_a_bounded_run_hands_back_what_its_deadline_cuts_off(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    """Past the deadline, in-flight leads get no grace beyond it (cron's budget holds)."""

    async def slow(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.5)
        return httpx.Response(200, json={"status": "ACCEPTED"})

    outside.post(LEADPROSPER_URL).mock(side_effect=slow)
    lead_id = await engine.queue.enqueue(make_lead())
    worker = worker_with(engine, poll_interval_seconds=0.01)
    summary = await worker.run(burst=True, deadline=time.monotonic() + 0.05)
    assert summary == RunSummary(released=1)
    [queued] = await redis.lrange(keys.LEAD_QUEUE, 0, -1)
    assert msgspec.json.decode(queued, type=Lead).id == lead_id


async def test_a_heartbeat_that_cannot_be_removed_is_left_to_expire(
    engine: Services, redis: Redis, redis_server: RedisServer
) -> None:
    """A clean stop removes the heartbeat; if Redis refuses that, the run still ends normally
    and the key expires with its TTL (here: an ACL that forbids DEL, a real Redis error)."""
    await redis.acl_setuser(
        "no-del", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-del"]
    )
    limited = Redis.from_url(redis_server.url, username="no-del", password="pw")
    try:
        worker = LeadWorker(
            limited,
            engine.queue,
            engine.leadprosper,
            engine.settings.worker,
            engine.metrics,
            worker_id="w1",
        )
        assert await worker.run(burst=True) == RunSummary()
        assert 0 < await redis.ttl(keys.worker_heartbeat("w1")) <= 30
    finally:
        await limited.aclose()
        await redis.acl_deluser("no-del")


def test_a_submission_gets_half_the_visibility_timeout_and_at_most_a_minute() -> None:
    assert submission_timeout(WorkerSettings(visibility_timeout_seconds=30)) == 15
    assert submission_timeout(WorkerSettings(visibility_timeout_seconds=119)) == 59.5
    assert submission_timeout(WorkerSettings(visibility_timeout_seconds=121)) == 60
    assert submission_timeout(WorkerSettings(visibility_timeout_seconds=600)) == 60


async def test_the_heartbeat_stays_alive_while_the_worker_runs(
    engine: Services, redis: Redis
) -> None:
    """Renewed at a third of its TTL: a live worker is never reported dead between beats."""
    worker = worker_with(engine, heartbeat_ttl_seconds=1, poll_interval_seconds=0.02)
    before = time.time()
    running = asyncio.create_task(worker.run())
    key = keys.worker_heartbeat("w1")
    async with asyncio.timeout(5):
        while not await redis.exists(key):
            await asyncio.sleep(0.01)
    beat = float(await redis.get(key) or b"0")
    assert before <= beat <= time.time()  # the time of the last beat, for operators
    watched_until = time.monotonic() + 2.5  # more than two TTLs
    while time.monotonic() < watched_until:
        assert await redis.exists(key), "the heartbeat expired while the worker ran"
        await asyncio.sleep(0.05)
    assert float(await redis.get(key) or b"0") > beat  # renewed, not only kept
    worker.stop()
    await asyncio.wait_for(running, timeout=10)


async def test_maintenance_keeps_running_and_counting(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    """Stuck leads found on later passes add up in the run's summary."""
    outside.post(LEADPROSPER_URL).respond(200, json={"status": "ACCEPTED"})
    worker = worker_with(
        engine,
        maintenance_interval_seconds=0.05,
        poll_interval_seconds=0.02,
    )

    async def strand(n: int) -> str:
        """A lead claimed by a worker that died long ago, written straight into
        lead_processing: queued first, the running worker could claim it itself (a flaky run
        counted one stuck lead, not two)."""
        lead = make_lead(n)
        claim = (
            f'{{"claimed_at":{time.time() - 3600!r},"worker":"dead-worker","lead":'.encode()
            + msgspec.json.encode(lead)
            + b"}"
        )
        await redis.hset(keys.LEAD_PROCESSING, lead.id, claim)
        return lead.id

    first = await strand(1)
    running = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not await engine.queue.is_done(first):
            await asyncio.sleep(0.01)
    second = await strand(2)
    async with asyncio.timeout(5):
        while not await engine.queue.is_done(second):
            await asyncio.sleep(0.01)
    worker.stop()
    summary = await asyncio.wait_for(running, timeout=10)
    assert (summary.requeued_stuck, summary.accepted) == (2, 2)


async def test_an_unconfigured_worker_leaves_every_lead_queued(
    base_env: dict[str, str],
    redis: Redis,
    outside_http: httpx.AsyncClient,
    outside: respx.MockRouter,
) -> None:
    from newchat import load_settings, provide_services

    unconfigured = {key: "" for key in base_env if key.startswith("LEADPROSPER_")}
    engine = provide_services(load_settings(base_env | unconfigured), redis, outside_http)
    assert not engine.leadprosper.configured
    lead_id = await engine.queue.enqueue(make_lead())
    assert await engine.worker().run(burst=True) == RunSummary()  # cron: nothing to do
    worker = worker_with(engine, poll_interval_seconds=0.02)
    running = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not await redis.exists(keys.worker_heartbeat("w1")):
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # some ten idle passes, each waiting its poll interval
    worker.stop()
    assert await asyncio.wait_for(running, timeout=10) == RunSummary()
    assert await redis.lrange(keys.LEAD_QUEUE, 0, -1) != []
    queued = msgspec.json.decode((await redis.lrange(keys.LEAD_QUEUE, 0, -1))[0], type=Lead)
    assert (queued.id, queued.attempts) == (lead_id, 0)
    assert await redis.hlen(keys.LEAD_PROCESSING) == 0
    assert not outside.calls


@pytest.mark.parametrize("grace", [0.0, 0.05])
async def test_leads_still_in_flight_at_the_end_are_handed_back_and_counted(
    engine: Services, redis: Redis, outside: respx.MockRouter, grace: float
) -> None:
    async def hanging(_: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    outside.post(LEADPROSPER_URL).mock(side_effect=hanging)
    ids = [await engine.queue.enqueue(make_lead(n)) for n in range(3)]
    worker = worker_with(engine, shutdown_grace_seconds=grace, poll_interval_seconds=0.02)
    running = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while await redis.hlen(keys.LEAD_PROCESSING) < 3:
            await asyncio.sleep(0.01)
    worker.stop()
    summary = await asyncio.wait_for(running, timeout=10)
    assert summary == RunSummary(released=3)
    assert sorted(
        msgspec.json.decode(raw, type=Lead).id for raw in await redis.lrange(keys.LEAD_QUEUE, 0, -1)
    ) == sorted(ids)
    assert await redis.hlen(keys.LEAD_PROCESSING) == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_sigterm_and_ctrl_c_stop_the_worker_cleanly(
    engine: Services, redis: Redis, stop_signal: signal.Signals
) -> None:
    """In-process, as `chatctl worker` installs them (its process test kills a real one)."""
    worker = worker_with(engine, poll_interval_seconds=0.02)
    loop = asyncio.get_running_loop()
    worker.install_signal_handlers()
    try:
        running = asyncio.create_task(worker.run())
        async with asyncio.timeout(5):
            while not await redis.exists(keys.worker_heartbeat("w1")):
                await asyncio.sleep(0.01)
        os.kill(os.getpid(), stop_signal)
        assert await asyncio.wait_for(running, timeout=5) == RunSummary()
        assert not await redis.exists(keys.worker_heartbeat("w1"))
    finally:
        for handled in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(handled)
