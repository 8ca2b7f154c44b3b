"""The backup file to the letter, against the real Redis: what a backup covers, its header and
MAC, every way a file is refused (with the words an operator reads), and batches past the
pipeline size."""

from __future__ import annotations

import asyncio
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
        "lead_idem:0123": "idempotency",
        "lead_done:0123": "done",
        "route:pin:abcdefgh12345678": "pin",
    }
    for key, value in covered.items():
        await redis.set(key, value)
    await redis.rpush("lead_queue", "queued")
    await redis.hset("lead_processing", "l1", "claimed")
    await redis.hset("lead_failed", "l2", "failed")
    await redis.zadd("lead_retry", {"waiting": 1.0})
    covered |= dict.fromkeys(["lead_queue", "lead_processing", "lead_failed", "lead_retry"], "")
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
    await create(redis, tmp_path / "backups" / "c", KEY)  # a folder it makes is the owner's only
    assert ((tmp_path / "backups").stat().st_mode & 0o777) == 0o700
    first, _, body = raw.partition(b"\n")
    assert msgspec.json.decode(first, type=Header) == header
    assert (header.format, header.version, header.keys) == (FORMAT, VERSION, 2)
    assert header.namespaces == list(PATTERNS)
    assert before <= header.created_at <= time.time()
    signed = first.replace(f'"mac":"{header.mac}"'.encode(), b'"mac":""') + b"\n" + body
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
        "created_at": time.time(),
        "keys": len(entries),
        "namespaces": list(PATTERNS),
        "mac": "",
        **header,
    }
    if key is None:
        fields["mac"] = hashlib.sha256(body).hexdigest()
    else:  # over the header line as written (spaces and all), its MAC empty
        unsigned = json.dumps(fields).encode()
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


@pytest.mark.parametrize(
    ("key", "make"),
    [
        ("lead_queue", "set"),
        ("lead_done:0123", "hset"),
        ("sess:abcdefgh12345678", "rpush"),
    ],
)
async def test_a_key_of_the_wrong_type_is_named_when_backing_up(
    redis: Redis, tmp_path: Path, key: str, make: str
) -> None:
    """Such a file could never be restored: it is refused when made, not when needed."""
    if make == "set":
        await redis.set(key, "x")
    elif make == "hset":
        await redis.hset(key, "f", "x")
    else:
        await redis.rpush(key, "x")
    with pytest.raises(BackupError, match=f"^{key} is a "):
        await create(redis, tmp_path / "b", KEY)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left


async def test_the_file_is_a_new_one_of_its_own_whatever_lies_beside_it(
    redis: Redis, tmp_path: Path
) -> None:
    """A fresh helper planted `<out>.tmp` (0644, or a symlink to another file): the backup came
    out 0644, or overwrote the other file."""
    await redis.set("sess:abcdefgh12345678", "contact details")
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's")
    (tmp_path / "a.backup.tmp").write_text("planted")
    (tmp_path / "a.backup.tmp").chmod(0o644)
    (tmp_path / "b.backup.tmp").symlink_to(victim)
    for name in ("a.backup", "b.backup"):
        await create(redis, tmp_path / name, KEY)
        assert ((tmp_path / name).stat().st_mode & 0o777) == 0o600
        assert not (tmp_path / name).is_symlink()
        read(tmp_path / name, KEY)
    assert victim.read_text() == "someone else's"


async def test_a_backup_made_while_workers_move_leads_holds_every_lead(
    redis: Redis, redis_server: object, tmp_path: Path
) -> None:
    """The four lead keys are read at one moment: a fresh helper's backup, made while leads
    moved from the queue to lead_failed, lacked 44 of 3,000."""
    count = 2000
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(count):
            pipe.lpush("lead_queue", json.dumps({"id": f"l{n}"}))
            pipe.set(f"lead_idem:s{n}", f"l{n}")
        await pipe.execute()
    mover = Redis(
        connection_pool=redis.connection_pool.__class__(**redis.connection_pool.connection_kwargs)
    )
    move = mover.register_script(
        "local raw = redis.call('RPOP', KEYS[1]) if raw then "
        "redis.call('HSET', KEYS[2], cjson.decode(raw)['id'], raw) end return raw"
    )
    stop = asyncio.Event()

    async def fail_leads() -> int:
        moved = 0
        while not stop.is_set() and await move(keys=["lead_queue", "lead_failed"]):
            moved += 1
        return moved

    moving = asyncio.create_task(fail_leads())
    try:
        await create(redis, tmp_path / "b", KEY)
    finally:
        stop.set()
        moved = await moving
        await mover.aclose()
    assert moved > 0  # leads did move while the backup was made
    await redis.flushall()
    _, entries = read(tmp_path / "b", KEY)
    await restore(redis, entries)
    queued = {json.loads(raw)["id"] for raw in await redis.lrange("lead_queue", 0, -1)}
    failed = {k.decode() for k in await redis.hkeys("lead_failed")}
    assert queued.isdisjoint(failed)
    assert len(queued | failed) == count  # 0 lost


def test_an_extra_header_field_or_reformatting_breaks_the_mac(tmp_path: Path) -> None:
    path = tmp_path / "b"
    write_backup(path, [ENTRY])
    first, _, body = path.read_bytes().partition(b"\n")
    for changed in (
        first[:-1] + b', "note": "x"}',  # an extra field
        first.replace(b": ", b":"),  # the same fields, reformatted
    ):
        path.write_bytes(changed + b"\n" + body)
        with pytest.raises(BackupError, match="authentication failed"):
            read(path, KEY)
