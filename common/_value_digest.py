"""Contact values compared without being kept: a keyed hash (HMAC-SHA256) of each value's
normalised form, so two sides that took the same ZIP agree and a report can say so, while no
value is stored or logged and the hashes cannot be reversed by guessing without the key (a
plain hash of a 5-digit ZIP or a 10-digit phone falls to a dictionary in seconds).

Normal forms (what counts as "the same value"):
- phone: its digits, a leading NANP country code `1` of an 11-digit number dropped;
- email: trimmed, casefolded;
- zip: the first five digits (a ZIP+4 suffix dropped);
- name: casefolded, runs of spaces made one, trimmed.
"""

from __future__ import annotations

import base64
import hmac
import re
from typing import Literal, get_args

ValueField = Literal["name", "phone", "email", "zip"]
VALUE_FIELDS: tuple[ValueField, ...] = get_args(ValueField)
_DIGITS = re.compile(r"\D")
_SPACES = re.compile(r"\s+")


def normalise_value(field: ValueField, value: str) -> str:
    """The value's normal form for `field` ("" when nothing of it is left)."""
    if field == "phone":
        digits = _DIGITS.sub("", value)
        return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
    if field == "zip":
        return _DIGITS.sub("", value)[:5]
    if field == "email":
        return value.strip().casefold()
    return _SPACES.sub(" ", value).strip().casefold()


class ValueDigest:
    """Keyed hashes of contact values. `key` comes from `SHADOW_VALUE_KEY`, else is derived
    from `SESSION_SECRET` (`common.derive_secret(..., "shadow-values")`)."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("a value digest needs a key")
        self._key = key.encode()

    def digest(self, field: ValueField, value: object) -> str | None:
        """16 bytes of HMAC-SHA256 over `<field>|<normal form>`, URL-safe base64; None for a
        missing, non-text or empty value (nothing to compare)."""
        if not isinstance(value, str):
            return None
        normal = normalise_value(field, value)
        if not normal:
            return None
        mac = hmac.digest(self._key, f"{field}|{normal}".encode(), "sha256")
        return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()

    def digests(self, contact: object) -> dict[str, str]:
        """The digest of each value field a contact object holds (`{"zip": "90210", ...}`)."""
        if not isinstance(contact, dict):
            return {}
        found: dict[str, str] = {}
        for field in VALUE_FIELDS:
            digest = self.digest(field, contact.get(field))
            if digest is not None:
                found[field] = digest
        return found
