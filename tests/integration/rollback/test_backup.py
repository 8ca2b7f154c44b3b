"""Data rollback against the real Redis, counting what was lost: leads that arrived after the
backup, a partial loss, a lead that moved on, forged and damaged files. The target is zero."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import msgspec
import pytest
import redis as sync_redis
import respx
from redis.asyncio import Redis
from typer.testing import CliRunner

from chatctl import app as chatctl_app
from common import RedisSettings, derive_secret, keys, open_redis
from newchat import Services
from newchat.leads import Lead, LeadQueue
from rollback import BackupError, LeadState, RestorePlan, restore_backup
from rollback._backup import Entry, create, read
from tests.conftest import LEADPROSPER_URL
from tests.integration.rollback.test_backup_format import write_backup
from tests.support.leads import make_lead
from tests.support.processes import RedisServer

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"


async def chatctl(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, chatctl_app, list(args), env=env)
    return result.exit_code, result.output


def backup_key(env: dict[str, str]) -> str:
    return derive_secret(env["SESSION_SECRET"], "backup")


async def backup(env: dict[str, str], path: Path) -> None:
    code, output = await chatctl(env, "backup", "create", "--out", str(path))
    assert code == 0, output


async def everything(redis: Redis) -> dict[bytes, bytes | None]:
    """Every key's DUMP: equal before and after means nothing was written."""
    return {key: await redis.dump(key) for key in sorted([k async for k in redis.scan_iter()])}


async def one_session_backed_up(redis: Redis, env: dict[str, str], tmp_path: Path) -> Path:
    """A backup holding one session, `sess:aaaa000000000000` (still live)."""
    await redis.set("sess:aaaa000000000000", "x")
    file = tmp_path / "chat.backup"
    await backup(env, file)
    return file


def submitted_emails(outside: respx.MockRouter) -> list[str]:
    return sorted(json.loads(call.request.content)["email"] for call in outside.calls)


async def test_restore_after_new_leads_arrived_loses_none_and_each_is_submitted_once(
    engine: Services,
    redis: Redis,
    base_env: dict[str, str],
    outside: respx.MockRouter,
    tmp_path: Path,
) -> None:
    """The issue's case: 9 queued, a backup, a 10th queued, then the runbook's restore with
    `--replace`: the 10th stays, and the worker sends each of the 10 once."""
    for n in range(9):
        await engine.queue.enqueue(make_lead(n))
    await redis.set("sess:aaaaaaaaaaaaaaaa", "backed up", ex=600)
    file = tmp_path / "chat.backup"
    await backup(base_env, file)
    await engine.queue.enqueue(make_lead(9))
    await redis.delete("sess:aaaaaaaaaaaaaaaa")

    code, output = await chatctl(
        base_env, "backup", "restore", str(file), "--replace", "sessions", "--reason", "test"
    )
    assert code == 0, output
    assert "0 added, 10 kept, 0 moved on to the backup's further state, 0 lost" in output
    assert "sessions: 1 added, 0 kept as they are now, 0 replaced" in output
    assert await redis.llen(keys.LEAD_QUEUE) == 10  # 0 leads removed
    assert await redis.get("sess:aaaaaaaaaaaaaaaa") == b"backed up"
    # the idempotency key of the 10th lead still points at a queued lead, not at nothing
    assert await redis.exists(keys.lead_idempotency("session-9")) == 1

    outside.post(LEADPROSPER_URL).respond(200, json={"status": "ACCEPTED", "lead_id": 1})
    summary = await engine.worker().run(burst=True)
    assert summary.accepted == 10
    assert submitted_emails(outside) == sorted(f"ann{n}@example.com" for n in range(10))

    # restoring the same backup again after they were sent sends none of them twice
    code, output = await chatctl(base_env, "backup", "restore", str(file))
    assert code == 0, output
    assert (
        "0 added, 9 kept, 0 moved on to the backup's further state, 0 lost (after: 9 done)"
        in output
    )
    assert await redis.llen(keys.LEAD_QUEUE) == 0
    assert (await engine.worker().run(burst=True)).accepted == 0
    assert len(outside.calls) == 10
    history = (await chatctl(base_env, "flags", "history"))[1]
    assert "data.restore" in history
    assert "reason: test" in history


async def test_restore_after_a_partial_loss_brings_back_the_missing_and_keeps_the_live(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    for name in ("aaaa", "bbbb", "cccc"):
        await redis.set(f"sess:{name}000000000000", f"{name} backed up", ex=3_600)
        await redis.set(f"route:pin:{name}000000000000", "new", ex=3_600)
    file = tmp_path / "chat.backup"
    await backup(base_env, file)
    await redis.delete("sess:aaaa000000000000", "sess:bbbb000000000000")  # the partial loss
    await redis.set("sess:cccc000000000000", "cccc live", ex=60)  # a visitor went on talking
    await redis.set("sess:dddd000000000000", "dddd live")  # a visitor who came later

    code, output = await chatctl(base_env, "backup", "restore", str(file), "--dry-run")
    assert code == 0, output  # it would go ahead
    assert "sessions: 2 added, 1 kept as they are now, 0 replaced" in output
    assert "pins:     0 added, 3 kept as they are now, 0 replaced" in output
    assert await redis.exists("sess:aaaa000000000000") == 0  # a dry run writes nothing

    code, output = await chatctl(base_env, "backup", "restore", str(file))
    assert code == 0, output
    assert await redis.get("sess:aaaa000000000000") == b"aaaa backed up"
    assert await redis.get("sess:bbbb000000000000") == b"bbbb backed up"
    assert 3_500_000 < await redis.pttl("sess:bbbb000000000000") <= 3_600_000  # TTL kept
    assert await redis.get("sess:cccc000000000000") == b"cccc live"  # untouched
    assert await redis.get("sess:dddd000000000000") == b"dddd live"

    code, output = await chatctl(
        base_env, "backup", "restore", str(file), "--replace", "sess:cccc*", "--json"
    )
    assert code == 0, output
    plan = msgspec.json.decode(output.strip().splitlines()[-1], type=RestorePlan)
    assert plan.replaced == ["sess:cccc000000000000"]
    assert (plan.sessions.added, plan.sessions.kept, plan.sessions.replaced) == (0, 2, 1)
    assert (plan.lost_leads, plan.applied) == (0, True)
    assert await redis.get("sess:cccc000000000000") == b"cccc backed up"
    assert await redis.get("sess:aaaa000000000000") == b"aaaa backed up"
    assert await redis.get("sess:dddd000000000000") == b"dddd live"  # not in the backup


@pytest.mark.parametrize("selector", ["lead_*", "leads", "markers", "flags:*", "*", "lead_queue"])
async def test_leads_and_anything_outside_sessions_and_pins_cannot_be_replaced(
    redis: Redis, base_env: dict[str, str], tmp_path: Path, selector: str
) -> None:
    file = await one_session_backed_up(redis, base_env, tmp_path)
    await redis.delete("sess:aaaa000000000000")
    code, output = await chatctl(base_env, "backup", "restore", str(file), "--replace", selector)
    assert code == 2
    assert "merged, never replaced" in output
    assert await redis.exists("sess:aaaa000000000000") == 0


async def put_in_state(queue: LeadQueue, lead: Lead, state: LeadState) -> None:
    """Takes `lead` from nowhere to `state` the way the engine and the worker do."""
    await queue.enqueue(lead)
    if state is LeadState.QUEUED:
        return
    [claimed] = await queue.claim("w1", 1)
    if state is LeadState.RETRY:
        assert await queue.retry_later(claimed, "LeadProsper 503", 60)
    elif state is LeadState.FAILED:
        assert await queue.fail(claimed, "LeadProsper 400")
    elif state is LeadState.DONE:
        await queue.ack(claimed.id, "accepted")


async def states_of(redis: Redis, lead_id: str) -> list[LeadState]:
    """Every place the lead is found in, read straight from Redis."""
    found = [
        LeadState.QUEUED
        for raw in await redis.lrange(keys.LEAD_QUEUE, 0, -1)
        if json.loads(raw)["id"] == lead_id
    ]
    found += [
        LeadState.RETRY
        for raw in await redis.zrange(keys.LEAD_RETRY, 0, -1)
        if json.loads(raw)["id"] == lead_id
    ]
    if await redis.hexists(keys.LEAD_PROCESSING, lead_id):
        found.append(LeadState.PROCESSING)
    if await redis.hexists(keys.LEAD_FAILED, lead_id):
        found.append(LeadState.FAILED)
    if await redis.exists(keys.lead_done(lead_id)):
        found.append(LeadState.DONE)
    return found


@pytest.mark.parametrize("in_backup", list(LeadState), ids=lambda s: f"backup-{s.name}")
@pytest.mark.parametrize("live", list(LeadState), ids=lambda s: f"live-{s.name}")
async def test_a_lead_in_different_states_ends_in_one_place_the_furthest(
    redis: Redis, tmp_path: Path, in_backup: LeadState, live: LeadState
) -> None:
    queue = LeadQueue(redis, visibility_timeout=300)
    lead, other = make_lead(1), make_lead(2)
    await put_in_state(queue, lead, in_backup)
    await create(redis, tmp_path / "b", "k")
    await redis.flushall()
    await put_in_state(queue, lead, live)
    await queue.enqueue(other)  # a lead the backup never saw
    _, entries = read(tmp_path / "b", "k")

    plan = await restore_backup(redis, entries)
    assert (plan.applied, plan.lost_leads) == (True, 0)
    furthest = live if live is LeadState.PROCESSING else max(in_backup, live)
    assert await states_of(redis, lead.id) == [furthest]  # a lead a worker holds stays its
    assert await states_of(redis, other.id) == [LeadState.QUEUED]
    assert plan.leads.advanced == (1 if furthest is not live else 0)
    assert sum(plan.leads.final.values()) == 2


def line(key: str, payload: bytes, ttl_ms: int = -1) -> bytes:
    return msgspec.json.encode(Entry(key, ttl_ms, base64.b64encode(payload).decode()))


async def test_damaged_or_forged_files_write_nothing_and_dry_runs_say_so(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    key = backup_key(base_env)
    await redis.set("sess:aaaa000000000000", "session")
    good = [line("sess:aaaa000000000000", await redis.dump("sess:aaaa000000000000"))]
    tester = await redis.dump("sess:aaaa000000000000")
    await redis.flushall()
    await redis.set("flags:version", 3)
    await redis.set("sess:live000000000000", "live")
    before = await everything(redis)

    files = {
        # a new entry, and the count and a plain hash recomputed as anyone can
        "plain-hash": ([*good, line("flags:runtime", tester)], None),
        # even under the right key, nothing outside the documented namespaces is written
        "outside-namespaces": ([*good, line("emergency_rate_limit", tester)], key),
        # a DUMP payload Redis refuses (its checksum fails), between two good ones
        "corrupt-payload": (
            [
                good[0],
                line("sess:bbbb000000000000", tester[:-3] + b"\x00\x00\x00"),
                line("route:pin:aaaa000000000000", tester),
            ],
            key,
        ),
        # a payload of the wrong type where the queue belongs
        "wrong-type": ([good[0], line(keys.LEAD_QUEUE, tester)], key),
    }
    for name, (entries, signing_key) in files.items():
        path = tmp_path / f"{name}.backup"
        write_backup(path, entries, signing_key)
        for extra in (["--dry-run"], []):
            code, output = await chatctl(base_env, "backup", "restore", str(path), *extra)
            assert code == 1, (name, output)
            assert "INVALID" in output, name
        assert await everything(redis) == before, name  # nothing written, nothing staged left
    verify = await chatctl(base_env, "backup", "verify", str(tmp_path / "plain-hash.backup"))
    assert verify[0] == 1
    assert "authentication failed" in verify[1]

    write_backup(tmp_path / "sound.backup", good, key)
    code, output = await chatctl(
        base_env, "backup", "restore", str(tmp_path / "sound.backup"), "--dry-run"
    )
    assert code == 0, output
    assert await everything(redis) == before


async def test_a_plan_is_made_again_when_a_lead_arrives_under_it(
    redis: Redis, redis_server: object, tmp_path: Path
) -> None:
    queue = LeadQueue(redis, visibility_timeout=300)
    await queue.enqueue(make_lead(1))
    await create(redis, tmp_path / "b", "k")
    await redis.flushall()
    _, entries = read(tmp_path / "b", "k")
    url = redis.connection_pool.connection_kwargs
    other = sync_redis.Redis(host=url["host"], port=url["port"])
    plans: list[RestorePlan] = []

    def meanwhile(plan: RestorePlan) -> None:
        plans.append(plan)
        if len(plans) == 1:  # a visitor's lead is queued between the plan and its transaction
            other.lpush(keys.LEAD_QUEUE, msgspec.json.encode(make_lead(2)))

    plan = await restore_backup(redis, entries, on_plan=meanwhile)
    other.close()
    assert (plan.attempts, plan.applied, len(plans)) == (2, True, 2)
    assert plans[0].leads.kept == 0
    assert plans[1].leads.kept == 1
    assert await redis.llen(keys.LEAD_QUEUE) == 2


async def test_backup_commands_need_a_key(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in base_env.items() if k not in {"SESSION_SECRET", "BACKUP_KEY"}}
    for command in (
        ["backup", "create", "--out", str(tmp_path / "b")],
        ["backup", "verify", str(tmp_path / "b")],
        ["backup", "restore", str(tmp_path / "b")],
    ):
        code, output = await chatctl({**env, "SESSION_SECRET": ""}, *command)
        assert code == 2, command
        assert "BACKUP_KEY" in output
    assert not (tmp_path / "b").exists()
    # a backup made under BACKUP_KEY is refused under another key
    await redis.set("sess:aaaa000000000000", "x")
    await backup({**base_env, "BACKUP_KEY": "one key of 16 chars"}, tmp_path / "b")
    code, output = await chatctl({**base_env, "BACKUP_KEY": "another key, 16 chars"}, "backup", "verify",
                                 str(tmp_path / "b"))  # fmt: skip
    assert code == 1
    assert "authentication failed" in output


async def test_runbook_scripts_wrap_the_cli(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **base_env}
    await redis.set("sess:aaaa000000000000", "backed up")
    await redis.set("sess:bbbb000000000000", "backed up")
    await redis.rpush(keys.LEAD_QUEUE, msgspec.json.encode(make_lead(1)))
    file = tmp_path / "chat.backup"
    await backup(base_env, file)
    await redis.delete("sess:aaaa000000000000")
    await redis.set("sess:bbbb000000000000", "live")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    restored = await asyncio.to_thread(run, str(SCRIPTS / "restore-backup.sh"), str(file))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert await redis.get("sess:aaaa000000000000") == b"backed up"
    assert await redis.get("sess:bbbb000000000000") == b"live"
    replaced = await asyncio.to_thread(
        run, str(SCRIPTS / "restore-backup.sh"), str(file), "--replace", "sessions"
    )
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert await redis.get("sess:bbbb000000000000") == b"backed up"
    queue = await asyncio.to_thread(run, str(SCRIPTS / "queue-status.sh"), "--json")
    assert json.loads(queue.stdout)["queued"] == 1


# A fresh helper's attack on the restore: each failure as a test.


async def test_a_backup_older_than_the_done_markers_is_refused_unless_asked_for(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    """Leads sent since and whose done markers expired would be sent again (a fresh helper
    touched an old file so the runbook script picked it)."""
    lead = make_lead(1)
    old = time.time() - keys.LEAD_MARKER_TTL_SECONDS - 86_400
    await redis.rpush(keys.LEAD_QUEUE, msgspec.json.encode(lead))
    queue_dump = await redis.dump(keys.LEAD_QUEUE)
    await redis.flushall()
    path = tmp_path / "old.backup"
    write_backup(path, [line(keys.LEAD_QUEUE, queue_dump)], backup_key(base_env), created_at=old)
    code, output = await chatctl(base_env, "backup", "restore", str(path))
    assert code == 2
    assert "was made 31 days ago, longer than leads' done markers last (30 days)" in output
    assert await redis.dbsize() == 0
    code, output = await chatctl(base_env, "backup", "restore", str(path), "--older-than-markers")
    assert code == 0, output
    assert await redis.llen(keys.LEAD_QUEUE) == 1


async def test_the_newest_backup_is_the_one_made_last_not_the_one_touched_last(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    key = backup_key(base_env)
    folder = tmp_path / "backups"
    folder.mkdir()
    write_backup(folder / "a.backup", [], key, created_at=time.time() - 3600)
    write_backup(folder / "b.backup", [], key, created_at=time.time() - 7200)
    (folder / "forged.backup").write_text("not a backup")
    os.utime(folder / "b.backup")  # touched now: newest by modification time
    code, output = await chatctl(base_env, "backup", "newest", str(folder))
    assert code == 0, output
    assert output.strip().splitlines()[-1] == str(folder / "a.backup")


async def test_a_short_backup_key_is_refused(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    code, output = await chatctl(
        {**base_env, "BACKUP_KEY": "x"}, "backup", "create", "--out", str(tmp_path / "b")
    )
    assert code == 2
    assert "BACKUP_KEY is too short" in output
    assert not (tmp_path / "b").exists()


async def test_a_live_lead_key_of_the_wrong_type_is_named_and_nothing_written(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    file = await one_session_backed_up(redis, base_env, tmp_path)
    await redis.delete("sess:aaaa000000000000")
    await redis.set(keys.LEAD_QUEUE, "broken")
    before = await everything(redis)
    code, output = await chatctl(base_env, "backup", "restore", str(file))
    assert code == 1
    assert "live lead_queue is a string where a list belongs" in output
    assert await everything(redis) == before


async def test_a_lead_a_worker_holds_during_a_restore_ends_done_and_nowhere_else(
    redis: Redis, tmp_path: Path
) -> None:
    """The backup has the lead failed; a worker submits it again while the restore runs: it
    used to end both failed and done."""
    queue = LeadQueue(redis, visibility_timeout=300)
    lead = make_lead(1)
    await put_in_state(queue, lead, LeadState.FAILED)
    await create(redis, tmp_path / "b", "k" * 16)
    assert await queue.retry_failed() == 1
    [claimed] = await queue.claim("w1", 1)  # the worker holds it
    _, entries = read(tmp_path / "b", "k" * 16)
    plan = await restore_backup(redis, entries)
    assert (plan.leads.kept, plan.leads.advanced) == (1, 0)
    assert await states_of(redis, lead.id) == [LeadState.PROCESSING]
    await queue.ack(claimed.id, "accepted")
    assert await states_of(redis, lead.id) == [LeadState.DONE]


async def test_a_correction_made_after_the_backup_survives_the_restore(
    redis: Redis, tmp_path: Path
) -> None:
    queue = LeadQueue(redis, visibility_timeout=300)
    lead = make_lead(1)
    await put_in_state(queue, lead, LeadState.RETRY)
    await create(redis, tmp_path / "b", "k" * 16)
    await redis.zadd(keys.LEAD_RETRY, dict.fromkeys(await redis.zrange(keys.LEAD_RETRY, 0, -1), 0))
    assert await queue.promote_due() == 1
    assert await queue.amend(lead.id, {"phone": "5559990000"})
    _, entries = read(tmp_path / "b", "k" * 16)
    await restore_backup(redis, entries)
    [waiting] = await redis.zrange(keys.LEAD_RETRY, 0, -1)
    restored = msgspec.json.decode(waiting, type=Lead)
    assert (restored.phone, restored.attempts) == ("5559990000", 1)
    assert await redis.llen(keys.LEAD_QUEUE) == 0


async def test_a_restore_of_tens_of_thousands_of_keys_goes_through_the_cli(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    """WATCH is quadratic in its keys: watching every key of a 50k-key backup blocked Redis for
    a minute and the CLI's 2 s timeout failed the restore."""
    count = 20_000
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(count):
            pipe.set(f"sess:{n:016d}", "x", ex=3600)
        await pipe.execute()
    file = tmp_path / "big.backup"
    await backup(base_env, file)
    await redis.flushall()
    await redis.set(f"sess:{0:016d}", "live")
    code, output = await chatctl(base_env, "backup", "restore", str(file))
    assert code == 0, output
    assert f"sessions: {count - 1} added, 1 kept as they are now, 0 replaced" in output
    assert len([k async for k in redis.scan_iter(match="sess:*", count=5000)]) == count
    assert await redis.get(f"sess:{0:016d}") == b"live"


async def test_a_replace_pattern_that_names_nothing_is_warned_about(
    redis: Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    file = await one_session_backed_up(redis, base_env, tmp_path)
    code, output = await chatctl(
        base_env, "backup", "restore", str(file), "--replace", "sess:zz*", "--dry-run"
    )
    assert code == 0, output
    assert "warning: --replace 'sess:zz*' names no key in chat.backup" in output


class SlowExec:
    """A TCP proxy in front of the real Redis that holds back the reply to the first EXEC for
    `delay` seconds: Redis applies the transaction, the client gives up waiting."""

    def __init__(self, port: int, delay: float) -> None:
        self.port, self.delay, self.held = port, delay, False
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.port)
        exec_sent = asyncio.Event()

        async def up() -> None:
            while data := await reader.read(65536):
                if b"EXEC" in data and not self.held:
                    self.held = True
                    exec_sent.set()
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def down() -> None:
            while data := await upstream_reader.read(65536):
                if exec_sent.is_set():
                    exec_sent.clear()
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()

        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(up(), down())
        writer.close()
        upstream_writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_a_transaction_redis_did_not_answer_is_reported_as_unknown_not_as_nothing(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A slow EXEC was applied, then retried as if nothing had happened: the restore reported
    0 leads back and the audit log lied (a fresh helper's proxy)."""
    queue = LeadQueue(redis, visibility_timeout=300)
    for n in range(3):
        await queue.enqueue(make_lead(n))
    await create(redis, tmp_path / "b", "k" * 16)
    await redis.delete(keys.LEAD_QUEUE)
    _, entries = read(tmp_path / "b", "k" * 16)
    proxy = SlowExec(int(redis_server.url.rsplit(":", 1)[1].split("/")[0]), delay=1.0)
    port = await proxy.start()
    slow = open_redis(RedisSettings(url=f"redis://127.0.0.1:{port}/0", socket_timeout=0.3))
    try:
        with pytest.raises(BackupError, match="may or may not have been applied"):
            await restore_backup(slow, entries)
    finally:
        await slow.aclose()
        await proxy.stop()
    assert await redis.llen(keys.LEAD_QUEUE) == 3  # it was applied, once
    plan = await restore_backup(redis, entries, dry_run=True)  # what the error says to do
    assert (plan.leads.added, plan.leads.kept) == (0, 3)
