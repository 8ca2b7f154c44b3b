"""How long a 429 asks us to stay away: the `Retry-After` header (RFC 9110 section 10.2.3:
delay-seconds or an HTTP-date) or OpenAI's `retry-after-ms`, capped."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping

MAX_PAUSE_SECONDS = 600.0
"""The longest pause taken from a header: a server asking for more (or a clock far off) still
gets OpenAI tried again within ten minutes."""


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait (0 to `MAX_PAUSE_SECONDS`), or None when the headers say nothing usable.
    `now` is the wall clock (epoch seconds), for an HTTP-date. `retry-after-ms` wins when both
    are present (it is the more precise)."""
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return _capped(milliseconds / 1000)
    value = (headers.get("retry-after") or "").strip()
    seconds = _number(value)
    if seconds is not None:
        return _capped(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # an HTTP-date is always GMT; a date without a zone is not one
    return _capped(when.timestamp() - now)


def _number(value: str | None) -> float | None:
    """A finite number of seconds, or None ("120" yes; "inf", "nan" and a date no)."""
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _capped(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_PAUSE_SECONDS)
