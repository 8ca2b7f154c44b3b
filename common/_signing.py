"""The one MAC the project signs with: HMAC-SHA256, truncated, URL-safe base64 without padding,
always checked in constant time (`hmac.compare_digest` over the whole expected value, so an
empty or shortened MAC never passes).

Two formats are in use, both kept so that cookies already in browsers still verify:
- purpose-tagged tokens (`<purpose>|<payload>`, 128 bits): routing cookies, override tokens;
- the session cookie's MAC over the bare session id (192 bits), as first issued.
"""

from __future__ import annotations

import base64
import hmac


class Signer:
    """MACs under one secret. Give each kind of token its own `purpose` (or its own secret,
    see `derive_secret`), so a MAC of one kind never verifies as another."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def mac(self, payload: str, *, purpose: str | None = None, size: int = 16) -> str:
        """The MAC of `payload` (of `<purpose>|<payload>` when a purpose is given), cut to
        `size` bytes."""
        message = payload if purpose is None else f"{purpose}|{payload}"
        digest = hmac.digest(self._key, message.encode(), "sha256")
        return base64.urlsafe_b64encode(digest[:size]).rstrip(b"=").decode()

    def verify(self, payload: str, mac: str, *, purpose: str | None = None, size: int = 16) -> bool:
        """Whether `mac` is the MAC of `payload`; constant time, never raises."""
        expected = self.mac(payload, purpose=purpose, size=size)
        return hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace"))
