"""What never reaches a log line: personal data (names, phones, emails, ZIP codes, message text)
and secrets, whatever a caller passes. Applied to every line by the logging set-up."""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from typing import Any

PERSONAL_FIELDS = frozenset(
    {
        "message",
        "text",
        "reply",
        "name",
        "first_name",
        "last_name",
        "full_name",
        "phone",
        "email",
        "zip",
        "zip_code",
        "description",
        "body",
        "cookie",
        "authorization",
        "token",
        "api_key",
        "secret",
        "password",
    }
)
"""Keys whose values never reach a log line, whatever the caller passes."""
REDACTED = "[redacted]"


def redact(event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replaces the value of every personal or secret field in `event` (in place)."""
    for key in PERSONAL_FIELDS.intersection(event):
        event[key] = REDACTED
    return event


_EMAIL_LIKE = re.compile(r"\S+@\S+")
_NUMBER_LIKE = re.compile(r"\+?\d[\d\s().-]{3,}\d")


def scrub(text: str, personal: Iterable[str] = ()) -> str:
    """`text` from outside (a partner's error message) fit for a log line: every email-like
    word, every run of five or more digits (however punctuated) and each of the `personal`
    values given (a lead's names, any case) replaced by `[redacted]`. Checked by value, where
    `redact` goes by key."""
    scrubbed = _NUMBER_LIKE.sub(REDACTED, _EMAIL_LIKE.sub(REDACTED, text))
    for value in sorted({v for v in personal if len(v) > 1}, key=len, reverse=True):
        scrubbed = re.sub(rf"\b{re.escape(value)}\b", REDACTED, scrubbed, flags=re.IGNORECASE)
    return scrubbed
