"""Data rollback: back up sessions, lead keys and routing pins with their TTLs; verify; restore.

The file is versioned and checksummed: a JSON header line (format, version, time, key count,
SHA-256 of the body) and one JSON line per key (name, remaining TTL in ms or -1, and Redis's own
`DUMP` serialisation, base64). Restore uses `RESTORE`, so values and types come back exactly,
with the TTL they had when backed up. It refuses to overwrite any live key unless told
(`replace=True`) and changes nothing when it refuses. Nothing here ever runs FLUSHALL.

Sessions hold contact details: files are written owner-read-only (0600).
(The runbook's `redis-cli --pipe < backup.rdb` cannot work: an RDB file is not a command stream.)
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
from redis.asyncio import Redis

from common import keys, redis_errors
from rollback._errors import BackupError

FORMAT = "chat-backup"
VERSION = 1
PATTERNS = (
    f"{keys.SESSION_PREFIX}*",
    keys.LEAD_QUEUE,
    keys.LEAD_PROCESSING,
    keys.LEAD_FAILED,
    keys.LEAD_RETRY,
    f"{keys.LEAD_IDEMPOTENCY_PREFIX}*",
    f"{keys.LEAD_DONE_PREFIX}*",
    f"{keys.ROUTE_PIN_PREFIX}*",
)
"""What a data rollback covers. Flags are not in it: they are operator decisions, audited."""


class Header(msgspec.Struct, frozen=True):
    format: str
    version: int
    created_at: float
    keys: int
    sha256: str


class Entry(msgspec.Struct, frozen=True):
    key: str
    ttl_ms: int
    dump: str


class RestoreReport(msgspec.Struct):
    keys: int
    restored: int
    conflicts: list[str]
    applied: bool


async def _matching_keys(redis: Redis) -> list[bytes]:
    with redis_errors():
        found: set[bytes] = set()
        for pattern in PATTERNS:
            if "*" in pattern:
                found.update([k async for k in redis.scan_iter(match=pattern, count=1000)])
            elif await redis.exists(pattern):
                found.add(pattern.encode())
        return sorted(found)


async def create(redis: Redis, path: Path) -> Header:
    with redis_errors():
        names = await _matching_keys(redis)
        lines: list[bytes] = []
        for start in range(0, len(names), 500):
            batch = names[start : start + 500]
            async with redis.pipeline(transaction=False) as pipe:
                for name in batch:
                    pipe.dump(name)
                    pipe.pttl(name)
                replies = await pipe.execute()
            dumps, ttls = replies[0::2], replies[1::2]
            lines += [
                msgspec.json.encode(
                    Entry(name.decode(), int(ttl), base64.b64encode(dumped).decode())
                )
                for name, dumped, ttl in zip(batch, dumps, ttls, strict=True)
                if dumped is not None  # else it expired between SCAN and DUMP
            ]
        body = b"\n".join(lines)
        header = Header(FORMAT, VERSION, time.time(), len(lines), hashlib.sha256(body).hexdigest())
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(msgspec.json.encode(header) + b"\n" + body)
        temporary.replace(path)
        return header


def read(path: Path) -> tuple[Header, list[Entry]]:
    """Checks format, version, checksum and every line; raises BackupError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    first, _, body = raw.partition(b"\n")
    try:
        header = msgspec.json.decode(first, type=Header)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise BackupError(f"{path} is not a chat backup (bad header)") from None
    if header.format != FORMAT or header.version != VERSION:
        raise BackupError(f"{path}: unsupported format {header.format} v{header.version}")
    if hashlib.sha256(body).hexdigest() != header.sha256:
        raise BackupError(f"{path}: checksum mismatch; the file is corrupted or was edited")
    entries = list(_entries(body))
    if len(entries) != header.keys:
        raise BackupError(f"{path}: {len(entries)} keys, header says {header.keys}")
    return header, entries


def _entries(body: bytes) -> Iterator[Entry]:
    decoder = msgspec.json.Decoder(Entry)
    for number, line in enumerate(body.split(b"\n") if body else [], start=2):
        try:
            yield decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise BackupError(f"line {number} is not a backup entry") from None


async def restore(
    redis: Redis, entries: list[Entry], *, replace: bool, dry_run: bool
) -> RestoreReport:
    """All or nothing on conflicts: with live keys and no `replace`, nothing is written."""
    with redis_errors():
        conflicts: list[str] = []
        for start in range(0, len(entries), 500):
            batch = entries[start : start + 500]
            async with redis.pipeline(transaction=False) as pipe:
                for entry in batch:
                    pipe.exists(entry.key)
                present = await pipe.execute()
            conflicts += [e.key for e, live in zip(batch, present, strict=True) if live]
        if dry_run or (conflicts and not replace):
            return RestoreReport(len(entries), 0, conflicts, applied=False)
        async with redis.pipeline(transaction=True) as pipe:
            for entry in entries:
                pipe.restore(
                    entry.key,
                    max(entry.ttl_ms, 0),
                    base64.b64decode(entry.dump),
                    replace=replace,
                )
            await pipe.execute()
        return RestoreReport(len(entries), len(entries), conflicts, applied=True)
