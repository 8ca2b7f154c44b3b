"""The whole stack in the foreground for `make run`: redis-server (when REDIS_URL is unset), the
chat server and a lead worker. Ctrl-C (or any child dying) stops everything it started.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

STATE_DIR = Path("var")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def persistent_secret(name: str) -> str:
    """A random secret kept under var/ so restarts of the local stack keep cookies valid."""
    path = STATE_DIR / name
    if not path.exists():
        STATE_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def start_redis(port: int) -> subprocess.Popen[bytes]:
    data = STATE_DIR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data.resolve()),
            "--save",
            "60 1",
            "--appendonly",
            "no",
            "--logfile",
            str((data / "redis-server.log").resolve()),
        ],
    )


def run_stack(environ: Mapping[str, str]) -> int:
    env = dict(environ)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    if not env.get("REDIS_URL"):
        port = 6379 if port_is_free(6379) else free_port()
        children.append(("redis-server", start_redis(port)))
        if not wait_for_port(port):
            print("error: local redis-server did not start; see var/redis/redis-server.log")
            return 1
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    env.setdefault("SESSION_SECRET", persistent_secret("session_secret"))
    env.setdefault("CRON_SECRET", persistent_secret("cron_secret"))
    chatctl = str(Path(sys.executable).with_name("chatctl"))
    children.append(("chat server", subprocess.Popen([chatctl, "serve"], env=env)))
    children.append(("lead worker", subprocess.Popen([chatctl, "worker"], env=env)))
    api_port = env.get("PORT", "3000")
    print(
        f"\nchat stack running (Ctrl-C stops it)\n"
        f"  chat API     http://localhost:{api_port}/api/chat\n"
        f"  REDIS_URL    {env['REDIS_URL']}   (export it for the runbook's redis-cli commands)\n"
        f"  CRON_SECRET  in var/cron_secret\n"
        f"  logs         {env.get('LOG_FILE', 'logs/application.log')}\n",
        flush=True,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children:
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the stack")
                exit_code = 1
                stopping = True
        time.sleep(0.2)
    for _, child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for _, child in reversed(children):
        try:
            child.wait(timeout=25)
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code
