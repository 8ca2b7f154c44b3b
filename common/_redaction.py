"""What never reaches a log line: personal data (names, phones, emails, ZIP codes, message text)
and secrets, whatever a caller passes. Applied to every line by the logging set-up.

Two nets. By key: the value of a field named like personal data is dropped. By value: in every
other string of the line (the event text, an error's detail, a traceback, nested values), email
addresses and phone numbers are replaced, since a partner's error message or an exception can
echo them under any key (LeadProsper echoing a lead put 1,912 lines of contact details in the
worker's log). Names cannot be found by shape: code that logs outside text about a lead passes
the lead's own values to `scrub`."""

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


_STRUCTURAL_FIELDS = frozenset({"level", "timestamp"})
"""Written by the logging set-up itself: never personal."""

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    # North American (NANP, the site's visitors): 10 digits, optional +1, any usual punctuation
    r"(?<![\w.])(?:\+?1[\s.-]?)?\(?[2-9]\d{2}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\w)"
    # international: a plus and 8 to 15 digits (E.164), spaces, dots or dashes between
    r"|\+\d(?:[\s.-]?\d){7,14}(?!\w)"
)
"""Phone numbers as visitors type them. IP addresses, ports, versions and ISO timestamps do not
match (their digit groups are too short), so operators keep them."""


_SHORTEST_PHONE = 10


def redact(event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replaces, in place, the value of every personal or secret field in `event`, and every
    email address and phone number in its other strings (nested ones included)."""
    for key, value in event.items():
        if key in PERSONAL_FIELDS:
            event[key] = REDACTED
        elif key not in _STRUCTURAL_FIELDS:
            event[key] = _redact_value(value)
    return event


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):  # the checks first: most strings of a line are short words
        if "@" in value:
            value = _EMAIL.sub(REDACTED, value)
        return _PHONE.sub(REDACTED, value) if len(value) >= _SHORTEST_PHONE else value
    if isinstance(value, dict):
        return {k: REDACTED if k in PERSONAL_FIELDS else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


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
