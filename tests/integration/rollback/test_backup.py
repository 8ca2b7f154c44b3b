"""Data rollback against the real Redis: values and TTLs come back, live data is protected, and
a damaged file is rejected before anything is written."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from redis.asyncio import Redis
from typer.testing import CliRunner

from chatctl import app as chatctl_app


async def chatctl(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, chatctl_app, list(args), env=env)
    return result.exit_code, result.output


async def seed(redis: Redis) -> None:
    await redis.set("sess:abcdefgh12345678", b"\x81\xa2id\xa8abcdefgh", ex=604_800)
    await redis.set("sess:ijklmnop12345678", b"\x81\xa2id\xa8ijklmnop", ex=3_600)
    await redis.rpush("lead_queue", b'{"id":"l1"}', b'{"id":"l2"}')
    await redis.hset("lead_processing", "l3", b'{"claimed_at":1}')
    await redis.hset("lead_failed", "l4", b'{"error":"x"}')
    await redis.set("route:pin:abcdefgh12345678", "new", ex=604_800)
    await redis.set("flags:version", 7)  # not data: never in a backup


async def snapshot(redis: Redis) -> dict[bytes, tuple[bytes | None, int]]:
    names = [k async for k in redis.scan_iter() if not k.startswith(b"flags:")]
    return {k: (await redis.dump(k), await redis.pttl(k)) for k in sorted(names)}


async def test_backup_change_restore_gives_back_keys_values_and_ttls(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    await seed(redis)
    before = await snapshot(redis)
    file = tmp_path / "chat.backup"
    code, output = await chatctl(base_env, "backup", "create", "--out", str(file))
    assert code == 0, output
    assert (file.stat().st_mode & 0o777) == 0o600  # sessions hold contact details
    assert (await chatctl(base_env, "backup", "verify", str(file)))[0] == 0

    await redis.delete("sess:abcdefgh12345678", "lead_processing")
    await redis.rpush("lead_queue", b'{"id":"new"}')
    await redis.set("sess:zzzzzzzz12345678", b"later", ex=100)

    code, output = await chatctl(base_env, "backup", "restore", str(file))
    assert code == 1
    assert "REFUSED" in output
    assert await redis.llen("lead_queue") == 3  # nothing changed
    assert await redis.exists("sess:abcdefgh12345678") == 0

    code, output = await chatctl(
        base_env, "backup", "restore", str(file), "--replace", "--reason", "bad deploy"
    )
    assert code == 0, output
    history = (await chatctl(base_env, "flags", "history"))[1]
    assert "data.restore" in history
    assert "reason: bad deploy" in history
    after = await snapshot(redis)
    after.pop(b"sess:zzzzzzzz12345678")  # created after the backup: left alone
    assert after.keys() == before.keys()
    for key, (value, ttl) in before.items():
        assert after[key][0] == value, key
        if ttl > 0:
            assert abs(after[key][1] - ttl) <= 1000, key  # TTLs within a second
        else:
            assert after[key][1] == -1, key
    assert await redis.get("flags:version") == b"7"


async def test_restore_into_an_empty_redis_needs_no_flag(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    await seed(redis)
    file = tmp_path / "chat.backup"
    assert (await chatctl(base_env, "backup", "create", "--out", str(file)))[0] == 0
    await redis.flushall()
    code, output = await chatctl(base_env, "backup", "restore", str(file), "--dry-run")
    assert code == 0
    assert await redis.dbsize() == 0  # a dry run writes nothing
    code, output = await chatctl(base_env, "backup", "restore", str(file))
    assert code == 0, output
    assert "restored 6 keys" in output


async def test_corrupted_backup_is_rejected_by_verify_and_restore(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    await seed(redis)
    file = tmp_path / "chat.backup"
    assert (await chatctl(base_env, "backup", "create", "--out", str(file)))[0] == 0
    await redis.flushall()
    data = bytearray(file.read_bytes())
    data[-5] ^= 0x01  # one flipped bit in the last entry
    file.write_bytes(bytes(data))
    for command in (["backup", "verify", str(file)], ["backup", "restore", str(file)]):
        code, output = await chatctl(base_env, *command)
        assert code == 1
        assert "checksum mismatch" in output
    truncated = tmp_path / "short.backup"
    truncated.write_bytes(file.read_bytes()[:40])
    assert (await chatctl(base_env, "backup", "verify", str(truncated)))[0] == 1
    assert (await chatctl(base_env, "backup", "verify", str(tmp_path / "missing")))[0] == 1
    assert await redis.dbsize() == 0


async def test_runbook_scripts_wrap_the_cli(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    scripts = Path(__file__).resolve().parents[3] / "scripts"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **base_env}
    await seed(redis)
    file = tmp_path / "chat.backup"
    assert (await chatctl(base_env, "backup", "create", "--out", str(file)))[0] == 0
    await redis.delete("sess:abcdefgh12345678")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    refused = await asyncio.to_thread(run, str(scripts / "restore-backup.sh"), str(file))
    assert refused.returncode == 1  # live keys, no --replace
    replaced = await asyncio.to_thread(
        run, str(scripts / "restore-backup.sh"), str(file), "--replace"
    )
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert await redis.exists("sess:abcdefgh12345678") == 1
    queue = await asyncio.to_thread(run, str(scripts / "queue-status.sh"), "--json")
    assert json.loads(queue.stdout)["queued"] == 2
