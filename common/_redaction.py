"""What never reaches a log line: personal data (names, phones, emails, ZIP codes, message text)
and secrets, whatever a caller passes. Applied to every line by the logging set-up."""

from __future__ import annotations

from collections.abc import MutableMapping
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
