"""The gateway forwards legacy's replies as nginx `proxy_pass` does: a corpus of replies (HEAD,
204, 304, 1xx, trailers, several Set-Cookie, chunked, close-delimited, large and non-ASCII
header values) goes through a real nginx and through a real gateway process in the same test,
and status, end-to-end headers and body must match. The exceptions are listed in `EXPECTED`
and in the README ("Legacy forwarding")."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.bad_backends import BadBackend
from tests.support.processes import ChatctlProcess, free_port, wait_for_port

pytestmark = pytest.mark.slow

CORPUS: dict[str, tuple[str, bytes]] = {
    "plain": (
        "GET",
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n"
        b'{"ok":true}',
    ),
    "head": ("HEAD", b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 123\r\n\r\n"),
    "no_content": ("GET", b"HTTP/1.1 204 No Content\r\nx-kept: 1\r\n\r\n"),
    "not_modified": (
        "GET",
        b'HTTP/1.1 304 Not Modified\r\netag: "v1"\r\ncontent-length: 25\r\n\r\n',
    ),
    "interim": (
        "GET",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    ),
    "trailers": (
        "GET",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: set-cookie\r\n\r\n"
        b"5\r\nhello\r\n0\r\nset-cookie: planted=1\r\n\r\n",
    ),
    "cookies": (
        "POST",
        b"HTTP/1.1 200 OK\r\nset-cookie: a=1; Path=/\r\nset-cookie: b=2; HttpOnly\r\n"
        b"set-cookie: c=3; Max-Age=60\r\ncontent-length: 2\r\n\r\nok",
    ),
    "chunked": (
        "POST",
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    ),
    "close_delimited": ("GET", b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil close"),
    "large_header": (
        "GET",
        b"HTTP/1.1 200 OK\r\nx-large: " + b"a" * 3000 + b"\r\ncontent-length: 2\r\n\r\nok",
    ),
    "non_ascii": ("GET", b"HTTP/1.1 200 OK\r\nx-name: caf\xe9\r\ncontent-length: 2\r\n\r\nok"),
    "server_error": (
        "POST",
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\ncontent-length: 4\r\n"
        b"\r\noops",
    ),
}

MALFORMED: dict[str, tuple[str, bytes]] = {
    "two_lengths": ("GET", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok"),
    "length_and_chunked": (
        "GET",
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n",
    ),
}
"""Framings the gateway refuses with the contract's JSON 502 (`legacy_bad_reply`), where nginx
1.22 is no anchor: with two lengths it sends the last and a truncated body, and with a length
and chunked coding it follows the chunks (RFC 9112 §6.3 lets a recipient do either; refusing
is the request-smuggling defence). Listed in the README's exceptions."""
CORPUS |= MALFORMED

HOP_OR_SERVER = {"connection", "keep-alive", "transfer-encoding", "date", "server"}
"""Each hop's own (framing, connection, its date and name): never compared."""
EXPECTED = {"x-chat-backend", "trailer"}
"""The exceptions, each on purpose: the gateway adds `X-Chat-Backend` (which backend answered,
the contract's label) and drops `Trailer` (RFC 9110 §6.6.2: it announces trailer fields, and
neither nginx nor the gateway forwards any, so nginx passing the announcement on is false).
With the default `STRIPPED_REPLY_HEADERS` the gateway also drops `X-Powered-By` and `Server`
(set empty here, as the anchor strips nothing)."""


@pytest.fixture
def anchor_and_gateway(gateway_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(nginx port, gateway port), both in front of the same scripted legacy."""
    if shutil.which("nginx") is None:
        pytest.fail("nginx is not installed; run `make test` (it installs nginx-light)")
    replies = {case: raw for case, (_, raw) in CORPUS.items()}
    legacy = BadBackend("scripted", raw=replies)  # each request answered by its `?case=`
    nginx_port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}/body; "
        f"proxy_temp_path {tmp_path}/proxy;\n"
        f"  server {{ listen 127.0.0.1:{nginx_port};\n"
        f"    location / {{ proxy_pass http://127.0.0.1:{legacy.port}; "
        'proxy_http_version 1.1; proxy_set_header Connection ""; }\n  }\n}\n'
    )
    nginx = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    gateway_port = free_port()
    env = gateway_env | {
        "PORT": str(gateway_port),
        "LEGACY_URL": f"http://127.0.0.1:{legacy.port}/api/chat",
        "STRIPPED_REPLY_HEADERS": "",  # the anchor strips nothing: compare like with like
        "LOG_STDOUT": "false",
    }
    gateway = ChatctlProcess(["serve"], env, gateway_port)
    try:
        assert wait_for_port(nginx_port)
        yield nginx_port, gateway_port
    finally:
        gateway.stop()
        os.killpg(nginx.pid, signal.SIGQUIT)
        nginx.wait(timeout=15)
        legacy.stop()


def _end_to_end(reply: httpx.Response) -> list[tuple[str, str]]:
    return sorted(
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, value in reply.headers.raw
        if name.decode("latin-1").lower() not in HOP_OR_SERVER | EXPECTED | {"content-length"}
    )


async def _request(
    client: httpx.AsyncClient, method: str, port: int, case: str, body: bytes | None
) -> httpx.Response:
    try:
        return await client.request(
            method, f"http://127.0.0.1:{port}/api/chat?case={case}", content=body
        )
    except httpx.HTTPError as exc:
        raise AssertionError(f"{case} on port {port}: {exc!r}") from exc


async def test_replies_reach_the_visitor_as_through_nginx(
    anchor_and_gateway: tuple[int, int],
) -> None:
    nginx_port, gateway_port = anchor_and_gateway
    differences: dict[str, object] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for case, (method, _) in MALFORMED.items():
            refused = await _request(client, method, gateway_port, case, None)
            assert refused.status_code == 502, case
            assert refused.json()["error"] == "legacy_bad_reply"
            assert refused.headers["x-chat-backend"] == "legacy"
        for case, (method, _) in CORPUS.items():
            if case in MALFORMED:
                continue
            body = b'{"message":"hello"}' if method == "POST" else None
            anchor, ours = [
                await _request(client, method, port, case, body)
                for port in (nginx_port, gateway_port)
            ]
            seen = (ours.status_code, _end_to_end(ours), ours.content)
            expected = (anchor.status_code, _end_to_end(anchor), anchor.content)
            # a 304's length: nginx passes the backend's, the gateway none (README: exceptions)
            length = None if case == "not_modified" else anchor.headers.get("content-length")
            if seen != expected:
                differences[case] = {"nginx": expected, "gateway": seen}
            elif length is not None and ours.headers.get("content-length") != length:
                differences[case] = {"nginx": length, "gateway": ours.headers.get("content-length")}
            assert ours.headers["x-chat-backend"] == "legacy"
            assert "trailer" not in ours.headers
    assert differences == {}
