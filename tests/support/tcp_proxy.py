"""A TCP proxy in front of a real server, to make outages a test can switch: `up` (pass bytes
both ways), `down` (accept and close at once: connection reset) or `hang` (accept, read, never
answer). It keeps every HTTP request line and `If-None-Match` it carried, for counting polls."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from typing import Literal

from tests.support.processes import free_port

Mode = Literal["up", "down", "hang", "garbage"]
GARBAGE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n"
           b"Connection: close\r\n\r\n" + b'{"version":2,"features":"garbage<html>"}')  # fmt: skip
"""What `garbage` answers every request with: a 200 that is not a feature set."""
_REQUEST = re.compile(rb"^(GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n", re.MULTILINE)
_ETAG = re.compile(rb"^if-none-match: *(.+?)\r$", re.MULTILINE | re.IGNORECASE)


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode: Mode = "up"
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request seen, in order."""
        self.conditional = 0
        """Requests that carried `If-None-Match` (an ETag poll)."""
        self.metrics_bodies: list[bytes] = []
        """What the SDK sent to `/api/client/metrics` (each read that carried such a request)."""
        self._lock = threading.Lock()
        self._held: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/api") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while self._open:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            mode = self.mode
            if mode == "down":
                client.close()
            elif mode == "garbage":
                threading.Thread(target=self._garbage, args=(client,), daemon=True).start()
            elif mode == "hang":
                with self._lock:
                    self._held.append(client)  # read nothing, answer nothing
            else:
                threading.Thread(target=self._pipe_pair, args=(client,), daemon=True).start()

    def _garbage(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            client.settimeout(5)
            client.recv(65536)
            client.sendall(GARBAGE)
        client.close()

    def _pipe_pair(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            while data := source.recv(65536):
                if requests:
                    self._note(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.close()

    def _note(self, data: bytes) -> None:
        with self._lock:
            for match in _REQUEST.finditer(data):
                self.requests.append((match.group(1).decode(), match.group(2).decode()))
                if match.group(2).startswith(b"/api/client/metrics"):
                    self.metrics_bodies.append(data)
            self.conditional += len(_ETAG.findall(data))

    @property
    def hanging(self) -> int:
        """Connections held open unanswered (`hang` mode)."""
        with self._lock:
            return len(self._held)

    def paths(self, prefix: str) -> list[str]:
        with self._lock:
            return [path for _, path in self.requests if path.startswith(prefix)]

    def stop(self) -> None:
        self._open = False
        self._listener.close()
        with self._lock:
            for held in self._held:
                held.close()
            self._held.clear()
