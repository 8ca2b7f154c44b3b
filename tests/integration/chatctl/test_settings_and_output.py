"""`chatctl` finds a running stack's settings (explicit environment wins), and a closed stdout is
never reported as a Redis failure."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from redis import exceptions as redis_exceptions
from redis.asyncio import Redis

from chatctl import _stack, read_env_file, write_env_file
from common import keys
from tests.support.processes import ISOLATED, free_port

CHATCTL = str(Path(sys.executable).with_name("chatctl"))


def _chatctl(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHATCTL, *args],
        env={**ISOLATED, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _into_a_closed_pipe(env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        return subprocess.run(
            [CHATCTL, *args],
            env={**ISOLATED, **env},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


def test_the_env_file_round_trips_and_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "stack.env"
    values = {"REDIS_URL": "redis://127.0.0.1:6399/0", "SESSION_SECRET": "s3cr3t with 'quotes'"}
    write_env_file(path, values)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_env_file(path) == values


async def test_commands_read_a_running_stacks_settings(
    base_env: dict[str, str], redis: Redis, tmp_path: Path
) -> None:
    """Run from the folder where `make run` runs, a command needs no variables of its own."""
    write_env_file(tmp_path / "var" / "stack.env", {"REDIS_URL": base_env["REDIS_URL"]})
    await redis.lpush(keys.LEAD_QUEUE, b'{"id": "x"}')
    found = _chatctl({"CHATCTL_ENV_FILE": ""}, "queue", "status", "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["queued"] == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    overridden = _chatctl(
        {"CHATCTL_ENV_FILE": str(tmp_path / "var" / "stack.env"), "REDIS_URL": unreachable},
        "queue",
        "status",
        cwd=elsewhere,
    )
    assert overridden.returncode == 1  # the explicit REDIS_URL won
    assert "Redis unreachable" in overridden.stderr


async def test_a_closed_stdout_is_not_a_redis_failure(
    base_env: dict[str, str], redis: Redis
) -> None:
    """`chatctl flags set ... | head -1`: the change is made and audited, and nobody is told
    Redis is down or that nothing changed."""
    args = ["flags", "set", "new_chat_percent", "10", "--reason", "pipe", "--wait", "0"]
    result = await asyncio.to_thread(_into_a_closed_pipe, base_env, args)
    assert "Redis" not in result.stderr
    assert "Nothing was changed" not in result.stderr
    assert await redis.hget(keys.FLAGS_RUNTIME, "new_chat_percent") == b"10"
    assert await redis.xlen(keys.FLAGS_AUDIT) == 1


def test_a_redis_failure_before_any_change_says_so(base_env: dict[str, str]) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    before = _chatctl(base_env | {"REDIS_URL": unreachable}, "flags", "set", "drain", "true")
    assert before.returncode == 1
    assert "Nothing was changed." in before.stderr


def test_the_local_stacks_secrets_are_owner_only_from_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_stack, "STATE_DIR", tmp_path / "var")
    previous = os.umask(0)  # even a permissive umask cannot widen it
    try:
        first = _stack.persistent_secret("session_secret")
    finally:
        os.umask(previous)
    assert ((tmp_path / "var" / "session_secret").stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "var").stat().st_mode & 0o777) == 0o700
    assert len(first) >= 32
    assert _stack.persistent_secret("session_secret") == first  # kept across restarts


async def test_the_local_stacks_redis_keeps_an_append_only_file_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill -9 of `make run`'s Redis, saving every 60 s, undid a rollback (issue 16)."""
    monkeypatch.setattr(_stack, "STATE_DIR", tmp_path / "var")
    port = free_port()
    server = _stack.start_redis(port, "local-password")
    client = Redis(port=port, password="local-password")
    try:
        for _ in range(200):
            try:
                await client.ping()
                break
            except OSError:
                await asyncio.sleep(0.02)
        config = await client.config_get("append*")
        assert (config["appendonly"], config["appendfsync"]) == ("yes", "everysec")
        await client.set("flags:version", 2)
        await client.execute_command("BGREWRITEAOF")
        aof = tmp_path / "var" / "redis" / "appendonlydir"
        for _ in range(200):
            if aof.exists() and any(aof.iterdir()):
                break
            await asyncio.sleep(0.02)
        files = [*aof.iterdir(), tmp_path / "var" / "redis" / "redis.conf"]
        assert all((f.stat().st_mode & 0o077) == 0 for f in files), files
        with pytest.raises(redis_exceptions.AuthenticationError):  # no password, no access
            await Redis(port=port).ping()
    finally:
        await client.aclose()
        server.terminate()
        server.wait(timeout=10)


async def test_the_local_stacks_legacy_stand_in_has_no_test_hooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`?debug=echo` and `?sleep_ms=` were reachable through nginx (issue 18): only the tests
    enable them."""
    monkeypatch.setattr(_stack, "STATE_DIR", tmp_path / "var")
    port = free_port()
    server = _stack.start_legacy_php(port, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(250):
                try:
                    home = await client.get(f"http://127.0.0.1:{port}/?debug=echo")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
            assert home.status_code == 200
            assert "Legacy site home page" in home.text  # not the echo
            echo = await client.post(
                f"http://127.0.0.1:{port}/api/chat?debug=echo", json={"message": "hi"}
            )
            assert echo.status_code == 200
            assert "headers" not in echo.json()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
