"""Decoding JSON that comes from outside (visitors, legacy, LeadProsper, OpenAI).

msgspec decodes recursively and raises `RecursionError` for a document nested more deeply than
the interpreter's recursion limit allows (about 1,000 levels on CPython 3.11, measured with
`[[[...]]]`); a visitor can send that in a few kilobytes. Here it is one more malformed document.
"""

from __future__ import annotations

from typing import Any

import msgspec

_BOM = b"\xef\xbb\xbf"


def decode_json(data: bytes | str, *, type: Any = Any) -> Any:
    """`msgspec.json.decode(data, type=type)`, a leading UTF-8 byte order mark ignored. Raises
    `msgspec.DecodeError` for malformed or too deeply nested JSON, `msgspec.ValidationError`
    when it does not match `type`."""
    if isinstance(data, bytes) and data.startswith(_BOM):
        data = data[len(_BOM) :]  # RFC 8259 section 8.1: a parser may ignore one
    try:
        return msgspec.json.decode(data, type=type)
    except RecursionError:
        raise msgspec.DecodeError("JSON is nested too deeply") from None
