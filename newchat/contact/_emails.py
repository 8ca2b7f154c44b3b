"""Email addresses, judged by email-validator (syntax only, no DNS; internationalised domains
and local parts)."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from newchat.contact._clauses import negated

# Email: the candidates are the words with an @; email-validator judges each.
_AT_WORD = re.compile(r"[^\s<>()\[\]{},;:\"]*@[^\s<>()\[\]{},;:\"]*")


def find_email(text: str, invalid: dict[str, str]) -> tuple[str | None, str]:
    """The last valid address (normalised: domain lower-cased), and `text` without it."""
    found: str | None = None
    for match in _AT_WORD.finditer(text):
        if negated(text, match.start()):
            continue
        candidate = match.group(0).lstrip("'’").rstrip(".!?'’")  # a leading dot is the address's
        try:
            found = validate_email(candidate, check_deliverability=False).normalized
        except EmailNotValidError as error:
            invalid["email"] = f"that email address isn't valid ({str(error).rstrip('.')})"
    return found, _AT_WORD.sub(" ", text)
