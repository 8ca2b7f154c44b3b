"""Reads named cookies from `Cookie` headers (RFC 6265 `name=value; name=value`).

By hand on purpose: `http.cookies.SimpleCookie` took about 40 µs for a browser's usual header,
and the gateway and the engine read one or two cookies on every chat turn. Other cookies are
skipped unread; the first of a repeated name wins (browsers send the one with the most specific
path first); a quoted value is unquoted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable


def read_cookies(cookie_headers: Iterable[str], names: Collection[str]) -> dict[str, str]:
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
