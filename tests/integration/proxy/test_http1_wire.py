"""The HTTP/1.1 client to the byte: the request heads it writes, where it connects, the exact
failure it reports for each way a backend can fail, and its connection accounting."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

import pytest

from proxy import Http1Error, Http1Pool, Origin, parse_origin
from tests.integration.proxy.test_http1_client import (
    OK,
    Backend,
    Handler,
    Reader,
    Writer,
    keep_alive_server,
    make_pool,
    post,
    serving,
)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://chat.example/api/chat", Origin("chat.example", 80, False, b"chat.example")),
        ("https://chat.example/api/chat", Origin("chat.example", 443, True, b"chat.example")),
        ("http://chat.example:8080/", Origin("chat.example", 8080, False, b"chat.example:8080")),
        ("https://chat.example:443/", Origin("chat.example", 443, True, b"chat.example")),
        ("https://chat.example:80/", Origin("chat.example", 80, True, b"chat.example:80")),
        ("http://[::1]:8080/api", Origin("::1", 8080, False, b"[::1]:8080")),
        ("http://[::1]/api", Origin("::1", 80, False, b"[::1]")),
        ("http://bücher.example/", Origin("bücher.example", 80, False, b"xn--bcher-kva.example")),
    ],
)
def test_where_a_pool_connects_and_the_host_it_names(url: str, origin: Origin) -> None:
    assert parse_origin(url) == origin


@pytest.mark.parametrize("url", ["ftp://chat.example/", "http:///api/chat", "chat.example/api"])
def test_a_url_that_is_not_http_is_refused_by_name(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        parse_origin(url)


def recording(owner: Backend) -> Handler:
    async def handler(reader: Reader, writer: Writer, _: int) -> None:
        while True:
            await owner.read_request(reader)
            writer.write(OK)
            await writer.drain()

    return handler


@pytest.mark.parametrize(
    ("method", "body", "length"),
    [
        ("POST", b'{"message": "hi"}', b"17"),
        ("POST", b"", b"0"),  # a POST always says how long its body is
        ("PUT", b"", b"0"),
        ("GET", b"", None),
        ("HEAD", b"", None),
        ("DELETE", b"", None),
        ("OPTIONS", b"", None),
        ("DELETE", b"{}", b"2"),
    ],
)
async def test_the_request_head_is_written_exactly(
    method: str, body: bytes, length: bytes | None
) -> None:
    async with serving(recording) as (server, pool):
        await pool.request(method, b"/api/chat?x=1", [(b"x-a", b"1"), (b"x-a", b"2")], body)
    [(head, sent)] = server.requests
    port = server.url.split(":")[2].split("/")[0]
    expected = (
        f"{method} /api/chat?x=1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nx-a: 1\r\nx-a: 2\r\n"
    ).encode()
    if length is not None:
        expected += b"content-length: " + length + b"\r\n"
    assert head == expected + b"\r\n"
    assert sent == body


async def test_a_closed_pool_refuses_requests() -> None:
    async with serving(recording) as (server, pool):
        await pool.close()
        with pytest.raises(Http1Error) as refused:
            await post(pool)
    assert (refused.value.kind, refused.value.detail) == ("connect", "the client is closed")
    assert server.requests == []


async def test_a_refused_connection_names_the_origin() -> None:
    async with serving(recording) as (server, _):
        url = server.url
    port = url.split(":")[2].split("/")[0]
    pool = make_pool(url)
    with pytest.raises(Http1Error) as refused:
        await post(pool)
    await pool.close()
    assert refused.value.kind == "connect"
    assert refused.value.detail.startswith(f"cannot connect to 127.0.0.1:{port}: ")


async def test_a_fresh_connection_closed_without_a_reply_is_not_sent_again() -> None:
    """Only a reused keep-alive socket may have been dropped idle; a fresh one that closes
    without a byte means the backend read the request and died: never resent."""

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            await owner.read_request(reader)  # ...and close without answering

        return handler

    async with serving(make) as (server, pool):
        with pytest.raises(Http1Error) as failed:
            await post(pool)
    assert (failed.value.kind, failed.value.detail) == (
        "bad_reply",
        "the backend closed the connection without a reply",
    )
    assert len(server.requests) == 1
    assert server.connections == 1


def answering(reply: bytes, *, then_close: bool = False) -> Callable[[Backend], Handler]:
    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            await owner.read_request(reader)
            writer.write(reply)
            await writer.drain()
            if not then_close:
                await reader.read()  # keep the connection open until the client goes

        return handler

    return make


@pytest.mark.parametrize(
    ("reply", "then_close", "kind", "detail"),
    [
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n",
            False,
            "too_large",
            "a reply of 11 bytes",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nb\r\n0123456789a\r\n0\r\n\r\n",
            False,
            "too_large",
            "a reply over 10 bytes",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n",
            True,
            "bad_reply",
            "the backend closed the connection mid-reply",
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n",
            False,
            "bad_reply",
            "the backend switched protocols",
        ),
    ],
    ids=["declared too large", "chunked too large", "chunked cut off", "upgrade"],
)
async def test_each_failure_is_named_exactly(
    reply: bytes, then_close: bool, kind: str, detail: str
) -> None:
    async with serving(answering(reply, then_close=then_close), max_reply_bytes=10) as (_, pool):
        with pytest.raises(Http1Error) as failed:
            await post(pool)
    assert (failed.value.kind, failed.value.detail) == (kind, detail)


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n",
    ],
    ids=["declared", "chunked"],
)
async def test_a_reply_of_exactly_the_limit_is_accepted(reply: bytes) -> None:
    async with serving(answering(reply), max_reply_bytes=10) as (_, pool):
        assert (await post(pool))[2] == b"0123456789"


async def test_a_timeout_says_how_long_it_waited() -> None:
    async with serving(answering(b""), read_timeout=0.2) as (_, pool):
        with pytest.raises(Http1Error) as late:
            await post(pool)
    assert (late.value.kind, late.value.detail) == ("timeout", "no complete reply within 0.2s")


async def test_a_head_request_waits_past_interim_replies() -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    async with serving(answering(reply)) as (_, pool):
        head = await pool.request("HEAD", b"/api/chat", [])
    assert (head.status, head.body) == (204, b"")


async def until(condition: Callable[[], bool]) -> None:
    """Yields to the event loop until `condition()` holds (at most 2 s)."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def answering_on_release(release: asyncio.Event, *, close_after: bool = False) -> Callable:
    """Answers each request once `release` is set; with `close_after`, closes after a reply
    that still says keep-alive (as a backend restarting gracefully does)."""

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            while True:
                await owner.read_request(reader)
                await release.wait()
                writer.write(OK)
                await writer.drain()
                if close_after:
                    return

        return handler

    return make


async def test_every_connection_in_use_is_counted_and_given_back() -> None:
    release = asyncio.Event()
    async with serving(answering_on_release(release)) as (server, pool):
        held = [asyncio.create_task(post(pool)) for _ in range(3)]
        await until(lambda: len(server.requests) == 3)
        assert pool.open_connections == 3
        release.set()
        await asyncio.gather(*held)
        assert pool.open_connections == 3  # kept alive, idle in the pool
        await pool.close()
        assert pool.open_connections == 0


async def test_a_reply_in_flight_when_the_pool_closes_leaves_no_connection_behind() -> None:
    release = asyncio.Event()

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            await owner.read_request(reader)
            await release.wait()
            writer.write(OK)
            await writer.drain()
            await reader.read()

        return handler

    async with serving(make) as (server, pool):
        in_flight = asyncio.create_task(post(pool))
        await until(lambda: bool(server.requests))
        await pool.close()
        release.set()
        assert (await in_flight)[0] == 200
        assert pool.open_connections == 0  # not put back into a closed pool


async def test_a_backend_that_never_accepts_is_a_connect_timeout() -> None:
    """A listening socket whose accept queue is full drops new connections' handshakes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    pool = make_pool(f"http://127.0.0.1:{port}/api/chat", connect_timeout=0.2)
    try:
        with pytest.raises(Http1Error) as late:
            await post(pool)
    finally:
        await pool.close()
        for sock in (*fillers, listener):
            sock.close()
    assert (late.value.kind, late.value.detail) == (
        "connect",
        f"no connection to 127.0.0.1:{port} within 0.2s",
    )
    assert pool.open_connections == 0


async def test_the_pool_connects_to_the_host_in_its_url() -> None:
    """127.0.0.2 is loopback too, but a server there is not the one on 127.0.0.1."""
    seen: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(OK)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.2", 0)
    port = server.sockets[0].getsockname()[1]
    pool = make_pool(f"http://127.0.0.2:{port}/api/chat")
    async with server:
        try:
            assert (await post(pool))[0] == 200
        finally:
            await pool.close()
    assert len(seen) == 1


def dropping_reused(owner: Backend) -> Handler:
    """Answers the first request of each connection, then drops the next one unanswered."""

    async def handler(reader: Reader, writer: Writer, _: int) -> None:
        head, _ = await owner.read_request(reader)
        if head.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
        else:
            writer.write(OK)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")

    return handler


async def test_a_head_request_resent_after_the_keep_alive_race_expects_no_body() -> None:
    async with serving(dropping_reused, read_timeout=2.0) as (server, pool):
        await post(pool)  # a kept-alive connection (a HEAD reply's socket is never reused)
        again = await pool.request("HEAD", b"/api/chat", [])
    assert (again.status, again.body) == (200, b"")
    assert server.connections == 2


async def get(pool: Http1Pool) -> int:
    """An idempotent request: the only kind sent again after the keep-alive race."""
    return (await pool.request("GET", b"/api/chat", [])).status


async def test_a_resend_after_the_keep_alive_race_always_opens_a_fresh_connection() -> None:
    """Two idle sockets the backend has both dropped: the resend must not try the second."""
    async with serving(dropping_reused) as (server, pool):
        await asyncio.gather(post(pool), post(pool))  # two connections, both kept alive
        assert server.connections == 2
        assert await get(pool) == 200
    assert server.connections == 3


async def test_releasing_a_connection_retires_the_longest_idle_one() -> None:
    """A released connection goes on top of the idle stack; one that has sat idle for the whole
    keep-alive time at the bottom is closed then, not left for the backend to drop."""
    release_b = asyncio.Event()
    served_on: list[int] = []

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, number: int) -> None:
            while True:
                head, _ = await owner.read_request(reader)
                served_on.append(number)
                if b"/b" in head:
                    await release_b.wait()
                writer.write(OK)
                await writer.drain()

        return handler

    async with serving(make, idle_seconds=0.3) as (server, pool):
        b = asyncio.create_task(pool.request("POST", b"/b", [], b"{}"))
        for _ in range(200):
            if served_on:
                break
            await asyncio.sleep(0.01)
        await post(pool)  # a second connection, released at once: idle at the bottom
        assert pool.open_connections == 2
        await asyncio.sleep(0.35)
        release_b.set()
        await b  # released 0.35 s after the other: the other is retired
        assert pool.open_connections == 1
        await post(pool)
    assert served_on == [1, 2, 1]  # the last request went on the connection kept
    assert server.connections == 2


async def test_a_request_given_no_body_sends_none() -> None:
    async with serving(recording) as (server, pool):
        await pool.request("GET", b"/health", [])
        await pool.request("POST", b"/api/chat", [])
    [(get, get_body), (post_head, post_body)] = server.requests
    assert b"content-length" not in get
    assert b"content-length: 0\r\n" in post_head
    assert (get_body, post_body) == (b"", b"")


async def test_a_connection_handed_to_a_request_cancelled_at_that_moment_goes_to_the_next() -> None:
    release = asyncio.Event()
    async with serving(answering_on_release(release), pool_size=1) as (server, pool):

        async def queue_two_then_answer() -> list[asyncio.Task[tuple[int, object, bytes]]]:
            await until(lambda: len(server.requests) == 1)  # the test's request holds it
            queued = [asyncio.create_task(post(pool)) for _ in range(2)]
            await asyncio.sleep(0)  # both queue for the only connection
            release.set()
            return queued

        queueing = asyncio.create_task(queue_two_then_answer())
        await post(pool)  # returns as the connection is handed to the first queued request
        cancelled, served = queueing.result()
        cancelled.cancel()  # ...before that request could use it
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert (await served)[0] == 200
        assert pool.open_connections == 1
    assert server.connections == 1  # the connection went on; no second one was opened
    assert len(server.requests) == 2


async def test_a_request_cancelled_while_queued_leaves_the_queue_working() -> None:
    release = asyncio.Event()
    async with serving(answering_on_release(release), pool_size=1) as (server, pool):
        first = asyncio.create_task(post(pool))
        await until(lambda: len(server.requests) == 1)
        gone = asyncio.create_task(post(pool))
        waiting = asyncio.create_task(post(pool))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        release.set()
        assert [(await task)[0] for task in (first, waiting)] == [200, 200]
    assert server.connections == 1


async def test_requests_queued_when_the_pool_closes_are_refused_at_once() -> None:
    release = asyncio.Event()
    async with serving(answering_on_release(release), pool_size=1, connect_timeout=5) as (
        server,
        pool,
    ):
        first = asyncio.create_task(post(pool))
        await until(lambda: len(server.requests) == 1)
        queued = asyncio.create_task(post(pool))
        await asyncio.sleep(0)
        await pool.close()
        with pytest.raises(Http1Error) as refused:
            await asyncio.wait_for(queued, 1)  # not after the 5 s connect timeout
        release.set()
        assert (await first)[0] == 200
    assert (refused.value.kind, refused.value.detail) == ("connect", "the client is closed")
    assert server.connections == 1


async def test_a_connection_the_backend_closes_as_it_is_handed_over_is_resent_fresh() -> None:
    release = asyncio.Event()
    release.set()
    make = answering_on_release(release, close_after=True)
    async with serving(make, pool_size=1, read_timeout=2.0) as (server, pool):
        release.clear()
        first = asyncio.create_task(post(pool))
        await until(lambda: len(server.requests) == 1)
        queued = asyncio.create_task(get(pool))
        await asyncio.sleep(0)
        release.set()  # answered with keep-alive, then closed while the next one is handed it
        assert [(await first)[0], await queued] == [200, 200]
    assert server.connections == 2


def answering_then(extra: bytes) -> Callable[[Backend], Handler]:
    """Answers each request, then sends `extra` in a write of its own."""

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, _: int) -> None:
            while True:
                await owner.read_request(reader)
                writer.write(OK)
                await writer.drain()
                await asyncio.sleep(0.01)
                writer.write(extra)
                await writer.drain()

        return handler

    return make


@pytest.mark.parametrize(
    ("extra", "separately"),
    [
        (b"garbage\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\ncontent-le", True),
    ],
    ids=["garbage", "a second reply", "half a reply, later"],
)
async def test_bytes_after_a_complete_reply_drop_the_connection_quietly(
    extra: bytes, separately: bool
) -> None:
    """A backend out of step with its requests: the reply stands, the socket is not reused, and
    the client never fails inside asyncio's callbacks (the loop reports no error)."""
    loop_errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: loop_errors.append(context))
    make = answering_then(extra) if separately else keep_alive_server(OK + extra)
    async with serving(make) as (server, pool):
        assert (await post(pool))[2] == b'{"ok": true}'
        await until(lambda: pool.open_connections == 0)
        assert (await post(pool))[0] == 200
    assert server.connections == 2
    assert loop_errors == []


async def test_an_expired_idle_connection_is_closed_not_only_forgotten() -> None:
    closed = asyncio.Event()

    def make(owner: Backend) -> Handler:
        async def handler(reader: Reader, writer: Writer, number: int) -> None:
            await owner.read_request(reader)
            writer.write(OK)
            await writer.drain()
            if number == 1:
                await reader.read()  # returns at the client's close
                closed.set()
            else:
                await owner.read_request(reader)

        return handler

    async with serving(make, idle_seconds=0.1) as (server, pool):
        await post(pool)
        await asyncio.sleep(0.15)  # the connection sits idle past its keep-alive time
        assert (await post(pool))[0] == 200
        await asyncio.wait_for(closed.wait(), 1)
    assert server.connections == 2
