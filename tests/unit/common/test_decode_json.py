"""JSON from outside: any depth of nesting is a malformed document, never a RecursionError."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import decode_json
from proxy._pins import session_id_in


def nested(opener: str, depth: int) -> bytes:
    closer = "]" if opener == "[" else "}"
    return (opener * depth + "1" + closer * depth).encode()


@given(depth=st.integers(min_value=1, max_value=100), opener=st.sampled_from(["[", '{"a":']))
def test_shallow_nesting_decodes(depth: int, opener: str) -> None:
    decoded = decode_json(nested(opener, depth))
    for _ in range(depth):
        decoded = decoded[0] if opener == "[" else decoded["a"]
    assert decoded == 1


@given(
    depth=st.integers(min_value=2_000, max_value=200_000), opener=st.sampled_from(["[", '{"a":'])
)
def test_deep_nesting_is_a_decode_error_at_any_depth(depth: int, opener: str) -> None:
    with pytest.raises(msgspec.DecodeError, match="nested too deeply"):
        decode_json(nested(opener, depth))


class View(msgspec.Struct):
    message: str


def test_a_type_is_checked_and_deep_nesting_inside_it_refused() -> None:
    assert decode_json(b'{"message": "hi"}', type=View) == View("hi")
    with pytest.raises(msgspec.ValidationError):
        decode_json(b'{"message": 5}', type=View)
    with pytest.raises(msgspec.DecodeError, match="nested too deeply"):
        decode_json(b'{"message": "hi", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", type=View)


def test_a_deeply_nested_body_names_no_session() -> None:
    sid = "a" * 16
    deep = b"[" * 5000 + b"]" * 5000
    assert session_id_in(b'{"sessionId": "' + sid.encode() + b'", "x": ' + deep + b"}") is None
    assert session_id_in(b'{"sessionId": "' + sid.encode() + b'"}') == sid
