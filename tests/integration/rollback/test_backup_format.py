"""The backup file and the restore report to the letter, against the real Redis: what a backup
covers, its header, every way a file is refused (with the words an operator reads), batches past
the pipeline size, and the exact report of a dry run, a refusal and a restore."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import msgspec
import pytest
from redis.asyncio import Redis

from rollback._backup import FORMAT, VERSION, Entry, Header, RestoreReport, create, read, restore
from rollback._errors import BackupError

BATCH = 500  # the pipeline size in rollback/_backup.py; the tests cross it


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
        "shadow:sess:abcdefgh12345678",
        "worker:heartbeat:w1",
        "lead_queue2",
        "route:x",
        "other",
    ):
        await redis.set(key, "not data")
    header = await create(redis, tmp_path / "b")
    _, entries = read(tmp_path / "b")
    assert sorted(e.key for e in entries) == sorted(covered)
    assert header.keys == len(covered)


async def test_the_header_names_format_version_time_count_and_body_hash(
    redis: Redis, tmp_path: Path
) -> None:
    await redis.set("sess:abcdefgh12345678", "v", px=50_000)
    await redis.set("route:pin:abcdefgh12345678", "new")
    before = time.time()
    header = await create(redis, tmp_path / "b")
    raw = (tmp_path / "b").read_bytes()
    first, _, body = raw.partition(b"\n")
    assert msgspec.json.decode(first, type=Header) == header
    assert (header.format, header.version, header.keys) == (FORMAT, VERSION, 2)
    assert before <= header.created_at <= time.time()
    assert header.sha256 == hashlib.sha256(body).hexdigest()
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
    header = await create(redis, tmp_path / "deep" / "dir" / "b")  # parent directories made
    assert header.keys == 0
    assert read(tmp_path / "deep" / "dir" / "b") == (header, [])


async def test_backups_past_one_pipeline_batch_keep_every_key(redis: Redis, tmp_path: Path) -> None:
    count = 2 * BATCH + 7
    async with redis.pipeline(transaction=False) as pipe:
        for number in range(count):
            pipe.set(f"sess:{number:016d}", f"value {number}", ex=1000 + number)
        await pipe.execute()
    await create(redis, tmp_path / "b")
    _, entries = read(tmp_path / "b")
    assert len(entries) == count
    for entry in (entries[0], entries[BATCH], entries[-1]):
        number = int(entry.key.removeprefix("sess:"))
        assert base64.b64decode(entry.dump) == await redis.dump(entry.key)
        assert (1000 + number - 5) * 1000 < entry.ttl_ms <= (1000 + number) * 1000

    await redis.flushall()
    live = [f"sess:{number:016d}" for number in (BATCH - 1, BATCH, BATCH + 3, count - 1)]
    for key in live:  # conflicts on both sides of a batch edge, and in the last batch
        await redis.set(key, "live")
    report = await restore(redis, entries, replace=False, dry_run=False)
    assert report == RestoreReport(keys=count, restored=0, conflicts=live, applied=False)
    assert await redis.dbsize() == len(live)  # refused: nothing written

    await redis.flushall()
    report = await restore(redis, entries, replace=False, dry_run=False)
    assert report == RestoreReport(keys=count, restored=count, conflicts=[], applied=True)
    assert await redis.dbsize() == count
    assert await redis.get(f"sess:{count - 1:016d}") == f"value {count - 1}".encode()


async def test_a_dry_run_reports_conflicts_and_writes_nothing(redis: Redis, tmp_path: Path) -> None:
    await redis.set("sess:aaaaaaaaaaaaaaaa", "old")
    await redis.set("sess:bbbbbbbbbbbbbbbb", "old")
    await create(redis, tmp_path / "b")
    _, entries = read(tmp_path / "b")
    await redis.delete("sess:bbbbbbbbbbbbbbbb")
    await redis.set("sess:aaaaaaaaaaaaaaaa", "changed")
    for replace in (False, True):
        report = await restore(redis, entries, replace=replace, dry_run=True)
        assert report == RestoreReport(
            keys=2, restored=0, conflicts=["sess:aaaaaaaaaaaaaaaa"], applied=False
        )
        assert await redis.get("sess:aaaaaaaaaaaaaaaa") == b"changed"
        assert await redis.exists("sess:bbbbbbbbbbbbbbbb") == 0


async def test_replace_overwrites_live_keys_and_keeps_ttls(redis: Redis, tmp_path: Path) -> None:
    await redis.set("sess:aaaaaaaaaaaaaaaa", "old", ex=600)
    await redis.set("route:pin:aaaaaaaaaaaaaaaa", "legacy")
    await create(redis, tmp_path / "b")
    _, entries = read(tmp_path / "b")
    await redis.set("sess:aaaaaaaaaaaaaaaa", "changed")  # no TTL now
    await redis.set("route:pin:aaaaaaaaaaaaaaaa", "new", ex=5)
    report = await restore(redis, entries, replace=True, dry_run=False)
    assert report == RestoreReport(
        keys=2,
        restored=2,
        conflicts=["route:pin:aaaaaaaaaaaaaaaa", "sess:aaaaaaaaaaaaaaaa"],
        applied=True,
    )
    assert await redis.get("sess:aaaaaaaaaaaaaaaa") == b"old"
    assert 590_000 < await redis.pttl("sess:aaaaaaaaaaaaaaaa") <= 600_000
    assert await redis.get("route:pin:aaaaaaaaaaaaaaaa") == b"legacy"
    assert await redis.pttl("route:pin:aaaaaaaaaaaaaaaa") == -1  # back to no expiry


def write_backup(path: Path, entries: list[bytes], **header: object) -> None:
    body = b"\n".join(entries)
    fields = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": 1.0,
        "keys": len(entries),
        "sha256": hashlib.sha256(body).hexdigest(),
        **header,
    }
    path.write_bytes(json.dumps(fields).encode() + b"\n" + body)


ENTRY = msgspec.json.encode(Entry("sess:aaaaaaaaaaaaaaaa", -1, base64.b64encode(b"x").decode()))


@pytest.mark.parametrize(
    ("entries", "header", "message"),
    [
        ([ENTRY], {"format": "rdb"}, "unsupported format rdb v1"),
        ([ENTRY], {"version": 2}, "unsupported format chat-backup v2"),
        ([ENTRY], {"sha256": "0" * 64}, "checksum mismatch"),
        ([ENTRY], {"keys": 2}, "1 keys, header says 2"),
        ([ENTRY, b'{"key": 1}'], {}, "line 3 is not a backup entry"),
        ([b"not json"], {}, "line 2 is not a backup entry"),
    ],
)
def test_a_file_that_is_not_a_sound_backup_is_refused_by_name(
    tmp_path: Path, entries: list[bytes], header: dict[str, object], message: str
) -> None:
    path = tmp_path / "b"
    write_backup(path, entries, **header)
    with pytest.raises(BackupError) as raised:
        read(path)
    assert message in str(raised.value)
    assert str(path) in str(raised.value) or message.startswith("line")


def test_a_file_without_a_header_or_unreadable_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "b"
    path.write_bytes(b"REDIS0011\xfa\x09redis-ver")  # an RDB file, as the runbook's restore used
    with pytest.raises(BackupError, match=r"is not a chat backup \(bad header\)"):
        read(path)
    path.write_bytes(b'{"format": "chat-backup"}\n')
    with pytest.raises(BackupError, match="bad header"):
        read(path)
    with pytest.raises(BackupError, match=r"cannot read .*missing: No such file or directory"):
        read(tmp_path / "missing")


def test_a_header_with_no_body_is_an_empty_backup(tmp_path: Path) -> None:
    path = tmp_path / "b"
    write_backup(path, [])
    header, entries = read(path)
    assert (header.keys, entries) == (0, [])
    write_backup(path, [], keys=1)
    with pytest.raises(BackupError, match="0 keys, header says 1"):
        read(path)


def test_entries_are_read_line_by_line_whatever_their_spacing(tmp_path: Path) -> None:
    """A file reformatted by hand (spaces inside the JSON) still reads entry by entry."""
    spaced = b'{"key": "sess:aaaaaaaaaaaaaaaa", "ttl_ms": -1, "dump": "eA=="}'
    path = tmp_path / "b"
    write_backup(path, [spaced, ENTRY])
    _, entries = read(path)
    assert [e.key for e in entries] == ["sess:aaaaaaaaaaaaaaaa", "sess:aaaaaaaaaaaaaaaa"]
