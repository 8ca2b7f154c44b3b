"""How long a 429 keeps OpenAI paused: Retry-After as seconds or an HTTP-date (RFC 9110
section 10.2.3), OpenAI's retry-after-ms, capped."""

from __future__ import annotations

import email.utils

import pytest

from newchat.detection import MAX_PAUSE_SECONDS, retry_after_seconds

NOW = 1_796_000_000.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": email.utils.formatdate(NOW + 90, usegmt=True)}, 90.0),
        ({"retry-after": email.utils.formatdate(NOW - 90, usegmt=True)}, 0.0),  # already past
        ({"retry-after-ms": "2500", "retry-after": "120"}, 2.5),
        ({"retry-after": "86400"}, MAX_PAUSE_SECONDS),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "Mon, 30 Nov 2026 10:00:00"}, None),  # an HTTP-date is always GMT
        ({}, None),
    ],
)
def test_the_pause_a_429_asks_for(headers: dict[str, str], seconds: float | None) -> None:
    got = retry_after_seconds(headers, NOW)
    if seconds is None:
        assert got is None
    else:
        assert got == pytest.approx(seconds)
