"""Backup files: sessions, lead keys and routing pins with their TTLs, authenticated with a key.

A file is a JSON header line (format, version, time, key count, namespaces, MAC) and one JSON line
per key (name, remaining TTL in ms or -1, Redis's own `DUMP` serialisation in base64). The MAC is
HMAC-SHA256 under `BACKUP_KEY` (derived from `SESSION_SECRET` when unset, like the routing
secret) over the canonical header (MAC empty) and the body, so whoever can write the file but
does not hold the key cannot add, drop or change an entry and recompute a checksum. Every key must
lie inside `NAMESPACES`; a file that names any other key is refused whole.

Sessions hold contact details: files are created owner-read-only (0600). Restoring is
`rollback._restore`. (The runbook's `redis-cli --pipe < backup.rdb` cannot work: an RDB file is
not a command stream.)
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

import msgspec
from redis.asyncio import Redis

from common import as_text, keys, redis_errors, write_private
from rollback._errors import BackupError

FORMAT = "chat-backup"
VERSION = 2
"""Version 1 files carried a plain SHA-256 anyone could recompute; they are refused."""

LEAD_TYPES = {keys.LEAD_QUEUE: b"list", keys.LEAD_RETRY: b"zset", keys.LEAD_PROCESSING: b"hash",
              keys.LEAD_FAILED: b"hash"}  # fmt: skip
"""The lead keys' Redis types; every other key a backup covers is a string."""
LEAD_STRUCTURES = tuple(LEAD_TYPES)
NAMESPACES: dict[str, tuple[str, ...]] = {
    "sessions": (f"{keys.SESSION_PREFIX}*",),
    "pins": (f"{keys.ROUTE_PIN_PREFIX}*",),
    "leads": LEAD_STRUCTURES,
    "markers": (f"{keys.LEAD_IDEMPOTENCY_PREFIX}*", f"{keys.LEAD_DONE_PREFIX}*"),
}
"""What a backup covers, by namespace (glob patterns as Redis's SCAN MATCH). Flags are not in it:
they are operator decisions, audited; neither are rate limits, stats or shadow records."""
PATTERNS = tuple(pattern for patterns in NAMESPACES.values() for pattern in patterns)


def namespace_of(key: str) -> str | None:
    """The namespace (`NAMESPACES`) a key belongs to, or None when it is outside every one."""
    for name, patterns in NAMESPACES.items():
        if any(fnmatchcase(key, pattern) for pattern in patterns):
            return name
    return None


class Header(msgspec.Struct, frozen=True):
    format: str
    version: int
    created_at: float
    """Epoch seconds."""
    keys: int
    namespaces: list[str] = msgspec.field(default_factory=list)
    mac: str = ""
    """Hex HMAC-SHA256 of the header line as written with this value empty, a newline, and the
    body."""


class Entry(msgspec.Struct, frozen=True):
    key: str
    ttl_ms: int
    """Remaining time to live when backed up, in milliseconds; -1 for none."""
    dump: str
    """Base64 of the key's `DUMP` payload."""

    @property
    def payload(self) -> bytes:
        return base64.b64decode(self.dump, validate=True)


def _mac(key: bytes, unsigned_header: bytes, body: bytes) -> str:
    return hmac.digest(key, unsigned_header + b"\n" + body, "sha256").hex()


_MAC_FIELD = re.compile(rb'("mac"\s*:\s*)"([0-9a-f]*)"')


def _unsigned(header_line: bytes) -> bytes:
    """The header line exactly as written, with its MAC's value emptied: every byte of it is
    authenticated (a re-encoded header let extra fields and reformatting through)."""
    return _MAC_FIELD.sub(rb'\1""', header_line, count=1)


async def _matching_keys(redis: Redis) -> list[bytes]:
    """Every key in the namespaces but the four lead keys (read at one moment: `create`)."""
    found: set[bytes] = set()
    for pattern in PATTERNS:
        if "*" in pattern:
            found.update([k async for k in redis.scan_iter(match=pattern, count=1000)])
    return sorted(found)


async def _entries_of(
    redis: Redis, names: Sequence[str | bytes], *, at_one_moment: bool
) -> list[Entry]:
    """Each key's DUMP and remaining TTL in one pipeline (one MULTI `at_one_moment`), skipping
    keys that expired meanwhile. Raises `BackupError` naming a key of the wrong type: such a
    file could never be restored."""
    async with redis.pipeline(transaction=at_one_moment) as pipe:
        for name in names:
            pipe.type(name)
            pipe.dump(name)
            pipe.pttl(name)
        replies = await pipe.execute()
    entries = []
    for name, kind, dumped, ttl in zip(
        names, replies[0::3], replies[1::3], replies[2::3], strict=True
    ):
        if dumped is None:
            continue
        key = as_text(name)
        expected = LEAD_TYPES.get(key, b"string")
        if kind != expected:
            raise BackupError(f"{key} is a {as_text(kind)} where a {expected.decode()} belongs")
        entries.append(Entry(key, int(ttl), base64.b64encode(dumped).decode()))
    return entries


async def create(redis: Redis, path: Path, key: str) -> Header:
    """Writes a backup of every key in `NAMESPACES` to `path` (atomically, 0600); raises
    `BackupError` without a key, `common.StoreUnavailable` when Redis fails."""
    if not key:
        raise BackupError("no backup key: set BACKUP_KEY (or SESSION_SECRET)")
    with redis_errors():
        # The four lead keys at one moment: a lead moving between them while they were read
        # one by one was in neither copy (a fresh helper lost 44 of 3,000 that way). Read
        # before the markers, so a lead that left them before this moment has its done marker.
        entries = await _entries_of(redis, LEAD_STRUCTURES, at_one_moment=True)
        names = await _matching_keys(redis)
        for start in range(0, len(names), 500):
            entries += await _entries_of(redis, names[start : start + 500], at_one_moment=False)
    entries.sort(key=lambda entry: entry.key)
    lines = [msgspec.json.encode(entry) for entry in entries]
    body = b"\n".join(lines)
    header = Header(FORMAT, VERSION, time.time(), len(lines), list(PATTERNS))
    mac = _mac(key.encode(), msgspec.json.encode(header), body)  # `mac` is empty here
    header = msgspec.structs.replace(header, mac=mac)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # backups hold contact details
    # a new file of its own: never one that was there already, nor where a symlink planted
    # under a guessable name points
    write_private(path, [msgspec.json.encode(header), b"\n", body])
    return header


def read(path: Path, key: str) -> tuple[Header, list[Entry]]:
    """Checks format, version, the MAC under `key`, every line, every key's namespace and every
    payload's base64; raises `BackupError` saying which. Nothing is written here."""
    if not key:
        raise BackupError(
            "no backup key: set BACKUP_KEY (or SESSION_SECRET) to the one it was made with"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    first, _, body = raw.partition(b"\n")
    try:
        header = msgspec.json.decode(first, type=Header)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise BackupError(f"{path} is not a chat backup (bad header)") from None
    if header.format != FORMAT:
        raise BackupError(f"{path}: not a chat backup (format {header.format!r})")
    if header.version != VERSION:
        raise BackupError(
            f"{path}: version {header.version} backups are not authenticated and cannot be "
            f"restored; make a new one with `chatctl backup create`"
        )
    if not hmac.compare_digest(_mac(key.encode(), _unsigned(first), body), header.mac):
        raise BackupError(
            f"{path}: authentication failed: the file was changed after it was made, or made "
            "with another BACKUP_KEY"
        )
    entries = list(_entries(body))
    if len(entries) != header.keys:
        raise BackupError(f"{path}: {len(entries)} keys, header says {header.keys}")
    return header, entries


def _entries(body: bytes) -> Iterator[Entry]:
    decoder = msgspec.json.Decoder(Entry)
    seen: set[str] = set()
    for number, line in enumerate(body.split(b"\n") if body else [], start=2):
        try:
            entry = decoder.decode(line)
            entry.payload  # noqa: B018 (checks the base64 before anything is written)
        except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error, ValueError):
            raise BackupError(f"line {number} is not a backup entry") from None
        if namespace_of(entry.key) is None:
            raise BackupError(
                f"line {number}: key {entry.key!r} is outside the backup's namespaces "
                f"({', '.join(PATTERNS)}); nothing was restored"
            )
        if entry.key in seen:
            raise BackupError(f"line {number}: key {entry.key!r} appears twice")
        seen.add(entry.key)
        yield entry
