"""The site's nginx config with a real nginx, the gateway process and the PHP legacy: routing,
the fallback when the gateway is down, and `chatctl rollback full` (and `--undo`) under traffic."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

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


class Nginx:
    def __init__(self, workdir: Path, site_env: dict[str, str]) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.conf = workdir / "nginx.conf"
        self.site = workdir / "chat-system.conf"
        self.conf.write_text(
            f"worker_processes 1;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{ access_log off; client_body_temp_path {workdir}/body; "
            f"proxy_temp_path {workdir}/proxy; include {self.site}; }}\n"
        )
        self.env = site_env | {
            "NGINX_SITE_FILE": str(self.site),
            "NGINX_CONF": str(self.conf),
            "NGINX_LISTEN": f"127.0.0.1:{self.port}",
            "NGINX_VERIFY_URL": f"http://127.0.0.1:{self.port}/api/chat",
        }
        rendered = chatctl(self.env, "nginx", "render", "--out", str(self.site), "--check")
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        self.process = subprocess.Popen(
            ["nginx", "-c", str(self.conf), "-p", str(workdir), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert wait_for_port(self.port)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGQUIT)
        self.process.wait(timeout=15)


@pytest.fixture
def site(
    gateway_env: dict[str, str], legacy: PhpLegacy, redis: Redis, tmp_path: Path
) -> Iterator[tuple[Nginx, ChatctlProcess]]:
    if shutil.which("nginx") is None:
        pytest.fail("nginx is not installed; run `make test` (it installs nginx-light)")
    port = free_port()
    gateway = ChatctlProcess(
        ["serve"], gateway_env | {"PORT": str(port), "LOG_LEVEL": "WARNING"}, port
    )
    env = gateway_env | {
        "GATEWAY_UPSTREAM": f"127.0.0.1:{port}",
        "LEGACY_UPSTREAM": f"127.0.0.1:{legacy.port}",
    }
    nginx = Nginx(tmp_path, env)
    yield nginx, gateway
    nginx.stop()
    gateway.stop()


async def test_nginx_routes_chat_through_the_gateway_and_falls_back_when_it_is_down(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, gateway = site
    url = f"http://127.0.0.1:{nginx.port}"
    async with httpx.AsyncClient(timeout=10) as client:
        through = await client.post(f"{url}/api/chat", json={"message": FIRST})
        home = await client.get(f"{url}/")
        assert through.status_code == 200
        assert through.headers["x-chat-backend"] == "legacy"  # the gateway chose and said so
        assert "server" not in through.headers or "nginx/" not in through.headers["server"]
        assert home.status_code == 200
        assert "Legacy site home page" in home.text
        gateway.stop()
        client.cookies.clear()  # a new visitor
        fallback = await client.post(f"{url}/api/chat", json={"message": FIRST})
        assert fallback.status_code == 200  # a gateway outage is not a chat outage
        assert "x-chat-backend" not in fallback.headers
        assert fallback.json()["step"] == "name"


async def test_rollback_full_and_undo_under_traffic_without_failed_requests(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, _ = site
    url = f"http://127.0.0.1:{nginx.port}/api/chat"
    statuses: list[int] = []
    errors: list[str] = []
    stop = asyncio.Event()

    async def visitor() -> None:
        """Like a browser: a request that dies on a reused keep-alive connection before any
        byte of the reply (the connection-close race of every graceful reload) is sent again."""
        async with httpx.AsyncClient(timeout=10) as client:
            while not stop.is_set():
                client.cookies.clear()
                for attempt in (1, 2):
                    try:
                        response = await client.post(url, json={"message": FIRST})
                    except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
                        if attempt == 2:
                            statuses.append(0)
                            errors.append(repr(exc))
                        continue
                    except httpx.HTTPError as exc:
                        statuses.append(0)
                        errors.append(repr(exc))
                    else:
                        statuses.append(response.status_code)
                    break

    tasks = [asyncio.create_task(visitor()) for _ in range(4)]
    await asyncio.sleep(0.3)
    dry = await asyncio.to_thread(chatctl, nginx.env, "rollback", "full", "--dry-run")
    assert dry.returncode == 0
    assert "mode: gateway" in nginx.site.read_text().lower()  # dry run changed nothing
    full = await asyncio.to_thread(chatctl, nginx.env, "rollback", "full")
    async with httpx.AsyncClient(timeout=10) as client:
        direct = await client.post(url, json={"message": FIRST})
    undo = await asyncio.to_thread(chatctl, nginx.env, "rollback", "full", "--undo")
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*tasks)
    assert full.returncode == 0, full.stdout + full.stderr
    assert "verified: HTTP 200 from legacy PHP directly" in full.stdout
    assert "x-chat-backend" not in direct.headers
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert "verified: HTTP 200 from the gateway" in undo.stdout
    assert len(statuses) > 20
    assert set(statuses) == {200}, errors
    history = chatctl(nginx.env, "flags", "history")
    assert "nginx./api/chat: gateway -> legacy" in history.stdout
    assert "nginx./api/chat: legacy -> gateway" in history.stdout


async def test_rollback_full_refuses_a_config_nginx_rejects(
    site: tuple[Nginx, ChatctlProcess],
) -> None:
    nginx, _ = site
    before = nginx.site.read_text()
    broken = nginx.env | {"LEGACY_UPSTREAM": "127.0.0.1:99999"}  # port out of range
    result = await asyncio.to_thread(chatctl, broken, "rollback", "full")
    assert result.returncode == 1
    assert "FAILED nginx -t" in result.stdout
    assert nginx.site.read_text() == before  # the previous config is back
