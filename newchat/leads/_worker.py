"""The lead worker: claims leads, submits them to LeadProsper, and settles each one.

Each lead runs under a timeout; retryable failures wait out an exponential backoff with jitter;
too many attempts or a permanent failure move the lead to `lead_failed` with the reason. A
heartbeat key with a TTL tells health checks the worker is alive. On SIGTERM the worker stops
claiming, lets in-flight leads finish until the grace deadline, then hands the rest back.

A Redis outage pauses the worker, it does not end it: the loop waits (a quarter second doubling
to one second, so it resumes within a second of Redis's return), logs the outage once and its end
once, and a lead already submitted keeps trying to settle, so LeadProsper is not asked twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import signal
import socket
import time

import msgspec
from redis.asyncio import Redis

from common import STORE_FAILURES, OutageLog, StoreUnavailable, get_logger, keys, redis_errors
from newchat._metrics import Metrics
from newchat._settings import WorkerSettings
from newchat.leads._leadprosper import LeadProsperClient, SubmissionResult
from newchat.leads._models import Lead
from newchat.leads._queue import LeadQueue

_log = get_logger("newchat.worker")
_SUBMISSION_TIMEOUT_CAP = 60.0


class RunSummary(msgspec.Struct):
    accepted: int = 0
    duplicated: int = 0
    retried: int = 0
    failed: int = 0
    requeued_stuck: int = 0
    released: int = 0


def backoff_delay(attempt: int, settings: WorkerSettings) -> float:
    """Exponential backoff with full jitter: base * 2^attempt, capped, times 0.5..1."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2**attempt)
    jitter: float = 0.5 + random.random() / 2
    return float(ceiling) * jitter


def submission_timeout(settings: WorkerSettings) -> float:
    """Seconds one LeadProsper submission may take: half the visibility timeout, so a claim is
    settled before another worker may take it over, and at most a minute."""
    return min(settings.visibility_timeout_seconds / 2, _SUBMISSION_TIMEOUT_CAP)


class LeadWorker:
    def __init__(
        self,
        redis: Redis,
        queue: LeadQueue,
        client: LeadProsperClient,
        settings: WorkerSettings,
        metrics: Metrics,
        worker_id: str | None = None,
    ) -> None:
        self._redis = redis
        self._queue = queue
        self._client = client
        self._settings = settings
        self._metrics = metrics
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self._stopping = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self.summary = RunSummary()
        self.redis_outage = OutageLog("newchat.worker", "Lead worker")

    def stop(self) -> None:
        """Stop claiming; in-flight leads finish (or are handed back at the grace deadline)."""
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def run(self, *, burst: bool = False, deadline: float | None = None) -> RunSummary:
        """Work until stopped; with `burst`, until nothing is queued or due. With a `deadline`
        (monotonic seconds), claiming stops then and leads still in flight get only what is left
        of it before they are handed back."""
        if not self._client.configured:
            _log.warning(
                "LeadProsper not configured: leads stay queued",
                action="set LEADPROSPER_API_URL, _API_KEY, _CAMPAIGN_ID and _SUPPLIER_ID",
            )
            if burst:
                return self.summary
        _log.info("Worker started", worker=self.worker_id, burst=burst)
        next_maintenance = 0.0
        next_heartbeat = 0.0
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                try:
                    if now >= next_heartbeat:
                        await self._heartbeat()
                        next_heartbeat = now + self._settings.heartbeat_ttl_seconds / 3
                    if now >= next_maintenance:
                        await self._maintenance()
                        next_maintenance = now + self._settings.maintenance_interval_seconds
                    claimed = await self._claim_more() if self._client.configured else 0
                    if burst and claimed == 0 and not self._in_flight:
                        if await self._queue.promote_due() == 0:
                            break
                        continue
                except STORE_FAILURES as exc:
                    if burst:
                        raise  # a cron drain reports the outage instead of waiting it out
                    await self._pause(exc)
                    next_heartbeat = 0.0  # the heartbeat resumes first thing after the outage
                    continue
                self.redis_outage.recovered(worker=self.worker_id)
                await self._wait_for_progress(claimed)
        finally:
            grace = self._settings.shutdown_grace_seconds
            if deadline is not None:  # a bounded run (cron) also bounds its drain
                grace = min(grace, max(0.0, deadline - time.monotonic()))
            await self._drain(grace)
        with contextlib.suppress(StoreUnavailable):  # else it expires with its TTL
            await self._forget_heartbeat()
        _log.info("Worker stopped", worker=self.worker_id, **msgspec.structs.asdict(self.summary))
        return self.summary

    async def _pause(self, exc: BaseException) -> None:
        """Waits out a Redis failure: logged once per outage; a stop ends the wait at once."""
        delay = self.redis_outage.failed(exc, worker=self.worker_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _forget_heartbeat(self) -> None:
        """A worker that stops cleanly is no longer counted alive by `chatctl health`."""
        with redis_errors():
            await self._redis.delete(keys.worker_heartbeat(self.worker_id))

    async def _heartbeat(self) -> None:
        with redis_errors():
            await self._redis.set(
                keys.worker_heartbeat(self.worker_id),
                repr(time.time()),
                ex=self._settings.heartbeat_ttl_seconds,
            )

    async def _maintenance(self) -> None:
        await self._queue.promote_due()
        moved = await self._queue.requeue_stuck()
        if moved:
            self.summary.requeued_stuck += moved
            _log.warning(
                "Re-queued stuck leads",
                count=moved,
                action="a worker died mid-submission; check worker logs",
            )

    async def _claim_more(self) -> int:
        free = self._settings.concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        leads = await self._queue.claim(self.worker_id, free)
        for lead in leads:
            task = asyncio.create_task(self._process(lead))
            self._in_flight[lead.id] = task
            task.add_done_callback(functools.partial(self._forget, lead.id))
        return len(leads)

    def _forget(self, lead_id: str, _: asyncio.Task[None]) -> None:
        self._in_flight.pop(lead_id, None)

    async def _wait_for_progress(self, claimed: int) -> None:
        if self._in_flight and (claimed == 0 or len(self._in_flight) >= self._settings.concurrency):
            await asyncio.wait(
                list(self._in_flight.values()),
                timeout=self._settings.poll_interval_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        elif claimed == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=self._settings.poll_interval_seconds
                )

    async def _process(self, lead: Lead) -> None:
        if await self._queue.is_done(lead.id):
            await self._queue.ack(lead.id, "already_submitted")
            return
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(
                self._client.submit(lead), timeout=submission_timeout(self._settings)
            )
        except TimeoutError:
            result = SubmissionResult("retry", "submission exceeded its deadline")
        except Exception as exc:  # a bug must not lose the lead: it is retried, then failed
            _log.exception("Lead submission crashed", lead_id=lead.id)
            result = SubmissionResult("retry", f"internal error ({type(exc).__name__})")
        self._metrics.lead_submission_seconds.observe(time.perf_counter() - started)
        self._metrics.lead_submissions.labels(outcome=result.outcome).inc()
        while True:  # submitted: settling must not be lost to a Redis blip (cancelled on drain)
            try:
                await self._settle(lead, result)
                return
            except STORE_FAILURES as exc:
                delay = self.redis_outage.failed(exc, worker=self.worker_id)
                await asyncio.sleep(delay)

    async def _settle(self, lead: Lead, result: SubmissionResult) -> None:
        if result.outcome in ("accepted", "duplicated"):
            await self._queue.ack(lead.id, result.outcome)
            if result.outcome == "accepted":
                self.summary.accepted += 1
            else:
                self.summary.duplicated += 1
        elif result.outcome == "retry" and lead.attempts + 1 < self._settings.max_attempts:
            await self._queue.retry_later(
                lead, result.detail, backoff_delay(lead.attempts, self._settings)
            )
            self.summary.retried += 1
        else:
            reason = result.detail
            if result.outcome == "retry":
                reason = f"gave up after {lead.attempts + 1} attempts: {result.detail}"
            await self._queue.fail(lead, reason)
            self.summary.failed += 1
            _log.error(
                "Lead failed",
                lead_id=lead.id,
                reason=reason,
                action="fix the cause, then `chatctl queue retry-failed`",
            )

    async def _drain(self, grace: float) -> None:
        """In-flight leads finish within `grace` seconds; the rest are cancelled and handed back
        to the queue (`released`), never lost."""
        if not self._in_flight:
            return
        in_flight = dict(self._in_flight)
        _, still_running = await asyncio.wait(in_flight.values(), timeout=grace)
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
        for lead_id, task in in_flight.items():
            if task not in still_running:
                continue
            try:
                if await self._queue.release(lead_id):
                    self.summary.released += 1
            except STORE_FAILURES:  # still claimed: `requeue-stuck` hands it back later
                _log.warning("Lead not handed back: Redis failed", lead_id=lead_id)
