"""`chatctl stack` (what `make run` runs) as a supervisor: a crashed child comes back by itself,
the others keep serving meanwhile, and Ctrl-C stops everything without an error line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis

from chatctl import read_env_file
from tests.support.processes import ISOLATED, free_port

pytestmark = pytest.mark.slow

CHATCTL = str(Path(sys.executable).with_name("chatctl"))


def until(predicate: object, within: float, what: str) -> object:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {within} s: {what}")


def worker_pids(redis: Redis) -> set[int]:
    return {int(key.rsplit(b":", 1)[1]) for key in redis.keys("worker:heartbeat:*")}


def test_a_killed_worker_comes_back_and_ctrl_c_stops_all_without_an_error(tmp_path: Path) -> None:
    port = free_port()
    log_file = tmp_path / "logs" / "application.log"
    env = ISOLATED | {
        "PORT": str(port),
        "LOG_FILE": str(log_file),
        "LOG_STDOUT": "false",
        "CHATCTL_ENV_FILE": "",
    }
    output = (tmp_path / "stack.out").open("wb")
    stack = subprocess.Popen(
        [CHATCTL, "stack"], cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT
    )
    redis: Redis | None = None
    try:
        settings = tmp_path / "var" / "stack.env"
        until(settings.exists, 30, "the stack writes var/stack.env")
        redis = Redis.from_url(read_env_file(settings)["REDIS_URL"])
        (first,) = until(lambda: worker_pids(redis), 30, "the worker's heartbeat")  # type: ignore[misc]

        os.kill(first, signal.SIGKILL)
        until(lambda: worker_pids(redis) - {first}, 30, "a new worker after the crash")
        chat = httpx.post(f"http://127.0.0.1:{port}/api/chat", json={"message": "hello"})
        assert chat.status_code == 200  # the gateway served throughout

        stack.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert stack.wait(timeout=60) == 0
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()
        if redis is not None:
            redis.close()
        output.close()
    said = (tmp_path / "stack.out").read_text()
    assert f"lead worker exited with {-signal.SIGKILL}; restarting in 1 s" in said
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line]
    errors = [line for line in lines if str(line.get("level")).lower() in ("error", "critical")]
    assert errors == []
    assert not settings.exists()  # removed on the way out
    with pytest.raises(httpx.ConnectError):  # the gateway is gone with the rest
        httpx.get(f"http://127.0.0.1:{port}/healthz")
