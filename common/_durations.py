"""Durations as operators type them on the command line (`--since 2h`)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90s', '15m', '2h', '7d', '1h30m' -> seconds; raises ValueError for anything else."""
    parts = _DURATION.findall(text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise ValueError(f"{text!r} is not a duration like 15m, 2h or 7d")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
