"""Which headers cross the gateway, in each direction.

Towards a backend: the visitor's headers minus hop-by-hop ones (RFC 9110 section 7.6.1, plus any
the `Connection` header names), minus what the gateway owns (`Host`, `Content-Length`, forwarding
headers, the tester override and the shadow marker, which a visitor must never be able to send).
`X-Forwarded-For` / `X-Real-IP` are rebuilt: a trusted proxy's values are kept and extended, a
direct visitor's are replaced by its own address.

Towards the visitor: the backend's headers unchanged (repeated `Set-Cookie` included) minus
hop-by-hop ones, `Content-Length`, which the server sets for the body it sends, `Host`, and the
ones configured away (`X-Powered-By` and `Server` by default).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from common import RawHeaders, header_value, header_values

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
        b"x-shadow-auth",  # the gateway's own proof on a mirrored turn, never a visitor's
    }
)
_NOT_RETURNED = HOP_BY_HOP | {b"host", b"x-chat-backend"}
"""`Content-Length` is kept: `send_reply` decides the framing (it matters for HEAD and 304).
`X-Chat-Backend` is the gateway's to set: a backend's own would make two."""


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


class Visitor(NamedTuple):
    """Who sent a request, read once per request by the gateway."""

    peer: str | None
    """The address that opened the connection (nginx, or the visitor)."""
    scheme: str
    address: str
    """The visitor's address: the peer's, or, from a trusted proxy, what it forwarded."""
    peer_trusted: bool
    """The peer is in `TRUSTED_PROXIES`: its forwarding headers are believed and extended."""
    cookies: dict[str, str]
    """The cookies the gateway and the in-process engine read (`common.request_cookies`)."""


def forwarding_headers(headers: RawHeaders, visitor: Visitor) -> RawHeaders:
    """The headers a backend receives for this visitor request (ASGI's lower-case names)."""
    dropped = HOP_BY_HOP | _GATEWAY_OWNED | _connection_tokens(headers)
    # names with an underscore are dropped, as nginx does (`underscores_in_headers off`): PHP
    # reads `X_Shadow_Request` as `X-Shadow-Request`, so one would pass as the gateway's own
    out = [(k, v) for k, v in headers if k not in dropped and b"_" not in k]
    forwarded_for = (
        b", ".join(header_values(headers, b"x-forwarded-for")) if visitor.peer_trusted else None
    )
    if forwarded_for:
        chain = forwarded_for + b", " + (visitor.peer or "unknown").encode("latin-1")
    else:
        chain = visitor.address.encode("latin-1")
    proto = header_value(headers, b"x-forwarded-proto") if visitor.peer_trusted else None
    out.append((b"x-forwarded-for", chain))
    out.append((b"x-real-ip", visitor.address.encode("latin-1")))
    out.append((b"x-forwarded-proto", proto or visitor.scheme.encode("latin-1")))
    host = header_value(headers, b"host")
    if host is not None:
        out.append((b"x-forwarded-host", host))
    return out


def returned_headers(
    headers: Iterable[tuple[bytes, bytes]], stripped: frozenset[bytes] = frozenset()
) -> RawHeaders:
    """The backend's reply headers as the visitor gets them (names lower-cased for ASGI),
    without `Host` (a request header, meaningless in a reply: legacy's named its internal
    address) and the `stripped` ones (lower-case names)."""
    listed = list(headers)
    dropped = _NOT_RETURNED | stripped | _connection_tokens((k.lower(), v) for k, v in listed)
    return [(k.lower(), v) for k, v in listed if k.lower() not in dropped]
