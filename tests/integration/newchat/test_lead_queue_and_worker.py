"""The lead queue and worker against the real redis-server (LeadProsper mocked with respx)."""

from __future__ import annotations

import asyncio
import random
import re
import time

import httpx
import msgspec
import pytest
import respx
from redis.asyncio import Redis

from common import keys
from newchat import (
    Services,
    WorkerSettings,
    load_settings,
    provide_http_client,
    provide_services,
)
from newchat.leads import FailedEnvelope, Lead, LeadProsperClient, backoff_delay
from tests.conftest import LEADPROSPER_URL
from tests.support.bad_backends import BadBackend
from tests.support.leads import make_lead
from tests.support.processes import free_port


async def retry_entries(redis: Redis) -> list[Lead]:
    return [
        msgspec.json.decode(raw, type=Lead) for raw in await redis.zrange(keys.LEAD_RETRY, 0, -1)
    ]


async def test_enqueue_is_idempotent_per_session(engine: Services, redis: Redis) -> None:
    first = await engine.queue.enqueue(make_lead(1))
    again = await asyncio.gather(*(engine.queue.enqueue(make_lead(1)) for _ in range(10)))
    assert set(again) == {first}
    assert await redis.llen(keys.LEAD_QUEUE) == 1


async def test_accepted_lead_is_acknowledged_and_marked_done(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    outside.post(LEADPROSPER_URL).respond(200, json={"status": "ACCEPTED", "lead_id": 9})
    lead_id = await engine.queue.enqueue(make_lead())
    summary = await engine.worker().run(burst=True)
    assert summary.accepted == 1
    assert await engine.queue.is_done(lead_id)
    status = await engine.queue.status()
    assert (status.queued, status.processing, status.failed) == (0, 0, 0)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(503, text="maintenance"),
        httpx.Response(429, json={"status": "ERROR", "message": "slow down"}),
        httpx.Response(200, text="<html>gateway</html>"),
    ],
)
async def test_retryable_failure_goes_back_with_backoff(
    engine: Services, redis: Redis, outside: respx.MockRouter, response: httpx.Response
) -> None:
    outside.post(LEADPROSPER_URL).mock(return_value=response)
    await engine.queue.enqueue(make_lead())
    before = time.time()
    summary = await engine.worker().run(burst=True)
    after = time.time()
    assert summary.retried == 1
    [waiting] = await retry_entries(redis)
    assert waiting.attempts == 1
    assert waiting.last_error
    [(_, ready_at)] = await redis.zrange(keys.LEAD_RETRY, 0, -1, withscores=True)
    assert before + 1.0 <= ready_at <= after + 2.0  # base 2 s, jittered to 50-100 %


async def test_timeouts_are_retried(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    outside.post(LEADPROSPER_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    await engine.queue.enqueue(make_lead())
    assert (await engine.worker().run(burst=True)).retried == 1


async def test_due_retry_is_resubmitted_and_succeeds(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    route = outside.post(LEADPROSPER_URL)
    route.side_effect = [httpx.Response(503), httpx.Response(200, json={"status": "ACCEPTED"})]
    lead_id = await engine.queue.enqueue(make_lead())
    await engine.worker().run(burst=True)
    await redis.zadd(keys.LEAD_RETRY, dict.fromkeys(await redis.zrange(keys.LEAD_RETRY, 0, -1), 0))
    summary = await engine.worker().run(burst=True)
    assert summary.accepted == 1
    assert route.call_count == 2
    assert await engine.queue.is_done(lead_id)


async def test_too_many_attempts_move_the_lead_to_lead_failed(
    base_env: dict[str, str],
    redis: Redis,
    outside_http: httpx.AsyncClient,
    outside: respx.MockRouter,
) -> None:
    engine = provide_services(
        load_settings(base_env | {"LEAD_MAX_ATTEMPTS": "2"}), redis, outside_http
    )
    outside.post(LEADPROSPER_URL).respond(500)
    lead_id = await engine.queue.enqueue(make_lead())
    await engine.worker().run(burst=True)
    await redis.zadd(keys.LEAD_RETRY, dict.fromkeys(await redis.zrange(keys.LEAD_RETRY, 0, -1), 0))
    summary = await engine.worker().run(burst=True)
    assert summary.failed == 1
    failed = msgspec.json.decode(await redis.hget(keys.LEAD_FAILED, lead_id), type=FailedEnvelope)
    assert "gave up after 2 attempts" in failed.error
    assert failed.lead.email == "ann0@example.com"  # nothing lost


async def test_leadprosper_error_is_permanent_at_once(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    outside.post(LEADPROSPER_URL).respond(200, json={"status": "ERROR", "message": "invalid zip"})
    lead_id = await engine.queue.enqueue(make_lead())
    assert (await engine.worker().run(burst=True)).failed == 1
    failed = msgspec.json.decode(await redis.hget(keys.LEAD_FAILED, lead_id), type=FailedEnvelope)
    assert failed.error == "invalid zip"
    assert await redis.zcard(keys.LEAD_RETRY) == 0


async def test_duplicated_is_done_and_not_resent(
    engine: Services, outside: respx.MockRouter
) -> None:
    route = outside.post(LEADPROSPER_URL).respond(200, json={"status": "DUPLICATED"})
    await engine.queue.enqueue(make_lead())
    summary = await engine.worker().run(burst=True)
    assert (summary.duplicated, summary.failed, summary.retried) == (1, 0, 0)
    assert route.call_count == 1


async def test_retry_failed_puts_leads_back_with_attempts_reset(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    route = outside.post(LEADPROSPER_URL)
    route.side_effect = [
        httpx.Response(200, json={"status": "ERROR", "message": "campaign off"}),
        httpx.Response(200, json={"status": "ACCEPTED"}),
    ]
    lead_id = await engine.queue.enqueue(make_lead())
    await engine.worker().run(burst=True)
    assert await engine.queue.retry_failed() == 1
    [raw] = await redis.lrange(keys.LEAD_QUEUE, 0, -1)
    assert msgspec.json.decode(raw, type=Lead).attempts == 0
    assert (await engine.worker().run(burst=True)).accepted == 1
    assert await engine.queue.is_done(lead_id)


async def test_stuck_lead_is_requeued_and_an_already_submitted_copy_is_not_resent(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    route = outside.post(LEADPROSPER_URL).respond(200, json={"status": "ACCEPTED"})
    lead_id = await engine.queue.enqueue(make_lead())
    [claimed] = await engine.queue.claim("dead-worker", 1)
    assert claimed.id == lead_id
    assert await engine.queue.requeue_stuck(older_than=3600) == 0  # not stuck yet
    assert await engine.queue.requeue_stuck(older_than=0) == 1
    assert await redis.hlen(keys.LEAD_PROCESSING) == 0
    assert (await engine.worker().run(burst=True)).accepted == 1
    # A copy of the same lead re-queued again (a crash after success) is acknowledged, not sent.
    await redis.rpush(keys.LEAD_QUEUE, msgspec.json.encode(claimed))
    await engine.worker().run(burst=True)
    assert route.call_count == 1
    assert await redis.llen(keys.LEAD_QUEUE) == 0


async def test_corrupt_queue_entry_is_set_aside_and_the_rest_processed(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    outside.post(LEADPROSPER_URL).respond(200, json={"status": "ACCEPTED"})
    await redis.lpush(keys.LEAD_QUEUE, b"{not json")
    await engine.queue.enqueue(make_lead())
    summary = await engine.worker().run(burst=True)
    assert summary.accepted == 1
    [corrupt_id] = await redis.hkeys(keys.LEAD_FAILED)
    assert corrupt_id.startswith(b"corrupt-")


async def test_stop_finishes_in_flight_leads_and_hands_back_the_rest(
    base_env: dict[str, str],
    redis: Redis,
    outside_http: httpx.AsyncClient,
    outside: respx.MockRouter,
) -> None:
    release = asyncio.Event()

    async def slow(_: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json={"status": "ACCEPTED"})

    outside.post(LEADPROSPER_URL).mock(side_effect=slow)
    settings = load_settings(base_env | {"WORKER_CONCURRENCY": "2"})
    engine = provide_services(settings, redis, outside_http)
    for n in range(3):
        await engine.queue.enqueue(make_lead(n))
    worker = engine.worker()
    running = asyncio.create_task(worker.run())
    while await redis.hlen(keys.LEAD_PROCESSING) < 2:
        await asyncio.sleep(0.01)
    worker.stop()
    release.set()
    summary = await asyncio.wait_for(running, timeout=10)
    assert summary.accepted == 2  # in-flight ones finished
    assert await redis.llen(keys.LEAD_QUEUE) == 1  # never claimed, still queued
    assert await redis.hlen(keys.LEAD_PROCESSING) == 0


async def test_worker_heartbeat_has_a_ttl_and_shows_in_status(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    worker = engine.worker(worker_id="w1")
    running = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not await redis.exists(keys.worker_heartbeat("w1")):
            await asyncio.sleep(0.01)
    assert 0 < await redis.ttl(keys.worker_heartbeat("w1")) <= 30
    assert (await engine.queue.status()).workers == ["w1"]
    worker.stop()
    await asyncio.wait_for(running, timeout=10)
    assert (await engine.queue.status()).workers == []  # a clean stop is no longer alive


async def test_production_http_client_names_a_refused_connection_and_a_timeout(
    base_env: dict[str, str], redis: Redis
) -> None:
    """The worker's real client (httpx over aiohttp's pool), against real sockets."""
    hanging = BadBackend("hang")
    try:
        async with provide_http_client() as http:
            for url, expected in (
                (f"http://127.0.0.1:{free_port()}/direct_post", "connection refused"),
                (hanging.url, "timed out"),
            ):
                settings = load_settings(base_env | {"LEADPROSPER_API_URL": url})
                client = LeadProsperClient(
                    msgspec.structs.replace(settings.leadprosper, timeout_seconds=0.3), http
                )
                result = await client.submit(make_lead())
                assert result.outcome == "retry"
                assert expected in result.detail
    finally:
        hanging.stop()


async def test_a_failed_lead_keeps_its_attempts_and_the_reason(
    engine: Services, redis: Redis
) -> None:
    lead_id = await engine.queue.enqueue(make_lead())
    [claimed] = await engine.queue.claim("w", 1)
    claimed.attempts = 2
    assert await engine.queue.fail(claimed, "invalid zip")
    failed = msgspec.json.decode(await redis.hget(keys.LEAD_FAILED, lead_id), type=FailedEnvelope)
    assert (failed.error, failed.lead.attempts, failed.lead.last_error) == (
        "invalid zip",
        3,
        "invalid zip",
    )
    assert await redis.hlen(keys.LEAD_PROCESSING) == 0
    assert not await engine.queue.fail(claimed, "again")  # no longer claimed: nothing moves


async def test_retrying_failed_leads_by_id_moves_that_one_and_leaves_unreadable_ones(
    engine: Services, redis: Redis
) -> None:
    ids = []
    for n in range(3):
        ids.append(await engine.queue.enqueue(make_lead(n)))
        [claimed] = await engine.queue.claim("w", 1)
        await engine.queue.fail(claimed, f"error {n}")
    await redis.hset(keys.LEAD_FAILED, "corrupt-1", b"{not json")
    await redis.hset(keys.LEAD_FAILED, "0-unreadable", b"{}")  # first in id order
    assert await engine.queue.retry_failed(ids[1]) == 1
    assert await engine.queue.retry_failed("no-such-lead") == 0
    assert sorted(await engine.queue.failed_ids()) == sorted(
        [ids[0], ids[2], "corrupt-1", "0-unreadable"]
    )
    assert await engine.queue.retry_failed() == 2  # past the unreadable ones
    assert sorted(await engine.queue.failed_ids()) == ["0-unreadable", "corrupt-1"]  # kept
    queued = [
        msgspec.json.decode(raw, type=Lead) for raw in await redis.lrange(keys.LEAD_QUEUE, 0, -1)
    ]
    assert sorted(lead.id for lead in queued) == sorted(ids)
    assert {(lead.attempts, lead.last_error) for lead in queued} == {(0, None)}


def test_backoff_is_the_capped_exponential_times_a_jitter_of_half_to_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = WorkerSettings(backoff_base_seconds=2, backoff_max_seconds=60)
    for draw, jitter in ((0.0, 0.5), (0.5, 0.75), (0.999, 0.9995)):
        monkeypatch.setattr(random, "random", lambda draw=draw: draw)
        assert backoff_delay(3, settings) == pytest.approx(16 * jitter)
        assert backoff_delay(10, settings) == pytest.approx(60 * jitter)


async def test_a_lead_submitted_before_is_acknowledged_without_sending(
    engine: Services, redis: Redis, outside: respx.MockRouter
) -> None:
    route = outside.post(LEADPROSPER_URL).respond(200, json={"status": "ACCEPTED"})
    lead_id = await engine.queue.enqueue(make_lead())
    await redis.set(keys.lead_done(lead_id), "accepted")
    summary = await engine.worker().run(burst=True)
    assert route.call_count == 0
    assert summary.accepted == 0
    assert await redis.hlen(keys.LEAD_PROCESSING) == 0
    assert await redis.get(keys.lead_done(lead_id)) == b"already_submitted"
    assert await redis.llen(keys.LEAD_QUEUE) == 0


async def test_a_submission_past_the_workers_deadline_is_retried(
    base_env: dict[str, str],
    redis: Redis,
    outside_http: httpx.AsyncClient,
    outside: respx.MockRouter,
) -> None:
    """The worker bounds each submission by half the visibility timeout, whatever the HTTP
    client does: a claim never outlives the time after which another worker takes it over."""

    async def hanging(_: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    outside.post(LEADPROSPER_URL).mock(side_effect=hanging)
    settings = load_settings(base_env | {"LEAD_VISIBILITY_TIMEOUT": "1"})
    engine = provide_services(settings, redis, outside_http)
    lead_id = await engine.queue.enqueue(make_lead())
    started = time.monotonic()
    summary = await engine.worker().run(burst=True)
    assert time.monotonic() - started < 3.0
    assert summary.retried == 1
    [raw] = await redis.zrange(keys.LEAD_RETRY, 0, -1)
    retried = msgspec.json.decode(raw, type=Lead)
    assert (retried.id, retried.attempts) == (lead_id, 1)
    assert retried.last_error == "submission exceeded its deadline"


async def test_status_counts_claims_by_age_and_skips_unreadable_ones(
    engine: Services, redis: Redis
) -> None:
    await redis.hset(keys.LEAD_PROCESSING, "unreadable", b"not a claim")
    ids = [await engine.queue.enqueue(make_lead(n)) for n in range(4)]
    claimed = await engine.queue.claim("w1", 3)
    now = time.time()
    for lead_id, age in zip(ids[:2], (200.34, 50.0), strict=True):
        claim = await redis.hget(keys.LEAD_PROCESSING, lead_id) or b""
        aged = f'{{"claimed_at":{now - age!r},'.encode()
        await redis.hset(keys.LEAD_PROCESSING, lead_id, re.sub(rb"^\{[^,]*,", aged, claim))
    assert await engine.queue.retry_later(claimed[2], "HTTP 503", 60)
    status = await engine.queue.status()
    assert (status.queued, status.processing, status.stuck, status.retry_scheduled) == (
        1,
        3,
        1,  # only the one past the 120 s visibility timeout
        1,
    )
    assert status.oldest_claim_age_seconds is not None
    assert 200.3 <= status.oldest_claim_age_seconds <= 205.0  # tenths, not whole seconds
    assert status.oldest_claim_age_seconds == round(status.oldest_claim_age_seconds, 1)  # no more

    await redis.delete(keys.LEAD_PROCESSING)
    assert (await engine.queue.status()).oldest_claim_age_seconds is None


async def test_due_retries_are_promoted_five_hundred_at_a_time(
    engine: Services, redis: Redis
) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(501):
            pipe.zadd(keys.LEAD_RETRY, {msgspec.json.encode(make_lead(n)): 0})
        await pipe.execute()
    assert await engine.queue.promote_due() == 500
    assert await engine.queue.promote_due() == 1
    assert await redis.llen(keys.LEAD_QUEUE) == 501


async def test_amending_a_queued_lead_keeps_its_place_and_identity(
    engine: Services, redis: Redis
) -> None:
    ids = [await engine.queue.enqueue(make_lead(n)) for n in range(3)]
    assert await engine.queue.amend(ids[1], {"phone": "5552017799", "description": "ignored"})
    leads = [
        msgspec.json.decode(raw, type=Lead) for raw in await redis.lrange(keys.LEAD_QUEUE, 0, -1)
    ]
    assert [lead.id for lead in leads] == ids[::-1]  # LPUSH order, unchanged
    assert [lead.phone for lead in leads] == ["5552017788", "5552017799", "5552017788"]
    assert leads[1].description == "divorce"  # only contact fields change


async def test_amending_a_lead_waiting_out_a_retry_keeps_its_due_time(
    engine: Services, redis: Redis
) -> None:
    lead_id = await engine.queue.enqueue(make_lead())
    [claimed] = await engine.queue.claim("worker-1", 1)
    assert await engine.queue.retry_later(claimed, "LeadProsper 503", delay=300)
    [(_, due)] = await redis.zrange(keys.LEAD_RETRY, 0, -1, withscores=True)
    assert await engine.queue.amend(lead_id, {"email": "ann.lee@example.com"})
    [(raw, due_after)] = await redis.zrange(keys.LEAD_RETRY, 0, -1, withscores=True)
    amended = msgspec.json.decode(raw, type=Lead)
    assert (amended.email, amended.attempts, due_after) == ("ann.lee@example.com", 1, due)


async def test_a_claimed_or_failed_lead_is_never_amended(engine: Services, redis: Redis) -> None:
    lead_id = await engine.queue.enqueue(make_lead())
    [claimed] = await engine.queue.claim("worker-1", 1)
    assert not await engine.queue.amend(lead_id, {"phone": "5552017799"})
    assert await engine.queue.fail(claimed, "refused")
    assert not await engine.queue.amend(lead_id, {"phone": "5552017799"})
    [raw] = await redis.hvals(keys.LEAD_FAILED)
    assert msgspec.json.decode(raw, type=FailedEnvelope).lead.phone == "5552017788"


async def test_an_amendment_racing_a_claim_never_loses_or_doubles_the_lead(
    engine: Services, redis: Redis
) -> None:
    for n in range(50):
        lead_id = await engine.queue.enqueue(make_lead(n))
        amended, claimed = await asyncio.gather(
            engine.queue.amend(lead_id, {"phone": "5552017799"}), engine.queue.claim("w", 1)
        )
        assert [lead.id for lead in claimed] == [lead_id]
        assert await redis.llen(keys.LEAD_QUEUE) == 0
        [raw] = await redis.hvals(keys.LEAD_PROCESSING)
        phone = msgspec.json.decode(raw)["lead"]["phone"]
        assert phone == ("5552017799" if amended else "5552017788")
        await engine.queue.ack(lead_id, "accepted")


async def test_a_submitted_lead_is_never_also_failed(engine: Services, redis: Redis) -> None:
    """A lead put in `lead_failed` while a worker held it (a restore, an operator) is removed
    from there when the worker's submission is accepted: one place, done."""
    lead_id = await engine.queue.enqueue(make_lead())
    [claimed] = await engine.queue.claim("w1", 1)
    await redis.hset(keys.LEAD_FAILED, lead_id, msgspec.json.encode({"lead": {"id": lead_id}}))
    await engine.queue.ack(claimed.id, "accepted")
    assert await engine.queue.is_done(lead_id)
    assert await redis.hexists(keys.LEAD_FAILED, lead_id) == 0
    assert await redis.hexists(keys.LEAD_PROCESSING, lead_id) == 0


async def test_a_fast_host_clock_never_makes_a_fresh_claim_stuck(
    engine: Services, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claim times and the stuck cutoff are Redis's clock: a worker host running 300 s fast
    re-queued a lead claimed 3 s earlier, and LeadProsper got it twice (issue 16)."""
    await engine.queue.enqueue(make_lead())
    [claimed] = await engine.queue.claim("w1", 1)  # on a host whose clock is right
    fast = time.time() + 300
    monkeypatch.setattr(time, "time", lambda: fast)  # the host running the stuck sweep
    assert await engine.queue.requeue_stuck(older_than=60) == 0
    seconds, micros = await redis.time()
    envelope = msgspec.json.decode(await redis.hget(keys.LEAD_PROCESSING, claimed.id))
    assert abs(envelope["claimed_at"] - (seconds + micros / 1e6)) < 5  # Redis's clock
    status = await engine.queue.status()
    assert status.stuck == 0
    assert 0 <= status.oldest_claim_age_seconds < 5
    assert await engine.queue.requeue_stuck(older_than=0) == 1  # still moves when due
