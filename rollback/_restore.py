"""Restoring a backup without losing what exists now.

- Leads are merged (`rollback._lead_merge`): a lead live now stays, one only in the backup comes
  back, one in both ends in the furthest of its states; idempotency and done markers are added
  where missing and never replaced. Nothing a visitor or a worker did since the backup is undone.
- Sessions and pins are restored where missing; a live one is replaced only when the operator
  names it (`replace`: a namespace, `sessions` or `pins`, or a glob inside one).
- Every entry is checked before the first live write: each payload is first restored into a
  staging namespace (`restore:staging:`, deleted afterwards and expiring on its own) so Redis
  itself checks its checksum and type. The leads are planned under `WATCH` on the four lead
  keys and applied in one `MULTI`/`EXEC`, planned again if a worker or a visitor changed them
  meanwhile; then sessions, pins and markers are restored in batches, each only where still
  missing (or named). A restore cut off there is completed by running it again.

Never runs FLUSHALL; flags, rate limits and stats are outside backups.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError, WatchError

from common import as_text, keys, redis_errors
from rollback._backup import LEAD_TYPES, NAMESPACES, Entry, namespace_of
from rollback._errors import BackupError
from rollback._lead_merge import LeadChanges, LeadCounts, LeadKeys, merge, places

STAGING_PREFIX = "restore:staging:"
STAGING_TTL_MS = 600_000
"""A staging key outlives an interrupted restore by at most ten minutes."""
ATTEMPTS = 5
"""Plans made again when live keys change under one, before giving up (stop the workers)."""
REPLACEABLE = ("sessions", "pins")


class KeyCounts(msgspec.Struct):
    added: int = 0
    """Missing now: restored."""
    kept: int = 0
    """Live now and not named for replacing: untouched."""
    replaced: int = 0
    """Live now and named: the backup's value wins, the live one is lost."""


class RestorePlan(msgspec.Struct):
    """What a restore does (or would do), per namespace; `lost_leads` must be 0."""

    backup_keys: int
    leads: LeadCounts
    sessions: KeyCounts
    pins: KeyCounts
    markers: KeyCounts
    """Idempotency markers (a done marker is counted with its lead)."""
    replaced: list[str]
    """The live keys whose current value is lost to the backup's."""
    lost_leads: int
    applied: bool = False
    attempts: int = 0

    @property
    def goes_ahead(self) -> bool:
        return self.lost_leads == 0


def replace_patterns(selectors: Sequence[str]) -> list[str]:
    """Glob patterns for `--replace` values: `sessions`, `pins`, or a glob inside one of them.
    Raises `BackupError` for anything else: leads and their markers are merged, never replaced."""
    patterns: list[str] = []
    for selector in selectors:
        if selector in REPLACEABLE:
            patterns += NAMESPACES[selector]
        elif namespace_of(selector) in REPLACEABLE:
            patterns.append(selector)
        else:
            raise BackupError(
                f"--replace {selector!r}: name `sessions`, `pins` or a pattern inside them "
                f"({', '.join(p for n in REPLACEABLE for p in NAMESPACES[n])}); leads and their "
                "markers are merged, never replaced"
            )
    return patterns


async def restore(
    redis: Redis,
    entries: list[Entry],
    *,
    replace: Sequence[str] = (),
    dry_run: bool = False,
    on_plan: Callable[[RestorePlan], None] | None = None,
) -> RestorePlan:
    """Stages and checks every entry, plans, and (unless `dry_run`, and only when no lead would
    be lost) applies the plan: the leads in one transaction, then sessions, pins and markers.
    `on_plan` sees each plan before it is applied. Raises `BackupError` (a payload Redis
    refuses, a key of the wrong type, live keys that keep changing, a transaction whose outcome
    is unknown) with nothing written, `common.StoreUnavailable` when Redis fails."""
    patterns = replace_patterns(replace)
    by_key = {entry.key: entry for entry in entries}
    with redis_errors():
        backup = await _stage(redis, entries)
        singles = [e.key for e in entries if e.key not in LEAD_TYPES]
        # whether a lead the backup names was submitted since (live leads keep their places)
        done_keys = [keys.lead_done(lead) for lead in places(backup)]
        for attempt in range(1, ATTEMPTS + 1):
            async with redis.pipeline(transaction=True) as tx:
                # Only the four lead keys are watched: a done marker appears only with a worker's
                # ack, which changes lead_processing. Watching every key of a large backup took
                # Redis a minute (WATCH is quadratic in its keys: a fresh helper's 50k keys).
                await tx.watch(*LEAD_TYPES)
                live = await _read_leads(redis, done_keys)
                present = await _present(redis, singles)
                changes, lead_counts = merge(backup, live)
                plan, writes = _plan(entries, present, patterns, lead_counts)
                plan.attempts = attempt
                if on_plan is not None:
                    on_plan(plan)
                if dry_run or not plan.goes_ahead:
                    return plan
                tx.multi()  # type: ignore[no-untyped-call]
                _apply_leads(tx, changes, by_key)
                try:
                    replies = await tx.execute(raise_on_error=False)
                except WatchError as exc:
                    if "occurred while watching" in str(exc):  # the connection died at EXEC
                        raise BackupError(UNKNOWN_OUTCOME) from None
                    continue
                _check_applied(replies)
            await _write_singles(redis, writes, by_key, plan)
            plan.applied = True
            return plan
    raise BackupError(
        f"live lead keys changed under each of {ATTEMPTS} plans; stop the workers "
        "(`systemctl stop chat-worker`) and run the restore again. Nothing was changed"
    )


def _check_applied(replies: list[object]) -> None:
    """Raises `BackupError` for a command of the lead transaction Redis refused; a done marker
    that came back meanwhile (BUSYKEY) is simply kept."""
    for reply in replies:
        if isinstance(reply, ResponseError) and "BUSYKEY" not in str(reply):
            raise BackupError(f"Redis refused part of the lead transaction ({reply})")


UNKNOWN_OUTCOME = (
    "Redis did not answer the restore's transaction: it may or may not have been applied. "
    "Run the same restore with --dry-run to see what is still missing, then without: a restore "
    "adds only what is missing, so running it again is safe"
)


async def _write_singles(
    redis: Redis, writes: list[tuple[str, bool]], by_key: dict[str, Entry], plan: RestorePlan
) -> None:
    """Sessions, pins and markers, in batches after the leads: each restored only where still
    missing (a visitor's session created meanwhile answers BUSYKEY and is kept, counted so) or
    replacing where the operator named it. Each payload was checked when staged."""
    for start in range(0, len(writes), 500):
        batch = writes[start : start + 500]
        async with redis.pipeline(transaction=False) as pipe:
            for key, replace_live in batch:
                entry = by_key[key]
                pipe.restore(key, max(entry.ttl_ms, 0), entry.payload, replace=replace_live)
            replies = await pipe.execute(raise_on_error=False)
        for (key, _), reply in zip(batch, replies, strict=True):
            if isinstance(reply, ResponseError) and "BUSYKEY" in str(reply):
                counts: KeyCounts = getattr(plan, namespace_of(key) or "markers")
                counts.added -= 1
                counts.kept += 1
            elif isinstance(reply, ResponseError):
                raise BackupError(f"{key}: Redis refused it ({reply}) after it was checked")


async def _stage(redis: Redis, entries: list[Entry]) -> LeadKeys:
    """Restores every payload under a staging prefix (Redis checks each one's checksum and
    version) and reads the backup's lead keys back; the staging keys are always removed."""
    prefix = f"{STAGING_PREFIX}{secrets.token_hex(8)}:"
    try:
        for start in range(0, len(entries), 500):
            batch = entries[start : start + 500]
            async with redis.pipeline(transaction=False) as pipe:
                for entry in batch:
                    pipe.restore(prefix + entry.key, STAGING_TTL_MS, entry.payload)
                    pipe.type(prefix + entry.key)
                replies = await pipe.execute(raise_on_error=False)
            for entry, restored, kind in zip(batch, replies[0::2], replies[1::2], strict=True):
                if isinstance(restored, ResponseError):
                    raise BackupError(
                        f"{entry.key}: Redis refused its payload ({restored}); nothing was restored"
                    )
                expected = LEAD_TYPES.get(entry.key, b"string")
                if kind != expected:
                    raise BackupError(
                        f"{entry.key}: a {as_text(kind)} where a {expected.decode()} belongs; "
                        "nothing was restored"
                    )
        present = {entry.key for entry in entries}
        done = frozenset(
            key.removeprefix(keys.LEAD_DONE_PREFIX)
            for key in present
            if key.startswith(keys.LEAD_DONE_PREFIX)
        )
        return await _read_leads(redis, [], prefix=prefix, done=done)
    finally:
        staged = [prefix + entry.key for entry in entries]
        for start in range(0, len(staged), 1000):
            if staged[start : start + 1000]:
                await redis.unlink(*staged[start : start + 1000])


async def _read_leads(
    redis: Redis, done_keys: list[str], *, prefix: str = "", done: frozenset[str] | None = None
) -> LeadKeys:
    async with redis.pipeline(transaction=False) as pipe:
        for key in LEAD_TYPES:
            pipe.type(prefix + key)
        kinds = await pipe.execute()
    for (key, expected), kind in zip(LEAD_TYPES.items(), kinds, strict=True):
        if kind not in (expected, b"none"):
            raise BackupError(
                f"live {key} is a {as_text(kind)} where a {expected.decode()} belongs: repair or "
                "remove it first (`redis-cli type`, `redis-cli dump`); nothing was restored"
            )
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lrange(prefix + keys.LEAD_QUEUE, 0, -1)
        pipe.zrange(prefix + keys.LEAD_RETRY, 0, -1, withscores=True)
        pipe.hgetall(prefix + keys.LEAD_PROCESSING)
        pipe.hgetall(prefix + keys.LEAD_FAILED)
        for key in done_keys:
            pipe.exists(key)
        queue, retry, processing, failed, *markers = await pipe.execute()
    if done is None:
        done = frozenset(
            key.removeprefix(keys.LEAD_DONE_PREFIX)
            for key, exists in zip(done_keys, markers, strict=True)
            if exists
        )
    return LeadKeys(
        queue=tuple(queue),
        retry={member: float(score) for member, score in retry},
        processing={as_text(k): v for k, v in processing.items()},
        failed={as_text(k): v for k, v in failed.items()},
        done=done,
    )


async def _present(redis: Redis, names: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(names), 1000):
        batch = names[start : start + 1000]
        async with redis.pipeline(transaction=False) as pipe:
            for name in batch:
                pipe.exists(name)
            replies = await pipe.execute()
        found.update(name for name, exists in zip(batch, replies, strict=True) if exists)
    return found


def _plan(
    entries: list[Entry], present: set[str], patterns: list[str], leads: LeadCounts
) -> tuple[RestorePlan, list[tuple[str, bool]]]:
    """The plan for sessions, pins and idempotency markers, and the writes it needs: (key,
    whether it replaces a live value)."""
    counts = {name: KeyCounts() for name in ("sessions", "pins", "markers")}
    writes: list[tuple[str, bool]] = []
    replaced: list[str] = []
    for entry in entries:
        namespace = namespace_of(entry.key)
        if namespace == "leads" or entry.key.startswith(keys.LEAD_DONE_PREFIX):
            continue  # merged with their leads
        count = counts[namespace or "markers"]  # read() refuses keys outside every namespace
        if entry.key not in present:
            count.added += 1
            writes.append((entry.key, False))
        elif namespace in REPLACEABLE and any(fnmatchcase(entry.key, p) for p in patterns):
            count.replaced += 1
            replaced.append(entry.key)
            writes.append((entry.key, True))
        else:
            count.kept += 1
    plan = RestorePlan(
        backup_keys=len(entries),
        leads=leads,
        sessions=counts["sessions"],
        pins=counts["pins"],
        markers=counts["markers"],
        replaced=replaced,
        lost_leads=leads.lost,
    )
    return plan, writes


def _apply_leads(tx: Pipeline, changes: LeadChanges, by_key: dict[str, Entry]) -> None:
    """Queues the lead changes (and the done markers that come back with them) on a MULTI
    pipeline."""
    for raw in changes.queue_remove:
        tx.lrem(keys.LEAD_QUEUE, 1, raw)  # type: ignore[arg-type]
    if changes.queue_append:
        tx.rpush(keys.LEAD_QUEUE, *changes.queue_append)
    if changes.retry_remove:
        tx.zrem(keys.LEAD_RETRY, *changes.retry_remove)
    if changes.retry_add:
        tx.zadd(keys.LEAD_RETRY, changes.retry_add)
    if changes.processing_remove:
        tx.hdel(keys.LEAD_PROCESSING, *changes.processing_remove)
    if changes.processing_set:
        tx.hset(keys.LEAD_PROCESSING, mapping=changes.processing_set)  # type: ignore[arg-type]
    if changes.failed_remove:
        tx.hdel(keys.LEAD_FAILED, *changes.failed_remove)
    if changes.failed_set:
        tx.hset(keys.LEAD_FAILED, mapping=changes.failed_set)  # type: ignore[arg-type]
    for lead in changes.done_restore:
        entry = by_key[keys.lead_done(lead)]
        tx.restore(entry.key, max(entry.ttl_ms, 0), entry.payload)
