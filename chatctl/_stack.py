"""`chatctl stack`, the whole stack in the foreground for `make run`: redis-server (when
REDIS_URL is unset), the PHP legacy stand-in (when LEGACY_URL is unset), the gateway with the new
engine in-process, and a lead worker. Ctrl-C (or any child dying) stops everything it started.

While it runs, `var/stack.env` holds its settings (ports, Redis URL, secrets; mode 0600), so
every other `chatctl` command in this folder works against it; it is removed on the way out.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import typer

from chatctl._support import STACK_ENV_FILE, write_env_file

STATE_DIR = STACK_ENV_FILE.parent
LEGACY_ROUTER = Path(__file__).resolve().parents[1] / "tests" / "legacy_php" / "router.php"
SHARED_SETTINGS = (
    "PORT",
    "REDIS_URL",
    "LEGACY_URL",
    "SESSION_SECRET",
    "CRON_SECRET",
    "LOG_FILE",
    "GATEWAY_URL",
)
"""What `var/stack.env` tells the other commands."""


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
        # 0600 from creation: never readable by others, not even between write and chmod
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
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
            # every write logged and synced each second: a crash loses at most a second of
            # flags, sessions, pins and leads (a kill -9 with RDB alone undid a rollback)
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--logfile",
            str((data / "redis-server.log").resolve()),
        ],
        umask=0o077,  # its files hold contact details: 0600 from creation
    )


def start_legacy_php(port: int, environ: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """The demo legacy backend: the tests' PHP stand-in under `php -S` with four workers."""
    data = STATE_DIR / "legacy"
    data.mkdir(parents=True, exist_ok=True)
    env = dict(environ) | {
        "LEGACY_DATA_DIR": str(data.resolve()),
        "PHP_CLI_SERVER_WORKERS": "4",
        "LEGACY_TEST_HOOKS": "0",  # ?debug=echo and ?sleep_ms= are the tests' alone
    }
    log = (data / "php-server.log").open("ab")
    return subprocess.Popen(
        [shutil.which("php") or "php", "-S", f"127.0.0.1:{port}", str(LEGACY_ROUTER)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers share the group; stopping the group stops them
        umask=0o077,  # its sessions and leads.jsonl hold contact details
    )


def run_stack(environ: Mapping[str, str]) -> int:
    env = dict(environ)
    gateway_port = env.get("PORT", "") or "3000"
    if gateway_port.isdigit() and not port_is_free(int(gateway_port)):
        print(
            f"error: port {gateway_port} is in use (another `make run` in this folder?); nothing "
            f"was started. Stop it first, or run on another port: PORT=3001 make run"
        )
        return 1
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    if not env.get("REDIS_URL"):
        port = 6379 if port_is_free(6379) else free_port()
        children.append(("redis-server", start_redis(port)))
        if not wait_for_port(port):
            print("error: local redis-server did not start; see var/redis/redis-server.log")
            return 1
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    if not env.get("LEGACY_URL"):
        legacy_port = 8080 if port_is_free(8080) else free_port()
        children.append(("legacy PHP stand-in", start_legacy_php(legacy_port, environ)))
        if not wait_for_port(legacy_port):
            print("error: the PHP stand-in did not start; see var/legacy/php-server.log")
            _stop_all(children)
            return 1
        env["LEGACY_URL"] = f"http://127.0.0.1:{legacy_port}/api/chat"
    env.setdefault("SESSION_SECRET", persistent_secret("session_secret"))
    env.setdefault("CRON_SECRET", persistent_secret("cron_secret"))
    env.setdefault("PORT", "3000")
    env.setdefault("GATEWAY_URL", f"http://127.0.0.1:{env['PORT']}")
    write_env_file(STACK_ENV_FILE, {name: env[name] for name in SHARED_SETTINGS if name in env})
    chatctl = str(Path(sys.executable).with_name("chatctl"))
    children.append(("gateway", subprocess.Popen([chatctl, "serve"], env=env)))
    children.append(("lead worker", subprocess.Popen([chatctl, "worker"], env=env)))
    api_port = env["PORT"]
    print(
        f"\nchat stack running (Ctrl-C stops it)\n"
        f"  chat API     http://localhost:{api_port}/api/chat   (gateway; new engine in-process)\n"
        f"  legacy       {env['LEGACY_URL']}\n"
        f"  flags        .venv/bin/chatctl flags show | set new_chat_percent 50 --reason demo\n"
        f"  settings     {STACK_ENV_FILE} (every chatctl command here reads it)\n"
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
    _stop_all(children)
    STACK_ENV_FILE.unlink(missing_ok=True)
    return exit_code


def _stop_all(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, child in reversed(children):
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(child.pid) == child.pid:
                    os.killpg(child.pid, signal.SIGTERM)
                else:
                    child.send_signal(signal.SIGTERM)
    for _, child in reversed(children):
        try:
            child.wait(timeout=25)
        except subprocess.TimeoutExpired:
            child.kill()


def stack() -> None:
    """Run the whole stack in the foreground (what `make run` does); Ctrl-C stops it all."""
    raise typer.Exit(run_stack(os.environ))  # the process's own environment, not var/stack.env
