"""The gateway at the ASGI level, as uvicorn drives it: bodies that arrive in pieces, a visitor
who leaves mid-body, the exact bytes and headers written back. An HTTP client hides these (it
drops a HEAD reply's body, joins chunks, lowercases nothing it does not have to)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import msgspec
from litestar.testing import AsyncTestClient

from flags import bucket
from proxy import GatewayApp
from tests.integration.conftest import _APPS, GatewayOpener

LIMIT = 1024


class Exchange(msgspec.Struct):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


async def call(
    gw: AsyncTestClient,  # type: ignore[type-arg]
    messages: list[dict[str, Any]],
    **options: Any,
) -> Exchange | None:
    """`asgi_call` on the gateway behind `gw`, on the loop its services run on (the test
    client's portal)."""
    app = _APPS[id(gw)]
    return await anyio.to_thread.run_sync(
        lambda: gw.blocking_portal.call(lambda: asgi_call(app, messages, **options))
    )


async def asgi_call(
    app: GatewayApp,
    messages: list[dict[str, Any]],
    *,
    method: str = "POST",
    path: str = "/api/chat",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    scheme: str = "http",
    minimal: bool = False,
) -> Exchange | None:
    """One request as an ASGI server sends it; None when the gateway wrote no reply.
    `minimal` leaves out every key ASGI lets a server leave out (scheme, root_path, raw_path,
    server; and client when None, as over a unix socket)."""
    queue = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), *(headers or [])],
        "server": ("127.0.0.1", 8000),
    }
    if minimal:
        for optional in ("scheme", "root_path", "raw_path", "server"):
            del scope[optional]
    if client is not None:
        scope["client"] = client
    await app(scope, receive, send)
    if not sent:
        return None
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Exchange(start["status"], list(start["headers"]), body)


def json_reply(status: int, body: bytes) -> Exchange:
    """The gateway's own JSON reply, byte for byte."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return Exchange(status, headers, body)


def piece(body: bytes, *, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


def chat_body(size: int) -> bytes:
    """A valid chat message body of exactly `size` bytes."""
    empty = json.dumps({"message": ""}).encode()
    return json.dumps({"message": "x" * (size - len(empty))}).encode()


async def test_a_body_in_pieces_is_taken_up_to_the_limit_and_refused_past_it(
    open_gateway: GatewayOpener,
) -> None:
    async with open_gateway(MAX_BODY_BYTES=str(LIMIT), NEW_CHAT_PERCENT="0") as gw:
        whole = chat_body(LIMIT)
        parts = [piece(whole[:1], more=True), piece(whole[1:700], more=True)]  # JSON split
        taken = await call(gw, [*parts, piece(whole[700:], more=False)])
        assert taken is not None
        assert taken.status == 200
        assert taken.header(b"x-chat-backend") == b"legacy"
        assert json.loads(taken.body)["reply"]

        over = chat_body(LIMIT + 1)
        refused = await call(gw, [piece(over[:LIMIT], more=True), piece(over[LIMIT:], more=False)])
        assert refused == json_reply(
            413, b'{"error":"payload_too_large","detail":"the body is over 1024 bytes"}'
        )


async def test_a_declared_length_is_judged_before_the_body_is_read(
    open_gateway: GatewayOpener,
) -> None:
    async with open_gateway(MAX_BODY_BYTES=str(LIMIT), NEW_CHAT_PERCENT="0") as gw:
        at_limit = chat_body(LIMIT)
        declared = [(b"content-length", str(LIMIT).encode())]
        taken = await call(gw, [piece(at_limit, more=False)], headers=declared)
        assert taken is not None
        assert taken.status == 200

        declared_over = [(b"content-length", str(LIMIT + 1).encode())]
        refused = await call(gw, [], headers=declared_over)  # nothing read: no body needed
        assert refused is not None
        assert (refused.status, json.loads(refused.body)) == (
            413,
            {"error": "payload_too_large", "detail": "the body is over 1024 bytes"},
        )

        for bad in (b"x", b"-1", b"1e3", b""):
            not_a_number = await call(
                gw, [piece(b"{}", more=False)], headers=[(b"content-length", bad)]
            )
            assert not_a_number == json_reply(
                400, b'{"error":"invalid_request","detail":"Content-Length is not a number"}'
            ), bad


async def test_a_request_message_without_a_body_is_an_empty_body(
    open_gateway: GatewayOpener,
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        bare = await call(gw, [{"type": "http.request"}])  # body and more_body may be left out
        empty = await call(gw, [piece(b"", more=False)])
    assert bare is not None
    assert empty is not None
    assert bare.status == 400  # the visitor's mistake, said as such
    assert bare.header(b"x-chat-backend") == b"new"
    assert json.loads(bare.body) == json.loads(empty.body)  # exactly as an empty body


async def test_a_visitor_who_leaves_mid_body_gets_nothing_forwarded(
    open_gateway: GatewayOpener,
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        gone = await call(
            gw, [piece(b'{"message": "I was', more=True), {"type": "http.disconnect"}]
        )
        assert gone is None or gone.status >= 400
        metrics = (await gw.get("/metrics")).text
        assert "gateway_decisions_total{" not in metrics  # never routed, never sent to a backend


async def test_a_head_reply_has_the_same_length_as_the_full_reply_and_no_body(
    open_gateway: GatewayOpener,
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        bad_length = [(b"content-length", b"x")]
        full = await call(gw, [piece(b"", more=False)], method="POST", headers=bad_length)
        head = await call(gw, [piece(b"", more=False)], method="HEAD", headers=bad_length)
        assert full is not None
        assert head is not None
        assert full.body
        assert head.body == b""
        assert head.status == full.status == 400
        assert head.headers == full.headers  # content-length: the body a GET would have had
        assert all(name == name.lower() for name, _ in head.headers)  # ASGI header names

        backend = await call(gw, [piece(b"", more=False)], method="HEAD")
        assert backend is not None
        assert backend.body == b""
        assert backend.header(b"x-chat-backend") == b"legacy"


async def test_a_scope_with_only_the_keys_asgi_requires_is_served(
    open_gateway: GatewayOpener,
) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        turn = await call(gw, [piece(chat_body(100), more=False)], client=None, minimal=True)
        probe = await call(gw, [piece(b"", more=False)], method="GET", client=None, minimal=True)
    assert turn is not None
    assert turn.status == 200
    assert json.loads(turn.body)["reply"]
    assert all(name == name.lower() for name, _ in turn.headers)  # set-cookie included
    assert turn.header(b"set-cookie") is not None
    assert probe is not None
    assert probe.status == 200


async def test_a_health_probe_is_bucketed_by_its_client_address(
    open_gateway: GatewayOpener,
) -> None:
    """`curl /api/chat` from one address always sees one backend; another address may see the
    other (the bucket is the client's, `probe:<address>`; `probe:unknown` without one)."""

    def address(inside: bool) -> str:
        return next(
            a
            for n in range(1, 255)
            if (bucket("new-chat", f"probe:{(a := f'192.0.2.{n}')}") <= 50) == inside
        )

    async with open_gateway(NEW_CHAT_PERCENT="50") as gw:
        seen = {}
        for label, client in (("inside", (address(True), 40000)), ("outside", (address(False), 1))):
            reply = await call(gw, [piece(b"", more=False)], method="GET", client=client)
            assert reply is not None
            seen[label] = reply.header(b"x-chat-backend")
    assert seen == {"inside": b"new", "outside": b"legacy"}

    unknown = bucket("new-chat", "probe:unknown")
    for percent, expected in ((unknown - 1, b"legacy"), (unknown, b"new")):  # either side
        async with open_gateway(NEW_CHAT_PERCENT=str(percent)) as gw:
            reply = await call(gw, [piece(b"", more=False)], method="GET", client=None)
        assert reply is not None
        assert reply.header(b"x-chat-backend") == expected, percent


async def test_the_route_cookie_is_set_once_per_conversation(open_gateway: GatewayOpener) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="100") as gw:
        first = await gw.post("/api/chat", json={"message": "I was hurt in a car crash"})
        second = await gw.post("/api/chat", json={"message": "Ann Lee"})
    assert "chat_route=" in first.headers.get("set-cookie", "")
    assert "chat_route=" not in second.headers.get("set-cookie", "")  # it already says so
    assert second.headers["x-chat-backend"] == "new"


async def test_legacy_is_told_the_default_scheme_and_a_peerless_request_is_not_believed(
    open_gateway: GatewayOpener,
) -> None:
    """ASGI's `scheme` defaults to http; a request with no peer (a unix socket) is no trusted
    proxy, so a forwarding header it carries is not believed."""
    forged = [(b"x-forwarded-for", b"203.0.113.66"), (b"x-forwarded-proto", b"https")]
    trusted = "127.0.0.1,::1,unknown"  # no stand-in name for a missing peer is ever trusted
    async with open_gateway(NEW_CHAT_PERCENT="0", TRUSTED_PROXIES=trusted) as gw:
        echo = await call(
            gw,
            [piece(chat_body(100), more=False)],
            query=b"debug=echo",
            headers=forged,
            client=None,
            minimal=True,
        )
    assert echo is not None
    seen = json.loads(echo.body)["headers"]
    assert seen["x-forwarded-proto"] == "http"
    assert "203.0.113.66" not in seen["x-forwarded-for"]


async def test_legacy_is_told_the_scheme_the_visitor_used(open_gateway: GatewayOpener) -> None:
    async with open_gateway(NEW_CHAT_PERCENT="0") as gw:
        echo = await call(
            gw, [piece(chat_body(100), more=False)], query=b"debug=echo", scheme="https"
        )
    assert echo is not None
    assert json.loads(echo.body)["headers"]["x-forwarded-proto"] == "https"
