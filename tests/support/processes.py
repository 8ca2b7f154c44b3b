"""Real server processes for tests: redis-server on a free port, waited for until it answers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from newchat.stack import free_port, wait_for_port

__all__ = ["RedisServer", "free_port", "wait_for_port"]


class RedisServer:
    """A throwaway redis-server: no persistence, loopback only, stopped at the end."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; run `make test` (it installs it)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for_port(self.port):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
