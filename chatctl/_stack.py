"""`chatctl stack`, the whole stack in the foreground for `make run`: redis-server (when
REDIS_URL is unset), the PHP legacy stand-in (when LEGACY_URL is unset), the gateway with the new
engine in-process, and a lead worker, under a small supervisor: a child that dies is restarted
with backoff (1 s doubling to 30 s, reset after 30 s up), as systemd's `Restart=always` does in
production (deploy/systemd), so a Redis crash or a worker bug never takes legacy down with it. Ctrl-C
stops the children in reverse order, each before the next (workers, then legacy, then Redis), so
none of them sees another vanish and logs a spurious error.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    "UNLEASH_URL",
    "UNLEASH_API_TOKEN",
    "UNLEASH_ADMIN_TOKEN",
    "UNLEASH_PROJECT",
    "UNLEASH_ENVIRONMENT",
    "UNLEASH_TOGGLE",
    "UNLEASH_SHADOW_TOGGLE",
    "RECORD_KEY",
    "SHADOW_VALUE_KEY",
)
"""What `var/stack.env` tells the other commands (the Unleash settings when the stack uses
Unleash, so `flags set` and `rollback flags` change it as the gateway reads it)."""


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
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        # 0600 from creation: never readable by others, not even between write and chmod
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def start_redis(port: int, password: str) -> subprocess.Popen[bytes]:
    """The stack's redis-server: loopback, a password (anyone on the host could otherwise flip
    flags unaudited, or the stack could quietly end up on another Redis that took the port), an
    append-only file. Its settings are in a 0600 file, so the password is not on a command line
    `ps` shows."""
    data = STATE_DIR / "redis"
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = data / "redis.conf"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(
            f"port {port}\nbind 127.0.0.1\ndir {data.resolve()}\nrequirepass {password}\n"
            f"logfile {(data / 'redis-server.log').resolve()}\n"
            # every write logged and synced each second: a crash loses at most a second of
            # flags, sessions, pins and leads (a kill -9 with RDB alone undid a rollback)
            'save "60 1"\nappendonly yes\nappendfsync everysec\n'
        )
    return subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", str(config.resolve())],
        start_new_session=True,  # Ctrl-C reaches the supervisor, which stops Redis last
        umask=0o077,  # its files hold contact details: 0600 from creation
    )


def start_legacy_php(port: int, environ: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """The demo legacy backend: the tests' PHP stand-in under `php -S` with four workers."""
    data = STATE_DIR / "legacy"
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
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


RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
STABLE_AFTER = 30.0
"""A child up this long has recovered: its next crash restarts after `RESTART_FIRST_DELAY`
again (systemd's `RestartSec` growing as with `RestartSteps`/`RestartMaxDelaySec`)."""


@dataclass
class Child:
    """One supervised process: how to start it, and when it may be started again."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay: float = RESTART_FIRST_DELAY
    restart_at: float | None = None
    restarts: int = field(default=0)
    log: Path | None = None
    """Where the child writes why it stopped (its last line is shown with the restart)."""

    def launch(self) -> None:
        self.process = self.start()
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> None:
        """Schedules a restart when the process has exited; performs one that is due."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                print(f"{self.name}: restarting (restart {self.restarts})", flush=True)
                self.launch()
            return
        if self.process is None or self.process.poll() is None:
            return
        if now - self.started_at >= STABLE_AFTER:
            self.delay = RESTART_FIRST_DELAY
        reason = f" ({last_line(self.log)})" if self.log is not None else ""
        print(
            f"{self.name} exited with {self.process.returncode}{reason}; "
            f"restarting in {self.delay:g} s",
            flush=True,
        )
        self.restart_at = now + self.delay
        self.delay = min(self.delay * 2, RESTART_MAX_DELAY)


def last_line(path: Path) -> str:
    """The last non-empty line of a log (at most 200 characters), or "" when there is none."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
            lines = [line for line in log.read().decode(errors="replace").splitlines() if line]
    except OSError:
        return ""
    return lines[-1][-200:] if lines else ""


def run_stack(environ: Mapping[str, str]) -> int:
    env = dict(environ)
    gateway_port = env.get("PORT", "") or "3000"
    if gateway_port.isdigit() and not port_is_free(int(gateway_port)):
        print(
            f"error: port {gateway_port} is in use (another `make run` in this folder?); nothing "
            f"was started. Stop it first, or run on another port: PORT=3001 make run"
        )
        return 1
    children: list[Child] = []
    if not env.get("REDIS_URL"):
        port = 6379 if port_is_free(6379) else free_port()
        password = persistent_secret("redis_password")
        redis_log = STATE_DIR / "redis" / "redis-server.log"
        children.append(Child("redis-server", lambda: start_redis(port, password), log=redis_log))
        children[-1].launch()
        if not wait_for_port(port):
            print("error: local redis-server did not start; see var/redis/redis-server.log")
            _stop_all(children)
            return 1
        # "default" named: redis-cli 7.0 reads an empty user name as a user called ""
        env["REDIS_URL"] = f"redis://default:{password}@127.0.0.1:{port}/0"
    if not env.get("LEGACY_URL"):
        legacy_port = 8080 if port_is_free(8080) else free_port()
        children.append(
            Child("legacy PHP stand-in", lambda: start_legacy_php(legacy_port, environ))
        )
        children[-1].launch()
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
    for name, command in (("gateway", "serve"), ("lead worker", "worker")):
        children.append(Child(name, _chatctl_starter(chatctl, command, env)))
        children[-1].launch()
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
    while not stopping:
        now = time.monotonic()
        for child in children:
            child.check(now)
        time.sleep(0.2)
    _stop_all(children)
    STACK_ENV_FILE.unlink(missing_ok=True)
    return 0


def _chatctl_starter(
    chatctl: str, command: str, env: Mapping[str, str]
) -> Callable[[], subprocess.Popen[bytes]]:
    def start() -> subprocess.Popen[bytes]:
        # its own session: Ctrl-C in the terminal reaches the supervisor alone
        return subprocess.Popen([chatctl, command], env=env, start_new_session=True)

    return start


def _stop_all(children: list[Child]) -> None:
    """Stops the children in reverse start order, each before the next, so the gateway and the
    worker leave while Redis and legacy still answer."""
    for child in reversed(children):
        process = child.process
        if process is None or process.poll() is not None:
            continue
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stack() -> None:
    """Run the whole stack in the foreground (what `make run` does): crashed children restart
    with backoff; Ctrl-C stops it all."""
    raise typer.Exit(run_stack(os.environ))  # the process's own environment, not var/stack.env
