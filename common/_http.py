"""HTTP details every server of the project reads the same way: headers as ASGI gives them,
cookies, the visitor's address, and the `Set-Cookie` header we write.

Cookies are read by hand on purpose: `http.cookies.SimpleCookie` took about 40 µs for a
browser's usual header, and a chat turn reads up to three cookies. The rule (RFC 6265's
`name=value; name=value`): other cookies are skipped unread; the first of a repeated name wins
(browsers send the one with the most specific path first); a quoted value is unquoted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

RawHeaders = list[tuple[bytes, bytes]]
"""Header (name, value) pairs as ASGI gives them: names lower-case, repeats kept, in order."""


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of `name` (lower-case), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of a header that may be repeated (HTTP/2 clients split `Cookie`)."""
    return [value for key, value in headers if key == name]


def read_cookies(cookie_headers: Iterable[str], names: Collection[str]) -> dict[str, str]:
    """The cookies named `names` in these `Cookie` header values (see the module's rule)."""
    found: dict[str, str] = {}
    for header in cookie_headers:
        for pair in header.split(";"):
            name, sep, value = pair.strip().partition("=")
            if sep and name in names and name not in found:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                found[name] = value
    return found


def request_cookies(headers: RawHeaders, names: Collection[str]) -> dict[str, str]:
    """The cookies named `names` in a request's headers; headers naming none of them are not
    decoded at all (most requests carry analytics cookies we never read)."""
    wanted = [name.encode() for name in names]
    cookie_headers = [
        raw.decode("latin-1")
        for key, raw in headers
        if key == b"cookie" and any(name in raw for name in wanted)
    ]
    return read_cookies(cookie_headers, names) if cookie_headers else {}


def client_address(peer: str | None, headers: RawHeaders, trusted: Collection[str]) -> str:
    """The visitor's address. Only when the peer itself is a trusted proxy: `X-Forwarded-For`
    (every such header, in order, as one list) is walked from the right, skipping trusted hops,
    then `X-Real-IP` is read; otherwise the peer. At most 64 characters of a forwarded value are
    kept."""
    if peer is None or peer not in trusted:
        return peer or "unknown"  # a missing peer (a unix socket) is never a trusted proxy
    address = peer
    forwarded = b",".join(header_values(headers, b"x-forwarded-for")).decode("latin-1")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if hop not in trusted:
            return hop[:64]
    real_ip = (header_value(headers, b"x-real-ip") or b"").decode("latin-1").strip()
    return real_ip[:64] if real_ip else address


def set_cookie(name: str, value: str, *, max_age: int, secure: bool) -> str:
    """A `Set-Cookie` value for a cookie only our servers read: `Path=/`, `HttpOnly`,
    `SameSite=Lax`, and `Secure` when the site is served over HTTPS. Written by hand: the
    values we sign need no quoting, and Litestar's `Cookie` cost about 40 µs a turn."""
    cookie = f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    return f"{cookie}; Secure" if secure else cookie
