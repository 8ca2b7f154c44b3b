"""Which headers cross the gateway, in each direction.

Towards a backend: the visitor's headers minus hop-by-hop ones (RFC 9110 section 7.6.1, plus any
the `Connection` header names), minus what the gateway owns (`Host`, `Content-Length`, forwarding
headers, the tester override and the shadow marker, which a visitor must never be able to send).
`X-Forwarded-For` / `X-Real-IP` are rebuilt: a trusted proxy's values are kept and extended, a
direct visitor's are replaced by its own address.

Towards the visitor: the backend's headers unchanged (repeated `Set-Cookie` included) minus
hop-by-hop ones and `Content-Length`, which the server sets for the body it sends.
"""

from __future__ import annotations

from collections.abc import Iterable

from newchat.clientip import client_address

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
OVERRIDE_HEADER = b"x-chat-override"
SHADOW_HEADER = b"x-shadow-request"
_GATEWAY_OWNED = frozenset(
    {
        b"host",
        b"content-length",
        b"expect",
        b"x-forwarded-for",
        b"x-real-ip",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        OVERRIDE_HEADER,
        SHADOW_HEADER,
    }
)
_NOT_RETURNED = HOP_BY_HOP | {b"content-length"}


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of a header that may be repeated (HTTP/2 clients split `Cookie`)."""
    return [value for key, value in headers if key == name]


def forwarding_headers(
    headers: RawHeaders, *, peer: str | None, scheme: str, trusted: tuple[str, ...]
) -> RawHeaders:
    """The headers a backend receives for this visitor request (ASGI's lower-case names)."""
    dropped = HOP_BY_HOP | _GATEWAY_OWNED | _connection_tokens(headers)
    out = [(k, v) for k, v in headers if k not in dropped]
    address = peer or "unknown"
    forwarding = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in headers
        if k in (b"x-forwarded-for", b"x-real-ip", b"x-forwarded-proto", b"host")
    }
    visitor = client_address(peer, forwarding, trusted)
    if address in trusted and forwarding.get("x-forwarded-for"):
        chain = f"{forwarding['x-forwarded-for']}, {address}"
    else:
        chain = visitor
    proto = forwarding.get("x-forwarded-proto") if address in trusted else None
    out.append((b"x-forwarded-for", chain.encode("latin-1")))
    out.append((b"x-real-ip", visitor.encode("latin-1")))
    out.append((b"x-forwarded-proto", (proto or scheme).encode("latin-1")))
    if "host" in forwarding:
        out.append((b"x-forwarded-host", forwarding["host"].encode("latin-1")))
    return out


def returned_headers(headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The backend's reply headers as the visitor gets them (names lower-cased for ASGI)."""
    listed = list(headers)
    dropped = _NOT_RETURNED | _connection_tokens((k.lower(), v) for k, v in listed)
    return [(k.lower(), v) for k, v in listed if k.lower() not in dropped]
