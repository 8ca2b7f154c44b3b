"""Where a request's CPU goes: the gateway app driven in-process, no HTTP server, under cProfile.

    .venv/bin/python -m bench.profile [--backend legacy|new] [--turn first|later]
                                      [--requests 3000] [--top 25]

Starts a redis-server and the legacy as production runs it (nginx + php-fpm), builds the gateway
app from the environment (as `chatctl serve` does), runs its lifespan, then sends the benchmark's
chat POST through the ASGI app one request at a time: CPU microseconds per request without and
with the profiler, and the functions with the most cumulative time. `--turn later` sends every
request as a later turn of one conversation (its cookies and `sessionId`, as a browser would),
instead of a new conversation each time. The log goes to a temporary file only
(`LOG_STDOUT=false`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import uvloop

from bench.gateway import BODY, _workdir, legacy_backend
from tests.support.processes import RedisServer

Message = dict[str, Any]


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    """The app's ASGI lifespan: startup on entry, shutdown on exit."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            stopped.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                   inbox.get, send))  # fmt: skip
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await stopped.wait()
        await task


async def one_request(app: Any, scope: Message, body: bytes) -> tuple[int, list[bytes], bytes]:
    """(status, Set-Cookie values, body) of one request through the app."""
    status, cookies, chunks = 0, [], []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            cookies.extend(v for k, v in message["headers"] if k == b"set-cookie")
        else:
            chunks.append(message.get("body", b""))

    await app(dict(scope), receive, send)
    return status, cookies, b"".join(chunks)


def as_later_turn(scope: Message, cookies: list[bytes], reply: bytes) -> tuple[Message, bytes]:
    """The scope and body of the conversation's next turn, as a browser would send it."""
    session_id = msgspec.json.decode(reply)["sessionId"]
    jar = b"; ".join(cookie.split(b";", 1)[0] for cookie in cookies)
    body = msgspec.json.encode({"message": "Ann Lee", "sessionId": session_id})
    headers = [h for h in scope["headers"] if h[0] != b"content-length"]
    headers += [(b"cookie", jar), (b"content-length", str(len(body)).encode())]
    return scope | {"headers": headers}, body


async def profile(backend: str, turn: str, requests: int, top: int) -> None:
    from proxy.asgi import app as build  # noqa: PLC0415 - reads the environment set below

    app = build()
    query = b"debug=echo" if backend == "legacy" else b""
    scope: Message = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/chat", "raw_path": b"/api/chat", "root_path": "",
        "query_string": query, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 3000),
        "headers": [(b"host", b"chat.example"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(BODY)).encode())],
    }  # fmt: skip
    body = BODY.encode()
    async with running(app):
        if turn == "later":
            _, cookies, reply = await one_request(app, scope, body)
            scope, body = as_later_turn(scope, cookies, reply)
        statuses = {(await one_request(app, scope, body))[0] for _ in range(200)}  # warm up
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(requests):
            await one_request(app, scope, body)
        plain = (time.process_time() - cpu) / requests * 1e6
        latency = (time.perf_counter() - wall) / requests * 1e6
        profiler = cProfile.Profile()
        cpu = time.process_time()
        profiler.enable()
        for _ in range(requests):
            await one_request(app, scope, body)
        profiler.disable()
        profiled = (time.process_time() - cpu) / requests * 1e6
    print(f"{backend}, {turn} turns: statuses {sorted(statuses)}; per request, one at a time: "
          f"{latency:.0f} µs, of which CPU {plain:.0f} µs ({profiled:.0f} µs under the profiler, "
          "which inflates small calls)")  # fmt: skip
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("legacy", "new"), default="legacy")
    parser.add_argument("--turn", choices=("first", "later"), default="first")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    workdir, _ = _workdir()
    redis = RedisServer(workdir)
    try:
        with legacy_backend(workdir) as legacy_port:
            os.environ.update({
                "REDIS_URL": redis.url,
                "LEGACY_URL": f"http://127.0.0.1:{legacy_port}/api/chat",
                "NEW_CHAT_PERCENT": "100" if args.backend == "new" else "0",
                "SESSION_SECRET": "bench-secret",
                "LOG_FILE": str(workdir / "gateway.log"),
                "LOG_STDOUT": "false",
                "RATE_LIMIT_PER_MINUTE": "100000000",
            })  # fmt: skip
            uvloop.run(profile(args.backend, args.turn, args.requests, args.top))
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
