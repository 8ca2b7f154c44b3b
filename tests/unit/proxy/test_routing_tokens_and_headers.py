"""Routing cookies, testers' override tokens, and which headers cross the gateway."""

from __future__ import annotations

import time

import pytest

from common import RawHeaders, client_address, request_cookies
from proxy import (
    OVERRIDE_COOKIE,
    ROUTE_COOKIE,
    RouteCookie,
    TokenSigner,
    Visitor,
    forwarding_headers,
    returned_headers,
    session_id_in,
)

SIGNER = TokenSigner("routing-secret")


def _visitor(headers: RawHeaders, peer: str, scheme: str, trusted: tuple[str, ...]) -> Visitor:
    """As the gateway reads a request's sender, once."""
    return Visitor(peer, scheme, client_address(peer, headers, trusted), peer in trusted, {})


def test_route_cookie_round_trip_and_tampering() -> None:
    value = SIGNER.route_cookie("new", "abcdefgh12345678")
    assert SIGNER.read_route_cookie(value) == RouteCookie("new", "abcdefgh12345678")
    flipped = "l" + value[1:]
    other_session = value.replace("abcdefgh", "abcdefgx")
    other_key = TokenSigner("another-secret").route_cookie("new", "abcdefgh12345678")
    for bad in (flipped, other_session, other_key, "", "n.short.mac", "n.a b c.x", "x" * 300, None):
        assert SIGNER.read_route_cookie(bad) is None, bad


def test_override_token_needs_signature_expiry_and_allow_list() -> None:
    now = time.time()
    token = SIGNER.override_token("ann", "new", int(now + 60))
    assert SIGNER.read_override(token, ("ann",), now) == "new"
    assert SIGNER.read_override(token, ("bob",), now) is None  # revoked: not on the list
    assert SIGNER.read_override(token, (), now) is None
    assert SIGNER.read_override(token, ("ann",), now + 120) is None  # expired
    tester, code, expiry, mac = token.split(".")
    assert SIGNER.read_override(f"{tester}.l.{expiry}.{mac}", ("ann",), now) is None
    assert SIGNER.read_override(f"{tester}.{code}.{int(expiry) + 999}.{mac}", ("ann",), now) is None
    assert SIGNER.read_override(f"{tester}.{code}.{expiry}", ("ann",), now) is None
    assert SIGNER.read_override(token + "\r\nX-Evil: 1", ("ann",), now) is None
    for missing in (None, ""):  # no override cookie at all
        assert SIGNER.read_override(missing, ("ann",), now) is None


def _header_map(pairs: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        assert name == name.lower()  # ASGI's spelling, as the backend gets it
        out.setdefault(name.decode(), []).append(value.decode())
    return out


def test_forwarding_drops_hop_by_hop_and_gateway_owned_headers() -> None:
    incoming = [
        (b"host", b"site.example"),
        (b"content-length", b"12"),
        (b"connection", b"keep-alive, x-private"),
        (b"x-private", b"secret"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"websocket"),
        (b"x-shadow-request", b"1"),
        (b"x-chat-override", b"token"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
        (b"accept-language", b"es"),
        (b"x_shadow_request", b"1"),  # PHP reads it as X-Shadow-Request (a fresh helper)
        (b"x-shadow-auth", b"guess"),
        (b"x_forwarded_for", b"6.6.6.6"),
    ]
    visitor = _visitor(incoming, "198.51.100.7", "https", ())
    out = _header_map(forwarding_headers(incoming, visitor))
    for gone in (
        "content-length",
        "connection",
        "x-private",
        "transfer-encoding",
        "upgrade",
        "x-shadow-request",
        "x-chat-override",
        "host",
        "x_shadow_request",
        "x_forwarded_for",
        "x-shadow-auth",
    ):
        assert gone not in out, gone
    assert out["cookie"] == ["a=1", "b=2"]
    assert out["accept-language"] == ["es"]
    assert out["x-forwarded-host"] == ["site.example"]
    assert out["x-forwarded-proto"] == ["https"]


@pytest.mark.parametrize(
    ("peer", "sent_xff", "expected_xff", "expected_real_ip"),
    [
        ("198.51.100.7", "6.6.6.6", "198.51.100.7", "198.51.100.7"),  # visitor: spoof replaced
        ("127.0.0.1", "203.0.113.5", "203.0.113.5, 127.0.0.1", "203.0.113.5"),  # nginx: kept
        ("127.0.0.1", None, "6.6.6.6", "6.6.6.6"),  # nginx that sets X-Real-IP only
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    peer: str, sent_xff: str | None, expected_xff: str, expected_real_ip: str
) -> None:
    incoming = [(b"x-real-ip", b"6.6.6.6")]
    if sent_xff:
        incoming.append((b"x-forwarded-for", sent_xff.encode()))
    visitor = _visitor(incoming, peer, "http", ("127.0.0.1",))
    out = _header_map(forwarding_headers(incoming, visitor))
    assert out["x-forwarded-for"] == [expected_xff]
    assert out["x-real-ip"] == [expected_real_ip]


def test_reply_headers_come_back_unchanged_except_hop_by_hop() -> None:
    reply = [
        (b"Content-Type", b"application/json"),
        (b"Set-Cookie", b"a=1; Path=/"),
        (b"Set-Cookie", b"b=2; HttpOnly"),
        (b"Connection", b"close, X-Internal"),
        (b"X-Internal", b"1"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Content-Length", b"99"),
        (b"Date", b"Fri, 27 Nov 2026 12:00:00 GMT"),
    ]
    assert returned_headers(reply) == [
        (b"content-type", b"application/json"),
        (b"set-cookie", b"a=1; Path=/"),
        (b"set-cookie", b"b=2; HttpOnly"),
        (b"content-length", b"99"),  # kept: `send_reply` decides the framing (HEAD, 304)
        (b"date", b"Fri, 27 Nov 2026 12:00:00 GMT"),
    ]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"cookie", b"_ga=GA1.2.3; chat_route=l.abc.mac; other=1")], {"chat_route": "l.abc.mac"}),
        ([(b"cookie", b'chat_route="n.abc.mac";chat_override=tok')],
         {"chat_route": "n.abc.mac", "chat_override": "tok"}),
        ([(b"cookie", b"chat_route=first; chat_route=second")], {"chat_route": "first"}),
        ([(b"cookie", b"a=1"), (b"cookie", b"chat_override=tok")], {"chat_override": "tok"}),
        ([(b"cookie", b"my_chat_route=x; chat_routex=y; broken; =z")], {}),
        ([(b"cookie", b"legacy_chat=abc")], {}),
        ([], {}),
    ],
    ids=["among others", "quoted, no space", "repeated", "two headers", "look-alikes", "none",
         "no header"],
)  # fmt: skip
def test_only_the_gateways_cookies_are_read(
    headers: list[tuple[bytes, bytes]], expected: dict[str, str]
) -> None:
    assert request_cookies(headers, (ROUTE_COOKIE, OVERRIDE_COOKIE)) == expected


def test_mac_is_stable_for_tokens_already_issued() -> None:
    """Cookies and tester tokens issued before a release must still verify after it."""
    signer = TokenSigner("routing-secret")
    assert (
        signer.mac("route", "l.session0123456789") == "ZU1OvsqoLHTrqMQk2AGIbg"
    )  # computed by the first implementation


def test_an_empty_or_shortened_mac_never_passes() -> None:
    """A MAC compared only up to the length the client sent would let `n.<id>.` through."""
    cookie = SIGNER.route_cookie("new", "abcdefgh12345678")
    payload, mac = cookie.rsplit(".", 1)
    for forged in (f"{payload}.", f"{payload}.{mac[:1]}", f"{payload}.{mac[:-1]}"):
        assert SIGNER.read_route_cookie(forged) is None, forged
    token = SIGNER.override_token("ann", "new", int(time.time() + 60))
    fields, token_mac = token.rsplit(".", 1)
    for forged in (f"{fields}.", f"{fields}.{token_mac[:4]}"):
        assert SIGNER.read_override(forged, ("ann",)) is None, forged


@pytest.mark.parametrize(
    "value",
    ["n.abcdefgh12345678", "n.abcdefgh12345678.mac.extra", "x.abcdefgh12345678.mac", "n"],
)
def test_a_route_cookie_of_the_wrong_shape_is_ignored_without_an_error(value: str) -> None:
    assert SIGNER.read_route_cookie(value) is None


def test_an_override_token_of_the_wrong_shape_is_ignored_without_an_error() -> None:
    for value in ("ann.n.soon.mac", "ann.x.1999999999.mac", "ann.n.1999999999", ".."):
        assert SIGNER.read_override(value, ("ann",), now=1.0) is None, value


def test_an_override_token_is_valid_through_its_expiry_second() -> None:
    expires = 1_900_000_000
    token = SIGNER.override_token("ann", "legacy", expires)
    assert SIGNER.read_override(token, ("ann",), now=float(expires)) == "legacy"
    assert SIGNER.read_override(token, ("ann",), now=expires + 1.0) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"sessionId": "abcdefgh12345678"}', "abcdefgh12345678"),
        (b' {"sessionId": "abcdefgh12345678"}', "abcdefgh12345678"),
        (b'\n{"sessionId": "abcdefgh12345678"}', "abcdefgh12345678"),
        (b'\t{"sessionId": "abcdefgh12345678"}', "abcdefgh12345678"),
        (b'\r\n{"sessionId": "abcdefgh12345678"}', "abcdefgh12345678"),
        (b'{"sessionId": "short"}', None),
        (b'{"sessionId": "abcdefgh\\r\\nX-Evil: 1"}', None),
        (b'{"sessionId": null}', None),
        (b'{"message": "hi"}', None),
        (b"sessionId=abcdefgh12345678", None),
        (b"", None),
        (b"[1, 2]", None),
    ],
)
def test_the_conversation_a_chat_body_names(body: bytes, expected: str | None) -> None:
    """JSON may start with whitespace; an id that is not well formed names nothing."""
    assert session_id_in(body) == expected


def test_connection_named_headers_are_dropped_however_the_list_is_spaced() -> None:
    incoming = [(b"connection", b"x-a,x-b ,  X-C"), (b"x-a", b"1"), (b"x-b", b"2"), (b"x-c", b"3")]
    visitor = _visitor(incoming, "198.51.100.7", "http", ())
    names = {name for name, _ in forwarding_headers(incoming, visitor)}
    assert not names & {b"x-a", b"x-b", b"x-c", b"connection"}


def test_several_forwarded_for_headers_from_a_proxy_are_one_chain() -> None:
    incoming = [(b"x-forwarded-for", b"203.0.113.5"), (b"x-forwarded-for", b"10.0.0.2")]
    visitor = _visitor(incoming, "127.0.0.1", "http", ("127.0.0.1", "10.0.0.2"))
    out = _header_map(forwarding_headers(incoming, visitor))
    assert out["x-forwarded-for"] == ["203.0.113.5, 10.0.0.2, 127.0.0.1"]
    assert out["x-real-ip"] == ["203.0.113.5"]


def test_a_trusted_peer_without_an_address_is_named_unknown_in_the_chain() -> None:
    incoming = [(b"x-forwarded-for", b"203.0.113.5")]
    visitor = Visitor(None, "http", "203.0.113.5", True, {})
    out = _header_map(forwarding_headers(incoming, visitor))
    assert out["x-forwarded-for"] == ["203.0.113.5, unknown"]


@pytest.mark.parametrize(("peer", "expected"), [("198.51.100.7", "http"), ("127.0.0.1", "https")])
def test_forwarded_proto_is_believed_only_from_a_trusted_proxy(peer: str, expected: str) -> None:
    """A visitor claiming `X-Forwarded-Proto: https` over plain HTTP is not believed."""
    incoming = [(b"x-forwarded-proto", b"https")]
    visitor = _visitor(incoming, peer, "http", ("127.0.0.1",))
    assert _header_map(forwarding_headers(incoming, visitor))["x-forwarded-proto"] == [expected]


def test_reply_headers_never_name_the_backend() -> None:
    reply = [
        (b"Host", b"127.0.0.1:8080"),
        (b"X-Powered-By", b"PHP/8.2.7"),
        (b"Server", b"Apache/2.4"),
        (b"Content-Type", b"application/json"),
        (b"X-Chat-Backend", b"new"),  # the gateway's label, never a backend's
    ]
    stripped = frozenset({b"x-powered-by", b"server"})
    assert returned_headers(reply, stripped) == [(b"content-type", b"application/json")]
    assert returned_headers(reply) == [
        (b"x-powered-by", b"PHP/8.2.7"),
        (b"server", b"Apache/2.4"),
        (b"content-type", b"application/json"),
    ]  # Host is never returned; the rest only as configured
