"""The gateway's HTTP/1.1 client against scripted backends over real sockets: framing (length,
chunked, close-delimited), keep-alive and its races, limits, timeouts and broken replies."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from proxy import Http1Error, Http1Pool

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Handler = Callable[[Reader, Writer, int], Awaitable[None]]

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{"ok": true}'


class Backend:
    """A TCP server running `handler(reader, writer, connection number)` per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.url = ""

    async def serve(self, reader: Reader, writer: Writer) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: Reader) -> tuple[bytes, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length) if length else b""
        self.requests.append((head, body))
        return head, body


LIMITS: dict[str, float] = {
    "pool_size": 256,
    "connect_timeout": 1.0,
    "read_timeout": 2.0,
    "max_reply_bytes": 1_048_576,
    "idle_seconds": 4.0,
}
"""The tests' limits, unless a test sets its own."""


def make_pool(url: str, **limits: float) -> Http1Pool:
    chosen = LIMITS | limits
    return Http1Pool(
        url,
        pool_size=int(chosen["pool_size"]),
        connect_timeout=chosen["connect_timeout"],
        read_timeout=chosen["read_timeout"],
        max_reply_bytes=int(chosen["max_reply_bytes"]),
        idle_seconds=chosen["idle_seconds"],
    )


@contextlib.asynccontextmanager
async def backend(handler: Handler) -> AsyncIterator[Backend]:
    scripted = Backend(handler)
    server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    scripted.url = f"http://127.0.0.1:{port}/api/chat"
    async with server:
        yield scripted
        server.close()


def keep_alive_server(reply: bytes) -> Callable[[Backend], Handler]:
    """Answers every request on a connection with `reply`."""

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            while True:
                await owner.read_request(reader)
                writer.write(reply)
                await writer.drain()

        return handler

    return make


@contextlib.asynccontextmanager
async def serving(
    make: Callable[[Backend], Handler], **pool_options: float
) -> AsyncIterator[tuple[Backend, Http1Pool]]:
    holder: dict[str, Backend] = {}

    async def handler(reader: Reader, writer: Writer, number: int) -> None:
        await make(holder["backend"])(reader, writer, number)

    async with backend(handler) as scripted:
        holder["backend"] = scripted
        pool = make_pool(scripted.url, **pool_options)
        try:
            yield scripted, pool
        finally:
            await pool.close()


async def post(
    pool: Http1Pool, body: bytes = b'{"message": "hi"}'
) -> tuple[int, dict[bytes, list[bytes]], bytes]:
    reply = await pool.request(
        "POST", b"/api/chat?x=1", [(b"content-type", b"application/json")], body
    )
    headers: dict[bytes, list[bytes]] = {}
    for name, value in reply.headers:
        headers.setdefault(name.lower(), []).append(value)
    return reply.status, headers, reply.body


async def test_request_is_framed_and_the_connection_is_reused() -> None:
    reply = b"HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\ncontent-length: 4\r\n\r\nbody"
    async with serving(keep_alive_server(reply)) as (server, pool):
        first = await post(pool, b'{"n": 1}')
        second = await post(pool, b'{"n": 2}')
    assert (
        first
        == second
        == (201, {b"set-cookie": [b"a=1", b"b=2"], b"content-length": [b"4"]}, b"body")
    )
    assert server.connections == 1
    head = server.requests[0][0]
    assert head.startswith(b"POST /api/chat?x=1 HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{server.url.split(':')[2].split('/')[0]}\r\n".encode() in head
    assert b"content-length: 8\r\n" in head
    assert b"content-type: application/json\r\n" in head
    assert [body for _, body in server.requests] == [b'{"n": 1}', b'{"n": 2}']


async def test_chunked_reply_split_across_writes_is_assembled() -> None:
    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            while True:
                await owner.read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel")
                await writer.drain()
                await asyncio.sleep(0.01)
                writer.write(b"lo\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n")
                await writer.drain()

        return handler

    async with serving(make) as (server, pool):
        assert (await post(pool))[2] == b"hello world"
        assert (await post(pool))[2] == b"hello world"
    assert server.connections == 1


async def test_reply_delimited_by_close_is_complete_and_not_reused() -> None:
    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            await owner.read_request(reader)
            writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
            await writer.drain()

        return handler

    async with serving(make) as (server, pool):
        assert (await post(pool))[::2] == (200, b"until the end")
        assert (await post(pool))[::2] == (200, b"until the end")
    assert server.connections == 2


async def test_connection_close_reply_is_not_reused() -> None:
    reply = OK.replace(b"content-length", b"connection: close\r\ncontent-length")
    async with serving(keep_alive_server(reply)) as (server, pool):
        for _ in range(3):
            assert (await post(pool))[0] == 200
    assert server.connections == 3


async def test_large_bodies_cross_intact_both_ways() -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            _, body = await owner.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()

        return handler

    async with serving(make, max_reply_bytes=4 * 2**20) as (_, pool):
        status, _, body = await post(pool, payload)
    assert status == 200
    assert body == payload


CHUNK = b"3e8\r\n" + b"x" * 1000 + b"\r\n"


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000,
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + CHUNK * 2 + b"0\r\n\r\n",
    ],
    ids=["declared", "chunked"],
)
async def test_reply_over_the_limit_is_refused_and_its_connection_dropped(reply: bytes) -> None:
    async with serving(keep_alive_server(reply), max_reply_bytes=1500) as (_, pool):
        with pytest.raises(Http1Error) as refused:
            await post(pool)
        assert refused.value.kind == "too_large"
        assert pool.open_connections == 0


async def test_slow_backend_times_out_and_its_late_reply_reaches_no_one() -> None:
    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, number: int) -> None:
            while True:
                await owner.read_request(reader)
                if number == 1:
                    await asyncio.sleep(0.5)  # answers after the client gave up
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate")
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh")
                await writer.drain()

        return handler

    async with serving(make, read_timeout=0.2) as (server, pool):
        with pytest.raises(Http1Error) as slow:
            await post(pool)
        assert slow.value.kind == "timeout"
        await asyncio.sleep(0.5)
        assert (await post(pool))[2] == b"fresh"
    assert server.connections == 2


async def test_trickling_reply_is_bounded_by_the_read_timeout() -> None:
    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            await owner.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
            for _ in range(100):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)

        return handler

    async with serving(make, read_timeout=0.3) as (_, pool):
        with pytest.raises(Http1Error) as slow:
            await post(pool)
    assert slow.value.kind == "timeout"


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (b"this is not HTTP\r\n\r\n", "malformed"),
        (b"", "without a reply"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nonly part", "mid-reply"),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            "switched",
        ),
        (b"HTTP/1.1 600 Beyond\r\ncontent-length: 0\r\n\r\n", "not an HTTP status"),
        (b"HTTP/1.1 099 Below\r\ncontent-length: 0\r\n\r\n", "not an HTTP status"),
    ],
    ids=["garbage", "closed", "truncated", "upgrade", "status_600", "status_099"],
)
async def test_broken_replies_are_bad_reply(answer: bytes, detail: str) -> None:
    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            await owner.read_request(reader)
            writer.write(answer)
            await writer.drain()

        return handler

    async with serving(make) as (_, pool):
        with pytest.raises(Http1Error) as broken:
            await post(pool)
    assert broken.value.kind == "bad_reply"
    assert detail in broken.value.detail


async def test_refused_connection_is_connect() -> None:
    async with serving(keep_alive_server(OK)) as (server, _):
        url = server.url
    pool = make_pool(url)  # the server above is closed now
    with pytest.raises(Http1Error) as refused:
        await post(pool)
    assert refused.value.kind == "connect"
    assert pool.open_connections == 0
    await pool.close()


async def test_a_kept_alive_connection_closed_unanswered_retries_only_idempotent_requests() -> None:
    """The keep-alive race: the backend closes a reused socket without a byte of reply. A GET
    is sent again on a fresh connection; a POST is not, as nginx does (RFC 9110 §9.2.2): the
    backend may have run it before dying (a raw legacy that read a turn and closed silently got
    it twice, and the visitor waited twice LEGACY_TIMEOUT: a fresh helper, issue 17)."""

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            await owner.read_request(reader)
            writer.write(OK)  # keep-alive is promised...
            await writer.drain()
            await owner.read_request(reader)  # ...but the next request is read, unanswered

        return handler

    async with serving(make) as (server, pool):
        assert (await pool.request("GET", b"/api/chat", []))[0] == 200
        assert (await pool.request("GET", b"/api/chat", []))[0] == 200  # sent again: fine
        assert server.connections == 2
    async with serving(make) as (server, pool):
        assert (await post(pool))[0] == 200
        with pytest.raises(Http1Error) as failed:
            await post(pool, b'{"message": "Ann Lee"}')
    assert failed.value.kind == "bad_reply"
    assert "not sent again" in failed.value.detail
    assert [body for _, body in server.requests].count(b'{"message": "Ann Lee"}') == 1


async def test_a_kept_alive_connection_closing_mid_reply_is_never_sent_again() -> None:
    """Once a byte of reply has come back, the backend has the request: sending it again would
    run the visitor's chat turn twice. It is a bad_reply, and the backend saw it once."""

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            await owner.read_request(reader)
            writer.write(OK)
            await writer.drain()
            await owner.read_request(reader)  # the reused connection gets the second turn...
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-le")  # ...and dies mid-reply
            await writer.drain()

        return handler

    async with serving(make) as (server, pool):
        assert (await post(pool))[0] == 200
        with pytest.raises(Http1Error) as failed:
            await post(pool, b'{"message": "Ann Lee"}')
    assert failed.value.kind == "bad_reply"
    assert "mid-reply" in failed.value.detail
    assert [body for _, body in server.requests].count(b'{"message": "Ann Lee"}') == 1
    assert server.connections == 1


async def test_backend_closing_an_idle_connection_is_noticed_before_reuse() -> None:
    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            await owner.read_request(reader)
            writer.write(OK)
            await writer.drain()  # then the handler returns: the server closes the socket

        return handler

    async with serving(make) as (server, pool):
        assert (await post(pool))[0] == 200
        for _ in range(200):  # the backend's close arrives within moments
            if pool.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.open_connections == 0  # forgotten as soon as the backend closed it
        assert (await post(pool))[0] == 200
    assert server.connections == 2
    assert len(server.requests) == 2  # no request was sent on the dead socket


async def test_head_reply_has_no_body_and_interim_replies_are_skipped() -> None:
    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            while True:
                head, _ = await owner.read_request(reader)
                if head.startswith(b"HEAD"):
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
                await writer.drain()

        return handler

    async with serving(make) as (_, pool):
        head = await pool.request("HEAD", b"/api/chat", [])
        after = await post(pool)
    assert (head.status, head.body) == (200, b"")
    assert (after[0], after[2]) == (200, b'{"ok": true}')


async def test_pool_limit_queues_requests_then_times_out_when_saturated() -> None:
    release = asyncio.Event()

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            while True:
                head, _ = await owner.read_request(reader)
                if b"hold" in head:
                    await release.wait()
                writer.write(OK)
                await writer.drain()

        return handler

    async with serving(make, pool_size=1, connect_timeout=1.0) as (server, pool):
        replies = await asyncio.gather(*(post(pool) for _ in range(5)))
        assert [status for status, _, _ in replies] == [200] * 5
        assert server.connections == 1  # five requests, one after another on one socket
        held = asyncio.create_task(pool.request("GET", b"/hold", []))
        await asyncio.sleep(0.05)
        with pytest.raises(Http1Error) as busy:
            await post(pool)
        assert busy.value.kind == "timeout"
        assert "busy" in busy.value.detail
        release.set()
        assert (await held).status == 200
        assert (await post(pool))[0] == 200


async def test_idle_connections_expire() -> None:
    async with serving(keep_alive_server(OK), idle_seconds=0.5) as (server, pool):
        await post(pool)
        await post(pool)
        await asyncio.sleep(0.8)
        await post(pool)
    assert server.connections == 2


@pytest.mark.parametrize("next_at_once", [False, True], ids=["after its reply", "at once"])
async def test_abandoned_request_does_not_leave_its_reply_for_the_next_one(
    next_at_once: bool,
) -> None:
    """Whether the abandoned reply has arrived or is still on its way, the next request gets its
    own reply on a connection of its own."""

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            while True:
                head, _ = await owner.read_request(reader)
                if b"slow" in head:
                    await asyncio.sleep(0.2)
                    writer.write(OK.replace(b"true", b"slow"))
                else:
                    writer.write(OK)
                await writer.drain()

        return handler

    async with serving(make) as (server, pool):
        slow = asyncio.create_task(pool.request("GET", b"/slow", []))
        await asyncio.sleep(0.05)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        if not next_at_once:
            await asyncio.sleep(0.3)
        assert (await post(pool))[2] == b'{"ok": true}'
    assert server.connections == 2


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for `localhost` (key, cert), made by the openssl CLI."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


async def test_https_backend_is_verified_against_trusted_certificates(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def answer(reader: Reader, writer: Writer) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(OK)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    url = f"https://localhost:{server.sockets[0].getsockname()[1]}/api/chat"
    async with server:
        untrusted = make_pool(url)
        with pytest.raises(Http1Error) as refused:
            await post(untrusted)
        assert refused.value.kind == "connect"
        assert "CERTIFICATE_VERIFY_FAILED" in refused.value.detail
        await untrusted.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # as an operator trusts a private CA
        trusted = make_pool(url)
        assert (await post(trusted))[::2] == (200, b'{"ok": true}')
        await trusted.close()
