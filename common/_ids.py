"""Conversation (session) ids: the one rule for which ids are well formed, minting, and the
non-reversible tag logs carry instead of an id.

Well formed: 8 to 128 characters of `A-Z a-z 0-9 _ -`. That admits the new engine's ids (24
characters) and legacy PHP's (8 to 64), and nothing that could inject into a header, a cookie or
a Redis key name.
"""

from __future__ import annotations

import hashlib
import re
import secrets

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,128}")


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def new_session_id() -> str:
    """144 random bits, URL-safe (24 characters)."""
    return secrets.token_urlsafe(18)


def session_hash(session_id: str) -> str:
    """A short, stable, non-reversible tag for logs (the id itself is a bearer secret)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]
