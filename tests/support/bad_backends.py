"""Backends that misbehave at the TCP/HTTP level: garbage replies and replies that never come.

Run in a thread with their own event loop, so the gateway under test talks to them over real
sockets. Each counts the connections it accepted (to check what reached it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Literal

from chatctl import free_port

Behaviour = Literal["garbage", "hang", "close", "crash", "scripted"]

CRASH_SESSION = "c" * 32
"""The session id the `crash` backend's 500 reply names."""


class BadBackend:
    def __init__(
        self, behaviour: Behaviour, status: int = 500, raw: bytes | Mapping[str, bytes] = b""
    ) -> None:
        self.behaviour = behaviour
        self.status = status
        """What `crash` answers with."""
        self.raw = raw
        """What `scripted` answers, byte for byte: to every request, or, keyed by case, to the
        request whose target names it in `?case=`."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/chat"
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._server = server
        self._ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if self.behaviour == "garbage":
                writer.write(b"this is not HTTP at all\r\n\x00\x01\r\n\r\n")
                await writer.drain()
            elif (
                self.behaviour == "crash"
            ):  # a well-formed error reply (500: an engine that raised)
                body = b'{"error":"internal","sessionId":"' + CRASH_SESSION.encode() + b'"}'
                head = b"HTTP/1.1 %d Error\r\ncontent-type: application/json\r\n" % self.status
                writer.write(head + b"content-length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
            elif self.behaviour == "scripted":
                if isinstance(self.raw, bytes):
                    writer.write(self.raw)
                else:
                    target = head.split(b" ", 2)[1].decode("latin-1")
                    writer.write(self.raw[target.partition("case=")[2]])
                await writer.drain()
            elif self.behaviour == "hang":
                await asyncio.sleep(3600)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError, KeyError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
