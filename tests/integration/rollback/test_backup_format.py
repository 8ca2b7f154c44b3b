"""The backup file to the letter, against the real Redis: what a backup covers, its header and
MAC, every way a file is refused (with the words an operator reads), and batches past the
pipeline size."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import msgspec
import pytest
from redis.asyncio import Redis

from rollback._backup import FORMAT, PATTERNS, VERSION, Entry, Header, create, read
from rollback._errors import BackupError
from rollback._restore import restore

BATCH = 500  # the pipeline size in rollback/_backup.py; the tests cross it
KEY = "backup-key-for-tests"


async def test_a_backup_covers_exactly_the_data_namespaces(redis: Redis, tmp_path: Path) -> None:
    covered = {
        "sess:abcdefgh12345678": "session",
        "lead_queue": "queue",
        "lead_processing": "processing",
        "lead_failed": "failed",
        "lead_retry": "retry",
        "lead_idem:0123": "idempotency",
        "lead_done:0123": "done",
        "route:pin:abcdefgh12345678": "pin",
    }
    for key, value in covered.items():
        await redis.set(key, value)
    for key in (
        "flags:runtime",
        "flags:version",
        "emergency_rate_limit",
        "shadow:sess:abcdefgh12345678",
        "worker:heartbeat:w1",
        "lead_queue2",
        "route:x",
        "other",
    ):
        await redis.set(key, "not data")
    header = await create(redis, tmp_path / "b", KEY)
    _, entries = read(tmp_path / "b", KEY)
    assert sorted(e.key for e in entries) == sorted(covered)
    assert header.keys == len(covered)


async def test_the_header_names_format_version_time_count_namespaces_and_mac(
    redis: Redis, tmp_path: Path
) -> None:
    await redis.set("sess:abcdefgh12345678", "v", px=50_000)
    await redis.set("route:pin:abcdefgh12345678", "new")
    before = time.time()
    header = await create(redis, tmp_path / "b", KEY)
    raw = (tmp_path / "b").read_bytes()
    assert ((tmp_path / "b").stat().st_mode & 0o777) == 0o600  # sessions hold contact details
    first, _, body = raw.partition(b"\n")
    assert msgspec.json.decode(first, type=Header) == header
    assert (header.format, header.version, header.keys) == (FORMAT, VERSION, 2)
    assert header.namespaces == list(PATTERNS)
    assert before <= header.created_at <= time.time()
    unsigned = json.loads(first)
    unsigned["mac"] = ""
    signed = msgspec.json.encode(unsigned) + b"\n" + body
    assert header.mac == hmac.new(KEY.encode(), signed, hashlib.sha256).hexdigest()
    lines = [json.loads(line) for line in body.split(b"\n")]
    assert [line["key"] for line in lines] == [
        "route:pin:abcdefgh12345678",
        "sess:abcdefgh12345678",
    ]
    pin, session = lines
    assert pin["ttl_ms"] == -1  # no expiry is kept as no expiry
    assert 49_000 < session["ttl_ms"] <= 50_000
    assert base64.b64decode(session["dump"]) == await redis.dump("sess:abcdefgh12345678")
    assert not (tmp_path / "b.tmp").exists()  # written aside, then renamed into place


async def test_an_empty_redis_gives_an_empty_valid_backup(redis: Redis, tmp_path: Path) -> None:
    header = await create(redis, tmp_path / "deep" / "dir" / "b", KEY)  # parents made
    assert header.keys == 0
    assert read(tmp_path / "deep" / "dir" / "b", KEY) == (header, [])


async def test_no_key_no_backup(redis: Redis, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no backup key"):
        await create(redis, tmp_path / "b", "")
    assert not (tmp_path / "b").exists()
    with pytest.raises(BackupError, match="no backup key"):
        read(tmp_path / "b", "")


async def test_backups_past_one_pipeline_batch_keep_every_key(redis: Redis, tmp_path: Path) -> None:
    count = 2 * BATCH + 7
    async with redis.pipeline(transaction=False) as pipe:
        for number in range(count):
            pipe.set(f"sess:{number:016d}", f"value {number}", ex=1000 + number)
        await pipe.execute()
    await create(redis, tmp_path / "b", KEY)
    _, entries = read(tmp_path / "b", KEY)
    assert len(entries) == count
    for entry in (entries[0], entries[BATCH], entries[-1]):
        number = int(entry.key.removeprefix("sess:"))
        assert entry.payload == await redis.dump(entry.key)
        assert (1000 + number - 5) * 1000 < entry.ttl_ms <= (1000 + number) * 1000

    await redis.flushall()
    live = [f"sess:{number:016d}" for number in (BATCH - 1, BATCH, BATCH + 3, count - 1)]
    for key in live:  # live on both sides of a batch edge, and in the last batch
        await redis.set(key, "live")
    plan = await restore(redis, entries)
    assert (plan.sessions.added, plan.sessions.kept, plan.sessions.replaced) == (
        count - len(live),
        len(live),
        0,
    )
    assert plan.applied
    assert await redis.dbsize() == count
    assert [await redis.get(key) for key in live] == [b"live"] * len(live)
    assert await redis.get(f"sess:{count - 2:016d}") == f"value {count - 2}".encode()


def write_backup(path: Path, entries: list[bytes], key: str | None = KEY, **header: object) -> None:
    """A backup file as an attacker or a bug would write it: MAC'd under `key` when given,
    else carrying a plain SHA-256 of the body (what version 1 used, and anyone can compute)."""
    body = b"\n".join(entries)
    fields: dict[str, object] = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": 1.0,
        "keys": len(entries),
        "namespaces": list(PATTERNS),
        "mac": "",
        **header,
    }
    if key is None:
        fields["mac"] = hashlib.sha256(body).hexdigest()
    else:
        unsigned = msgspec.json.encode(msgspec.json.decode(json.dumps(fields), type=Header))
        fields["mac"] = hmac.new(key.encode(), unsigned + b"\n" + body, "sha256").hexdigest()
    path.write_bytes(json.dumps(fields).encode() + b"\n" + body)


def entry(key: str, dump: bytes = b"x") -> bytes:
    return msgspec.json.encode(Entry(key, -1, base64.b64encode(dump).decode()))


ENTRY = entry("sess:aaaaaaaaaaaaaaaa")


@pytest.mark.parametrize(
    ("entries", "key", "header", "message"),
    [
        ([ENTRY], KEY, {"format": "rdb"}, "not a chat backup (format 'rdb')"),
        ([ENTRY], KEY, {"version": 1}, "version 1 backups are not authenticated"),
        ([ENTRY], None, {}, "authentication failed"),  # a recomputed plain hash
        ([ENTRY], "another key", {}, "authentication failed"),
        ([ENTRY], KEY, {"keys": 2}, "1 keys, header says 2"),
        ([ENTRY, b'{"key": 1}'], KEY, {}, "line 3 is not a backup entry"),
        ([b"not json"], KEY, {}, "line 2 is not a backup entry"),
        ([entry("flags:runtime")], KEY, {}, "key 'flags:runtime' is outside the backup's"),
        ([entry("emergency_rate_limit")], KEY, {}, "outside the backup's namespaces"),
        ([ENTRY, ENTRY], KEY, {}, "line 3: key 'sess:aaaaaaaaaaaaaaaa' appears twice"),
        ([b'{"key": "sess:a", "ttl_ms": -1, "dump": "!!"}'], KEY, {}, "line 2 is not a backup"),
    ],
)
def test_a_file_that_is_not_a_sound_backup_is_refused_by_name(
    tmp_path: Path,
    entries: list[bytes],
    key: str | None,
    header: dict[str, object],
    message: str,
) -> None:
    path = tmp_path / "b"
    write_backup(path, entries, key, **header)
    with pytest.raises(BackupError) as raised:
        read(path, KEY)
    assert message in str(raised.value)


def test_a_file_without_a_header_or_unreadable_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "b"
    path.write_bytes(b"REDIS0011\xfa\x09redis-ver")  # an RDB file, as the runbook's restore used
    with pytest.raises(BackupError, match=r"is not a chat backup \(bad header\)"):
        read(path, KEY)
    path.write_bytes(b'{"format": "chat-backup"}\n')
    with pytest.raises(BackupError, match="bad header"):
        read(path, KEY)
    with pytest.raises(BackupError, match=r"cannot read .*missing: No such file or directory"):
        read(tmp_path / "missing", KEY)


def test_a_header_with_no_body_is_an_empty_backup(tmp_path: Path) -> None:
    path = tmp_path / "b"
    write_backup(path, [])
    header, entries = read(path, KEY)
    assert (header.keys, entries) == (0, [])
    write_backup(path, [], keys=1)
    with pytest.raises(BackupError, match="0 keys, header says 1"):
        read(path, KEY)


def test_every_byte_of_the_file_is_authenticated(tmp_path: Path) -> None:
    path = tmp_path / "b"
    write_backup(path, [ENTRY, entry("route:pin:aaaaaaaaaaaaaaaa")])
    good = path.read_bytes()
    for at in range(len(good)):
        flipped = bytearray(good)
        flipped[at] ^= 0x01
        path.write_bytes(bytes(flipped))
        with pytest.raises(BackupError):
            read(path, KEY)
