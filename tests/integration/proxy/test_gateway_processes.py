"""Gateways as real `chatctl serve` processes over real HTTP: a run-time flag change reaching two
instances under traffic, and what only a real HTTP server shows (Host header, chunked bodies)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.metrics import sample_sum
from tests.support.processes import (
    ChatctlProcess,
    PhpLegacy,
    free_port,
    wait_for_port,
)
from tests.support.processes import (
    run_chatctl as chatctl,
)

FIRST = "I was rear-ended on the freeway and hurt my neck"
CHATCTL = str(Path(sys.executable).with_name("chatctl"))


@pytest.fixture
def process_env(gateway_env: dict[str, str]) -> dict[str, str]:
    return gateway_env | {"LOG_LEVEL": "WARNING"}


@pytest.fixture
def gateways(process_env: dict[str, str], redis: Redis) -> Iterator[list[ChatctlProcess]]:
    started: list[ChatctlProcess] = []
    try:
        for _ in range(2):
            port = free_port()
            started.append(ChatctlProcess(["serve"], process_env | {"PORT": str(port)}, port))
        yield started
    finally:
        for process in started:
            process.stop()


async def test_flag_change_reaches_two_gateways_within_a_second_without_failed_requests(
    gateways: list[ChatctlProcess], process_env: dict[str, str]
) -> None:
    urls = [f"http://127.0.0.1:{g.port}/api/chat" for g in gateways]
    results: list[tuple[int, float, int, str]] = []  # (gateway, started, status, backend)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def visitor(index: int) -> None:
        """A stream of first turns: each is a new conversation (no cookies kept)."""
        async with httpx.AsyncClient(timeout=10) as client:
            while not stop.is_set():
                client.cookies.clear()
                started = loop.time()
                response = await client.post(urls[index], json={"message": FIRST})
                backend = response.headers["x-chat-backend"]
                results.append((index, started, response.status_code, backend))

    tasks = [asyncio.create_task(visitor(i % 2)) for i in range(4)]
    await asyncio.sleep(0.5)
    flag_set = ["flags", "set", "new_chat_percent", "100", "--reason", "rollout test"]
    set_started = loop.time()
    changed = await asyncio.to_thread(chatctl, process_env, *flag_set, "--wait", "1")
    changed_at = loop.time()
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tasks)

    # The command itself verified that both instances applied the change within one second.
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "verified: 2 instance(s)" in changed.stdout
    assert all(status == 200 for _, _, status, _ in results), {s for _, _, s, _ in results}
    for index in (0, 1):
        before = [b for g, t, _, b in results if g == index and t < set_started - 0.05]
        after = [b for g, t, _, b in results if g == index and t > changed_at]
        assert before
        assert set(before) == {"legacy"}
        assert after
        assert set(after) == {"new"}
    history = chatctl(process_env, "flags", "history", "--json")
    assert '"reason":"rollout test"' in history.stdout


async def test_bad_flag_values_are_refused_and_change_nothing(
    gateways: list[ChatctlProcess], process_env: dict[str, str], redis: Redis
) -> None:
    for args in (["new_chat_percent", "150"], ["no_such_flag", "1"], ["drain", "maybe"]):
        refused = chatctl(process_env, "flags", "set", *args)
        assert refused.returncode == 2
        assert "Nothing was changed" in refused.stderr
    assert await redis.get("flags:version") is None
    assert await redis.xlen("flags:audit") == 0
    dry = chatctl(process_env, "flags", "set", "rollout", "50", "--dry-run")
    assert dry.returncode == 0
    assert await redis.get("flags:version") is None
    shown = chatctl(process_env, "flags", "show", "--json")
    assert shown.returncode == 0
    assert '"new_chat_percent":0' in shown.stdout
    assert shown.stdout.count('"instance"') == 2


async def test_real_http_edge_cases(gateways: list[ChatctlProcess], legacy: PhpLegacy) -> None:
    base = f"http://127.0.0.1:{gateways[0].port}"
    async with httpx.AsyncClient(timeout=10) as client:
        echo = await client.post(
            f"{base}/api/chat?debug=echo",
            json={"message": "hi"},
            headers={"Host": "evil.example"},
        )

        async def chunks() -> object:
            for _ in range(40):
                yield b"x" * 1024

        streamed = await client.post(f"{base}/api/chat", content=chunks())  # chunked, 40 KB
        normal = await client.post(f"{base}/api/chat", json={"message": FIRST})
    assert echo.json()["headers"]["host"] == f"127.0.0.1:{legacy.port}"  # never the visitor's
    assert echo.json()["headers"]["x-forwarded-host"] == "evil.example"
    assert streamed.status_code == 413
    assert normal.status_code == 200
    assert "server" not in normal.headers or normal.headers["server"] != "uvicorn"


async def test_stack_runs_gateway_engine_worker_and_php_legacy(
    base_env: dict[str, str], redis: Redis, tmp_path: Path
) -> None:
    """What `make run` runs: with LEGACY_URL unset it starts the PHP stand-in itself. While it
    runs, `chatctl` in the same folder works against it with no settings of its own, and
    `chatctl health` passes although LeadProsper is not configured on a dev stack."""
    port = free_port()
    without_leadprosper = {k: v for k, v in base_env.items() if not k.startswith("LEADPROSPER")}
    env = without_leadprosper | {"PORT": str(port), "LOG_LEVEL": "WARNING", "NEW_CHAT_PERCENT": "0"}
    stack = subprocess.Popen(
        [CHATCTL, "stack"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert wait_for_port(port, timeout=20)
        async with httpx.AsyncClient(timeout=10) as client:
            legacy_turn = await client.post(
                f"http://127.0.0.1:{port}/api/chat", json={"message": FIRST}
            )
            await client.post(f"http://127.0.0.1:{port}/api/chat", json={"message": "Ann Lee"})
        assert legacy_turn.status_code == 200
        assert legacy_turn.headers["x-chat-backend"] == "legacy"
        assert (tmp_path / "var" / "legacy" / "sessions").is_dir()  # the stand-in's own state
        stack_env = tmp_path / "var" / "stack.env"
        assert stat.S_IMODE(stack_env.stat().st_mode) == 0o600
        health = await _healthy_within(tmp_path, 15.0)
        assert health.returncode == 0, health.stdout + health.stderr
        report = json.loads(health.stdout)
        assert report["checks"]["leadprosper"]["configured"] is False
        assert report["checks"]["leadprosper"]["ok"] is True
        assert report["checks"]["legacy"]["ok"] is True  # LEGACY_URL from var/stack.env
    finally:
        stack.send_signal(signal.SIGINT)
        output = stack.communicate(timeout=30)[0].decode()
    assert stack.returncode == 0, output
    assert "chat stack running" in output
    assert not (tmp_path / "var" / "stack.env").exists()  # it describes a running stack only


def test_a_second_stack_on_a_taken_port_starts_nothing(tmp_path: Path) -> None:
    """`make run` twice in one folder: the second says why and leaves the first alone."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "var").mkdir()
        (tmp_path / "var" / "stack.env").write_text("REDIS_URL=redis://127.0.0.1:1/0\n")
        result = subprocess.run(
            [CHATCTL, "stack"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} is in use" in result.stdout
    assert (tmp_path / "var" / "stack.env").read_text() == "REDIS_URL=redis://127.0.0.1:1/0\n"
    assert not (tmp_path / "var" / "redis").exists()  # no redis-server was started


async def _healthy_within(folder: Path, seconds: float) -> subprocess.CompletedProcess[str]:
    """`chatctl health --json` run in `folder` with no settings, until it passes (the worker's
    first heartbeat takes a moment) or `seconds` have passed."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await asyncio.to_thread(
            subprocess.run,
            [CHATCTL, "health", "--json"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode == 0 or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_rollback_flags_switches_every_gateway_under_traffic(
    gateways: list[ChatctlProcess], process_env: dict[str, str]
) -> None:
    urls = [f"http://127.0.0.1:{g.port}/api/chat" for g in gateways]
    env = process_env | {"NEW_CHAT_PERCENT": "100"}
    for process in gateways:  # restart both with everyone on the new engine
        process.stop()
    gateways[:] = [ChatctlProcess(["serve"], env | {"PORT": str(g.port)}, g.port) for g in gateways]
    results: list[tuple[float, int, str]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def visitor(url: str) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            while not stop.is_set():
                client.cookies.clear()
                started = loop.time()
                response = await client.post(url, json={"message": FIRST})
                results.append((started, response.status_code, response.headers["x-chat-backend"]))

    tasks = [asyncio.create_task(visitor(urls[i % 2])) for i in range(4)]
    await asyncio.sleep(0.5)
    dry = await asyncio.to_thread(chatctl, env, "rollback", "flags", "--reason", "t", "--dry-run")
    rolled = await asyncio.to_thread(
        chatctl, env, "rollback", "flags", "--reason", "error spike", "--deadline", "1"
    )
    done_at = loop.time()
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tasks)
    assert dry.returncode == 0
    assert "dry run" in dry.stdout
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "verified: 2 gateway(s)" in rolled.stdout
    assert {status for _, status, _ in results} == {200}
    assert {b for t, _, b in results if t > done_at} == {"legacy"}
    assert "new" in {b for _, _, b in results}
    history = chatctl(env, "flags", "history")
    assert "enable_new_chat: (default) -> false" in history.stdout
    assert "reason: error spike" in history.stdout


async def test_chatctl_health_checks_the_gateway_and_legacy(
    gateways: list[ChatctlProcess], process_env: dict[str, str]
) -> None:
    env = process_env | {"PORT": str(gateways[0].port)}
    up = await asyncio.to_thread(chatctl, env, "health", "--json")
    report = json.loads(up.stdout)
    assert report["checks"]["gateway"]["ok"] is True
    assert report["checks"]["legacy"]["ok"] is True
    assert report["failing"] == ["worker"]  # no lead worker runs in this test
    assert up.returncode == 1
    down = await asyncio.to_thread(
        chatctl, env | {"GATEWAY_URL": f"http://127.0.0.1:{free_port()}"}, "health"
    )
    assert down.returncode == 1
    assert "status: down" in down.stdout
    assert "[FAIL] gateway" in down.stdout
    assert "systemctl start chat-gateway" in down.stdout


async def test_chatctl_health_says_legacy_when_the_gateway_is_up_but_legacy_is_down(
    process_env: dict[str, str],
) -> None:
    """The gateway answers /readyz 503 because legacy is down: health names legacy and its
    action, never "start the gateway"."""
    port = free_port()
    dead_legacy = f"http://127.0.0.1:{free_port()}/api/chat"
    env = process_env | {"PORT": str(port), "LEGACY_URL": dead_legacy}
    gateway = ChatctlProcess(["serve"], env, port)
    try:
        result = await asyncio.to_thread(chatctl, env, "health", "--json")
    finally:
        gateway.stop()
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert "up but not ready: legacy failing" in report["checks"]["gateway"]["detail"]
    assert "legacy" in report["checks"]["gateway"]["action"]
    assert "start the gateway" not in report["checks"]["gateway"]["action"]


async def test_serve_with_two_workers_sharing_only_redis(
    process_env: dict[str, str], redis: Redis
) -> None:
    port = free_port()
    served = ChatctlProcess(["serve", "--workers", "2"], process_env | {"PORT": str(port)}, port)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            replies = [
                await client.post(f"http://127.0.0.1:{port}/api/chat", json={"message": FIRST})
                for _ in range(6)
            ]
        assert {r.status_code for r in replies} == {200}
        # every scrape sums both workers (one scrape saw one worker: 19 or 21 of 40, issue 17)
        async with httpx.AsyncClient(timeout=10) as client:
            scrapes = [
                (await client.get(f"http://127.0.0.1:{port}/metrics")).text for _ in range(6)
            ]
        assert [sample_sum(text, "gateway_requests_total{") for text in scrapes] == [6.0] * 6
        for _ in range(50):
            shown = json.loads(chatctl(process_env, "flags", "show", "--json").stdout)
            if len(shown["instances"]) == 2:
                break
            await asyncio.sleep(0.1)
        assert len({i["pid"] for i in shown["instances"]}) == 2
    finally:
        served.stop()
    refused = chatctl(process_env | {"SESSION_SECRET": ""}, "serve", "--workers", "2")
    assert refused.returncode == 2
    assert "SESSION_SECRET" in refused.stderr


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    found.append(int(entry.name))
    return found


async def test_workers_exit_when_their_master_is_killed(process_env: dict[str, str]) -> None:
    """kill -9 of the `serve --workers` master left its workers serving the port, orphaned
    (a fresh helper, issue 17): they now get SIGTERM with it and the port is free again."""
    port = free_port()
    served = ChatctlProcess(["serve", "--workers", "2"], process_env | {"PORT": str(port)}, port)
    workers: list[int] = []
    for _ in range(100):  # uvicorn's master starts them, then they import the app
        workers = _children(served.process.pid)
        if len(workers) >= 2:
            break
        await asyncio.sleep(0.1)
    async with httpx.AsyncClient(timeout=10) as client:  # each worker has built its app
        for _ in range(4):
            assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    served.process.kill()
    served.process.wait()
    for _ in range(100):
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
        if not alive:
            break
        await asyncio.sleep(0.1)
    assert alive == []
    assert not wait_for_port(port, timeout=0.5)
    # its metrics folder outlived it (SIGKILL); the next `serve --workers` removes it
    left = list(Path(tempfile.gettempdir()).glob(f"chat-gateway-metrics-{served.process.pid}-*"))
    assert left
    again = ChatctlProcess(["serve", "--workers", "2"], process_env | {"PORT": str(port)}, port)
    again.stop()
    assert not any(folder.exists() for folder in left)
