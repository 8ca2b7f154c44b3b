"""Real server processes for tests (redis-server, the PHP legacy stand-in, chatctl), each on a
free port and waited for until it answers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from chatctl import free_port, wait_for_port

__all__ = ["ISOLATED", "ChatctlProcess", "PhpLegacy", "RedisServer", "free_port", "wait_for_port"]

ISOLATED = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CHATCTL_ENV_FILE": "/dev/null"}
"""The environment every `chatctl` process of the tests starts from: no settings of a `make run`
stack that may be running in this folder (var/stack.env)."""


class RedisServer:
    """A throwaway redis-server, loopback only, stopped at the end. Without persistence unless
    `persistent`, then with `make run`'s: AOF synced every second (`appendfsync everysec`)."""

    def __init__(self, workdir: Path, *, persistent: bool = False, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; run `make test` (it installs it)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if persistent else []
        self._command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *persistence,
            "--dir",
            str(workdir),
        ]
        self._process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_for_port(self.port):
            process.kill()
            raise RuntimeError(f"redis-server did not start on port {self.port}")
        return process

    def kill(self) -> None:
        """`kill -9`: no shutdown save, connections reset."""
        self._process.kill()
        self._process.wait(timeout=10)

    def restart(self) -> None:
        """Starts it again on the same port and folder (after `kill` or `stop`)."""
        self._process = self._start()

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


LEGACY_ROUTER = Path(__file__).resolve().parents[1] / "legacy_php" / "router.php"


class PhpLegacy:
    """The legacy stand-in under a real `php -S` (several workers), state in its own folder."""

    def __init__(self, workdir: Path, workers: int = 4) -> None:
        binary = shutil.which("php")
        if binary is None:
            raise RuntimeError("php is not installed; run `make test` (it installs php-cli)")
        self.data_dir = workdir
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.origin}/api/chat"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LEGACY_DATA_DIR": str(workdir),
            "PHP_CLI_SERVER_WORKERS": str(workers),
            "LEGACY_TEST_HOOKS": "1",
        }
        self._process = subprocess.Popen(
            [binary, "-S", f"127.0.0.1:{self.port}", str(LEGACY_ROUTER)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its workers share the group, so stop() reaches them all
        )
        if not wait_for_port(self.port):
            raise RuntimeError(f"php -S did not start on port {self.port}")

    def leads(self) -> list[dict[str, object]]:
        path = self.data_dir / "leads.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def reset(self) -> None:
        for child in ("sessions", "shadow_sessions"):
            shutil.rmtree(self.data_dir / child, ignore_errors=True)
        (self.data_dir / "leads.jsonl").unlink(missing_ok=True)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGTERM)
        self._process.wait(timeout=10)


class ChatctlProcess:
    """`chatctl <args>` as a real process (a gateway, a worker), stopped with SIGTERM."""

    def __init__(self, args: list[str], env: dict[str, str], port: int | None = None) -> None:
        chatctl = Path(sys.executable).with_name("chatctl")
        self.port = port
        self.process = subprocess.Popen(
            [str(chatctl), *args],
            env={**ISOLATED, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if port is not None and not wait_for_port(port, timeout=20):
            self.stop()
            output = self.process.stdout.read().decode() if self.process.stdout else ""
            raise RuntimeError(f"chatctl {' '.join(args)} did not listen on {port}: {output}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_chatctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`chatctl <args>` to completion, with only `env` (and PATH) in its environment."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("chatctl")), *args],
        env={**ISOLATED, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
